"""curves.png: training loss and train/test accuracy against steps, one line per member."""

from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rethinking_jax.reports import files  # noqa: E402


def plot_curves(history: list[dict], path: str, title: str = "") -> None:
  by_member = defaultdict(list)
  for record in history:
    by_member[(record["member"], record["label"])].append(record)
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
  panels = (("train_loss", "training loss", "log"), ("train_acc", "train accuracy", "linear"),
            ("test_acc", "test accuracy", "linear"))
  for ax, (key, name, scale) in zip(axes, panels, strict=True):
    for (_, label), records in sorted(by_member.items()):
      points = [(r["step"], r[key]) for r in records if r[key] is not None]
      if points:
        ax.plot(*zip(*points, strict=True), label=label, marker="." if len(points) < 30 else None)
    ax.set_xlabel("steps")
    ax.set_title(name)
    ax.set_yscale(scale)
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
