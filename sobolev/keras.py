"""Sobolev training with Keras 3 `Model.fit` (TensorFlow backend).

`SobolevModel` wraps any Keras model (or layer) mapping inputs `[B, D]` to
outputs `[B, O]` (or `[B]`) and trains it with `sobolev.SobolevLoss` inside
its `train_step`, so the whole Keras tool chain works unchanged: `fit`,
`evaluate`, `predict`, callbacks (TensorBoard, ModelCheckpoint, EarlyStopping,
learning-rate schedulers), `tf.distribute` strategies and `.keras` saving.

    net = keras.Sequential([keras.Input((2,)),
                            keras.layers.Dense(64, activation="softplus"),
                            keras.layers.Dense(1)])
    model = sobolev.keras.SobolevModel(net, order=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, (y, dy), epochs=100, batch_size=32)
    model.evaluate(x_test, (y_test, dy_test), return_dict=True)
    # {'loss': ..., 'order_0': ..., 'order_1': ..., 'value_mse': ...,
    #  'jacobian_mse': ...}

Targets (`y` of `fit`/`evaluate`) are the tuple `(values [B, O] or [B],
jacobians [B, O, D] or [B, D], hessians [B, O, D, D])` up to the loss order;
extra trailing entries (e.g. Jacobians for an order-0 model) are not trained
on but are used by `evaluate` to report derivative errors, so a plain
(order-0) model and a Sobolev model can be compared on the same data.
`y` may be one array (the values; order 0) or a tuple/list of arrays, not a
dict. `sample_weight` (`[B]`) is passed to `SobolevLoss(sample_weights=...)` and
weights the error metrics; a tuple of `[B]` weights, one per target, gives
per-order weights (e.g. zero where an example has no derivative target).
Alternatively `target_fn=` gives a differentiable target (an analytic
function or a teacher network) and `fit(x)` needs no `y`.

Dtypes: inputs and targets are cast to the dtype the wrapped model computes
in (`_wrapped_dtype`; `dtype=` given to `SobolevModel` takes precedence), so a
float64 network trains on float64 data without `dtype="float64"`. Keras itself
rounds NumPy float64 arrays given to `fit` to `floatx` (float32 by default):
for float64 data also set `keras.config.set_floatx("float64")` or pass a
`tf.data.Dataset`. Under `mixed_float16` a non-finite loss is reported as a
likely float16 overflow (largest finite value 65504).

Metrics (logged per epoch, also by the TensorBoard callback):
  loss: the weighted Sobolev total.
  order_j: the unweighted per-order terms of `SobolevLoss`.
  value_mse, jacobian_mse, hessian_mse (`evaluate` only, for the targets
    given): mean over examples of the squared error summed over the other
    axes, i.e. `mean_b ||m(x_b) - f(x_b)||^2` and `mean_b ||J_m - J_f||_F^2`.
    These are exact derivative errors even when training is stochastic.
"""

from typing import Any, Callable, Dict, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from sobolev import derivatives
from sobolev import losses
from sobolev import sobolev_loss
from sobolev import terms

TargetFn = Callable[[tf.Tensor], tf.Tensor]
ERROR_NAMES = ("value_mse", "jacobian_mse", "hessian_mse")
# `compile` arguments that the Sobolev loss and metrics replace.
_REPLACED = ("loss", "loss_weights", "metrics", "weighted_metrics")


def _as_tuple(y) -> tuple:
  """`y` (None, one array or a tuple of arrays) as a tuple of arrays.

  Raises:
    TypeError: for a dict or nested structures (naming what was given).
  """
  entries = (() if y is None else
             tuple(y) if isinstance(y, (list, tuple)) else (y,))
  for entry in entries:
    if isinstance(entry, (Mapping, list, tuple)):
      kind = (f"a dict with keys {sorted(entry)}"
              if isinstance(entry, Mapping) else
              f"a nested {type(entry).__name__}")
      raise TypeError(
          "SobolevModel takes `y` as the values [B, O] (or [B]) or a tuple "
          "(values, jacobians[, hessians]) of arrays, in that order; got "
          f"{kind}. Give e.g. `(y['values'], y['jacobians'])`.")
  return entries


@keras.saving.register_keras_serializable(package="sobolev")
class SobolevModel(keras.Model):
  """A Keras model trained with a Sobolev loss by `fit`.

  Attributes:
    model: the wrapped Keras model (what `predict` and `call` run).
    loss_module: the `sobolev.SobolevLoss` used by `train_step`/`test_step`.
  """

  def __init__(self,
               model: keras.layers.Layer,
               order: int = 1,
               loss_options: Optional[Mapping[str, Any]] = None,
               target_fn: Optional[TargetFn] = None,
               **kwargs):
    """Wraps `model`.

    Args:
      model: a Keras model or layer `[B, D] -> [B, O]` (or `[B]`).
      order: highest derivative order trained (0: values only, i.e. regular
        training; 1; 2), as in `sobolev.SobolevLoss`.
      loss_options: further `sobolev.SobolevLoss` arguments (`weights`,
        `loss_fns`, `mode`, `num_projections`, `seed`, ...). Give plain
        values (numbers, strings) for the model to be saveable as `.keras`.
      target_fn: optional differentiable target `[B, D] -> [B, O]`; then
        `fit(x)` needs no targets. Saving needs it registered with
        `keras.saving.register_keras_serializable`.
      **kwargs: passed to `keras.Model` (e.g. `name`).

    Raises:
      RuntimeError: if Keras does not run on its TensorFlow backend.
      TypeError: if `model` is not a Keras layer, `target_fn` not callable or
        `loss_options` not a mapping.
      ValueError: for invalid `SobolevLoss` arguments (raised by it).
    """
    if keras.backend.backend() != "tensorflow":
      raise RuntimeError(
          "sobolev.keras needs the TensorFlow backend of Keras (set "
          f"KERAS_BACKEND=tensorflow); the backend is "
          f"{keras.backend.backend()!r}.")
    super().__init__(**kwargs)
    if not isinstance(model, keras.layers.Layer):
      raise TypeError(
          "`model` must be a Keras model or layer (keras.layers.Layer), got "
          f"{type(model).__name__}. Train Sonnet modules with "
          "sobolev.training.make_train_step.")
    if target_fn is not None and not callable(target_fn):
      raise TypeError(
          f"`target_fn` must be callable, got {type(target_fn).__name__}.")
    loss_options = {} if loss_options is None else loss_options
    if not isinstance(loss_options, Mapping):
      raise TypeError("`loss_options` must be a mapping of SobolevLoss "
                      f"arguments, got {type(loss_options).__name__}.")
    if "order" in loss_options:
      raise TypeError("Give the order as `order=`, not in `loss_options`.")
    self.model = model
    # `dtype=` given (also by `from_config` of older saves): it wins over the
    # wrapped model's dtype (see `input_dtype`).
    self._dtype_given = kwargs.get("dtype") is not None
    self._input_dtype = None
    self._loss_options = dict(loss_options)
    self._target_fn = target_fn
    # A Sonnet module, untracked by Keras (no trainable variables; in
    # stochastic mode its random generator state is not saved).
    self.loss_module = sobolev_loss.SobolevLoss(order=order,
                                                **self._loss_options)
    self._loss_tracker = keras.metrics.Mean(name="loss")
    self._term_trackers = [keras.metrics.Mean(name=f"order_{j}")
                           for j in range(order + 1)]
    self._error_trackers = [keras.metrics.Mean(name=n) for n in ERROR_NAMES]

  @property
  def order(self) -> int:
    return self.loss_module.order

  @property
  def target_fn(self) -> Optional[TargetFn]:
    return self._target_fn

  @property
  def input_dtype(self):
    """The dtype inputs and targets are cast to (see the module docstring);
    Keras casts a layer's floating inputs to it in `__call__`."""
    if self._dtype_given:
      return self.compute_dtype
    if self._input_dtype is None:  # Known once the wrapped model is built.
      self._input_dtype = _wrapped_dtype(self.model, self.variable_dtype)
    return self._input_dtype or self.compute_dtype

  def call(self, inputs, training=None):
    return self.model(inputs, training=training)

  def compile(self, optimizer="rmsprop", **kwargs):
    """`keras.Model.compile` (an optimiser or its name, `jit_compile`, ...);
    the loss and metrics are the Sobolev ones.

    Raises:
      ValueError: if `loss`, `loss_weights`, `metrics` or `weighted_metrics`
        is given (the Sobolev loss and metrics replace them).
    """
    given = [k for k in _REPLACED if kwargs.get(k) is not None]
    if given:
      raise ValueError(
          f"SobolevModel.compile does not take {given}: the loss is the "
          "SobolevLoss given at construction (`order`, `loss_options`) and "
          "the metrics are its per-order terms and the value/derivative "
          "errors.")
    super().compile(optimizer=optimizer, **kwargs)

  def fit(self, x=None, y=None, *args, **kwargs):
    """`keras.Model.fit`, checking first that NumPy targets fit the dtype.

    Raises:
      TypeError: if `y` is a dict (or holds nested structures).
      ValueError: if finite values of a NumPy `x` or `y` overflow the dtype
        Keras and the model compute in (e.g. values above 3.4e38 in
        float32), naming the array.
    """
    self._check_arrays(x, y)
    return super().fit(x, y, *args, **kwargs)

  def evaluate(self, x=None, y=None, *args, **kwargs):
    """`keras.Model.evaluate`, with the checks of `fit`."""
    self._check_arrays(x, y)
    return super().evaluate(x, y, *args, **kwargs)

  def _check_arrays(self, x, y) -> None:
    """Overflow checks on NumPy data before Keras rounds it to `floatx`."""
    targets = _as_tuple(y)
    dtypes = [tf.as_dtype(keras.config.floatx()), tf.as_dtype(self.input_dtype)]
    narrowest = min(dtypes, key=lambda d: d.max)
    named = [("x", x)] + [(f"y[{j}]" if isinstance(y, (list, tuple)) else "y",
                           t) for j, t in enumerate(targets)]
    for name, array in named:
      if isinstance(array, np.ndarray) and array.dtype.kind == "f":
        derivatives.check_overflow(
            array, narrowest, name,
            wider="keras.config.set_floatx('float64') and a float64 network")

  def compile_from_config(self, config):
    """Recompiles a loaded model (Keras asks overriders of `compile`)."""
    config = keras.saving.deserialize_keras_object(config)
    config = {k: v for k, v in config.items() if k not in _REPLACED}
    self.compile(**config)
    if self.built:
      self.optimizer.build(self.trainable_variables)

  @property
  def metrics(self):
    # Listed so that Keras resets them every epoch and `evaluate`; error
    # trackers that received no update report nothing (see `_results`).
    return [self._loss_tracker] + self._term_trackers + self._error_trackers

  # Keras hooks.

  def train_step(self, data):
    x, targets, sample_weight = self._unpack(data)
    with tf.GradientTape() as tape:
      total, terms = self._loss(x, targets, sample_weight, training=True)
      total = tf.debugging.assert_all_finite(total, _non_finite_message(x))
      # Keras optimisers sum gradients over replicas: scale the per-replica
      # mean so that the sum is the global mean.
      replicas = tf.distribute.get_strategy().num_replicas_in_sync
      scaled = total / replicas if replicas > 1 else total
      scaled = self.optimizer.scale_loss(scaled)
    weights = self.trainable_weights
    grads = tape.gradient(scaled, weights)
    missing = [w.path for w, g in zip(weights, grads) if g is None]
    if missing:
      raise ValueError(f"The Sobolev loss does not depend on weights "
                       f"{missing}; freeze them (trainable=False).")
    self.optimizer.apply_gradients(zip(grads, weights))
    self._update_loss_metrics(x, total, terms, sample_weight)
    return self._results(error_count=0)

  def test_step(self, data):
    x, targets, sample_weight = self._unpack(data)
    total, terms = self._loss(x, targets, sample_weight, training=False)
    self._update_loss_metrics(x, total, terms, sample_weight)
    count = self._update_error_metrics(x, targets, sample_weight)
    return self._results(error_count=count)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    if not self._dtype_given:
      # Not saved, so that a loaded model again takes the wrapped model's.
      config.pop("dtype", None)
    save = keras.saving.serialize_keras_object
    config.update({
        "model": save(self.model),
        "order": self.order,
        "loss_options": {k: save(v) for k, v in self._loss_options.items()},
        "target_fn": save(self._target_fn),
    })
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    load = lambda c: keras.saving.deserialize_keras_object(
        c, custom_objects=custom_objects)
    model = load(config.pop("model"))
    options = {k: load(v) for k, v in config.pop("loss_options", {}).items()}
    target = load(config.pop("target_fn", None))
    return cls(model, loss_options=options, target_fn=target, **config)

  # Internals.

  def _unpack(self, data):
    """`data` from Keras -> `(x, targets tuple, sample_weight or None)`."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if isinstance(x, (Mapping, list, tuple)):
      raise TypeError(
          "SobolevModel needs one input tensor `x` [B, ...] (derivatives are "
          f"taken with respect to it), got a {type(x).__name__}.")
    y = _as_tuple(y)
    dtype = self.input_dtype
    if self._dtype_given:
      wrapped = _wrapped_dtype(self.model, self.variable_dtype)
      if wrapped is not None and wrapped != dtype:
        raise TypeError(
            f"`x` would be cast to {dtype} (the dtype given to SobolevModel) "
            f"but the wrapped model's weights compute in {wrapped}: drop "
            "`dtype=` (SobolevModel then takes the wrapped model's dtype) or "
            f"build the model in {dtype}.")
    x = _cast(x, dtype, "x")
    targets = tuple(_cast(t, dtype, f"y[{j}]") for j, t in enumerate(y))
    if sample_weight is not None:
      sample_weight = tf.nest.map_structure(
          lambda w: tf.cast(w, dtype), sample_weight)
      if isinstance(sample_weight, (list, tuple)):
        # Keras copies one `sample_weight` to every entry of a tuple `y`;
        # a tuple given by the user has one entry per target.
        sample_weight = list(sample_weight)
        if len(sample_weight) != max(len(targets), 1):
          raise ValueError(
              f"`sample_weight` has {len(sample_weight)} entries but `y` has "
              f"{len(targets)} targets; give one [B] array, or one per "
              "target.")
    if self._target_fn is None:
      if len(targets) < self.order + 1:
        raise ValueError(
            f"SobolevModel(order={self.order}) needs targets (values, "
            f"jacobians, ...) with at least {self.order + 1} entries as `y`, "
            f"got {len(targets)}; or build it with `target_fn=`.")
      if len(targets) > sobolev_loss.MAX_ORDER + 1:
        raise ValueError(
            f"Targets have at most {sobolev_loss.MAX_ORDER + 1} entries "
            f"(values, jacobians, hessians), got {len(targets)}.")
    elif targets:
      raise ValueError("SobolevModel was built with `target_fn`; call fit/"
                       "evaluate without `y`.")
    return x, targets, sample_weight

  def _model_fn(self, training: bool) -> Callable[[tf.Tensor], tf.Tensor]:
    # Through `self`, so that Keras marks this model built (and saves it with
    # its build config and optimiser state).
    return lambda z: self(z, training=training)

  def _loss(self, x, targets, sample_weight, training: bool):
    if isinstance(sample_weight, list):
      sample_weight = sample_weight[:self.order + 1]
    given = ({"targets": targets[:self.order + 1]} if self._target_fn is None
             else {"target_fn": self._target_fn})
    out = self.loss_module(self._model_fn(training), x,
                           sample_weights=sample_weight, **given)
    return out[0], out[1]  # The total and the per-order terms.

  def _update_loss_metrics(self, x, total, terms, sample_weight):
    # Batch means, weighted by the batch's total example weight (per order),
    # so the epoch value is the (weighted) mean over all examples; the total
    # is weighted by the example count when weights are given per order.
    count = tf.cast(tf.shape(x)[0], total.dtype)
    weight_sum = lambda j: (
        count if sample_weight is None else
        tf.cast(tf.reduce_sum(_weight_of(sample_weight, j)), total.dtype))
    self._loss_tracker.update_state(
        total, sample_weight=(count if isinstance(sample_weight, list) else
                              weight_sum(0)))
    for j, tracker in enumerate(self._term_trackers):
      tracker.update_state(terms[f"order_{j}"], sample_weight=weight_sum(j))

  def _update_error_metrics(self, x, targets, sample_weight) -> int:
    """Exact value/Jacobian/Hessian errors; returns how many (static)."""
    truth, count = targets, len(targets)
    if self._target_fn is not None:  # Then there are no `targets`.
      count = max(self.order, 1) + 1
      truth = terms.exact_derivatives(self._target_fn, x, count - 1)
    preds = terms.exact_derivatives(self._model_fn(False), x, count - 1)
    for j in range(count):
      target = tf.reshape(truth[j], tf.shape(preds[j]))
      self._error_trackers[j].update_state(
          losses.l2_per_example(preds[j], target),
          sample_weight=_weight_of(sample_weight, j))
    return count

  def _results(self, error_count: int) -> Dict[str, tf.Tensor]:
    """Tracker results; the first `error_count` error trackers (static)."""
    trackers = ([self._loss_tracker] + self._term_trackers +
                self._error_trackers[:error_count])
    return {tracker.name: tracker.result() for tracker in trackers}


def _wrapped_dtype(model: keras.layers.Layer,
                   variable_dtype: str) -> Optional[str]:
  """The dtype `model` computes in, or None until it can be told.

  Args:
    model: the wrapped Keras model or layer.
    variable_dtype: the wrapper's variable dtype (the global policy's).

  Returns:
    The output dtype of a functional (or Sequential) model with one output;
    else the dtype its floating weights share if not `variable_dtype` (under
    mixed precision they are float32 and the computation float16: then None,
    leaving the wrapper's compute dtype, the global policy's).
  """
  dtype = derivatives.model_dtype(model)
  try:
    functional = bool(getattr(model, "outputs", None))
  except (AttributeError, ValueError):
    functional = False
  if dtype is not None and (functional or dtype.name != variable_dtype):
    return dtype.name
  dtypes = {tf.as_dtype(w.dtype) for w in model.weights}
  dtypes = {d.name for d in dtypes if d.is_floating}
  if len(dtypes) == 1 and dtypes != {variable_dtype}:
    return dtypes.pop()
  if not model.weights and isinstance(model, keras.Sequential) and model.layers:
    # Not built yet: a Sequential model outputs its last layer's dtype.
    return _wrapped_dtype(model.layers[-1], variable_dtype)
  return None


def _cast(t, dtype: str, name: str) -> tf.Tensor:
  """`t` cast to `dtype`, asserting that no finite value overflows to Inf."""
  t = tf.convert_to_tensor(t)
  target = tf.as_dtype(dtype)
  if not (t.dtype.is_floating and target.is_floating and
          t.dtype.size > target.size):
    return tf.cast(t, target)
  largest = tf.reduce_max(tf.where(tf.math.is_finite(t), tf.abs(t),
                                   tf.zeros_like(t)))
  check = tf.debugging.Assert(
      largest <= tf.cast(target.max, t.dtype),
      # No quote marks: Assert prints its strings with them escaped.
      [f"SobolevModel: `{name}` overflows {target.name}: it holds "
       f"magnitudes above the largest finite {target.name} value "
       f"{float(target.max):.3g} (largest:", largest, "); scale it down or "
       "compute in a wider dtype."])
  with tf.control_dependencies([check]):
    return tf.cast(t, target)


def _non_finite_message(x: tf.Tensor) -> str:
  """The message of the training loss's finiteness assertion."""
  if x.dtype == tf.float16:
    return ("SobolevModel: the training loss is NaN or Inf in float16, whose "
            "largest finite value is 65504: most likely a float16 overflow "
            "(large targets or errors squared), not a learning rate too "
            "high; build the network in float32 (without the mixed_float16 "
            "policy) or scale the targets and outputs down.")
  return ("SobolevModel: the training loss is NaN or Inf (training diverged; "
          "lower the learning rate).")


def _weight_of(sample_weight, j: int):
  """The `[B]` weights of target j: one tensor for all, or one per target."""
  return sample_weight[j] if isinstance(sample_weight, list) else sample_weight
