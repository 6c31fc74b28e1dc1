"""Per-order loss functions `l_j(prediction, target)` for Sobolev training.

Every loss maps a prediction and a target of the same shape `[N, ...]` to a
scalar: the mean over the leading (example) axis of a per-example error summed
over all other axes. With `l2` this gives, per example, the squared error of
the value (order 0), the squared Frobenius norm of the Jacobian error
(order 1) and the sum over outputs of squared Frobenius norms of the Hessian
errors (order 2): the paper's Eq. 1 with L2 losses. Targets are wrapped in
`tf.stop_gradient`.
"""

from typing import Callable, Union

import tensorflow as tf

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _per_example(x: tf.Tensor) -> tf.Tensor:
  """Sums all axes but the first; `[N, ...] -> [N]`."""
  if x.shape.rank is not None and x.shape.rank <= 1:
    return x
  return tf.reduce_sum(tf.reshape(x, tf.stack([tf.shape(x)[0], -1])), axis=1)


def l2(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Mean over examples of the summed squared error.

  Args:
    prediction: `[N, ...]`.
    target: same shape as `prediction`; receives no gradient.

  Returns:
    A scalar: `mean_n sum_rest (prediction - target)^2`.
  """
  diff = prediction - tf.stop_gradient(target)
  return tf.reduce_mean(_per_example(tf.square(diff)))


def l1(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Mean over examples of the summed absolute error.

  Args:
    prediction: `[N, ...]`.
    target: same shape as `prediction`; receives no gradient.

  Returns:
    A scalar: `mean_n sum_rest |prediction - target|`.
  """
  diff = prediction - tf.stop_gradient(target)
  return tf.reduce_mean(_per_example(tf.abs(diff)))


def l2_norm(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Mean over examples of the (unsquared) Euclidean norm of the error.

  This is the paper's distillation penalty `||D<log pi*, v> - D<log pi, v>||`.
  A small epsilon keeps its gradient finite at zero error.

  Args:
    prediction: `[N, ...]`.
    target: same shape as `prediction`; receives no gradient.

  Returns:
    A scalar: `mean_n sqrt(sum_rest (prediction - target)^2 + 1e-12)`.
  """
  diff = prediction - tf.stop_gradient(target)
  return tf.reduce_mean(tf.sqrt(_per_example(tf.square(diff)) + 1e-12))


_BY_NAME = {"l2": l2, "l1": l1, "l2_norm": l2_norm}


def get(loss: Union[str, LossFn], name: str = "loss_fn") -> LossFn:
  """Resolves a loss given by name (`'l2'`, `'l1'`, `'l2_norm'`) or callable.

  Args:
    loss: a name or a callable `(prediction, target) -> scalar`.
    name: the argument's name, for error messages.

  Returns:
    The loss callable.

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
                    f"(prediction, target) -> scalar, got {type(loss)}.")
  return loss
