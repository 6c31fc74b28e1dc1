"""The Sobolev loss as math (Czarnecki et al. 2017, Eq. 1 and Figure 1b).

Pure functions of tensors: no state, no argument checks (`sobolev.loss_checks`
checks everything in front of them; `sobolev.sobolev_loss.SobolevLoss` puts
the two together). Read top to bottom they compute

    loss = l_0(m(x), f(x)) + sum_{j=1..K} w_j l_j(D^j m(x), D^j f(x))

Shapes: `x` is `[B, ...]`, `...` the shape of one example and `D` its number
of elements; the model outputs `[B, O]`; `P` is the number of projections per
example; stochastic rows are projection-major (row `p * B + b` is draw p of
example b).

1. Exact mode (`exact_derivatives`): `D^1` is the full Jacobian `[B, O, ...]`
   and `D^2` the full Hessian `[B, O, ..., ...]`.

2. Stochastic mode: the derivatives are replaced by projections that are
   cheap to compute, both shaped like `x`,

       order 1: D_x<m, v1>            (v1 uniform on the unit sphere of R^O)
       order 2: D_x<D_x<m, v1>, v2>   (v2 uniform on the unit sphere of R^D)

   with the *same* v1, v2 for model and target, P independent draws per
   example (`random_directions`, `projected_derivatives`, and
   `project_targets` for targets given as full derivatives). For v uniform
   on the unit sphere of R^n, E[v v^T] = I / n; hence, with the L2 loss,

       E_v1 ||J^T v1 - J_f^T v1||^2 = ||J - J_f||_F^2 / O
       E_v1,v2 ||(H_v1 - H_f,v1) v2||^2 = sum_o ||H_o - H_f,o||_F^2 / (O * D)

   and multiplying the order-1 term by O and the order-2 term by O * D
   (`projection_scale`, "unbiased scaling") makes the stochastic L2 loss an
   unbiased estimate of the exact one, so the same weights mean the same in
   both modes. It is defined for the L2 loss only; without it the terms are
   the raw projection losses (the paper's distillation objective,
   `lambda * E_v ||...||`).

3. Per-example losses (`order_losses`, `mean_over_projections`): `l_j[b]`,
   example b's order-j loss; for stochastic orders the mean over its P
   projections, after the scaling.

4. Weighted means (`example_weights`, `combine`). With `s[b] >= 0` example
   b's sample weight (1 by default) and `m_j[b]` in {0, 1} whether it has
   order-j targets (1 by default):

       terms[order_j]  = sum_b s[b] m_j[b] l_j[b] / sum_b s[b] m_j[b]
                         (0 when the denominator is 0)
       total           = sum_j w_j terms[order_j]
       per_example[b]  = sum_j w_j m_j[b] l_j[b]

   i.e. each order is averaged over the examples that have its targets,
   weighted by the sample weights (scaling all of them by a constant changes
   nothing). Without weights and masks the terms are plain means and
   `total = mean_b per_example[b]`; with sample weights and no masks,
   `total = sum_b s[b] per_example[b] / sum_b s[b]`.
"""

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from sobolev import derivatives
from sobolev import forward_mode
from sobolev import fused_mlp
from sobolev import losses
from sobolev import sampling

Model = Callable[[tf.Tensor], tf.Tensor]

# 1. Exact derivatives.


def exact_derivatives(fn: Model, x: tf.Tensor, order: int,
                      jacobian: str = "tape") -> List[tf.Tensor]:
  """`[m(x), D m(x), D^2 m(x)][:order + 1]`.

  Args:
    fn: the model, `[B, ...] -> [B, O]`.
    x: inputs `[B, ...]`.
    order: K, 0 to 2.
    jacobian: order 1 only: how the Jacobians are computed: 'tape'
      (reverse mode), 'forward' (forward mode, an `snt.nets.MLP`; see
      `sobolev.forward_mode`) or 'fused' (values and gradients of a
      scalar-output ReLU MLP with the fused parameter gradient,
      `sobolev.fused_mlp`); `loss_checks.jacobian_pass` chooses.

  Returns:
    Values `[B, O]`, Jacobians `[B, O, ...]` and Hessians
    `[B, O, ..., ...]`, up to order K.
  """
  if order == 0:
    return [derivatives.as_2d_output(fn(x), x)]
  if order == 1:
    if jacobian == "fused":
      y, g = fused_mlp.mlp_value_and_gradient(fn, x, allow_subclasses=True)
      return [y, tf.expand_dims(g, 1)]
    if jacobian == "forward":
      return list(forward_mode.mlp_value_and_jacobian(
          fn, x, allow_subclasses=True))
    return list(derivatives.value_and_jacobian(fn, x))
  return list(derivatives.value_and_hessian(fn, x))


# 2. Stochastic projections.


def random_directions(rng: tf.random.Generator, x: tf.Tensor, rows,
                      order: int) -> Tuple[Callable[..., tf.Tensor],
                                           Optional[tf.Tensor]]:
  """Directions uniform on the unit spheres of output and input space.

  Args:
    rng: the generator to draw from.
    x: inputs `[B, ...]`.
    rows: `P * B`.
    order: K; v2 is drawn for K = 2 only (first, so the draws are in a
      fixed order).

  Returns:
    `(v1, v2)`: `v1(O) -> [P*B, O]` draws the output-space directions once
    the model's output width O is known; `v2` is `[P*B, ...]` (or None for
    K = 1).
  """
  v2 = None
  if order >= 2:
    v2 = tf.reshape(sampling.unit_sphere([rows], derivatives.example_size(x),
                                         dtype=x.dtype, rng=rng),
                    [rows] + derivatives.example_shape(x))
  v1 = lambda out_dim: sampling.unit_sphere([rows], out_dim, dtype=x.dtype,
                                            rng=rng)
  return v1, v2


def projected_derivatives(fn: Model, x: tf.Tensor, order: int,
                          num_projections: int, v1, v2: Optional[tf.Tensor]
                         ) -> Tuple[List[tf.Tensor], tf.Tensor]:
  """The values and `[D_x<m, v1>, D_x<D_x<m, v1>, v2>][:order]`.

  Args:
    fn: the model, called on the inputs tiled P times `[P*B, ...]`.
    x: inputs `[B, ...]`.
    order: K, 1 or 2.
    num_projections: P.
    v1: `[P*B, O]`, or a callable `O -> [P*B, O]` (see `random_directions`).
    v2: `[P*B, ...]` for K = 2, else None.

  Returns:
    `([y, p1, p2][:order + 1], v1)`: values `[B, O]` (of the first copy),
    projections `[P*B, ...]` each, and the v1 used `[P*B, O]`.
  """
  used = []

  def take_v1(out_dim):
    used.append(v1(out_dim) if callable(v1) and not tf.is_tensor(v1) else v1)
    return used[0]

  x_rep = tile(x, num_projections)
  if order == 1:
    out = list(derivatives.value_and_vjp(fn, x_rep, take_v1))
  else:
    out = list(derivatives.value_and_hvp(fn, x_rep, take_v1, v2))
  batch = derivatives.batch_size(x)
  values = out[0][:batch] if num_projections > 1 else out[0]
  return [values] + out[1:], used[0]


def project_targets(targets: List[tf.Tensor], v1: tf.Tensor,
                    v2: Optional[tf.Tensor],
                    num_projections: int) -> List[tf.Tensor]:
  """Full derivative targets projected like `projected_derivatives`.

  Args:
    targets: values `[B, O]`, Jacobians `[B, O, ...]` and (K = 2) Hessians
      `[B, O, ..., ...]`.
    v1: `[P*B, O]`.
    v2: `[P*B, ...]` for K = 2, else None.
    num_projections: P.

  Returns:
    Values `[B, O]` and projections `J_f^T v1`, `(sum_o v1_o H_f,o) v2`,
    `[P*B, ...]` each.
  """
  tile_p = lambda t: tile(t, num_projections)
  out = [targets[0], derivatives.project_jacobian(tile_p(targets[1]), v1)]
  if len(targets) > 2:
    out.append(derivatives.project_hessian(tile_p(targets[2]), v1, v2))
  return out


def projection_scale(j: int, values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
  """The unbiased scaling: O for order 1, O * D for order 2 (a scalar)."""
  out_dim = values.shape[1]
  scale = tf.cast(tf.shape(values)[1] if out_dim is None else out_dim,
                  values.dtype)
  if j == 1:
    return scale
  return scale * tf.cast(derivatives.example_size(x), values.dtype)


def tile(t, times: int):
  """Repeats a batch `[B, ...]` `times` times on axis 0 (projection-major)."""
  if times == 1 or not (tf.is_tensor(t) or
                        isinstance(t, (np.ndarray, tf.Variable))):
    return t
  t = tf.convert_to_tensor(t)
  if t.shape.rank == 0:
    return t
  return tf.tile(t, [times] + [1] * (t.shape.rank - 1))


def tile_structure(structure, times: int):
  """Tiles every tensor leaf of a dict/tuple of batched inputs (see `tile`)."""
  return tf.nest.map_structure(lambda t: tile(t, times), structure)


# 3. Per-example losses.


def order_losses(loss_fn: losses.LossFn, per_example_fn, pred: tf.Tensor,
                 target: tf.Tensor) -> tf.Tensor:
  """`l_j(pred [N, ...], target [N, ...])`: per-example losses `[N]`.

  `per_example_fn` is the built-in `loss_fn`'s `[N]` twin, or None: then a
  user `loss_fn` may return a scalar. The target receives no gradient.
  """
  target = tf.stop_gradient(target)
  if per_example_fn is not None:
    return per_example_fn(pred, target)
  return tf.convert_to_tensor(loss_fn(pred, target))


def mean_over_projections(value: tf.Tensor, num_projections: int,
                          batch) -> tf.Tensor:
  """`[P*B] -> [B]`: each example's mean over its P projections."""
  if num_projections == 1 or value.shape.rank != 1:
    return value
  return tf.reduce_mean(tf.reshape(value, [num_projections, batch]), axis=0)


# 4. Weighted means and the total.


def example_weights(sample_weights: List[Optional[tf.Tensor]],
                    masks: List[Optional[tf.Tensor]],
                    dtype: tf.DType) -> List[Optional[tf.Tensor]]:
  """Per order, `s[b] * m_j[b]` `[B]` (None where both are absent)."""
  combined = []
  for w, m in zip(sample_weights, masks):
    if m is not None:
      m_float = tf.cast(m, dtype)
      w = m_float if w is None else w * m_float
    combined.append(w)
  return combined


def combine(values: List[tf.Tensor], weights: List[float],
            example_weights_: List[Optional[tf.Tensor]],
            masks: List[Optional[tf.Tensor]], dtype: tf.DType
           ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor], Dict[str, tf.Tensor],
                      Optional[tf.Tensor], Dict[str, tf.Tensor]]:
  """The per-order means, the weighted total and the per-example totals.

  Args:
    values: per order j, `l_j` `[B]` (or a scalar from a user loss).
    weights: `w_j` per order.
    example_weights_: per order, `s[b] m_j[b]` `[B]` or None (a plain mean).
    masks: per order, bool `[B]` or None.
    dtype: the dtype of the total.

  Returns:
    `(total, terms, weighted_terms, per_example, per_example_terms)`:
    `per_example` is None if an order's loss is a scalar, which
    `per_example_terms` leaves out.
  """
  terms, weighted, per_example_terms = {}, {}, {}
  per_example = None
  total = tf.constant(0.0, dtype=dtype)
  for j, (value, weight) in enumerate(zip(values, example_weights_)):
    key = f"order_{j}"
    if value.shape.rank == 0:
      term = value
    else:
      if weight is None:
        term = tf.reduce_mean(value)
      else:
        term = tf.math.divide_no_nan(tf.reduce_sum(weight * value),
                                     tf.reduce_sum(weight))
      if masks[j] is not None:
        value = tf.where(masks[j], value, tf.zeros_like(value))
      per_example_terms[key] = value
      scaled = weights[j] * value
      per_example = scaled if per_example is None else per_example + scaled
    terms[key] = term
    weighted[key] = weights[j] * term
    total += weighted[key]
  if len(per_example_terms) < len(values):
    per_example = None
  return total, terms, weighted, per_example, per_example_terms
