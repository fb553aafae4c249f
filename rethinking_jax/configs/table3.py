"""Table 3: minimum-norm kernel interpolation on MNIST and CIFAR10 (docs/PROTOCOL.md §6).

    python -m rethinking_jax.main --config=configs/table3.py --workdir=runs/table3
    ... --config=configs/table3.py:smoke      (scikit-learn digits, seconds, offline)
    ... --config=configs/table3.py:cifar10_jpeg   (the CIFAR rows on the JPEG archive, on a
                                                 CPU with 24 GB: see results/README.md)
    ... --config=configs/table3.py:cifar10_jpeg_patches  (the random-feature rows as
                                                 KeystoneML's RandomPatchCifar built them;
                                                 _n10000: on 10,000 images, 4,000 filters;
                                                 _full: 50,000 images, 32,000 filters,
                                                 resumable)

Rows: MNIST raw pixels (Gaussian kernel), MNIST Gabor wavelets (Gaussian), CIFAR10 pixels
(Gaussian), CIFAR10 random conv features (linear kernel, 32,000 filters), + l2. The n x n Gram
matrix limits n: 50,000 needs 20 GB in float64 (`kernel_float64=False` halves it);
`num_train` takes a subset.
"""

import ml_collections

from rethinking_jax.data import inputs


def get_config(arg=None):
  smoke = arg == "smoke"
  c = ml_collections.ConfigDict()  # the data fields and its own: it trains no network
  inputs.SECTION.add_to(c)
  c.experiment = "table3"
  c.smoke = smoke
  c.num_train = 0
  c.num_test = 0
  c.kernel_float64 = True
  c.num_filters = 512 if smoke else 32_000
  c.filter_size = 3 if smoke else 5
  c.pool_grid = 2
  c.gabor_pool_grid = 2 if smoke else 4
  c.seeds_first = 0
  mnist, cifar = ("digits", "digits") if smoke else ("mnist", "cifar10")
  c.table3_rows = ml_collections.ConfigDict({
      "mnist_raw": dict(dataset=mnist, features="raw", kernel="gaussian", l2=0.0,
                        paper_error=1.2),
      "mnist_gabor": dict(dataset=mnist, features="gabor", kernel="gaussian", l2=0.0,
                          paper_error=0.6),
      "cifar10_gaussian": dict(dataset=cifar, features="whitened", kernel="gaussian", l2=0.0,
                               paper_error=46.0),
      "cifar10_random_features": dict(dataset=cifar, features="random_conv", kernel="linear",
                                      l2=0.0, paper_error=17.0),
      "cifar10_random_features_l2": dict(dataset=cifar, features="random_conv",
                                         kernel="linear", l2=1e-2, paper_error=15.0),
  })
  if smoke:  # the patch recipe on the digits' 8x8 images: 3x3 patches
    c.table3_rows["cifar10_random_patches"] = dict(
        dataset=cifar, features="random_patches", kernel="linear", l2=0.0, paper_error=17.0,
        num_filters=256, patch_size=3, filter_block=100)  # 3 blocks: the streamed sum
  if arg in ("cifar10_jpeg", "cifar10_jpeg_features"):
    _cifar10_jpeg(c, features_only=arg == "cifar10_jpeg_features")
  elif arg == "cifar10_jpeg_patches":
    _cifar10_jpeg_patches(c)
  elif arg == "cifar10_jpeg_patches_n10000":  # the same D/n = 3.2 on half the images: ~4x
    _cifar10_jpeg_patches(c, num_train=10_000, num_filters=4_000)  # less work
  elif arg == "cifar10_jpeg_patches_full":  # the paper's scale: all 50,000, 32,000 filters
    _cifar10_jpeg_patches(c, num_train=50_000, num_filters=32_000, float64=False,
                          filter_block=2_000)
  elif arg not in (None, "", "smoke"):
    raise ValueError(f"config argument {arg!r}; allowed: smoke, cifar10_jpeg, "
                     "cifar10_jpeg_features, cifar10_jpeg_patches, cifar10_jpeg_patches_n10000, "
                     "cifar10_jpeg_patches_full")
  return c


def _cifar10_jpeg_patches(c, num_train: int = 20_000, num_filters: int = 8_000,
                          float64: bool = True, filter_block: int = 1_000):
  """Table 3's random-feature rows as a co-author's lab built CIFAR-10 random features
  (KeystoneML's RandomPatchCifar, the Coates-Ng recipe: rethinking_jax/theory/features.py
  random_patch_features): 6x6 training patches as filters, contrast-normalised and
  ZCA-whitened, symmetric rectifier at 0.25, 2x2 sum pooling (8 features per filter),
  per-feature standardisation, least squares on one-hot targets. On the same fixed random
  20,000 training images as `cifar10_jpeg_features`, 8,000 filters -> 64,000 features
  (D/n = 3.2), float64. The l2 row adds 640 to K's diagonal: 1% of its mean (each of the
  64,000 standardised features contributes ~1 to it); the paper gives no value.

  The feature map is never held: K and K(test, train) are summed over blocks of
  `filter_block` filters and saved after each (theory/gram_stream.py), so a stopped run
  resumes. `_full`, the paper's scale (all 50,000 images, 32,000 filters -> 256,000
  features, D/n = 5.1): float32 (K alone is 10 GB; 20 GB in float64 would not fit beside
  the rest in 24 GB), 16 blocks of 2,000 filters, hours on one core."""
  c.dataset = "image_folder"
  c.data_dir = "data/cifar10-jpeg.tar.gz"
  c.class_order = "cifar10"
  common = dict(dataset="image_folder", features="random_patches", kernel="linear",
                num_train=num_train, num_filters=num_filters, float64=float64,
                filter_block=filter_block)
  c.table3_rows = ml_collections.ConfigDict({
      "cifar10_random_patches": dict(common, l2=0.0, paper_error=17.0),
      "cifar10_random_patches_l2": dict(common, l2=0.01 * 8 * num_filters, paper_error=15.0),
  })


def _cifar10_jpeg(c, features_only: bool = False):
  """The three CIFAR10 rows on the CIFAR-10 JPEG archive, sized for a 2-core, 24 GB machine:
  the Gaussian kernel on a fixed random 40,000 of the 50,000 training images (a 6.4 GB
  float32 Gram matrix, factored in place by blocks; 50,000 would fit in memory too, at about
  twice the factorization time, ~n^3/3 FLOPs, which this machine did not spend); the
  random-feature
  rows on a fixed random 20,000 with 8,000 filters (32,000 features: more than the training
  points, so the linear kernel interpolates) -- the paper's 32,000 filters on 50,000 images
  (128,000 features) would take hours here.

  The random-feature rows solve in float64 (a 3.2 GB Gram matrix at 20,000): their features
  are ReLU outputs averaged over a grid, all positive, so K = F F^T has one eigenvalue far
  above the others and float32 Cholesky needed a jitter (0.8) that stopped it interpolating
  (47% train error; results/table3_cifar10). `cifar10_jpeg_features` runs only those rows."""
  c.dataset = "image_folder"
  c.data_dir = "data/cifar10-jpeg.tar.gz"
  c.class_order = "cifar10"
  c.kernel_float64 = False
  rows = {name: dict(row) for name, row in c.table3_rows.items() if name.startswith("cifar")}
  for row in rows.values():
    row["dataset"] = "image_folder"
    if row["features"] == "random_conv":
      row.update(num_train=20_000, num_filters=8_000, float64=True)
    else:
      row.update(num_train=40_000, num_filters=0)
  if features_only:
    rows = {name: row for name, row in rows.items() if row["features"] == "random_conv"}
  c.table3_rows = ml_collections.ConfigDict(rows)
