"""Proposition 4 as an executable check: is a synthetic gradient a gradient field?

If `SG(h, y)` is the gradient of some scalar function of `h`, its Jacobian
`dSG/dh` (a Hessian) is symmetric. A critic's SG `dm/dh` always is; a
free-form network's (direct SG) almost never is.
"""

from typing import Callable, Optional

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


def projected_asymmetry(sg_fn: SGFn, h: tf.Tensor, y: tf.Tensor, *,
                        num_vectors: int = 8, seed: int = 0,
                        vectors: Optional[tf.Tensor] = None,
                        with_norm: bool = False):
  """`||J - J^T||_F / ||J||_F` per example, from Jacobian-vector products.

  `jacobian_asymmetry` forms the `[B, D, D]` Jacobian, which is impossible for
  a real split (Fashion-MNIST's first split has D = 14 * 14 * 16 = 3,136).
  This estimator needs only `J v` (forward mode) and `J^T v` (reverse mode)
  for probe vectors `v`: with `v ~ N(0, I)`, `E ||A v||^2 = ||A||_F^2`, so

      ratio_b = sqrt(sum_k ||((J - J^T) v_k)_b||^2 / sum_k ||(J v_k)_b||^2).

  The SG of one example must depend on that example's `h` only (no batch
  statistics), so `J` is block-diagonal over the batch and one probe serves
  every example. With `vectors` set to the `D` standard basis vectors the
  sums are exact and the result equals `jacobian_asymmetry` (tested).

  Args:
    sg_fn: `(h [B, ...], y [B]) -> SG [B, ...]` (same shape as `h`).
    h: split activations `[B, ...]`.
    y: labels `[B]`.
    num_vectors: number of Gaussian probes (ignored if `vectors` is given).
    seed: probe seed (stateless: the same seed gives the same probes).
    vectors: optional probes `[K, B, ...]` instead of random ones.
    with_norm: also return `sqrt(mean_k ||(J v_k)_b||^2)` per example: with
      Gaussian probes an estimate of `||J_b||_F` (with the `D` basis vectors
      exactly `||J_b||_F / sqrt(D)`). It tells a symmetric Jacobian from a
      zero one.

  Returns:
    The estimated relative asymmetry per example, `[B]`; 0 for an example
    whose `J v` are all zero (a constant SG, symmetric only trivially). With
    `with_norm`, the pair `(asymmetry [B], jacobian_norm [B])`.

  Raises:
    ValueError: for `num_vectors < 1`, probes not shaped `[K] + h.shape`, or
      an `sg_fn` that does not return the shape of `h`.
  """
  h = tf.convert_to_tensor(h)
  if vectors is None:
    if int(num_vectors) < 1:
      raise ValueError(f"`num_vectors` must be >= 1, got {num_vectors}.")
    probes = [tf.random.stateless_normal(tf.shape(h), seed=[int(seed), k],
                                         dtype=h.dtype)
              for k in range(int(num_vectors))]
  else:
    vectors = tf.convert_to_tensor(vectors, dtype=h.dtype)
    if vectors.shape[1:] != h.shape or vectors.shape[0] in (None, 0):
      raise ValueError(f"`vectors` must be [K] + h.shape = [K] + "
                       f"{h.shape.as_list()}, got {vectors.shape}.")
    probes = tf.unstack(vectors)
  axes = list(range(1, h.shape.rank))
  diff_sq = tf.zeros(tf.shape(h)[:1], h.dtype)
  jv_sq = tf.zeros(tf.shape(h)[:1], h.dtype)
  for v in probes:
    # One evaluation of the SG serves both products: the accumulator
    # carries `J v` forward while the tape records it for `J^T v`.
    with tf.autodiff.ForwardAccumulator(h, v) as acc:
      with tf.GradientTape() as tape:
        tape.watch(h)
        sg = sg_fn(h, y)
    if sg.shape != h.shape:
      raise ValueError(f"`sg_fn` must return the shape of `h` {h.shape}, got "
                       f"{sg.shape}.")
    jv = acc.jvp(sg, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    jtv = tape.gradient(sg, h, output_gradients=v,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)
    diff_sq += tf.reduce_sum(tf.square(jv - jtv), axis=axes)
    jv_sq += tf.reduce_sum(tf.square(jv), axis=axes)
  ratio = tf.where(jv_sq > 0, tf.sqrt(diff_sq / tf.maximum(jv_sq, 1e-30)),
                   tf.zeros_like(jv_sq))
  if with_norm:
    return ratio, tf.sqrt(jv_sq / len(probes))
  return ratio
