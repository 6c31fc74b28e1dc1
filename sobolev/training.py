"""A generic compiled training step for Sonnet modules and Keras models.

`make_train_step` turns a model (Sonnet, Keras, or any callable with
`variables=`), an optimiser (Sonnet or Keras; either trains either kind of
model) and an objective (a `SobolevLoss` or any `loss_fn(model, batch)`) into
one compiled step, a `TrainStep`: objective, gradients, update; see there.

Strategies: under a `tf.distribute` strategy each replica computes its
gradients, they are averaged with an all-reduce and every replica applies the
same update. Sonnet optimisers accept `snt.distribute.Replicator`,
`TpuReplicator` and `tf.distribute.OneDeviceStrategy`; Keras optimisers accept
every strategy, including `MultiWorkerMirroredStrategy` (the multi-worker
route without touching Sonnet). `allow_strategy_for_sonnet_optimizers` lets
a Sonnet optimiser run under another strategy.
"""

import contextlib
import sys
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import sonnet as snt
from sonnet.src.optimizers import optimizer_utils as _snt_optimizer_utils
import tensorflow as tf

from sobolev import sobolev_loss

Batch = Any
LossFn = Callable[[Any, Batch], Any]
GradTransform = Callable[[List[tf.Tensor]], Sequence[tf.Tensor]]
StepHook = Callable[[tf.Tensor], Optional[Mapping[str, tf.Tensor]]]


def sobolev_objective(loss: sobolev_loss.SobolevLoss,
                      target_fn: Optional[Callable[[tf.Tensor],
                                                   tf.Tensor]] = None
                     ) -> LossFn:
  """Wraps a `SobolevLoss` as `loss_fn(model, batch) -> (total, terms)`.

  Args:
    loss: the Sobolev loss.
    target_fn: optional differentiable target (analytic function or teacher).

  Returns:
    The `loss_fn`, for batches `{'x': [B, ...], 'targets': (values, ...)}`
    (without `'targets'` when `target_fn` is given).

  Raises:
    TypeError: if `loss` is not a `SobolevLoss`.
  """
  if not isinstance(loss, sobolev_loss.SobolevLoss):
    raise TypeError(f"`loss` must be a SobolevLoss, got {type(loss)}.")

  def loss_fn(model, batch):
    if not isinstance(batch, Mapping) or "x" not in batch:
      raise TypeError("A Sobolev batch must be a mapping with key 'x' (and "
                      "'targets' unless a target_fn is given).")
    if target_fn is not None:
      return loss(model, batch["x"], target_fn=target_fn)[:2]
    if "targets" not in batch:
      raise TypeError("A Sobolev batch without target_fn needs 'targets'.")
    return loss(model, batch["x"], targets=batch["targets"])[:2]

  return loss_fn


def allow_strategy_for_sonnet_optimizers(strategy_cls: type) -> None:
  """Lets Sonnet 2 optimisers run under `strategy_cls` (a patch of Sonnet).

  Sonnet 2.0.2 checks `isinstance(strategy, _SUPPORTED_STRATEGIES)` in every
  optimiser `apply`; its update is right for any strategy with replica-local
  variables and all-reduced gradients (e.g. `MultiWorkerMirroredStrategy`
  with `sonnet.src.distribute.replicator.replica_local_creator`). This
  appends `strategy_cls` to that private tuple (the only place that touches
  it; `tests/training_test.py` fails if Sonnet changes it). Prefer a Keras
  optimiser, which needs no patch.

  Args:
    strategy_cls: a `tf.distribute.Strategy` subclass.

  Raises:
    TypeError: if `strategy_cls` is not a strategy class.
    RuntimeError: if the installed Sonnet no longer has the tuple.
  """
  if not (isinstance(strategy_cls, type) and
          issubclass(strategy_cls, tf.distribute.Strategy)):
    raise TypeError("`strategy_cls` must be a tf.distribute.Strategy "
                    f"subclass, got {strategy_cls!r}.")
  supported = getattr(_snt_optimizer_utils, "_SUPPORTED_STRATEGIES", None)
  if not isinstance(supported, tuple):
    raise RuntimeError(
        "This Sonnet version has no optimizer_utils._SUPPORTED_STRATEGIES "
        "tuple; use a Keras optimiser under this strategy instead.")
  if strategy_cls not in supported:
    _snt_optimizer_utils._SUPPORTED_STRATEGIES = supported + (strategy_cls,)  # pylint: disable=protected-access


def sonnet_supports_strategy(strategy: tf.distribute.Strategy) -> bool:
  """Whether Sonnet optimisers accept `strategy` (see the function above)."""
  return isinstance(strategy, _snt_optimizer_utils._SUPPORTED_STRATEGIES)  # pylint: disable=protected-access


def _keras():
  """The `keras` module if it is loaded (no Keras object exists otherwise)."""
  return sys.modules.get("keras")


def _has_trainable_variables(model) -> bool:
  """Whether `model` has `trainable_variables`, maybe unreadable until built.

  (An unbuilt Sonnet module raises a `ValueError` from the property; the step
  reads the variables after the first forward pass.)
  """
  if isinstance(model, tf.Module) or _is_keras_layer(model):
    return True
  try:
    getattr(model, "trainable_variables")
  except AttributeError:
    return False
  except Exception:  # pylint: disable=broad-except
    return True  # The attribute exists; it just cannot be read yet.
  return True


def _is_keras_optimizer(optimizer) -> bool:
  keras = _keras()
  return keras is not None and isinstance(optimizer,
                                          keras.optimizers.Optimizer)


def _is_keras_layer(model) -> bool:
  keras = _keras()
  return keras is not None and isinstance(model, keras.layers.Layer)


def _as_tf_variable(variable):
  """A Keras variable's underlying `tf.Variable` (Sonnet optimisers need it)."""
  keras = _keras()
  if keras is not None and isinstance(variable, keras.Variable):
    inner = variable.value
    if not isinstance(inner, tf.Variable):
      raise TypeError(
          f"Keras variable {variable.path} does not wrap a tf.Variable here "
          "(mixed precision autocast?); use a Keras optimiser with it.")
    return inner
  return variable


class _KerasTraining:
  """Calls a Keras model with `training=True`; other attributes forwarded."""

  def __init__(self, model):
    self._model = model

  def __call__(self, inputs):
    return self._model(inputs, training=True)

  def __getattr__(self, name):
    return getattr(self._model, name)


def _split_loss(out) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  if hasattr(out, "total") and hasattr(out, "terms"):  # A LossOutput.
    return out.total, dict(out.terms)
  if isinstance(out, (tuple, list)) and len(out) == 2:
    total, metrics = out
    return total, dict(metrics)
  return out, {}


class TrainStep:
  """A compiled training step; what `make_train_step` returns.

  Call it on a batch: `metrics = step(batch)`, a dict of scalar tensors
  (`'loss'` and the objective's and `on_step`'s metrics).

  Attributes:
    compiled: the `tf.function` that runs the step(s) (under a strategy the
      first call runs the same computation eagerly; see `__call__`).
    counter: int64 `tf.Variable`, the number of optimisation steps run (what
      `on_step` receives; checkpoint it to resume schedules).
    strategy: the strategy, or None.
  """

  def __init__(self, body: Callable[[Batch], Dict[str, tf.Tensor]],
               compiled: Callable[[Batch], Dict[str, tf.Tensor]],
               counter: tf.Variable,
               strategy: Optional[tf.distribute.Strategy]):
    self._body = body
    self.compiled = compiled
    self.counter = counter
    self.strategy = strategy
    self._built = strategy is None

  def __call__(self, batch: Batch) -> Dict[str, tf.Tensor]:
    """Runs the step(s) on `batch` and returns the metrics."""
    if not self._built:
      # Optimiser slots (and lazily built modules) created inside a compiled
      # replica function get initialisers that cannot run under a mirrored
      # strategy, so the first step runs eagerly and creates them; every
      # later step is compiled. Both compute the same update.
      self._built = True
      return self._body(batch)
    return self.compiled(batch)

  def experimental_get_tracing_count(self) -> int:
    """How many times the compiled function was traced."""
    return self.compiled.experimental_get_tracing_count()


def make_train_step(
    model: Any,
    optimizer: Any,
    objective: Union[sobolev_loss.SobolevLoss, LossFn],
    *,
    strategy: Optional[tf.distribute.Strategy] = None,
    jit_compile: Optional[bool] = None,
    variables: Optional[Sequence[tf.Variable]] = None,
    steps_per_call: int = 1,
    transform_grads: Optional[GradTransform] = None,
    on_step: Optional[StepHook] = None,
) -> TrainStep:
  """Builds a compiled training step.

  Args:
    model: an `snt.Module`, a Keras model or layer (called with
      `training=True`), or any callable with `variables=` given.
    optimizer: an `snt.optimizers` optimiser (anything with
      `apply(updates, parameters)`) or a Keras 3 optimiser.
    objective: a `SobolevLoss` (batches are `{'x', 'targets'}` mappings) or a
      callable `loss_fn(model, batch)` returning a scalar, a
      `(scalar, dict of scalar metrics)` pair or a `SobolevLoss` output.
    strategy: optional `tf.distribute` strategy. The step then expects a
      distributed batch (e.g. from `strategy.experimental_distribute_dataset`)
      or a batch that every replica sees whole, and returns metrics averaged
      over replicas. Build the model and optimiser in `strategy.scope()`.
    jit_compile: passed to `tf.function` (XLA compilation).
    variables: the variables to train; defaults to `model.trainable_variables`
      (read after the first forward pass, so lazily built modules work).
    steps_per_call: number K of optimisation steps run by one call, in a loop
      inside the compiled function (no host round trip between steps). With
      K > 1 every leaf of `batch` has a leading axis K, step k uses slice k
      and the metrics are averaged over the K steps.
    transform_grads: optional `grads -> grads` applied to the list of
      gradients (all-reduced, in the order of the variables) before the
      update, e.g. `lambda g: tf.clip_by_global_norm(g, 1.0)[0]`; it must
      return as many tensors as it receives.
    on_step: optional `hook(step) -> None or {name: scalar}` run before every
      optimisation step with the int64 number of steps run so far
      (`TrainStep.counter`), e.g. `lambda s: lr.assign(schedule(s))` for a
      `tf.Variable` learning rate; returned scalars join the metrics.

  Returns:
    A `TrainStep`: `step(batch) -> {'loss': total, **metrics}`.

  Raises:
    TypeError: if `model`, `optimizer`, `objective` or a hook have the wrong
      type, e.g. a plain function as `model` without `variables=`.
    ValueError: for a bad `steps_per_call`, or a Sonnet optimiser under a
      strategy Sonnet does not support (the message names the fixes).
  """
  variables = None if variables is None else list(variables)
  _check_step_args(model, optimizer, strategy, variables, steps_per_call,
                   transform_grads, on_step)
  loss_fn = _as_loss_fn(objective)
  loss_model = _KerasTraining(model) if _is_keras_layer(model) else model
  counter = _counter(strategy)
  apply_updates = _update_fn(optimizer, strategy)

  def train_step(batch):
    """One optimisation step (on one replica): loss, gradients, update."""
    hook_metrics = _hook_metrics(on_step, counter)
    with tf.GradientTape() as tape:
      total, metrics = _split_loss(loss_fn(loss_model, batch))
    metrics = _merged(metrics, hook_metrics)
    params = variables or list(model.trainable_variables)
    grads = _gradients(tape, total, params, strategy)
    apply_updates(_transformed(transform_grads, grads), params)
    counter.assign_add(1)
    return {"loss": total, **metrics}

  body = (train_step if steps_per_call == 1 else
          _repeated(train_step, steps_per_call))
  if strategy is not None:
    body = _distributed(body, strategy)
  return TrainStep(body, tf.function(body, jit_compile=jit_compile),
                   counter, strategy)


def _check_step_args(model, optimizer, strategy, variables, steps_per_call,
                     transform_grads, on_step) -> None:
  """Raises for arguments of `make_train_step` that cannot work together."""
  if not callable(model):
    raise TypeError(f"`model` must be callable, got {type(model)}.")
  if variables is None and not _has_trainable_variables(model):
    raise TypeError(
        f"`model` ({type(model).__name__}) has no `trainable_variables`: "
        "pass an snt.Module, a Keras model or a tf.Module, or give the "
        "variables to train as `variables=`.")
  if variables is not None and not variables:
    raise ValueError("`variables` is empty.")
  if (not _is_keras_optimizer(optimizer) and
      not callable(getattr(optimizer, "apply", None))):
    raise TypeError("`optimizer` must have an `apply(updates, parameters)` "
                    f"method (an snt.optimizers or Keras optimiser), got "
                    f"{type(optimizer)}.")
  if (isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int)
      or steps_per_call < 1):
    raise ValueError(
        f"`steps_per_call` must be an int >= 1, got {steps_per_call!r}.")
  for name, hook in (("transform_grads", transform_grads),
                     ("on_step", on_step)):
    if hook is not None and not callable(hook):
      raise TypeError(f"`{name}` must be callable, got {type(hook)}.")
  if (strategy is not None and isinstance(optimizer, snt.Optimizer) and
      not sonnet_supports_strategy(strategy)):
    raise ValueError(
        f"Sonnet optimisers do not support {type(strategy).__name__}. Use a "
        "Keras optimiser (keras.optimizers.*), which supports every "
        "tf.distribute strategy, or a Sonnet-supported strategy "
        "(snt.distribute.Replicator, TpuReplicator, OneDeviceStrategy), or "
        "call sobolev.training.allow_strategy_for_sonnet_optimizers("
        f"{type(strategy).__name__}) if its variables are replica-local.")


def _as_loss_fn(objective) -> LossFn:
  """`loss_fn(model, batch)` for a `SobolevLoss` or a callable objective."""
  if isinstance(objective, sobolev_loss.SobolevLoss):
    return sobolev_objective(objective)
  if callable(objective):
    return objective
  raise TypeError("`objective` must be a SobolevLoss or a callable "
                  f"loss_fn(model, batch), got {type(objective)}.")


def _counter(strategy: Optional[tf.distribute.Strategy]) -> tf.Variable:
  """The int64 step counter (`TrainStep.counter`), in the strategy's scope."""
  with (strategy.scope() if strategy is not None else
        contextlib.nullcontext()):
    # ONLY_FIRST_REPLICA: replicas may update it in replica context (they
    # all hold the same value); Sonnet's Replicator makes it replica-local.
    return tf.Variable(0, dtype=tf.int64, trainable=False,
                       name="train_step_counter",
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def _hook_metrics(on_step: Optional[StepHook],
                  counter: tf.Variable) -> Dict[str, tf.Tensor]:
  """Runs `on_step(counter)`; returns its metrics (a dict, maybe empty)."""
  out = None if on_step is None else on_step(counter.read_value())
  if out is not None and not isinstance(out, Mapping):
    raise TypeError("`on_step` must return None or a mapping of "
                    f"scalar metrics, got {type(out)}.")
  return {} if out is None else dict(out)


def _merged(metrics: Dict[str, tf.Tensor],
            hook_metrics: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """The objective's metrics, then `on_step`'s; raises if names clash."""
  clash = set(hook_metrics) & (set(metrics) | {"loss"})
  if clash:
    raise ValueError(f"`on_step` metrics {sorted(clash)} clash with the "
                     "objective's metric names.")
  return {**metrics, **hook_metrics}


def _gradients(tape: tf.GradientTape, total: tf.Tensor, params: list,
               strategy: Optional[tf.distribute.Strategy]) -> list:
  """The gradients of `total`, averaged over replicas under a strategy."""
  if not params:
    raise ValueError("The model has no trainable variables.")
  grads = tape.gradient(total, params)
  missing = [p.name for p, g in zip(params, grads) if g is None]
  if missing:
    raise ValueError(f"The objective does not depend on variables "
                     f"{missing}; pass `variables=` to train a subset.")
  if strategy is not None:
    ctx = tf.distribute.get_replica_context()
    grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
  return grads


def _transformed(transform_grads: Optional[GradTransform], grads) -> list:
  """`transform_grads(grads)`, checked (the gradients if it is None)."""
  if transform_grads is None:
    return grads
  new_grads = transform_grads(list(grads))
  if not isinstance(new_grads, (list, tuple)) or len(new_grads) != len(grads):
    raise ValueError(
        f"`transform_grads` must return a list of {len(grads)} "
        f"gradients (one per variable), got {new_grads!r:.200}.")
  return list(new_grads)


def _update_fn(optimizer, strategy: Optional[tf.distribute.Strategy]
              ) -> Callable[[list, list], None]:
  """`apply(grads, params)`: the optimiser's update, for either kind."""
  if not _is_keras_optimizer(optimizer):
    return lambda grads, params: optimizer.apply(
        grads, [_as_tf_variable(p) for p in params])

  def apply(grads, params):
    if strategy is not None and strategy.num_replicas_in_sync > 1:
      # Keras optimisers sum gradients over replicas themselves.
      scale = 1.0 / strategy.num_replicas_in_sync
      grads = [g * tf.cast(scale, g.dtype) for g in grads]
    optimizer.apply(grads, params)

  return apply


def _repeated(train_step: Callable[[Batch], Dict[str, tf.Tensor]],
              steps: int) -> Callable[[Batch], Dict[str, tf.Tensor]]:
  """K steps on the K slices of a batch; the metrics averaged over them."""

  def multi_step(batch):
    # Step 0 runs outside the loop so lazily built variables are created.
    take = lambda k: tf.nest.map_structure(lambda t: t[k], batch)
    sums = train_step(take(0))
    for k in tf.range(1, steps):
      out = train_step(take(k))
      sums = {name: sums[name] + out[name] for name in sums}
    return {name: value / steps for name, value in sums.items()}

  return multi_step


def _distributed(body: Callable[[Batch], Dict[str, tf.Tensor]],
                 strategy: tf.distribute.Strategy
                ) -> Callable[[Batch], Dict[str, tf.Tensor]]:
  """`body` run on every replica; its metrics averaged over replicas."""

  def distributed_step(batch):
    per_replica = strategy.run(body, args=(batch,))
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()}

  return distributed_step
