"""Sobolev Training for Neural Networks (Czarnecki et al., NIPS 2017) in TF2.

Modules:
  derivatives: per-example input gradients, Jacobians, Hessians and their
    random projections (`tf.GradientTape`).
  losses: per-order loss functions (l2, l1, l2_norm).
  sampling: uniform directions on the unit sphere.
  sobolev_loss: `SobolevLoss`, the exact and stochastic Sobolev loss module.
  finite_differences: target derivatives of black-box (numpy) functions.
  forward_mode: fused forward-mode Jacobians of `snt.nets.MLP` (few inputs).
  strided_conv: `Conv2D`, an `snt.Conv2D` with a fast input gradient for
    strided VALID layers (conv networks under Sobolev losses).
  training: `make_train_step`, a compiled (optionally distributed) step.
"""

from sobolev import derivatives
from sobolev import finite_differences
from sobolev import forward_mode
from sobolev import losses
from sobolev import sampling
from sobolev import sobolev_loss
from sobolev import strided_conv
from sobolev import training
from sobolev.sobolev_loss import SobolevLoss

__version__ = "0.1.0"

__all__ = [
    "derivatives", "finite_differences", "forward_mode", "losses", "sampling",
    "sobolev_loss", "strided_conv", "training", "SobolevLoss",
]
