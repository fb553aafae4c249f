"""The base config: every field the engine reads, with the paper's values (docs/PROTOCOL.md §1-4).

Fields marked [default] are the project's choice where the paper is silent.
"""

import ml_collections
from ml_collections import config_dict

from rethinking_jax.models import defaults as model_defaults


def add_data_fields(c) -> None:
  """The data section: what a training run reads, and all that the theory experiments (which
  train nothing) take from here."""
  # Data.
  c.dataset = "cifar10"  # cifar10 | mnist | cifar10_archive | image_folder | digits | synthetic
  #                        | imagenet2012 (Table 2; streamed)
  c.data_dir = ""                # tfds data dir (default $TFDS_DATA_DIR) or the archive path
  c.tfds_reader = "auto"         # auto | data_source | tf
  c.class_order = ""             # image_folder: '' (sorted names), cifar10, or a,b,c,...
  c.cache_dir = ""               # image_folder array cache ('' = ~/.cache/rethinking_jax)
  c.num_train = 0                # use a fixed random N training examples (0 = all)
  c.num_test = 0                 # use a fixed random N test examples (0 = all)
  c.synthetic_shape = (32, 32, 3)
  c.synthetic_train = 1024
  c.synthetic_test = 256
  c.crop_size = 28               # crop follows the input: none when images are not larger
  # Input path: `device` keeps the whole dataset on the device (CIFAR10, MNIST, ...);
  # `stream` reads it from disk batch by batch (ImageNet); auto = stream only for imagenet2012.
  c.input_pipeline = "auto"      # auto | device | stream
  c.image_size = 0               # stream: every image resized to this square first (0 = keep)
  c.stream_workers = 8           # stream: readers decoding images (threads or processes)
  c.stream_reader = "auto"       # stream: auto | threads | processes (auto: processes for
                                 # files on disk when stream_workers > 1); the same bytes
  c.prefetch_batches = 4         # stream: batches read ahead of the device
  c.eval_train_examples = 0      # stream: train accuracy over a fixed random subset (0 = all)
  c.train_transform = "center_crop"  # center_crop | random_crop | augment  [default]


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  add_data_fields(c)

  # Members: the product randomizations x seeds x learning_rates x weight_decays.
  c.num_classes = 0              # > 0: labels folded to this many classes (label mod K); 2
  #                                with random_labels: the Rademacher test (configs/rademacher.py)
  c.randomizations = "true_labels"   # comma-separated: true_labels, corrupt_labels:P, ...
  c.corrupt_test_labels = False      # test labels stay true (the paper)
  c.seeds = "0"                      # comma-separated ints
  c.learning_rates = ""              # comma-separated; empty = learning_rate
  c.weight_decays = ""               # comma-separated; empty = weight_decay

  # Model: model, dropout_rate, compute_dtype, bn_momentum, bn_epsilon, layer_impl, declared
  # with their defaults by the models (models/defaults.py).
  c.update(model_defaults.FIELDS)
  c.conv_impl = "auto"           # XLA:CPU's convolution library: auto | ynn | eigen (auto:
  #                                eigen, measured in engine/xla_cpu.py). Process-wide

  # Optimisation.
  c.batch_size = 128             # [default]
  c.learning_rate = config_dict.placeholder(float)  # None = the paper's: 0.1 Inception, else 0.01
  c.momentum = 0.9
  c.lr_decay_rate = 0.95         # staircase decay factor ...
  c.lr_decay_every_epochs = 1.0  # ... applied every this many epochs [default]
  c.weight_decay = 0.0           # L2 on kernels (Table 1 "yes": 5e-4 conv nets, 1e-4 MLPs)

  # Engine.
  c.member_strategy = "auto"     # auto | vmap | map | unrolled | sequential | hybrid | patches
                                 # | streams (auto: engine/strategies.py)
  c.mesh_shape = "auto"          # 'MEMBER,DATA' device mesh, or auto (members first)
  c.distributed = False          # multi-host: call jax.distributed.initialize() first
  c.step_loop = "auto"           # scan (epochs in one program) | host (a program per step)
  c.num_epochs = 100
  c.eval_every_epochs = 1
  c.eval_every_steps = 0         # > 0: evaluate every this many steps instead (a fraction of
  #                                an epoch: convergence times to within that many steps)
  c.eval_full_every = 1          # > 1: only every Nth evaluation point measures both splits
  #                                in full; the others as much of the train split as tells
  #                                whether a member memorized (the same step is found; the
  #                                point of a memorization and the last are full). engine/loop
  c.eval_batch_size = 1000
  c.memorize_threshold = 1.0     # "memorized" = train accuracy (eval mode) >= this [default]
  c.stop_when_memorized = True   # end once every member memorized ...
  c.extra_epochs = 0             # ... after this many more epochs
  c.progress = True              # progress bar on stderr
  c.tensorboard = False          # True: TensorBoard scalars in WORKDIR/tensorboard too
  #                                (the `tensorboard` extra: tensorboardX, no TensorFlow)
  c.wandb_project = ""           # a name: the run in Weights & Biases too (the `wandb` extra),
  c.wandb_mode = "offline"       # offline (WORKDIR/wandb; `wandb sync` it) | online
  c.profile_steps = 0            # N > 0: trace N steps after the first evaluation point
  #                                (compiled, warm) with jax.profiler into WORKDIR/profile

  # Checkpoints (WORKDIR/checkpoints): rerunning a command resumes its run exactly.
  c.checkpoint_every_epochs = 10  # at the first evaluation point this many epochs after the last
  c.checkpoints_to_keep = 2
  c.restart = False              # True: discard the workdir's previous run and start fresh

  c.experiment = "train"         # train | theorem1 | table3 | min_norm_sgd (theory, §6-7)

  # Suites (configs/table1.py, figure1.py, ...): named sub-runs, each these fields with its
  # own overrides, trained one after another into WORKDIR/NAME, then one combined report.
  c.runs = ml_collections.ConfigDict()
  c.report = ""                  # the paper layout of the combined report: table1, ...
  c.panel = ""                   # the part of that report a sub-run fills (figure1: a, bc;
                                 # its study's panels), declared by its config
  c.smoke = False                # a tiny offline stand-in, never the paper's experiment
  return c


# Fields a resumed run may change, declared here with the fields: how long it goes and how it
# reports (for example to train longer), how it is laid out on devices and compiled (the same
# numbers up to float reassociation; for example to continue on a machine with more devices,
# or on another platform or core count, where `layer_impl` / `conv_impl=auto` pick
# differently), how the streaming path reads (the same batches whatever the threads), and
# where its suite's report shows it (panel). Every other field must equal the checkpoint's.
RESUME_MAY_CHANGE = frozenset({
    "num_epochs", "extra_epochs", "stop_when_memorized", "progress",  # run length, display
    "checkpoint_every_epochs", "checkpoints_to_keep", "restart", "tensorboard", "panel",
    "wandb_project", "wandb_mode",
    "profile_steps",
    "eval_batch_size", "mesh_shape", "distributed", "member_strategy", "step_loop",
    "layer_impl", "conv_impl",                                         # layout, compilation
    "stream_workers", "stream_reader", "prefetch_batches",             # streaming reads
})

