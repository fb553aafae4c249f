"""Any registered study (rethinking_jax/studies) by name: the first item of the argument.

    python -m rethinking_jax.main --config=configs/study.py:table1,smoke --workdir=runs/t1
"""

from rethinking_jax.configs import common


def get_config(arg=None):
  name, _, rest = (arg or "").partition(",")
  return common.suite(name.strip(), rest)
