"""The figures on small synthetic runs: Figure 1 draws only the panels it has data for, panel
(a) plots the paper's training loss on a linear axis, and a kind has one colour everywhere."""

import matplotlib
import matplotlib.pyplot as plt
import pytest

from rethinking_jax import studies
from rethinking_jax.reports import plots, style

figure1 = studies.figure1


def _run(model, kinds, seeds=(0,), minibatch=True, steps=(10, 20, 30)):
  members, metrics = [], []
  for kind in kinds:
    for seed in seeds:
      m = len(members)
      members.append({"member": m, "randomization": kind, "seed": seed, "label": kind,
                      "corruption_p": 1.0 if kind == "random_labels" else 0.0})
      for i, step in enumerate(steps):
        r = {"step": step, "member": m, "label": kind, "train_loss": 5.0 - i,
             "train_acc": 0.5 + 0.25 * i, "test_acc": 0.3}
        if minibatch:
          r["minibatch_loss"] = 2.0 - 0.9 * i - 0.01 * m
        metrics.append(r)
  return {"metrics": metrics, "summary": {"members": members, "run": {"model": model}}}


_CURVE = [(0.0, (1.0, 0.0, 2), (0.2, 0.01, 2)), (1.0, (2.0, 0.1, 2), (0.9, 0.0, 2))]


def _lines(ax):
  return [line for line in ax.get_lines() if len(line.get_xdata())]


def _colour_of(ax, label):
  return next(matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()
              if line.get_label() == label)


@pytest.mark.parametrize("a_models, with_bc, panels", [
    (["inception_small"], False, 1), ([], True, 2), (["inception_small", "alexnet_small"],
                                                     True, 4)])
def test_figure1_draws_only_the_panels_it_has_data_for(a_models, with_bc, panels):
  a_runs = {m: _run(m, figure1.KINDS) for m in a_models}
  curves = [("alexnet_small", "alexnet_small, 2 seeds", _CURVE)] if with_bc else []
  fig = figure1.figure(a_runs, curves)
  try:
    assert len(fig.axes) == panels
    for ax in fig.axes:  # no empty panel
      assert _lines(ax), ax.get_title()
  finally:
    plt.close(fig)
  assert figure1.figure({}, []) is None


def test_panel_a_plots_the_train_mode_loss_on_a_linear_axis():
  fig = figure1.figure({"inception_small": _run("inception_small", ["true_labels"])}, [])
  try:
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    assert list(_lines(ax)[0].get_ydata()) == pytest.approx([2.0, 1.1, 0.2])
    assert "train mode" in ax.get_ylabel()
  finally:
    plt.close(fig)
  old = _run("inception_small", ["true_labels"], minibatch=False)  # recorded before it
  fig = figure1.figure({"inception_small": old}, [])
  try:
    assert fig.axes[0].get_ylabel() == "eval-mode loss on the training set"
  finally:
    plt.close(fig)


def test_a_kind_and_a_model_have_one_colour_in_every_figure():
  run = _run("inception_small", figure1.KINDS, seeds=(0, 1))
  fig_a = figure1.figure({"inception_small": run},
                         [("mlp_1x512", "mlp_1x512, 1 seed", _CURVE)])
  fig_curves = plots.curves_figure(run["metrics"])
  try:
    for kind in figure1.KINDS:
      colour = style.KIND_COLOURS[kind]
      assert _colour_of(fig_a.axes[0], kind.replace("_", " ")) == colour
      assert _colour_of(fig_curves.axes[0], kind) == colour
    # both seeds of a kind share its colour; (b) draws the model in the model's colour
    seeds = [line for line in fig_a.axes[0].get_lines()
             if matplotlib.colors.to_hex(line.get_color()) == style.KIND_COLOURS["gaussian"]]
    assert len(seeds) == 2
    assert matplotlib.colors.to_hex(fig_a.axes[1].get_lines()[0].get_color()) == \
        style.MODEL_COLOURS["mlp_1x512"]
  finally:
    plt.close(fig_a)
    plt.close(fig_curves)
  assert len(set(style.KIND_COLOURS.values()) | set(style.MODEL_COLOURS.values())) == \
      len(style.KIND_COLOURS) + len(style.MODEL_COLOURS)  # no colour means two things


def test_a_corruption_level_has_its_colour_in_curves_and_memorization():
  """Members are labelled as data/randomize.py labels them ('corrupt_labels(p=0.4)/seed=1'):
  each level takes its colour on the sequential map in both figures, clean and corrupted
  curves alike, and a crowded legend keeps one entry per level."""
  from rethinking_jax.data import randomize

  history = []
  for m, (p, seed) in enumerate((p, s) for p in (0.2, 0.4, 0.6, 0.8) for s in (0, 1, 2, 3)):
    label = f"{randomize.Randomization('corrupt_labels', p).label}/seed={seed}"
    history += [{"step": step, "member": m, "label": label, "train_loss": 1.0,
                 "minibatch_loss": 1.0, "train_acc": 0.5, "test_acc": 0.3,
                 "train_acc_clean": 0.6, "train_acc_corrupted": 0.2} for step in (10, 20)]
  level = {p: style.kind_colour(f"corrupt_labels:{p}") for p in (0.2, 0.4, 0.6, 0.8)}
  assert len(set(level.values())) == 4 and style.OTHER not in level.values()
  other = plots.curves_figure([dict(history[0], label="seed=500")])  # names no kind: grey
  assert matplotlib.colors.to_hex(_lines(other.axes[1])[0].get_color()) == style.OTHER
  plt.close(other)
  fig = plots.curves_figure(history)
  try:
    for line in _lines(fig.axes[1]):
      p = float(line.get_label().split("p=")[1].split(")")[0])
      assert matplotlib.colors.to_hex(line.get_color()) == level[p]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == [
        f"corrupt_labels(p={p:g})" for p in (0.2, 0.4, 0.6, 0.8)]
  finally:
    plt.close(fig)
  fig = plots.memorization_figure(history)
  try:
    lines = _lines(fig.axes[0])
    assert len(lines) == 2 * 16  # clean and corrupted per member
    for line in lines:
      p = float(line.get_label().split("p=")[1].split(")")[0])
      assert matplotlib.colors.to_hex(line.get_color()) == level[p]
  finally:
    plt.close(fig)
