"""The paper's values that several studies share (each study holds its own numbers:
rethinking_jax/studies)."""

# Paper's weight decay values ([default] in docs/PROTOCOL.md §4).
WEIGHT_DECAY = {"inception_small": 5e-4, "inception_small_nobn": 5e-4, "alexnet_small": 5e-4,
                "mlp_1x512": 1e-4, "mlp_3x512": 1e-4}
