"""Sobolev Training for Neural Networks (Czarnecki et al., NIPS 2017) in TF2.

Modules:
  derivatives: per-example input gradients, Jacobians, Hessians and their
    random projections (`tf.GradientTape`).
  losses: per-order loss functions (l2, l1, l2_norm).
  sampling: uniform directions on the unit sphere.
  sobolev_loss: `SobolevLoss`, the exact and stochastic Sobolev loss module,
    a thin module over `terms` (the loss as pure functions of tensors) and
    `loss_checks` (every argument and input check, in front of it).
  finite_differences: target derivatives of black-box (numpy) functions.
  forward_mode: fused forward-mode Jacobians of `snt.nets.MLP` (few inputs).
  fused_mlp: the fused order-1 pass of a scalar-output ReLU `snt.nets.MLP`
    (values, input gradients and one parameter-gradient pass for both).
  strided_conv: `Conv2D`, an `snt.Conv2D` with a fast input gradient for
    strided VALID layers (conv networks under Sobolev losses).
  training: `make_train_step`, a compiled (optionally distributed) step.
  keras: `SobolevModel`, Sobolev training with Keras 3 `Model.fit`.
  policies: `ActionSampler`, the one action sampler (greedy or sampled) for
    policies given as logits.
  rollouts: the play loop (`Player`), evaluation and sharded rollout
    collection for any gymnasium-API vector environment (A3C/A2C teachers'
    data for distillation; needs `.[atari]` only for Atari environments).
  experiment: utilities shared by the experiment packages (workdirs, run
    keys, metrics, checkpoints, provenance, progress; needs `.[experiments]`).
"""

import importlib

_MODULES = ("derivatives", "finite_differences", "forward_mode", "fused_mlp",
            "losses", "loss_checks", "sampling", "sobolev_loss",
            "strided_conv", "terms", "training", "experiment", "keras",
            "policies", "rollouts")


def __getattr__(name):
  # Submodules load on first use, so that `sobolev.experiment.cli.quiet()`
  # can run before TensorFlow is imported.
  if name in _MODULES:
    return importlib.import_module(f"sobolev.{name}")
  if name in ("SobolevLoss", "LossOutput"):
    return getattr(importlib.import_module("sobolev.sobolev_loss"), name)
  raise AttributeError(f"module 'sobolev' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_MODULES) +
                ["SobolevLoss", "LossOutput"])


__version__ = "0.1.0"

__all__ = list(_MODULES) + ["SobolevLoss", "LossOutput"]
