"""configs/fooling.py: attack every member of a trained workdir and compare them.

Outputs in the workdir: summary.json, report.md and PNG grids (adversarial examples,
gradient-ascent and evolved fooling images with their class and confidence).
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rethinking_jax import checkpoints  # noqa: E402
from rethinking_jax.errors import UserError  # noqa: E402
from rethinking_jax.fooling import adversarial, ascent, classifier, map_elites  # noqa: E402
from rethinking_jax.reports import files  # noqa: E402


def _grid(path, images, titles, rows=1):
  cols = int(np.ceil(len(images) / rows))
  fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for ax, img, title in zip(axes.flat, images, titles, strict=False):
    img = np.clip(img, 0, 1)
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1
              else None, vmin=0, vmax=1)
    ax.set_title(title, fontsize=7)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=100)
  plt.close(fig)


def _median(values):
  finite = [v for v in values if np.isfinite(v)]
  return float(np.median(finite)) if finite else None


def attack_member(config, clf, mean, images, labels, workdir, tag) -> dict:
  logits = np.asarray(clf.logits(jnp.asarray(images)))
  pred = logits.argmax(-1)
  out = {"label": clf.label, "accuracy_on_attacked": float(np.mean(pred == labels))}
  results = {}
  for name, norm, target in (("untargeted_l2", "l2", None), ("untargeted_linf", "linf", None),
                             ("targeted_l2", "l2", (pred + 1) % clf.num_classes)):
    delta, ok, norms = adversarial.minimal_perturbation(
        clf.logits, images, pred, target, norm, config.attack_bisections, config.attack_steps)
    adv_probs = np.asarray(clf.probs(jnp.asarray(np.clip(images + delta, 0, 1))))
    # The confidence in the class reached: the target's for a targeted attack, else the new
    # prediction's (the largest probability).
    reached = (adv_probs[np.arange(len(images)), target] if target is not None
               else adv_probs.max(-1))
    results[name] = (delta, ok)
    out[name] = {"success_rate": float(np.mean(ok)), "median_norm": _median(norms),
                 "median_confidence_after": float(np.median(reached[ok])) if ok.any()
                 else None}
  random_norms = adversarial.random_direction_norms(clf.logits, images, pred, config.seed)
  out["random_direction_l2"] = {"flip_rate": float(np.mean(np.isfinite(random_norms))),
                                "median_norm": _median(random_norms)}
  delta, ok = results["untargeted_l2"]
  shown = np.flatnonzero(ok)[:6]
  if shown.size:
    adv = np.clip(images[shown] + delta[shown], 0, 1)
    adv_pred = np.asarray(clf.probs(jnp.asarray(adv)))
    _grid(os.path.join(workdir, f"adversarial_{tag}.png"),
          [*images[shown], *(0.5 + 5 * delta[shown]), *adv],
          [f"{pred[i]}" for i in shown] + ["δ ×5"] * shown.size
          + [f"{p.argmax()}: {p.max():.2f}" for p in adv_pred], rows=3)

  imgs, confidence, first = ascent.fooling_images(
      clf.logits, mean, clf.num_classes, config.ascent_steps, config.ascent_lr,
      config.ascent_decay, seed=config.seed)
  probs = np.asarray(clf.probs(jnp.asarray(imgs)))
  _grid(os.path.join(workdir, f"ascent_{tag}.png"), imgs,
        [f"{k}: {probs[k, k]:.4f}" for k in range(clf.num_classes)], rows=2)
  out["ascent"] = {"final_confidence": [float(probs[k, k]) for k in range(clf.num_classes)],
                   "first_iteration": {str(t): v for t, v in first.items()},
                   "median_iterations_to_0.99": _median(
                       [v if v is not None else np.inf for v in first[0.99]])}

  out["map_elites"] = {}
  for encoding in [e for e in config.encodings.split(",") if e]:
    archive, best, history = map_elites.evolve(
        clf.probs, encoding, clf.input_shape, clf.num_classes, config.generations,
        config.population, config.seed)
    _grid(os.path.join(workdir, f"map_elites_{encoding}_{tag}.png"), best,
          [f"{k}: {float(archive.fitness[k]):.4f}" for k in range(clf.num_classes)], rows=2)
    out["map_elites"][encoding] = {
        "median_best_confidence_per_generation": [float(v) for v in np.median(history, 1)],
        "final_median_confidence": float(np.median(history[-1])),
        "classes_above_0.99": int(np.sum(history[-1] >= 0.99))}
  return out


def run(config, workdir: str) -> dict:
  source = config.fooling_workdir
  if not os.path.exists(os.path.join(source, "config.json")):
    raise UserError(f"fooling_workdir: {source!r} holds no trained run; train one first, "
                    "e.g. make demo (runs/quickstart)")
  mean, test_images, test_labels = classifier.images_of_workdir(source)
  images, labels = test_images[:config.num_attack_images], test_labels[:config.num_attack_images]
  num_members = checkpoints.restore_member(source, 0)["num_members"]
  members = ([int(m) for m in str(config.fooling_members).split(",") if m.strip()]
             or list(range(num_members)))
  os.makedirs(workdir, exist_ok=True)
  results = []
  for m in members:
    clf = classifier.from_workdir(source, m)
    results.append({"member": m, **attack_member(config, clf, mean, images, labels, workdir,
                                                  f"member{m}")})
  summary = {"source": source, "num_attack_images": int(len(images)), "members": results}
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  files.write_text(os.path.join(workdir, "report.md"), report(summary, config))
  return summary


def _fmt(v, spec=".3f"):
  return "—" if v is None else format(v, spec)


def report(summary, config) -> str:
  lines = ["# Fooling the trained members", "",
           f"Source run: `{summary['source']}`; {summary['num_attack_images']} test images "
           f"attacked per member; PGD with {config.attack_steps} steps and "
           f"{config.attack_bisections} bisections on ε; gradient ascent "
           f"{config.ascent_steps} steps; MAP-Elites {config.generations} generations × "
           f"{config.population} children.", "",
           "## Are models that memorized random labels easier to fool?", "",
           "| member | acc. on attacked | untargeted ‖δ‖₂ (median) | ‖δ‖∞ | targeted ‖δ‖₂ | "
           "random direction ‖δ‖₂ | ascent iters to 99% | MAP-Elites median conf. |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for m in summary["members"]:
    evolved = " / ".join(f"{e}: {_fmt(v['final_median_confidence'], '.4f')}"
                         for e, v in m["map_elites"].items())
    lines.append(
        f"| {m['label']} | {100 * m['accuracy_on_attacked']:.1f}% | "
        f"{_fmt(m['untargeted_l2']['median_norm'])} | "
        f"{_fmt(m['untargeted_linf']['median_norm'])} | "
        f"{_fmt(m['targeted_l2']['median_norm'])} | "
        f"{_fmt(m['random_direction_l2']['median_norm'])} | "
        f"{_fmt(m['ascent']['median_iterations_to_0.99'], '.0f')} | {evolved} |")
  lines += ["", "All members are attacked on the same natural test images (the accuracy column "
            "is against the true labels): members trained on randomized inputs (shuffled or "
            "random pixels, Gaussian noise) never saw such images. "
            "Smaller ‖δ‖ and fewer iterations = easier to fool. Success rates, confidences "
            "after the attack and the per-generation medians are in `summary.json`; images in "
            "`adversarial_member*.png`, `ascent_member*.png`, `map_elites_*_member*.png`.", ""]
  return "\n".join(lines)
