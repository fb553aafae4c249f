"""Table 2 and Figure 2a: ImageNet (ILSVRC 2012) with Inception V3 -- explicit regularizers
on and off, and random labels; top-1/top-5 train and test accuracy (PAPER.md §5).

    python -m rethinking_jax.main --config=configs/table2.py --workdir=runs/table2
    ... --config=configs/table2.py:no_aug      (one run by name)
    ... --config=configs/table2.py:smoke       (tiny synthetic stand-in, streamed; ~2 min on a CPU)

ImageNet does not fit in device memory, so it is streamed from a tfds `imagenet2012` prepared
as ArrayRecord from the manual download (see README, "Table 2: ImageNet"); the test split is
the 50,000 validation images. Runs share an architecture (dropout on or off) and an input
transform; members differ in labels and weight decay:

    aug_dropout_wd  augment, dropout, wd          (row 1)
    aug             augment                       (row 2)
    no_aug          true/random labels x wd/none  (rows 3, 4, 7 and the random-label wd row 6)
    no_aug_dropout  random labels, dropout, wd    (row 5)

[default] choices where the paper is silent (all config fields): images resized on the host
to 342 on the shorter side and center-cropped to 342x342, then cropped to 299x299 on the
device -- randomly for "aug" (with flips and brightness/contrast jitter), centrally otherwise
(the 0.875 central fraction); per-image whitening as for CIFAR10; dropout 0.2 before the
classifier and weight decay 4e-5 (the reference Inception V3's); SGD with momentum 0.9, lr
0.1 x 0.95 per epoch (the paper's Inception schedule), batch 128, 100 epochs; train accuracy
on a fixed random 50,000 of the training images at every evaluation.
"""

from configs import common

WEIGHT_DECAY = 4e-5   # [default] reference Inception V3 (TF-slim) weight decay
DROPOUT = 0.2         # [default] reference Inception V3 dropout (keep_prob 0.8)


def runs():
  def run(transform, dropout, randomizations, weight_decays):
    return dict(model="inception_v3", train_transform=transform, dropout_rate=dropout,
                randomizations=randomizations, weight_decays=weight_decays)

  return {
      "aug_dropout_wd": run("augment", DROPOUT, "true_labels", f"{WEIGHT_DECAY}"),
      "aug": run("augment", 0.0, "true_labels", "0"),
      "no_aug": run("center_crop", 0.0, "true_labels,random_labels", f"0,{WEIGHT_DECAY}"),
      "no_aug_dropout": run("center_crop", DROPOUT, "random_labels", f"{WEIGHT_DECAY}"),
  }


# The smoke stand-in: synthetic images large enough for Inception V3 (75x75 at least),
# streamed through the same input path as ImageNet.
SMOKE = dict(synthetic_shape=(80, 80, 3), crop_size=75, synthetic_train=16, synthetic_test=8,
             batch_size=8, eval_batch_size=8, eval_train_examples=8, image_size=0,
             stream_workers=2, prefetch_batches=2)


def get_config(arg=None):
  return common.suite(
      "table2", runs(), arg, num_epochs=100, smoke=SMOKE, dataset="imagenet2012",
      input_pipeline="stream", image_size=342, crop_size=299, batch_size=128,
      eval_batch_size=250, eval_train_examples=50_000, stop_when_memorized=False,
      checkpoint_every_epochs=1, stream_workers=16, prefetch_batches=8)
