"""What separates a memorizer from a generalizer: complexity measures of every member of a
trained run, beside its generalization gap.

    python -m rethinking_jax.measures --workdir=DIR [--examples=4096] [--checkpoints=latest]

For each member of the run in DIR (restored from its newest checkpoint, or from every kept
checkpoint with --checkpoints=all; set checkpoint_every_epochs to the evaluation interval
and checkpoints_to_keep high to have one per evaluation point): parameter l2 norm, sum and
product of Frobenius norms, product of spectral norms, Bartlett et al.'s spectral
complexity, the path-l2 norm (MLPs), distance from initialization, the output margins on a
fixed random subset of its training examples (10th percentile, raw and normalized by the
spectral complexity), sharpness (largest Hessian eigenvalue of the training loss; loss
increase under random weight perturbations of 1% relative size), each against the member's
train/test accuracy. Writes DIR/measures/: measures.json, measures.csv, report.md and
measures.png (test error against each measure, one point per member, colour = label
corruption p), with each measure's rank correlation (Kendall's tau) with the generalization
gap across members.
"""

from rethinking_jax.measures.complexity import (
                                                distance,
                                                frobenius_norms,
                                                hessian_max_eigenvalue,
                                                margins,
                                                parameter_l2,
                                                path_l2,
                                                perturbed_loss_increase,
                                                spectral_complexity,
                                                spectral_norms,
)

__all__ = ["distance", "frobenius_norms", "hessian_max_eigenvalue", "margins", "parameter_l2",
           "path_l2", "perturbed_loss_increase", "spectral_complexity", "spectral_norms"]
