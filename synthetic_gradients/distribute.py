"""Distribution strategies and optimisers for the synthetic-gradients runs.

* `none`: no strategy (one device).
* `replicator`: `snt.distribute.Replicator`, the Sonnet 2 flavour of
  `tf.distribute.MirroredStrategy` for all local accelerators (GPUs if any,
  otherwise the local CPU devices, e.g. logical CPUs in tests). Variables are
  replica-local; `sobolev.training.make_train_step` all-reduces (MEAN) the
  gradients in the replica context, so every replica applies the same update
  and copies stay equal. Sonnet optimisers accept this strategy.
* `multi_worker`: not run by this package (see `make_strategy` and the
  README for the path we propose; it is untested here).

Everything inside the compiled step is free of Python side effects and uses
static shapes (training batches drop their remainder), as TPU training with
`snt.distribute.TpuReplicator` requires.
"""

import math
from typing import Optional

import sonnet as snt
import tensorflow as tf


_STRATEGIES = {}


def make_strategy(name: str) -> Optional[tf.distribute.Strategy]:
  """The strategy named by `config.strategy`, one instance per process.

  Strategies are cached: several `MirroredStrategy` instances in one process
  issue colliding collective-op instance keys (a shape-mismatch error in the
  all-reduce), so every run of a process shares one.

  Args:
    name: `'none'`, `'replicator'` or `'multi_worker'`.

  Returns:
    `None` for `'none'`, otherwise a strategy.

  Raises:
    ValueError: for an unknown name.
    NotImplementedError: for `'multi_worker'` (see the README).
  """
  if name == "none":
    return None
  if name == "replicator":
    if name not in _STRATEGIES:
      gpus = tf.config.list_logical_devices("GPU")
      devices = [d.name
                 for d in (gpus or tf.config.list_logical_devices("CPU"))]
      _STRATEGIES[name] = snt.distribute.Replicator(devices=devices)
    return _STRATEGIES[name]
  if name == "multi_worker":
    raise NotImplementedError(
        "strategy='multi_worker' is not implemented: Sonnet 2 optimisers "
        "refuse tf.distribute.MultiWorkerMirroredStrategy. See "
        "synthetic_gradients/README.md ('Multi-worker') for the proposed "
        "path (MultiWorkerMirroredStrategy + Sonnet's replica-local variable "
        "creator + an optimiser without the strategy check), which is "
        "untested.")
  raise ValueError(f"`strategy` must be 'none', 'replicator' or "
                   f"'multi_worker', got {name!r}.")


def make_optimizer(name: str, learning_rate: tf.Variable) -> snt.Optimizer:
  """`snt.optimizers.Adam` or `Momentum(0.9)`; create in the strategy scope.

  Raises:
    ValueError: for an unknown optimiser.
  """
  if name == "adam":
    return snt.optimizers.Adam(learning_rate=learning_rate)
  if name == "momentum":
    return snt.optimizers.Momentum(learning_rate=learning_rate, momentum=0.9)
  raise ValueError(f"`optimizer` must be 'adam' or 'momentum', got {name!r}.")


def learning_rate_at(base: float, schedule: str, step: int,
                     total_steps: int) -> float:
  """`base` (constant) or `base * 0.5 * (1 + cos(pi * step / total))`."""
  if schedule == "constant":
    return base
  if schedule == "cosine":
    frac = min(1.0, step / max(1, total_steps))
    return base * 0.5 * (1.0 + math.cos(math.pi * frac))
  raise ValueError(f"`schedule` must be 'cosine' or 'constant', got "
                   f"{schedule!r}.")
