"""Table 4: fitting random labels *with* explicit regularizers (PAPER.md §5).

Inception with weight decay, random crop, augment; AlexNet, MLP 3x512 and MLP 1x512 with
weight decay. As the paper did, the crop and augment runs decay the learning rate by 0.999
per epoch (instead of 0.95) and train longer. `table4.py:smoke` on tiny synthetic data.
"""

from configs import common


def runs():
  out = {}
  for model in ("inception_small", "alexnet_small", "mlp_3x512", "mlp_1x512"):
    out[f"{model}_weight_decay"] = dict(model=model, randomizations="random_labels",
                                        weight_decay=common.PAPER_WEIGHT_DECAY[model])
  for transform in ("random_crop", "augment"):
    out[f"inception_small_{transform}"] = dict(
        model="inception_small", randomizations="random_labels", train_transform=transform,
        lr_decay_rate=0.999, num_epochs=1000)
  return out


def get_config(arg=None):
  return common.suite("table4", runs(), arg)
