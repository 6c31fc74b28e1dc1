"""A generic compiled training step for Sonnet modules.

`make_train_step` turns a model, an `snt.optimizers` optimiser and an objective
into one `tf.function` that computes the objective, its gradient with respect
to the model's trainable variables and applies the update. It runs with or
without a `tf.distribute` strategy: under a strategy each replica computes its
gradients, they are averaged with an all-reduce and every replica applies the
same update. Sonnet optimisers accept `snt.distribute.Replicator` (multi-device
mirrored training on one machine), `snt.distribute.TpuReplicator` and
`tf.distribute.OneDeviceStrategy`.

The objective is either a `SobolevLoss` (order 0 is regular training), used on
batches `{'x': [B, D], 'targets': (values, jacobians, ...)}` (or, through
`sobolev_objective(loss, target_fn=...)`, batches `{'x': [B, D]}` with a
differentiable target callable), or any callable
`loss_fn(model, batch) -> scalar` or `-> (scalar, dict of scalars)`.
"""

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import sonnet as snt
import tensorflow as tf

from sobolev import sobolev_loss

Batch = Any
LossFn = Callable[[snt.Module, Batch], Any]


def sobolev_objective(loss: sobolev_loss.SobolevLoss,
                      target_fn: Optional[Callable[[tf.Tensor],
                                                   tf.Tensor]] = None
                     ) -> LossFn:
  """Wraps a `SobolevLoss` as `loss_fn(model, batch)`.

  Args:
    loss: the Sobolev loss.
    target_fn: optional differentiable target (analytic function or teacher);
      if given, batches only need `'x'`.

  Returns:
    A callable `(model, batch) -> (total, terms)` where `batch` is a mapping
    with `'x'` (`[B, D]`) and, without `target_fn`, `'targets'` (a sequence
    of target tensors).
  """
  if not isinstance(loss, sobolev_loss.SobolevLoss):
    raise TypeError(f"`loss` must be a SobolevLoss, got {type(loss)}.")

  def loss_fn(model, batch):
    if not isinstance(batch, Mapping) or "x" not in batch:
      raise TypeError("A Sobolev batch must be a mapping with key 'x' (and "
                      "'targets' unless a target_fn is given).")
    if target_fn is not None:
      return loss(model, batch["x"], target_fn=target_fn)
    if "targets" not in batch:
      raise TypeError("A Sobolev batch without target_fn needs 'targets'.")
    return loss(model, batch["x"], targets=batch["targets"])

  return loss_fn


def _split_loss(out) -> (tf.Tensor, Dict[str, tf.Tensor]):
  if isinstance(out, (tuple, list)) and len(out) == 2:
    total, metrics = out
    return total, dict(metrics)
  return out, {}


def make_train_step(
    model: snt.Module,
    optimizer: snt.Optimizer,
    objective: Union[sobolev_loss.SobolevLoss, LossFn],
    *,
    strategy: Optional[tf.distribute.Strategy] = None,
    jit_compile: Optional[bool] = None,
    variables: Optional[Sequence[tf.Variable]] = None,
    steps_per_call: int = 1,
) -> Callable[[Batch], Dict[str, tf.Tensor]]:
  """Builds a compiled training step.

  Args:
    model: the module to train.
    optimizer: an `snt.optimizers` optimiser (anything with
      `apply(updates, parameters)`).
    objective: a `SobolevLoss` (batches are `{'x', 'targets'}` mappings) or a
      callable `loss_fn(model, batch)` returning a scalar or
      `(scalar, dict of scalar metrics)`.
    strategy: optional `tf.distribute` strategy. The step then expects a
      distributed batch (e.g. from `strategy.experimental_distribute_dataset`)
      or a batch that every replica sees whole, and returns metrics averaged
      over replicas. Build the model and optimiser in `strategy.scope()`.
    jit_compile: passed to `tf.function` (XLA compilation).
    variables: the variables to train; defaults to `model.trainable_variables`
      (read after the first forward pass, so lazily built modules work).
    steps_per_call: number K of optimisation steps run by one call, in a loop
      inside the compiled function (no Python or host round trip between
      steps, which on CPU costs as much as a small model's step). With K > 1
      every leaf of `batch` has a leading axis of size K, and step k uses
      slice k; the returned metrics are averaged over the K steps.

  Returns:
    `step(batch) -> {'loss': total, **metrics}`: a `tf.function`; under a
    strategy, a function whose first call runs eagerly (creating optimiser
    state in replica context) and later calls run `step.compiled`.

  Raises:
    TypeError: if `model`, `optimizer` or `objective` have the wrong type.
  """
  if not callable(model):
    raise TypeError(f"`model` must be callable, got {type(model)}.")
  if not hasattr(optimizer, "apply"):
    raise TypeError("`optimizer` must have an `apply(updates, parameters)` "
                    f"method (an snt.optimizers optimiser), got "
                    f"{type(optimizer)}.")
  if (isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int)
      or steps_per_call < 1):
    raise ValueError(
        f"`steps_per_call` must be an int >= 1, got {steps_per_call!r}.")
  if isinstance(objective, sobolev_loss.SobolevLoss):
    loss_fn = sobolev_objective(objective)
  elif callable(objective):
    loss_fn = objective
  else:
    raise TypeError("`objective` must be a SobolevLoss or a callable "
                    f"loss_fn(model, batch), got {type(objective)}.")

  def replica_step(batch):
    with tf.GradientTape() as tape:
      total, metrics = _split_loss(loss_fn(model, batch))
    params = list(variables) if variables is not None else list(
        model.trainable_variables)
    grads = tape.gradient(total, params)
    missing = [p.name for p, g in zip(params, grads) if g is None]
    if missing:
      raise ValueError(f"The objective does not depend on variables "
                       f"{missing}; pass `variables=` to train a subset.")
    if strategy is not None:
      ctx = tf.distribute.get_replica_context()
      grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
    optimizer.apply(grads, params)
    return {"loss": total, **metrics}

  def multi_step(batch):
    """K steps; step 0 runs outside the loop so lazy variables are created."""
    take = lambda k: tf.nest.map_structure(lambda t: t[k], batch)
    sums = replica_step(take(0))
    for k in tf.range(1, steps_per_call):
      out = replica_step(take(k))
      sums = {name: sums[name] + out[name] for name in sums}
    return {name: value / steps_per_call for name, value in sums.items()}

  body = replica_step if steps_per_call == 1 else multi_step
  if strategy is None:
    return tf.function(body, jit_compile=jit_compile)

  def distributed_step(batch):
    per_replica = strategy.run(body, args=(batch,))
    return {
        k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
        for k, v in per_replica.items()
    }

  compiled = tf.function(distributed_step, jit_compile=jit_compile)
  state = {"built": False}

  def step(batch):
    # Optimiser slots (and lazily built modules) created inside a compiled
    # replica function get initialisers that cannot run under a mirrored
    # strategy, so the first step runs eagerly and creates them; every later
    # step is compiled. Both compute the same update.
    if not state["built"]:
      state["built"] = True
      return distributed_step(batch)
    return compiled(batch)

  step.compiled = compiled
  return step
