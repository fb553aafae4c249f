"""One colour per input kind and per model, the same in every figure the project draws.

The kinds (Figure 1a's inputs) and the models (Figure 1b/1c's lines) take colours from
disjoint sets, so a colour never means two things; label-corruption levels take a sequential
map (light: p near 0, dark: p = 1).
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")  # the one place: every figure is drawn headless, into a file
import matplotlib.pyplot as plt  # noqa: E402  (re-exported: the modules that draw use it)
from matplotlib import colormaps  # noqa: E402

__all__ = ["plt"]

KIND_COLOURS = {
    "true_labels": "#1f77b4",      # blue
    "random_labels": "#d62728",    # red
    "shuffled_pixels": "#2ca02c",  # green
    "random_pixels": "#ff7f0e",    # orange
    "gaussian": "#9467bd",         # purple
}
MODEL_COLOURS = {
    "inception_small": "#222222",  # near-black: the paper's own network
    "alexnet_small": "#e377c2",    # pink
    "mlp_1x512": "#17becf",        # cyan
    "mlp_3x512": "#bcbd22",        # olive
    "inception_v3": "#8c564b",     # brown
}
MODEL_MARKERS = {"inception_small": "o", "alexnet_small": "s", "mlp_1x512": "^",
                 "mlp_3x512": "v", "inception_v3": "D"}
OTHER = "#7f7f7f"  # grey: a kind or model this table does not name


# A label-corruption level in a member's label ('corrupt_labels(p=0.4)', data/randomize.py's
# Randomization.label) or as a config spells it ('corrupt_labels:0.4').
_CORRUPTION = re.compile(r"corrupt_labels(?:\(p=|:)([0-9.eE+-]+)")


def kind_colour(label: str) -> str:
  """The colour of a member's input kind, from its label ('random_labels',
  'corrupt_labels(p=0.4)/seed=1', 'true_labels/seed=0/wd=0', ...): a corruption level p on
  the sequential map."""
  kind = label.partition("/")[0]
  level = _CORRUPTION.fullmatch(kind.rstrip(")"))
  if level:
    p = float(level.group(1))
    return matplotlib.colors.to_hex(colormaps["viridis_r"](0.15 + 0.85 * p))
  return KIND_COLOURS.get(kind, OTHER)


def model_colour(model: str) -> str:
  return MODEL_COLOURS.get(model, OTHER)


def model_marker(model: str) -> str:
  return MODEL_MARKERS.get(model, "o")
