"""The paper's numbers (PAPER.md §5), as data the reports put beside ours."""

# Table 1: (model, random crop, weight decay, random labels) -> (train %, test %).
TABLE1 = [
    ("inception_small", True, True, False, 100.0, 89.05),
    ("inception_small", True, False, False, 100.0, 89.31),
    ("inception_small", False, True, False, 100.0, 86.03),
    ("inception_small", False, False, False, 100.0, 85.75),
    ("inception_small", False, False, True, 100.0, 9.78),
    ("inception_small_nobn", False, True, False, 100.0, 83.00),
    ("inception_small_nobn", False, False, False, 100.0, 82.00),
    ("inception_small_nobn", False, False, True, 100.0, 10.12),
    ("alexnet_small", True, True, False, 99.90, 81.22),
    ("alexnet_small", True, False, False, 99.82, 79.66),
    ("alexnet_small", False, True, False, 100.0, 77.36),
    ("alexnet_small", False, False, False, 100.0, 76.07),
    ("alexnet_small", False, False, True, 99.82, 9.86),
    ("mlp_3x512", False, True, False, 100.0, 53.35),
    ("mlp_3x512", False, False, False, 100.0, 52.39),
    ("mlp_3x512", False, False, True, 100.0, 10.48),
    ("mlp_1x512", False, True, False, 99.80, 50.39),
    ("mlp_1x512", False, False, False, 100.0, 50.51),
    ("mlp_1x512", False, False, True, 99.34, 10.61),
]

# Table 4: random labels fitted with regularizers: (model, regularizer) -> train %
# (None: "fails to converge").
TABLE4 = [
    ("inception_small", "weight decay", 100.0),
    ("inception_small", "random crop", 99.93),
    ("inception_small", "augment", 99.28),
    ("alexnet_small", "weight decay", None),
    ("mlp_3x512", "weight decay", 100.0),
    ("mlp_1x512", "weight decay", 99.21),
]

# Figure 1c: test error after convergence at p = 0 (Table 1, no regularizers) and p = 1 (%).
# The models each figure draws, in the paper's order (the configs train them, the reports
# draw them).
FIGURE1_MODELS = ("inception_small", "alexnet_small", "mlp_1x512")
FIGURE2_MODELS = ("inception_small", "inception_small_nobn")

FIGURE1C = {"inception_small": (14.25, 90.22), "alexnet_small": (23.93, 90.14),
            "mlp_1x512": (49.49, 89.39)}
# Figure 1a: the order in which the small Inception's training loss reaches ~0 (PAPER.md).
FIGURE1A = ("every input reaches ~0 training loss; random labels start converging latest; "
            "order true < shuffled < Gaussian ~ random pixels < random labels")
FIGURE1B = ("convergence time grows with p by a small constant factor, about 1.5-3.5x at "
            "p = 1 (read off the paper's Figure 1b)")
FIGURE2 = ("batch-norm stabilizes training and adds 3-4 points of test accuracy; early "
           "stopping would not help on CIFAR10 (running best ~ final)")

# Paper's weight decay values ([default] in PAPER.md §4).
WEIGHT_DECAY = {"inception_small": 5e-4, "inception_small_nobn": 5e-4, "alexnet_small": 5e-4,
                "mlp_1x512": 1e-4, "mlp_3x512": 1e-4}

# Table 2 (ImageNet, Inception V3): (aug, dropout, weight decay, random labels) ->
# (top-1 train, top-5 train, top-1 test, top-5 test, best top-1 test, best top-5 test) in %;
# the best test values (early stopping's potential) only where the paper gives them.
TABLE2 = [
    (True, True, True, False, 92.18, 99.21, 77.84, 93.92, None, None),
    (True, False, False, False, 92.33, 99.17, 72.95, 90.43, None, None),
    (False, False, True, False, 90.60, 100.0, 67.18, 86.44, 72.57, 91.31),
    (False, False, False, False, 99.53, 100.0, 59.80, 80.38, 63.16, 84.49),
    (False, True, True, True, 91.18, 97.95, 0.09, 0.49, None, None),
    (False, False, True, True, 87.81, 96.15, 0.12, 0.50, None, None),
    (False, False, False, True, 95.20, 99.14, 0.11, 0.56, None, None),
]
FIGURE2A = ("on ImageNet the explicit regularizers help (77.84% top-1 with all of them vs "
            "59.80% with none), and early stopping could gain ~3-5 points without them")
