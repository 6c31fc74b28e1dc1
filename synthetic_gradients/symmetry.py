"""Proposition 4 as an executable check: is a synthetic gradient a gradient field?

If `SG(h, y)` is the gradient of some scalar function of `h`, its Jacobian
`dSG/dh` (a Hessian) is symmetric. A critic's SG `dm/dh` always is; a
free-form network's (direct SG) almost never is.
"""

from typing import Callable

import tensorflow as tf

SGFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def sg_jacobian(sg_fn: SGFn, h: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
  """Per-example Jacobian of a synthetic gradient with respect to `h`.

  Args:
    sg_fn: `(h [B, ...], y [B]) -> SG [B, ...]` (same shape as `h`).
    h: split activations `[B, ...]`; keep `prod(h.shape[1:])` small (the
      Jacobian is `[B, D, D]`).
    y: labels `[B]`.

  Returns:
    `J[b, i, j] = d SG(h)_b[i] / d h_b[j]`, shape `[B, D, D]` with `D` the
    flattened size of one example of `h`.

  Raises:
    ValueError: if `sg_fn` does not return a tensor shaped like `h`.
  """
  h = tf.convert_to_tensor(h)
  shape = tf.shape(h)
  flat = tf.reshape(h, [shape[0], -1])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(flat)
    sg = sg_fn(tf.reshape(flat, shape), y)
    if sg.shape != h.shape:
      raise ValueError(f"`sg_fn` must return the shape of `h` {h.shape}, got "
                       f"{sg.shape}.")
    sg_flat = tf.reshape(sg, tf.shape(flat))
  return tape.batch_jacobian(sg_flat, flat, experimental_use_pfor=False)


def jacobian_asymmetry(sg_fn: SGFn, h: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
  """Relative asymmetry `||J - J^T||_F / ||J||_F` per example, `[B]`.

  Zero for a gradient field; an example whose Jacobian is zero counts as
  symmetric (0).
  """
  jac = sg_jacobian(sg_fn, h, y)
  diff = tf.norm(jac - tf.transpose(jac, [0, 2, 1]), axis=[1, 2])
  norm = tf.norm(jac, axis=[1, 2])
  return tf.where(norm > 0, diff / tf.maximum(norm, 1e-30),
                  tf.zeros_like(norm))


def is_gradient_field(sg_fn: SGFn, h: tf.Tensor, y: tf.Tensor,
                      rtol: float = 1e-4) -> bool:
  """Proposition 4's necessary condition: every example's Jacobian symmetric.

  Args:
    sg_fn: the synthetic gradient `(h, y) -> SG`.
    h: split activations `[B, ...]` (small).
    y: labels `[B]`.
    rtol: tolerance on the relative asymmetry (float32 round-off is ~1e-6).

  Returns:
    True if `max_b ||J_b - J_b^T|| / ||J_b|| <= rtol`.
  """
  return bool(tf.reduce_max(jacobian_asymmetry(sg_fn, h, y)) <= rtol)
