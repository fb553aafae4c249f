"""Fooling images and minimal adversarial noise for every member of a trained run.

    make demo    # trains runs/quickstart (digits, six randomizations)
    python -m rethinking_jax.main --config=configs/fooling.py --workdir=runs/fooling
    ... --config.fooling_workdir=runs/table1/mlp_1x512_center   (any trained workdir)
    ... --config.fooling_workdir=A,B   (several, side by side: the same test images)
    ... --config=configs/fooling.py:smoke    (few images, steps and generations)

Minimal l2 / linf perturbations (untargeted and targeted) with a random-direction baseline,
gradient-ascent fooling images from the mean image, MAP-Elites with direct and CPPN
encodings, and the comparison: are members that memorized random labels easier to fool?
"""

import ml_collections

from rethinking_jax.configs import default


def get_config(arg=None):
  default.check_arg(arg, "fooling.py", ("smoke",))
  smoke = arg == "smoke"
  c = ml_collections.ConfigDict()  # its own fields only: it trains nothing (the members come
  c.experiment = "fooling"         # with their own runs' configs)
  c.smoke = smoke
  c.fooling_workdir = "runs/quickstart"  # or several, comma-separated
  c.fooling_members = ""            # comma-separated member indices; empty = all
  c.num_attack_images = 16 if smoke else 200
  c.attack_steps = 10 if smoke else 40
  c.attack_bisections = 6 if smoke else 12
  c.ascent_steps = 100 if smoke else 1000
  c.ascent_lr = 0.05
  c.ascent_decay = 0.01
  c.encodings = "direct,cppn"
  c.generations = 30 if smoke else 1000
  c.population = 32 if smoke else 128
  c.seed = 0
  return c
