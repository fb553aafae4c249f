"""curves.png: training loss and train/test accuracy against steps, one line per member
(coloured by input kind where its label names one: reports/style.py)."""

from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rethinking_jax.reports import files, style  # noqa: E402


def _member_looks(labels) -> dict:
  """{label: plot style}: an input kind's colour (reports/style.py) where the label names
  one, the default cycle otherwise; repeats of a colour get other line styles."""
  looks, used = {}, defaultdict(int)
  for i, label in enumerate(labels):
    colour = style.kind_colour(label)
    if colour == style.OTHER:
      colour = f"C{i % 10}"
    looks[label] = {"color": colour, "ls": ("-", "--", ":", "-.")[used[colour] % 4]}
    used[colour] += 1
  return looks


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
  train_mode = any(r.get("minibatch_loss") is not None for r in history)
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
  panels = ((("minibatch_loss", "training loss (train mode, mean over each interval)",
              "linear") if train_mode else
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
  axes[1].legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def plot_memorization(history: list[dict], path: str, title: str = "") -> bool:
  """memorization.png: train accuracy on the clean and on the corrupted labels of every member
  that has both (0 < p < 1), against steps -- Arpit et al.'s memorization dynamics. Returns
  whether there was anything to draw."""
  by_member = defaultdict(list)
  for record in history:
    if record.get("train_acc_corrupted") is not None and record.get("train_acc_clean") \
        is not None:
      by_member[(record["member"], record["label"])].append(record)
  if not by_member:
    return False
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for (_, label), records in sorted(by_member.items()):
    steps = [r["step"] for r in records]
    line, = ax.plot(steps, [r["train_acc_clean"] for r in records], label=f"{label}: clean")
    ax.plot(steps, [r["train_acc_corrupted"] for r in records], "--", color=line.get_color(),
            label=f"{label}: corrupted")
  ax.set(xlabel="steps", ylabel="train accuracy", title=title or "memorization dynamics")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
  return True


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
