"""Per-example input derivatives of a model, computed with `tf.GradientTape`.

Every function here takes a callable `model` mapping a batch of inputs
`x: [B, D]` to outputs `[B, O]` (a `[B]` output is treated as `[B, 1]`) and
returns the model's values together with the requested derivatives, so one
forward pass serves both. Derivatives are per example: example `b`'s output
must depend only on example `b`'s input (true of any network without
batch-coupling layers such as batch normalisation in training mode).

Conventions (the paper's Figure 1b):
  * Jacobian `J[b, o, d] = d m(x_b)_o / d x_b[d]`, shape `[B, O, D]`.
  * Hessian `H[b, o, d, e] = d^2 m(x_b)_o / d x_b[d] d x_b[e]`,
    shape `[B, O, D, D]`.
  * Order-1 projection `D_x<m, v1> = J^T v1` with `v1` in output space,
    shape `[B, D]` (a vector-Jacobian product; one backward pass).
  * Order-2 projection `D_x<D_x<m, v1>, v2> = (sum_o v1_o H_o) v2` with `v2`
    in input space, shape `[B, D]` (a Hessian-vector product; two passes).

All functions work eagerly, inside `tf.function`, and inside
`tf.function(jit_compile=True)`.
"""

from typing import Callable, Optional, Tuple

import tensorflow as tf

Model = Callable[[tf.Tensor], tf.Tensor]


def check_inputs(x: tf.Tensor, name: str = "x") -> tf.Tensor:
  """Converts `x` to a floating tensor and checks it is `[B, D]`.

  Args:
    x: model inputs, shape `[B, D]`.
    name: the argument's name, used in error messages.

  Returns:
    `x` as a `tf.Tensor`.

  Raises:
    TypeError: if `x` is not floating point.
    ValueError: if `x` is not of rank 2.
  """
  x = tf.convert_to_tensor(x)
  if not x.dtype.is_floating:
    raise TypeError(
        f"`{name}` must be a floating point tensor (derivatives with respect "
        f"to it are taken), got dtype {x.dtype.name}.")
  if x.shape.rank is not None and x.shape.rank != 2:
    raise ValueError(
        f"`{name}` must have shape [batch, input_dim], got shape {x.shape}.")
  return x


def as_2d_output(y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
  """Normalises a model output to `[B, O]`."""
  if y.shape.rank == 1:
    y = y[:, None]
  if y.shape.rank != 2:
    raise ValueError(
        "The model must map inputs [batch, input_dim] to outputs "
        f"[batch, output_dim] or [batch]; got output shape {y.shape} for "
        f"input shape {x.shape}.")
  if not y.dtype.is_floating:
    raise TypeError(
        f"The model's output must be floating point, got {y.dtype.name}.")
  return y


def not_connected_error(what: str) -> ValueError:
  """The error raised when a derivative with respect to `x` is None."""
  return ValueError(
      f"The model's output does not depend on its input `x` ({what} is None): "
      "Sobolev training needs a model that is differentiable with respect to "
      "its input. Check that the model uses `x` and that no "
      "`tf.stop_gradient` or non-differentiable op cuts the path.")


def _check_vector(v: tf.Tensor, dim: int, batch: tf.Tensor, dtype: tf.DType,
                  name: str) -> tf.Tensor:
  """Checks a projection vector `[dim]` or `[B, dim]` and broadcasts it."""
  v = tf.convert_to_tensor(v, dtype=dtype)
  if v.shape.rank not in (1, 2):
    raise ValueError(f"`{name}` must have shape [{dim}] or [batch, {dim}], "
                     f"got {v.shape}.")
  if v.shape[-1] is not None and dim is not None and v.shape[-1] != dim:
    raise ValueError(f"`{name}` must have last dimension {dim}, got shape "
                     f"{v.shape}.")
  if v.shape.rank == 1:
    v = tf.broadcast_to(v[None, :], tf.stack([batch, tf.shape(v)[0]]))
  return v


def value_and_gradient(model: Model,
                       x: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and input gradients of a scalar-output model.

  Args:
    model: callable mapping `[B, D]` to `[B]` or `[B, 1]`.
    x: inputs, shape `[B, D]`.

  Returns:
    `(y, g)`: values `[B, 1]` and gradients `g[b] = d m(x_b) / d x_b`,
    shape `[B, D]`.

  Raises:
    ValueError: if the model has more than one output or does not depend on
      `x`.
  """
  x = check_inputs(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = as_2d_output(model(x), x)
  if y.shape[1] is not None and y.shape[1] != 1:
    raise ValueError("value_and_gradient needs a scalar-output model, got "
                     f"output shape {y.shape}; use value_and_jacobian.")
  g = tape.gradient(y, x)
  if g is None:
    raise not_connected_error("the gradient")
  return y, g


UNROLL_LIMIT = 8


def _unroll(unroll: Optional[bool], count) -> bool:
  """Whether to unroll `count` backward passes instead of vectorising."""
  if unroll is not None:
    return unroll
  return isinstance(count, int) and count <= UNROLL_LIMIT


def value_and_jacobian(model: Model,
                       x: tf.Tensor,
                       unroll: Optional[bool] = None
                      ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and per-example input Jacobians.

  Args:
    model: callable mapping `[B, D]` to `[B, O]`.
    x: inputs, shape `[B, D]`.
    unroll: compute the O rows of the Jacobian with O separate backward
      passes (True) or one vectorised `batch_jacobian` (False, `pfor`). The
      default unrolls when O <= `UNROLL_LIMIT`, which is faster for few
      outputs and keeps XLA compilation quick. Same numbers either way.

  Returns:
    `(y, J)`: values `[B, O]` and Jacobians `[B, O, D]`.

  Raises:
    ValueError: if the model does not depend on `x`.
  """
  x = check_inputs(x)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    y = as_2d_output(model(x), x)
    out_dim = y.shape[1]
    rows = ([y[:, o] for o in range(out_dim)]
            if out_dim != 1 and _unroll(unroll, out_dim) else None)
  # One backward pass: the whole Jacobian when O = 1, otherwise a
  # connectivity check (`batch_jacobian` returns zeros, not None, for an
  # unconnected output inside tf.function; there the unused pass is pruned).
  if rows is not None:
    grads = [tape.gradient(row, x) for row in rows]
    if grads[0] is None:
      raise not_connected_error("the Jacobian")
    return y, tf.stack(grads, axis=1)
  g = tape.gradient(y, x)
  if g is None:
    raise not_connected_error("the Jacobian")
  if out_dim == 1:
    return y, g[:, None, :]
  return y, tape.batch_jacobian(y, x)


def value_and_hessian(
    model: Model,
    x: tf.Tensor,
    unroll: Optional[bool] = None) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Values, per-example Jacobians and per-example Hessians (nested tapes).

  Args:
    model: callable mapping `[B, D]` to `[B, O]`.
    x: inputs, shape `[B, D]`.
    unroll: compute the Hessian with O * D separate second backward passes
      (True) or a vectorised `batch_jacobian` (False). The default unrolls
      when O * D <= 2 * `UNROLL_LIMIT`. Same numbers either way.

  Returns:
    `(y, J, H)`: values `[B, O]`, Jacobians `[B, O, D]` and Hessians
    `[B, O, D, D]`. The Hessian of a piecewise-linear model (ReLU layers and
    a linear output) is identically zero.

  Raises:
    ValueError: if the model does not depend on `x`.
  """
  x = check_inputs(x)
  zero = tf.UnconnectedGradients.ZERO
  with tf.GradientTape(persistent=True) as outer:
    outer.watch(x)
    y, jac = value_and_jacobian(model, x, unroll=unroll)
    out_dim, in_dim = jac.shape[1], jac.shape[2]
    count = (out_dim * in_dim if out_dim is not None and in_dim is not None
             else None)
    unrolled = _unroll(unroll, count // 2 if count else None)
    if unrolled:
      entries = [[jac[:, o, d] for d in range(in_dim)] for o in range(out_dim)]
    else:
      flat = tf.reshape(jac, tf.stack([tf.shape(x)[0], -1]))
  if unrolled:
    hess = tf.stack([
        tf.stack([outer.gradient(e, x, unconnected_gradients=zero)
                  for e in row], axis=1) for row in entries], axis=1)
    return y, jac, hess
  hess = outer.batch_jacobian(flat, x, unconnected_gradients=zero)
  batch, o_dim, d_dim = tf.unstack(tf.shape(jac))
  hess = tf.reshape(hess, tf.stack([batch, o_dim, d_dim, d_dim]))
  return y, jac, hess


def value_and_vjp(model: Model, x: tf.Tensor,
                  v1: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and the order-1 projection `D_x<m, v1> = J^T v1`.

  Args:
    model: callable mapping `[B, D]` to `[B, O]`.
    x: inputs, shape `[B, D]`.
    v1: output-space vectors, shape `[O]` (shared) or `[B, O]`.

  Returns:
    `(y, p1)`: values `[B, O]` and projections `[B, D]`.

  Raises:
    ValueError: if shapes do not match or the model does not depend on `x`.
  """
  x = check_inputs(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = as_2d_output(model(x), x)
  v1 = _check_vector(v1, y.shape[1], tf.shape(x)[0], y.dtype, "v1")
  p1 = tape.gradient(y, x, output_gradients=v1)
  if p1 is None:
    raise not_connected_error("the vector-Jacobian product")
  return y, p1


def value_and_hvp(
    model: Model, x: tf.Tensor, v1: tf.Tensor,
    v2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Values and the order-1 and order-2 projections (nested tapes).

  Args:
    model: callable mapping `[B, D]` to `[B, O]`.
    x: inputs, shape `[B, D]`.
    v1: output-space vectors, shape `[O]` or `[B, O]`.
    v2: input-space vectors, shape `[D]` or `[B, D]`.

  Returns:
    `(y, p1, p2)`: values `[B, O]`, `p1 = D_x<m, v1>` of shape `[B, D]` and
    `p2 = D_x<D_x<m, v1>, v2>` of shape `[B, D]`.

  Raises:
    ValueError: if shapes do not match or the model does not depend on `x`.
  """
  x = check_inputs(x)
  with tf.GradientTape() as outer:
    outer.watch(x)
    y, p1 = value_and_vjp(model, x, v1)
    v2 = _check_vector(v2, x.shape[1], tf.shape(x)[0], x.dtype, "v2")
    inner = tf.reduce_sum(p1 * v2, axis=1)
  p2 = outer.gradient(inner, x,
                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return y, p1, p2


def gradient(model: Model, x: tf.Tensor) -> tf.Tensor:
  """Input gradients `[B, D]` of a scalar-output model."""
  return value_and_gradient(model, x)[1]


def jacobian(model: Model, x: tf.Tensor) -> tf.Tensor:
  """Per-example input Jacobians `[B, O, D]`."""
  return value_and_jacobian(model, x)[1]


def hessian(model: Model, x: tf.Tensor) -> tf.Tensor:
  """Per-example input Hessians `[B, O, D, D]`."""
  return value_and_hessian(model, x)[2]


def vjp(model: Model, x: tf.Tensor, v1: tf.Tensor) -> tf.Tensor:
  """Order-1 projections `D_x<m, v1>`, shape `[B, D]`."""
  return value_and_vjp(model, x, v1)[1]


def hvp(model: Model, x: tf.Tensor, v1: tf.Tensor, v2: tf.Tensor) -> tf.Tensor:
  """Order-2 projections `D_x<D_x<m, v1>, v2>`, shape `[B, D]`."""
  return value_and_hvp(model, x, v1, v2)[2]
