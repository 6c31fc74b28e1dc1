"""Distribution strategies and optimisers for the synthetic-gradients runs.

* `none`: no strategy (one device).
* `replicator`: `snt.distribute.Replicator`, the Sonnet 2 flavour of
  `tf.distribute.MirroredStrategy` for all local accelerators (GPUs if any,
  otherwise the local CPU devices, e.g. logical CPUs in tests). Variables are
  replica-local; `sobolev.training.make_train_step` all-reduces (MEAN) the
  gradients in the replica context, so every replica applies the same update
  and copies stay equal. Sonnet optimisers accept this strategy.
* `multi_worker`: `MultiWorkerReplicator`, `MultiWorkerMirroredStrategy`
  with Sonnet's replica-local variables (cluster from `TF_CONFIG`). Tested
  with two worker processes on one machine only (see the README).

Everything inside the compiled step is free of Python side effects and uses
static shapes (training batches drop their remainder), as TPU training with
`snt.distribute.TpuReplicator` requires.
"""

import contextlib
from typing import Optional

import sonnet as snt
from sonnet.src.distribute import replicator as snt_replicator
import tensorflow as tf

from sobolev import training


class MultiWorkerReplicator(tf.distribute.MultiWorkerMirroredStrategy):
  """`MultiWorkerMirroredStrategy` with Sonnet's replica-local variables.

  This is to `MultiWorkerMirroredStrategy` what `snt.distribute.Replicator`
  is to `MirroredStrategy`: its scope also enters Sonnet's
  `replica_local_creator`, so every replica owns its copy of each variable
  and updates it locally from all-reduced gradients (the update model Sonnet
  optimisers assume). The cluster comes from `TF_CONFIG` as usual.
  """

  @contextlib.contextmanager
  def scope(self):
    with contextlib.ExitStack() as stack:
      stack.enter_context(super().scope())
      stack.enter_context(tf.variable_creator_scope(
          snt_replicator.replica_local_creator))
      yield


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
    if name not in _STRATEGIES:
      _STRATEGIES[name] = MultiWorkerReplicator()
      # Sonnet optimisers check a private tuple of strategies; the core's
      # one isolated patch adds this one (replica-local variables and
      # all-reduced gradients, as Sonnet's update rule assumes).
      training.allow_strategy_for_sonnet_optimizers(MultiWorkerReplicator)
    return _STRATEGIES[name]
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

