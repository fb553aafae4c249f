"""curves.png: training loss and train/test accuracy against steps, one line per member
(coloured by input kind where its label names one: reports/style.py)."""

from __future__ import annotations

from collections import defaultdict

from rethinking_jax.reports import files, style
from rethinking_jax.reports.style import plt


def _member_looks(labels) -> dict:
  """{label: plot style}: an input kind's colour (reports/style.py), grey where the label
  names none (never a colour that means a kind or a model); repeats of a colour get other
  line styles."""
  looks, used = {}, defaultdict(int)
  for label in labels:
    colour = style.kind_colour(label)
    looks[label] = {"color": colour, "ls": ("-", "--", ":", "-.")[used[colour] % 4]}
    used[colour] += 1
  return looks


def _legend(ax, **kwargs) -> None:
  """A legend of every line, or, past 12 of them (a run's seeds, weight decays), one entry per
  colour named by the member's kind (its label up to the first '/')."""
  handles, labels = ax.get_legend_handles_labels()
  if len(labels) > 12:
    firsts = {}
    for handle, label in zip(handles, labels, strict=True):
      firsts.setdefault(handle.get_color(), (handle, label.split("/")[0].split(": ")[0]))
    handles, labels = [h for h, _ in firsts.values()], [lab for _, lab in firsts.values()]
  ax.legend(handles, labels, **kwargs)


def training_loss_key(records) -> str:
  """The record key of the training loss a figure plots: minibatch_loss (train mode, the mean
  over each interval's SGD steps: the paper's quantity) where the run recorded it; for a run
  recorded before it, train_loss (the eval-mode loss on the training set)."""
  return ("minibatch_loss" if any(r.get("minibatch_loss") is not None for r in records)
          else "train_loss")


def plot_curves(history: list[dict], path: str, title: str = "") -> None:
  fig = curves_figure(history, title)
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)


def curves_figure(history: list[dict], title: str = ""):
  """The training loss (train mode where recorded, else eval mode), train and test accuracy
  of every member against steps."""
  by_member = defaultdict(list)
  for record in history:
    by_member[(record["member"], record["label"])].append(record)
  looks = _member_looks([label for _, label in sorted(by_member)])
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
  panels = ((("minibatch_loss", "training loss (train mode, mean over each interval)",
              "linear") if training_loss_key(history) == "minibatch_loss" else
             ("train_loss", "eval-mode loss on the training set", "log")),
            ("train_acc", "train accuracy", "linear"), ("test_acc", "test accuracy", "linear"))
  for ax, (key, name, scale) in zip(axes, panels, strict=True):
    for (_, label), records in sorted(by_member.items()):
      points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
      if points:
        ax.plot(*zip(*points, strict=True), label=label, **looks[label],
                marker="." if len(points) < 30 else None)
    ax.set_xlabel("steps")
    ax.set_title(name)
    ax.set_yscale(scale)
    ax.grid(alpha=0.3)
  _legend(axes[1], fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def plot_memorization(history: list[dict], path: str, title: str = "") -> bool:
  """memorization.png (memorization_figure); returns whether there was anything to draw."""
  fig = memorization_figure(history, title)
  if fig is None:
    return False
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
  return True


def memorization_figure(history: list[dict], title: str = ""):
  """Train accuracy on the clean and on the corrupted labels of every member that has both,
  against steps -- Arpit et al.'s memorization dynamics; None when no member has both."""
  by_member = defaultdict(list)
  for record in history:
    if record.get("train_acc_corrupted") is not None and record.get("train_acc_clean") \
        is not None:
      by_member[(record["member"], record["label"])].append(record)
  if not by_member:
    return None
  looks = _member_looks([label for _, label in sorted(by_member)])
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for (_, label), records in sorted(by_member.items()):  # a member's colour as in curves.png
    steps = [r["step"] for r in records]
    colour = looks[label]["color"]
    ax.plot(steps, [r["train_acc_clean"] for r in records], color=colour,
            label=f"{label}: clean")
    ax.plot(steps, [r["train_acc_corrupted"] for r in records], "--", color=colour,
            label=f"{label}: corrupted")
  ax.set(xlabel="steps", ylabel="train accuracy (solid: clean labels, dashed: corrupted)",
         title=title or "memorization dynamics")
  ax.grid(alpha=0.3)
  _legend(ax, fontsize=7)
  fig.tight_layout()
  return fig


def accuracy_panel(ax, records, title, metric="acc"):
  """Train and test accuracy against steps, the gap to the running best test shaded."""
  steps = [r["step"] for r in records]
  test = [r[f"test_{metric}"] or 0.0 for r in records]
  best = [max(test[:i + 1]) for i in range(len(test))]
  ax.plot(steps, [r[f"train_{metric}"] or 0.0 for r in records], label="train")
  ax.plot(steps, test, label="test")
  ax.fill_between(steps, test, best, alpha=0.3, label="running best test")
  ax.set(title=title, xlabel="steps", ylabel="accuracy" if metric == "acc" else "top-5")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
