"""The embedded offline demo: the paper's finding on real data in seconds of training
(`make demo` from a fresh clone: 36-49 s with pip's cache warm, benchmarks/demo_time.sh;
164 s where pip downloads the packages; 2026-12-07 on 2-vCPU VMs, README).

scikit-learn's 8x8 digits, MLP 1x512, six members trained together: true labels, labels
corrupted with p = 0.5, random labels, shuffled pixels, random pixels, Gaussian. Every member
reaches 100% train accuracy; test accuracy falls to chance where labels or pixels are random.

Departures from the paper's CIFAR10 schedule, measured on this set: lr 0.01 x 0.95 per epoch
starves a dataset of 11 steps per epoch (31% train accuracy on random labels after 1000
epochs), so the rate starts at 0.1 and decays every 50 epochs.
"""

from rethinking_jax.configs import default


def get_config(arg=None):
  default.check_arg(arg, "quickstart.py")
  c = default.get_config()
  c.dataset = "digits"
  c.model = "mlp_1x512"
  c.randomizations = ("true_labels,corrupt_labels:0.5,random_labels,shuffled_pixels,"
                      "random_pixels,gaussian")
  c.learning_rate = 0.1
  c.lr_decay_rate = 0.95
  c.lr_decay_every_epochs = 50.0
  c.num_epochs = 1000
  c.eval_every_epochs = 5
  return c
