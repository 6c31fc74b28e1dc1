"""Per-order loss functions `l_j(prediction, target)` for Sobolev training.

Every loss compares a prediction and a target of exactly the same shape
`[N, ...]` (no broadcasting: `[4, 1]` against `[4]` raises a `ValueError`)
through a per-example error summed over all axes but the first. `l2`, `l1`,
`l2_norm` return the mean over the N examples; their `*_per_example` twins
the errors `[N]` (what `SobolevLoss` uses). With `l2` the per-example error
is the squared error of the value, the squared Frobenius norm of the Jacobian
error and the sum over outputs of those of the Hessian errors: the paper's
Eq. 1 with L2 losses. Targets receive no gradient.

A user loss is any callable `(prediction [N, ...], target [N, ...])` returning
either per-example losses `[N]` (needed for `SobolevLoss`'s `per_example`,
`sample_weights` and `masks`) or a scalar (the mean over examples).
"""

from typing import Callable, Optional, Union

import tensorflow as tf

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def check_same_shape(prediction: tf.Tensor, target: tf.Tensor,
                     name: str = "target") -> tf.Tensor:
  """`target`, checked to have the shape of `prediction` `[N, ...]`.

  Returns:
    `target`, with a run-time assertion when the static shapes cannot decide.

  Raises:
    ValueError: naming both shapes (and `name`), if they differ.
  """
  p_shape, t_shape = prediction.shape, target.shape
  if p_shape.rank is not None and t_shape.rank is not None:
    if (p_shape.rank != t_shape.rank or
        not p_shape.is_compatible_with(t_shape)):
      raise ValueError(
          f"The prediction has shape {p_shape} but the {name} has shape "
          f"{t_shape}: they must be equal (no broadcasting).")
    if p_shape.is_fully_defined() and t_shape.is_fully_defined():
      return target
  if tf.executing_eagerly():
    if p_shape != t_shape:
      raise ValueError(f"The prediction has shape {p_shape} but the {name} "
                       f"has shape {t_shape}: they must be equal.")
    return target
  with tf.control_dependencies([tf.debugging.assert_equal(
      tf.shape(prediction), tf.shape(target),
      message=f"The prediction and the {name} must have equal shapes (no "
      "broadcasting).")]):
    return tf.identity(target)


def _per_example(x: tf.Tensor) -> tf.Tensor:
  """Sums all axes but the first; `[N, ...] -> [N]`."""
  if x.shape.rank is not None and x.shape.rank <= 1:
    return x
  return tf.reduce_sum(tf.reshape(x, tf.stack([tf.shape(x)[0], -1])), axis=1)


def _difference(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  target = check_same_shape(prediction, target)
  return prediction - tf.stop_gradient(target)


def l2_per_example(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Per-example summed squared error.

  Args:
    prediction: `[N, ...]`.
    target: same shape as `prediction`; receives no gradient.

  Returns:
    `[N]`: `sum_rest (prediction - target)^2` per example.

  Raises:
    ValueError: if the shapes differ.
  """
  return _per_example(tf.square(_difference(prediction, target)))


def l1_per_example(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Per-example summed absolute error (shapes as `l2_per_example`)."""
  return _per_example(tf.abs(_difference(prediction, target)))


def l2_norm_per_example(prediction: tf.Tensor,
                        target: tf.Tensor) -> tf.Tensor:
  """Per-example Euclidean norm of the error, `sqrt(sum_rest diff^2 + 1e-12)`.

  This is the paper's distillation penalty `||D<log pi*, v> - D<log pi, v>||`.
  The small epsilon keeps its gradient finite at zero error.
  """
  diff = _difference(prediction, target)
  return tf.sqrt(_per_example(tf.square(diff)) + 1e-12)


def l2(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Mean over examples of `l2_per_example`, a scalar (Args, Raises: there)."""
  return tf.reduce_mean(l2_per_example(prediction, target))


def l1(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Mean over examples of the summed absolute error (shapes as `l2`)."""
  return tf.reduce_mean(l1_per_example(prediction, target))


def l2_norm(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Mean over examples of `l2_norm_per_example` (shapes as `l2`)."""
  return tf.reduce_mean(l2_norm_per_example(prediction, target))


_BY_NAME = {"l2": l2, "l1": l1, "l2_norm": l2_norm}
_PER_EXAMPLE = {
    l2: l2_per_example, l1: l1_per_example, l2_norm: l2_norm_per_example,
    l2_per_example: l2_per_example, l1_per_example: l1_per_example,
    l2_norm_per_example: l2_norm_per_example,
}


def get(loss: Union[str, LossFn], name: str = "loss_fn") -> LossFn:
  """The loss named `'l2'`, `'l1'` or `'l2_norm'`, or the callable `loss`
  (`(prediction, target) -> scalar or [N]`); `name` is for error messages.

  Raises:
    ValueError: for an unknown name.
    TypeError: for anything else that is not callable.
  """
  if isinstance(loss, str):
    if loss not in _BY_NAME:
      raise ValueError(f"`{name}`: unknown loss {loss!r}; expected one of "
                       f"{sorted(_BY_NAME)} or a callable.")
    return _BY_NAME[loss]
  if not callable(loss):
    raise TypeError(f"`{name}` must be a loss name or a callable "
                    f"(prediction, target) -> scalar or [N], got "
                    f"{type(loss)}.")
  return loss


def per_example(loss: Union[str, LossFn]) -> Optional[LossFn]:
  """`l2_per_example` for `'l2'` or `l2` (likewise `l1`, `l2_norm`), or None
  for a user callable (whose output rank says what it returns)."""
  return _PER_EXAMPLE.get(get(loss))


def is_l2(loss: Union[str, LossFn]) -> bool:
  """Whether `loss` is the built-in squared error (`'l2'`)."""
  return get(loss) in (l2, l2_per_example)
