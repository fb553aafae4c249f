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
