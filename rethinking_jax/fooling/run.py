"""configs/fooling.py: attack every member of a trained workdir and compare them.

Outputs in the workdir: summary.json, report.md and PNG grids (adversarial examples,
gradient-ascent and evolved fooling images with their class and confidence).
"""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np

from rethinking_jax.base import fields
from rethinking_jax.base.errors import UserError
from rethinking_jax.data.dataset import subset_indices
from rethinking_jax.engine import checkpoints
from rethinking_jax.fooling import adversarial, ascent, classifier, map_elites
from rethinking_jax.reports import files
from rethinking_jax.reports.style import plt


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


def _sources(config) -> list[str]:
  """The trained workdirs named by `fooling_workdir` (comma-separated), each checked."""
  sources = fields.split(config.fooling_workdir)
  if not sources:
    raise UserError("fooling_workdir: empty; name one or more trained workdirs, "
                    "comma-separated (e.g. runs/quickstart)")
  for source in sources:
    if not os.path.exists(os.path.join(source, "config.json")):
      raise UserError(f"fooling_workdir: {source!r} holds no trained run; train one first, "
                      "e.g. make demo (runs/quickstart)")
  return sources


def run(config, workdir: str) -> dict:
  """Attacks every member (or `fooling_members`) of every workdir in `fooling_workdir`.

  Several workdirs (comma-separated) put members of different runs side by side, e.g. an
  MLP's and an AlexNet's true- and random-label members; all are attacked on the same test
  images, so their datasets must agree on them. Each workdir's gradient ascent starts from
  its own run's mean training image (a subset run's mean is its subset's).
  """
  sources = _sources(config)
  chosen = fields.split(config.fooling_members)
  if not all(m.isdigit() for m in chosen):
    raise UserError(f"fooling_members: {config.fooling_members!r}; allowed: comma-separated "
                    "member indices (0, 1, ...), or empty for every member")
  chosen = [int(m) for m in chosen]
  attacked, images, loaded = None, None, []  # every source checked before any attack
  for source in sources:
    mean, test_images, test_labels = classifier.images_of_workdir(source)
    # A fixed random sample, not the first N: image folders list their images class by
    # class (the first 100 CIFAR-10 test images are all airplanes).
    own = subset_indices(len(test_images), config.num_attack_images)
    if attacked is None:
      attacked, images, labels = own, test_images[own], test_labels[own]
    elif not np.array_equal(test_images[own], images):
      raise UserError(f"fooling_workdir: {source!r} was trained on other test images than "
                      f"{sources[0]!r}; name runs of one dataset (and crop)")
    num_members = checkpoints.restore_member(source, 0)["num_members"]
    for m in chosen:
      if not 0 <= m < num_members:
        raise UserError(f"fooling_members: member {m} is not in {source!r} (allowed: 0 to "
                        f"{num_members - 1})")
    loaded.append((source, _model_of(source), mean, chosen or list(range(num_members))))
  os.makedirs(workdir, exist_ok=True)
  files.write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json()))
  results = []
  for source, model, mean, members in loaded:
    for m in members:
      clf = classifier.from_workdir(source, m)
      tag = f"member{len(results)}"
      results.append({"member": m, "source": source, "model": model, "tag": tag,
                      **attack_member(config, clf, mean, images, labels, workdir, tag)})
  summary = {"source": ",".join(sources), "num_attack_images": int(len(images)),
             "attacked_test_images": [int(i) for i in attacked], "members": results}
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  files.write_text(os.path.join(workdir, "report.md"), report(summary, config))
  return summary


def _model_of(source: str) -> str:
  with open(os.path.join(source, "config.json")) as f:
    return str(json.load(f).get("model", "?"))


def _fmt(v, spec=".3f"):
  return "—" if v is None else format(v, spec)


def report(summary, config) -> str:
  sources = summary["source"].split(",")
  lines = ["# Fooling the trained members", "",
           f"Source run{'s' if len(sources) > 1 else ''}: "
           f"{', '.join(f'`{s}`' for s in sources)}; {summary['num_attack_images']} test images "
           f"(a fixed random sample, the same for every member) attacked per member; PGD with "
           f"{config.attack_steps} steps and "
           f"{config.attack_bisections} bisections on ε; gradient ascent "
           f"{config.ascent_steps} steps; MAP-Elites {config.generations} generations × "
           f"{config.population} children.", "",
           "## Are models that memorized random labels easier to fool?", "",
           "| model | member | acc. on attacked | fooled ℓ2 / ℓ∞ / targeted | untargeted ‖δ‖₂ "
           "(median) | ‖δ‖∞ | targeted ‖δ‖₂ | target conf. after | random direction ‖δ‖₂ | "
           "ascent iters to 99% | MAP-Elites median conf. | images |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
  for m in summary["members"]:
    evolved = " / ".join(f"{e}: {_fmt(v['final_median_confidence'], '.4f')}"
                         for e, v in m["map_elites"].items())
    fooled = " / ".join(f"{100 * m[k]['success_rate']:.0f}%"
                        for k in ("untargeted_l2", "untargeted_linf", "targeted_l2"))
    lines.append(
        f"| {m.get('model', '?')} | {m['label']} | {100 * m['accuracy_on_attacked']:.1f}% | "
        f"{fooled} | {_fmt(m['untargeted_l2']['median_norm'])} | "
        f"{_fmt(m['untargeted_linf']['median_norm'])} | "
        f"{_fmt(m['targeted_l2']['median_norm'])} | "
        f"{_fmt(m['targeted_l2']['median_confidence_after'])} | "
        f"{_fmt(m['random_direction_l2']['median_norm'])} | "
        f"{_fmt(m['ascent']['median_iterations_to_0.99'], '.0f')} | {evolved} | "
        f"`{m.get('tag', 'member' + str(m['member']))}` |")
  lines += ["", "All members are attacked on the same natural test images (the accuracy column "
            "is against the true labels): members trained on randomized inputs (shuffled or "
            "random pixels, Gaussian noise) never saw such images. "
            "Smaller ‖δ‖ and fewer iterations = easier to fool; fooled = the share of attacked "
            "images whose prediction the attack changed (targeted: to the next class) within "
            "the bisection's largest ε. Confidences after the untargeted attacks and the "
            "per-generation medians are in `summary.json`; the images of each row (its "
            "`images` tag) in `adversarial_TAG.png` (original, δ ×5, adversarial), "
            "`ascent_TAG.png` and `map_elites_ENCODING_TAG.png`.", ""]
  return "\n".join(lines)
