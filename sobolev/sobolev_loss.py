"""The Sobolev training loss (Czarnecki et al. 2017, Eq. 1 and its stochastic form).

`SobolevLoss` fits a model `m` to a target `f` on values and on input
derivatives up to order K:

    total = sum_{j=0..K} w_j * l_j(D^j m(x), D^j f(x))

Inputs `x` have any shape `[B, ...]` (vectors `[B, D]`, images
`[B, H, W, C]`, ...); below `...` is the shape of one example and `D` its
number of elements. In exact mode `D^1` is the full Jacobian `[B, O, ...]` and
`D^2` the full Hessian `[B, O, ..., ...]`. In stochastic mode (the paper's
Figure 1b) the derivatives are replaced by random projections that are cheap
to compute, both shaped like `x`:

    order 1: D_x<m, v1>            (v1 uniform on the unit sphere of R^O)
    order 2: D_x<D_x<m, v1>, v2>   (v2 uniform on the unit sphere of R^D)

with the *same* v1, v2 for model and target, averaged over `num_projections`
independent draws per example (Monte Carlo). The projections are computed by
the public `sobolev.derivatives.value_and_vjp` / `value_and_hvp` (and, for
targets given as full derivatives, `project_jacobian` / `project_hessian`).

Per-example values, sample weights and masks. Let `l_j[b]` be example b's
order-j loss (for stochastic orders, the mean over its projections, after the
scaling below), `s[b] >= 0` its sample weight (1 by default) and `m_j[b]` in
{0, 1} whether it has order-j targets (1 by default). Then

    terms[order_j]  = sum_b s[b] m_j[b] l_j[b] / sum_b s[b] m_j[b]
                      (0 when the denominator is 0)
    total           = sum_j w_j terms[order_j]
    per_example[b]  = sum_j w_j m_j[b] l_j[b]

i.e. each order is averaged over the examples that have its targets, weighted
by the sample weights (a normalised weighted mean: scaling all sample weights
by a constant changes nothing). Without weights and masks, `terms` are plain
means over the batch and `total = mean_b per_example[b]`; with sample weights
and no masks, `total = sum_b s[b] per_example[b] / sum_b s[b]`.

Scaling of the stochastic terms. For v uniform on the unit sphere of R^n,
E[v v^T] = I / n. Hence, with the L2 loss,

    E_v1 ||J^T v1 - J_f^T v1||^2 = ||J - J_f||_F^2 / O
    E_v1,v2 ||(H_v1 - H_f,v1) v2||^2 = sum_o ||H_o - H_f,o||_F^2 / (O * D)

With unbiased scaling the stochastic order-1 term is multiplied by O and the
order-2 term by O * D, so that the stochastic L2 loss is an unbiased estimate
of the exact loss and the same weights mean the same thing in both modes.
The scaling is defined for the L2 loss only: by default
(`unbiased_scaling=None`) it applies to exactly the derivative orders whose
loss is `'l2'`; `unbiased_scaling=True` requires `'l2'` for every derivative
order (a `ValueError` otherwise); `unbiased_scaling=False` uses the raw
projection losses (the paper's distillation objective,
`lambda * E_v ||...||`).
"""

import functools
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)
import warnings

import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import forward_mode
from sobolev import losses
from sobolev import sampling

Model = Callable[[Any], tf.Tensor]
MAX_ORDER = 2
MODES = ("exact", "stochastic")
JACOBIAN_MODES = ("auto", "reverse", "forward")


class LossOutput(NamedTuple):
  """What `SobolevLoss.__call__` returns (a NamedTuple).

  The first two fields are `(total, terms)`, so `total, terms = out[:2]`
  works. Keys of the dicts are `'order_0'`, ..., `'order_K'`.

  Attributes:
    total: scalar, `sum_j weights[j] * terms[order_j]`; differentiate this.
    terms: unweighted per-order losses (scalars): the (weighted, masked)
      mean over examples of the per-example order-j losses, after the
      stochastic scaling.
    weighted_terms: `weights[j] * terms[order_j]` (scalars); they sum to
      `total`.
    per_example: `[B]`, `sum_j weights[j] * mask_j[b] * l_j[b]` (sample
      weights not applied); None if a user loss function returns a scalar
      instead of per-example losses.
    per_example_terms: `[B]` unweighted per-example losses `l_j[b]` per
      order (after the stochastic scaling; 0 where the order's mask is
      False); orders whose loss function returns a scalar are left out.
    values: the model's outputs `[B, O]`.
  """
  total: tf.Tensor
  terms: Dict[str, tf.Tensor]
  weighted_terms: Dict[str, tf.Tensor]
  per_example: Optional[tf.Tensor]
  per_example_terms: Dict[str, tf.Tensor]
  values: tf.Tensor


_ORIGINALS = {}


def _keep_original(method):
  """Records a method before `snt.Module` wraps it in a name scope."""
  _ORIGINALS[method.__name__] = method
  return method


def _per_order(arg, order: int, name: str) -> list:
  """Broadcasts a scalar/str/callable to one entry per order; checks lengths."""
  if isinstance(arg, (list, tuple)):
    if len(arg) != order + 1:
      raise ValueError(
          f"`{name}` must have one entry per order 0..{order} "
          f"({order + 1} entries), got {len(arg)}.")
    return list(arg)
  return [arg] * (order + 1)


def _check_bool(value, name: str) -> bool:
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"`{name}` must be a bool, got {value!r}.")
  return bool(value)


def _tile(t, times: int):
  """Repeats a batch `[B, ...]` `times` times on axis 0 (projection-major)."""
  if times == 1:
    return t
  if tf.is_tensor(t) or isinstance(t, (np.ndarray, tf.Variable)):
    t = tf.convert_to_tensor(t)
    if t.shape.rank == 0:
      return t
    return tf.tile(t, [times] + [1] * (t.shape.rank - 1))
  return t


class SobolevLoss(snt.Module):
  """Sobolev loss of order K, exact or stochastic.

  Example (inside a user's training step):

    loss_module = sobolev.SobolevLoss(order=1)
    with tf.GradientTape() as tape:
      total, terms = loss_module(model, x, targets=(y, dy))[:2]
    grads = tape.gradient(total, model.trainable_variables)

  The call returns a `LossOutput` (total, terms, weighted_terms,
  per_example, per_example_terms, values). The module holds no trainable
  variables; in stochastic mode it owns a `tf.random.Generator` seeded from
  `seed`.
  """

  def __init__(self,
               order: int = 1,
               loss_fns: Union[str, losses.LossFn, Sequence] = "l2",
               weights: Union[float, Sequence[float]] = 1.0,
               mode: str = "exact",
               num_projections: Optional[int] = None,
               unbiased_scaling: Optional[bool] = None,
               seed: Optional[int] = None,
               check_curvature: Optional[bool] = None,
               validate_targets: bool = True,
               jacobian_mode: Optional[str] = None,
               validate_inputs: bool = True,
               name: Optional[str] = None):
    """Builds the loss.

    Arguments that apply only to some modes or orders default to None and
    raise a `ValueError` when given elsewhere.

    Args:
      order: highest derivative order K matched; 0 (values only, i.e. regular
        training), 1 or 2.
      loss_fns: loss per order `l_j(prediction, target)`: a name (`'l2'`,
        `'l1'`, `'l2_norm'`), a callable returning per-example losses `[N]`
        (or a scalar mean, which leaves out per-example values and forbids
        `sample_weights`/`masks` for that order), or a sequence of K+1 of
        them. See `sobolev.losses`.
      weights: weight per order `w_j`: a float for all orders or a sequence of
        K+1 floats.
      mode: `'exact'` (full Jacobians/Hessians) or `'stochastic'` (random
        projections; needs order >= 1).
      num_projections: stochastic mode only: Monte Carlo draws of (v1, v2)
        per example (default 1).
      unbiased_scaling: stochastic mode only: multiply the order-1 term by O
        and the order-2 term by O * D (see the module docstring). None
        (default): scale the orders whose loss is `'l2'`; True: scale every
        derivative order, which must all use `'l2'`; False: no scaling.
      seed: stochastic mode only: int seed of the generator for the random
        directions; None draws a non-deterministic seed.
      check_curvature: order 2 only (default True): check once (on first
        call) that the model's Hessian is not identically zero, as it is for
        piecewise-linear (ReLU) networks, and raise a `ValueError` if it is.
      validate_targets: check that target tensors, sample weights and masks
        are valid at run time (finite targets, finite non-negative weights:
        a `ValueError` eagerly, a `tf.debugging` assertion inside
        `tf.function`, which XLA ignores).
      jacobian_mode: exact mode with order 1 only: how the Jacobians are
        computed: `'reverse'` (tapes: one backward pass per output,
        vectorised), `'forward'` (tangents pushed through an `snt.nets.MLP`
        with the values, one per input; an explicit opt-in that also accepts
        MLP subclasses that do not override `__call__`; see
        `sobolev.forward_mode`) or `'auto'` (default): forward for models of
        exactly the type `snt.nets.MLP` (supported activation, no dropout)
        with fewer inputs than outputs, reverse otherwise. Both give the same
        numbers up to rounding.
      validate_inputs: check that `x` is finite and has a batch of at least
        one example at run time (as for `validate_targets`).
      name: module name.

    Raises:
      ValueError: for an unsupported order or mode, per-order arguments of
        the wrong length, negative weights, `num_projections < 1`, an
        argument given for a mode or order it does not apply to, or
        `unbiased_scaling=True` with a non-L2 derivative loss.
      TypeError: for arguments of the wrong type (e.g. `seed='abc'`).
    """
    super().__init__(name=name)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
      raise TypeError(f"`order` must be an int, got {type(order).__name__}.")
    if not 0 <= order <= MAX_ORDER:
      raise ValueError(
          f"`order` must be between 0 and {MAX_ORDER}, got {order}.")
    if mode not in MODES:
      raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
    stochastic = mode == "stochastic"
    if stochastic and order == 0:
      raise ValueError("mode='stochastic' projects derivatives of order >= 1 "
                       "and order=0 has none: use mode='exact' (the default) "
                       "for order 0.")
    if not stochastic:
      for arg, value in (("num_projections", num_projections),
                         ("unbiased_scaling", unbiased_scaling),
                         ("seed", seed)):
        if value is not None:
          raise ValueError(
              f"`{arg}` applies to mode='stochastic' only, but mode="
              f"{mode!r} (got {arg}={value!r}); remove it or use "
              "mode='stochastic'.")
    if jacobian_mode is not None:
      if jacobian_mode not in JACOBIAN_MODES:
        raise ValueError(f"`jacobian_mode` must be one of {JACOBIAN_MODES}, "
                         f"got {jacobian_mode!r}.")
      if stochastic or order != 1:
        raise ValueError(
            "`jacobian_mode` applies to mode='exact' with order=1 only (it "
            "chooses how full Jacobians are computed), but order="
            f"{order}, mode={mode!r}; remove it.")
    if check_curvature is not None:
      if order < 2:
        raise ValueError("`check_curvature` applies to order=2 only, but "
                         f"order={order}; remove it.")
      check_curvature = _check_bool(check_curvature, "check_curvature")
    self._jacobian_mode = jacobian_mode or "auto"
    if num_projections is None:
      num_projections = 1
    if (isinstance(num_projections, bool) or
        not isinstance(num_projections, (int, np.integer)) or
        num_projections < 1):
      raise ValueError(
          f"`num_projections` must be an int >= 1, got {num_projections!r}.")
    seed = sampling.check_seed(seed)
    self._order = int(order)
    self._mode = mode
    self._num_projections = int(num_projections)
    loss_args = _per_order(loss_fns, order, "loss_fns")
    self._loss_fns = [losses.get(fn, name=f"loss_fns[{j}]")
                      for j, fn in enumerate(loss_args)]
    self._per_example_fns = [losses.per_example(fn) for fn in self._loss_fns]
    self._scale = self._resolve_scaling(unbiased_scaling, stochastic)
    weights = _per_order(weights, order, "weights")
    for j, w in enumerate(weights):
      if isinstance(w, bool) or not isinstance(
          w, (int, float, np.floating, np.integer)):
        raise TypeError(f"`weights[{j}]` must be a number, got {type(w)}.")
      if not np.isfinite(w) or w < 0:
        raise ValueError(f"`weights[{j}]` must be finite and >= 0, got {w}.")
    self._weights = [float(w) for w in weights]
    self._check_curvature = order >= 2 and check_curvature is not False
    self._validate_targets = _check_bool(validate_targets, "validate_targets")
    self._validate_inputs = _check_bool(validate_inputs, "validate_inputs")
    self._curvature_checked = False
    self._seed = seed
    self._rng = None
    if stochastic:
      with tf.init_scope():
        self._rng = (tf.random.Generator.from_seed(seed) if seed is not None
                     else tf.random.Generator.from_non_deterministic_state())

  def _resolve_scaling(self, unbiased_scaling, stochastic) -> List[bool]:
    """Whether each order's stochastic term is scaled (see module docstring)."""
    if not stochastic:
      return [False] * (self._order + 1)
    is_l2 = [losses.is_l2(fn) for fn in self._loss_fns]
    if unbiased_scaling is None:
      return [j >= 1 and is_l2[j] for j in range(self._order + 1)]
    unbiased_scaling = _check_bool(unbiased_scaling, "unbiased_scaling")
    if unbiased_scaling:
      for j in range(1, self._order + 1):
        if not is_l2[j]:
          raise ValueError(
              f"unbiased_scaling=True is defined for the 'l2' loss only (it "
              f"makes E||projection error||^2 equal the exact squared "
              f"error), but loss_fns[{j}] is {self._loss_fns[j]!r}; pass "
              "unbiased_scaling=False (raw projection losses) or leave it "
              "None (scale only the 'l2' orders).")
    return [j >= 1 and unbiased_scaling for j in range(self._order + 1)]

  @property
  def order(self) -> int:
    return self._order

  @property
  def mode(self) -> str:
    return self._mode

  @property
  def weights(self) -> Tuple[float, ...]:
    return tuple(self._weights)

  @property
  def num_projections(self) -> int:
    return self._num_projections

  @property
  def unbiased_scaling(self) -> Tuple[bool, ...]:
    """Per order, whether its stochastic term is scaled (False for order 0)."""
    return tuple(self._scale)

  @_keep_original
  def __call__(
      self,
      model: Model,
      x: Any,
      targets: Optional[Sequence[tf.Tensor]] = None,
      target_fn: Optional[Model] = None,
      vectors: Optional[Tuple[tf.Tensor, Optional[tf.Tensor]]] = None,
      *,
      sample_weights: Optional[Any] = None,
      masks: Optional[Sequence[Optional[tf.Tensor]]] = None,
      projected_targets: bool = False,
      wrt: Optional[derivatives.WrtPath] = None,
  ) -> LossOutput:
    """Computes the Sobolev loss of `model` at `x`.

    Below `...` is the shape of one example, `x.shape[1:]`, and `P` is
    `num_projections`.

    Args:
      model: callable `[B, ...] -> [B, O]` (or `[B]`), e.g. an `snt.Module`
        or a conv net on images; it must return the dtype of `x`.
      x: inputs `[B, ...]` (B >= 1, finite); or a dict (or tuple) of inputs
        passed to the model whole, with `wrt` naming the entry to
        differentiate with respect to.
      targets: target tensors `(f(x), D f(x), D^2 f(x))` up to `order`:
        values `[B, O]` (or `[B]`), Jacobians `[B, O, ...]` (or `[B, ...]`
        when O = 1), Hessians `[B, O, ..., ...]` (or `[B, ..., ...]` when
        O = 1). In stochastic mode they are projected on the sampled
        directions. Tensors must have the dtype of `x`; NumPy/Python floats
        are converted to it.
      target_fn: instead of `targets`, a differentiable callable `f` (an
        analytic function or a teacher network, called like `model`); its
        derivatives or projections are computed like the model's, with the
        same random directions.
      vectors: stochastic mode only: `(v1 [P*B, O], v2)` to use instead of
        sampling, with `v2` shaped `[P*B, ...]` for order 2 and None for
        order 1 (rows are projection-major: row `p * B + b` is draw p for
        example b).
      sample_weights: optional example weights `[B]` (finite, >= 0) for
        every order, or a sequence of K+1 entries (`[B]` or None) with
        weights per order; see the module docstring for the normalisation.
      masks: optional sequence of K+1 entries, each None or a bool `[B]`
        saying which examples have order-j targets; the order-j term is
        averaged over those examples only. Targets of masked-out examples
        are ignored (they may hold anything, e.g. zeros or NaN).
      projected_targets: stochastic mode only: `targets` hold the values
        `[B, O]` and already projected derivatives, each `[P*B, ...]`,
        computed along the given `vectors` (required): `J_f^T v1` for order
        1 and `(sum_o v1_o H_f,o) v2` for order 2.
      wrt: for dict (or tuple) inputs `x`, the key (or index) of the entry
        to differentiate with respect to; for nested inputs a tuple path,
        e.g. `('obs', 'image')`.

    Returns:
      A `LossOutput` `(total, terms, weighted_terms, per_example,
      per_example_terms, values)`: the weighted total (scalar), the dict
      `{'order_0': ..., 'order_1': ..., ...}` of unweighted per-order terms
      (after the stochastic scaling), the weighted terms, the per-example
      totals `[B]`, the unweighted per-example terms `[B]` and the model's
      values `[B, O]`. `total, terms = out[:2]` gives the first two.

    Raises:
      ValueError: for mismatched shapes or batch sizes, missing/extra
        targets, non-finite targets or inputs (eagerly), an empty batch, a
        model not depending on `x`, arguments that do not apply to the mode
        (`vectors`, `projected_targets`), (order 2) a model whose Hessian is
        identically zero, or a user loss returning per-example losses of the
        wrong shape.
      TypeError: for non-callable models, non-floating inputs, dtype
        mismatches (the message names both dtypes), masks that are not bool,
        or dict/tuple inputs without `wrt`.
    """
    if not callable(model):
      raise TypeError(f"`model` must be callable, got {type(model)}.")
    if (targets is None) == (target_fn is None):
      raise ValueError("Give exactly one of `targets` (tensors) and "
                       "`target_fn` (a differentiable callable).")
    if target_fn is not None and not callable(target_fn):
      raise TypeError(f"`target_fn` must be callable, got {type(target_fn)}.")
    stochastic = self._mode == "stochastic"
    if vectors is not None and not stochastic:
      raise ValueError("`vectors` applies to mode='stochastic' only.")
    projected_targets = _check_bool(projected_targets, "projected_targets")
    if projected_targets:
      if not stochastic:
        raise ValueError("`projected_targets` applies to mode='stochastic' "
                         "only.")
      if targets is None or vectors is None:
        raise ValueError(
            "projected_targets=True needs `targets` (values and projected "
            "derivatives) and the `vectors` they were projected along.")

    structure = x
    fn, x = derivatives.with_respect_to(model, structure, wrt)
    x = derivatives.check_inputs(x)
    derivatives.check_model_dtype(model, x)
    x = self._check_x(x)
    batch = derivatives.batch_size(x)
    example_weights, mask_list = self._example_weights(sample_weights, masks,
                                                       x, batch)
    if targets is not None:
      targets = self._normalise_targets(targets, x, mask_list,
                                        projected_targets,
                                        model_width=lambda: _output_width(fn,
                                                                          x))
    if self._check_curvature and not self._curvature_checked:
      self._assert_curved(fn, x, wrt)

    if stochastic:
      preds, tgts = self._stochastic_terms(model, target_fn, x, wrt, structure,
                                           targets, vectors,
                                           projected_targets)
    else:
      preds = self._exact_derivatives(fn, x)
      if target_fn is not None:
        target = (target_fn if wrt is None else
                  derivatives.with_respect_to(target_fn, structure, wrt)[0])
        tgts = [tf.stop_gradient(t)
                for t in self._exact_derivatives(target, x)]
      else:
        tgts = targets
      _check_output_dims(preds[0], tgts[0], from_fn=target_fn is not None)
    return self._combine(preds, tgts, x, batch, example_weights, mask_list)

  # Internal helpers.

  def _combine(self, preds, tgts, x, batch, example_weights,
               mask_list) -> LossOutput:
    """Per-order losses, their weighted means and per-example totals."""
    terms, weighted, per_example_terms = {}, {}, {}
    per_example = None
    all_per_example = True
    total = tf.constant(0.0, dtype=preds[0].dtype)
    for j in range(self._order + 1):
      key = f"order_{j}"
      value = self._order_loss(j, preds[j], tgts[j], preds[0], x, batch)
      weight = example_weights[j]
      if value.shape.rank == 0:
        if weight is not None:
          raise ValueError(
              f"`loss_fns[{j}]` returns a scalar, so `sample_weights` and "
              f"`masks` cannot apply to order {j}: make it return "
              "per-example losses [N].")
        all_per_example = False
        term = value
      else:
        if weight is None:
          term = tf.reduce_mean(value)
        else:
          term = tf.math.divide_no_nan(tf.reduce_sum(weight * value),
                                       tf.reduce_sum(weight))
        if mask_list[j] is not None:
          value = tf.where(mask_list[j], value, tf.zeros_like(value))
        per_example_terms[key] = value
        scaled = self._weights[j] * value
        per_example = scaled if per_example is None else per_example + scaled
      terms[key] = term
      weighted[key] = self._weights[j] * term
      total += weighted[key]
    return LossOutput(total=total, terms=terms, weighted_terms=weighted,
                      per_example=per_example if all_per_example else None,
                      per_example_terms=per_example_terms, values=preds[0])

  def _order_loss(self, j, pred, tgt, y, x, batch) -> tf.Tensor:
    """Order j's per-example losses `[B]` (or a scalar from a user loss)."""
    tgt = tf.stop_gradient(tgt)
    per_example_fn = self._per_example_fns[j]
    if per_example_fn is not None:
      value = per_example_fn(pred, tgt)
    else:
      value = tf.convert_to_tensor(self._loss_fns[j](pred, tgt))
      if value.shape.rank not in (0, 1):
        raise ValueError(
            f"`loss_fns[{j}]` must return a scalar or per-example losses "
            f"[N] for predictions of shape {pred.shape}, got shape "
            f"{value.shape}.")
      if value.shape.rank == 1:
        if (value.shape[0] is not None and pred.shape[0] is not None and
            value.shape[0] != pred.shape[0]):
          raise ValueError(
              f"`loss_fns[{j}]` returned {value.shape[0]} per-example losses "
              f"for {pred.shape[0]} predictions.")
    p = self._num_projections
    if j >= 1 and p > 1 and value.shape.rank == 1:
      value = tf.reduce_mean(tf.reshape(value, [p, batch]), axis=0)
    if self._scale[j]:
      value *= self._projection_scale(j, y, x)
    return value

  def _check_x(self, x: tf.Tensor) -> tf.Tensor:
    """Finite values and B >= 1, eagerly or as run-time assertions."""
    if not self._validate_inputs:
      return x
    if tf.executing_eagerly():
      if not np.all(np.isfinite(x.numpy())):
        raise ValueError("`x` contains NaN or Inf values.")
      if x.shape[0] == 0:
        raise ValueError("`x` has batch size 0; Sobolev losses need at least "
                         "one example.")
      return x
    checks = []
    if x.shape[0] is None:
      checks.append(tf.debugging.assert_positive(
          tf.shape(x)[0], message="`x` has batch size 0; Sobolev losses need "
          "at least one example."))
    with tf.control_dependencies(checks):
      return tf.debugging.assert_all_finite(
          x, "`x` contains NaN or Inf values.")

  def _example_weights(self, sample_weights, masks, x, batch):
    """Per-order example weights `[B]` (or None) and bool masks (or None)."""
    count = self._order + 1
    per_order = False
    if sample_weights is None:
      weight_list = [None] * count
    elif isinstance(sample_weights, (list, tuple)) and any(
        w is None or tf.is_tensor(w) or
        isinstance(w, (np.ndarray, list, tuple)) for w in sample_weights):
      if len(sample_weights) != count:
        raise ValueError(
            f"`sample_weights` given per order must have {count} entries "
            f"(orders 0..{self._order}), got {len(sample_weights)}; or give "
            "one [B] tensor for every order.")
      weight_list = list(sample_weights)
      per_order = True
    else:
      weight_list = [sample_weights] * count
    checked = {}
    for j, w in enumerate(weight_list):
      if w is None:
        continue
      if id(w) in checked:
        weight_list[j] = checked[id(w)]
        continue
      name = f"sample_weights[{j}]" if per_order else "sample_weights"
      t = derivatives.as_dtype(w, x.dtype, name)
      if t.shape.rank != 1:
        raise ValueError(f"`{name}` must have shape [B], got {t.shape}.")
      t = derivatives.assert_batch(t, batch, name)
      t = self._check_values(t, name, non_negative=True)
      checked[id(w)] = t
      weight_list[j] = t
    if masks is None:
      mask_list = [None] * count
    else:
      if not isinstance(masks, (list, tuple)):
        raise TypeError(
            f"`masks` must be a sequence of {count} entries (orders "
            f"0..{self._order}), each None or a bool [B] tensor, got "
            f"{type(masks).__name__}.")
      if len(masks) != count:
        raise ValueError(f"`masks` must have {count} entries (orders "
                         f"0..{self._order}), got {len(masks)}.")
      mask_list = []
      for j, m in enumerate(masks):
        if m is None:
          mask_list.append(None)
          continue
        name = f"masks[{j}]"
        t = tf.convert_to_tensor(m)
        if t.dtype != tf.bool:
          raise TypeError(f"`{name}` must be a bool tensor [B], got dtype "
                          f"{t.dtype.name}.")
        if t.shape.rank != 1:
          raise ValueError(f"`{name}` must have shape [B], got {t.shape}.")
        mask_list.append(derivatives.assert_batch(t, batch, name))
    combined = []
    for w, m in zip(weight_list, mask_list):
      if m is not None:
        m_float = tf.cast(m, x.dtype)
        w = m_float if w is None else w * m_float
      combined.append(w)
    return combined, mask_list

  def _check_values(self, t, name, non_negative=False):
    """Finite (and optionally >= 0) values, eagerly or as assertions."""
    if not self._validate_targets:
      return t
    if tf.executing_eagerly():
      values = t.numpy()
      if not np.all(np.isfinite(values)):
        raise ValueError(f"`{name}` contains NaN or Inf values.")
      if non_negative and np.any(values < 0):
        raise ValueError(f"`{name}` must be >= 0.")
      return t
    t = tf.debugging.assert_all_finite(t, f"`{name}` contains NaN or Inf "
                                       "values.")
    if non_negative:
      with tf.control_dependencies([tf.debugging.assert_non_negative(
          t, message=f"`{name}` must be >= 0.")]):
        t = tf.identity(t)
    return t

  def _exact_derivatives(self, fn: Model, x: tf.Tensor) -> list:
    """`[values, jacobians, hessians][:order + 1]` of `fn` at `x`."""
    if self._order == 0:
      return [derivatives.as_2d_output(fn(x), x)]
    if self._order == 1:
      if self._use_forward_mode(fn, x):
        return list(forward_mode.mlp_value_and_jacobian(
            fn, x, allow_subclasses=True))
      return list(derivatives.value_and_jacobian(fn, x))
    return list(derivatives.value_and_hessian(fn, x))

  def _use_forward_mode(self, fn: Model, x: tf.Tensor) -> bool:
    if self._jacobian_mode == "reverse":
      return False
    if self._jacobian_mode == "forward":
      if forward_mode.overrides_call(fn):
        raise ValueError(
            "jacobian_mode='forward': this subclass of snt.nets.MLP "
            f"({type(fn).__name__}) overrides __call__, so its layers alone "
            "are not the model; use jacobian_mode='reverse' or 'auto'.")
      if not forward_mode.supports(fn, allow_subclasses=True):
        raise ValueError(
            "jacobian_mode='forward' needs an snt.nets.MLP without dropout "
            "and with a supported activation; use 'auto' or 'reverse'.")
      if x.shape.rank != 2 or x.shape[1] is None:
        raise ValueError("jacobian_mode='forward' needs inputs [B, D] with a "
                         f"static D, got shape {x.shape}.")
      return True
    if (not forward_mode.supports(fn) or x.shape.rank != 2 or
        x.shape[1] is None):
      return False
    return x.shape[1] < forward_mode.output_size(fn)

  def _projection_scale(self, j: int, y: tf.Tensor, x: tf.Tensor):
    out_dim = (y.shape[1] if y.shape[1] is not None else
               tf.cast(tf.shape(y)[1], y.dtype))
    if j == 1:
      return tf.cast(out_dim, y.dtype)
    in_dim = derivatives.example_size(x)
    return tf.cast(out_dim, y.dtype) * tf.cast(in_dim, y.dtype)

  def _stochastic_terms(self, model, target_fn, x, wrt, structure, targets,
                        vectors, projected_targets):
    """Model and target projections on shared random directions."""
    p = self._num_projections
    batch = derivatives.batch_size(x)
    rows = p * batch
    x_rep = _tile(x, p)
    if wrt is None:
      fn = model
      target = target_fn
    else:
      tiled = _tile_structure(structure, p)
      fn = derivatives.with_respect_to(model, tiled, wrt)[0]
      target = (None if target_fn is None else
                derivatives.with_respect_to(target_fn, tiled, wrt)[0])
    v1_given, v2 = self._check_vectors(vectors, x, rows)
    drawn = []

    def sample_v1(out_dim):
      if v1_given is not None:
        v1 = v1_given
      else:
        v1 = sampling.unit_sphere([rows], out_dim, dtype=x.dtype,
                                  rng=self._rng)
      drawn.append(v1)
      return v1

    if self._order >= 2 and v2 is None:
      in_dim = derivatives.example_size(x)
      v2 = tf.reshape(
          sampling.unit_sphere([rows], in_dim, dtype=x.dtype, rng=self._rng),
          [rows] + derivatives.example_shape(x))
    if self._order == 1:
      y_rep, p1 = derivatives.value_and_vjp(fn, x_rep, sample_v1)
      proj = [p1]
    else:
      y_rep, p1, p2 = derivatives.value_and_hvp(fn, x_rep, sample_v1, v2)
      proj = [p1, p2]
    v1 = drawn[0]
    y = y_rep[:batch] if p > 1 else y_rep
    if target is not None:
      if self._order == 1:
        ty_rep, tp1 = derivatives.value_and_vjp(target, x_rep, v1)
        tproj = [tp1]
      else:
        ty_rep, tp1, tp2 = derivatives.value_and_hvp(target, x_rep, v1, v2)
        tproj = [tp1, tp2]
      ty = ty_rep[:batch] if p > 1 else ty_rep
      tgts = [tf.stop_gradient(t) for t in [ty] + tproj]
    elif projected_targets:
      _check_output_dims(y, targets[0])
      tgts = list(targets)
    else:
      _check_output_dims(y, targets[0])
      tgts = [targets[0], derivatives.project_jacobian(_tile(targets[1], p),
                                                       v1)]
      if self._order >= 2:
        tgts.append(derivatives.project_hessian(_tile(targets[2], p), v1, v2))
    _check_output_dims(y, tgts[0], from_fn=target is not None)
    return [y] + proj, tgts

  def _check_vectors(self, vectors, x, rows):
    """Validates user `vectors`; returns `(v1 or None, v2 or None)`."""
    if vectors is None:
      return None, None
    if not isinstance(vectors, (list, tuple)) or len(vectors) != 2:
      raise ValueError("`vectors` must be a pair (v1 [P*B, O], v2 [P*B, ...] "
                       "or None).")
    v1, v2 = vectors
    if v1 is None:
      raise ValueError("`vectors` must give v1 [P*B, O].")
    v1 = derivatives.as_dtype(v1, x.dtype, "vectors[0] (v1)")
    if v1.shape.rank != 2:
      raise ValueError(f"`vectors[0]` (v1) must have shape [P*B, O] "
                       f"(P = num_projections = {self._num_projections}), "
                       f"got shape {v1.shape}.")
    v1 = derivatives.assert_batch(
        v1, rows, "vectors[0] (v1)",
        what=f"num_projections * batch (P = {self._num_projections})")
    if self._order < 2:
      if v2 is not None:
        raise ValueError("`vectors[1]` (v2) is for order 2; give None for "
                         "order 1.")
      return v1, None
    if v2 is None:
      raise ValueError("`vectors` must give v2 for order 2.")
    v2 = derivatives.as_dtype(v2, x.dtype, "vectors[1] (v2)")
    want = [None] + list(x.shape[1:])
    if (v2.shape.rank != len(want) or
        not v2.shape.is_compatible_with(want)):
      raise ValueError(f"`vectors[1]` (v2) must have shape [P*B] + "
                       f"{list(x.shape[1:])} (shaped like x), got shape "
                       f"{v2.shape}.")
    v2 = derivatives.assert_batch(
        v2, rows, "vectors[1] (v2)",
        what=f"num_projections * batch (P = {self._num_projections})")
    return v1, v2

  def _normalise_targets(self, targets, x, mask_list, projected,
                         model_width=lambda: None):
    """Checks target tensors and brings them to `[B,O]`, `[B,O,...]`, ...

    Args:
      targets: the user's targets.
      x: the inputs `[B, ...]`.
      mask_list: per-order bool masks `[B]` or None.
      projected: whether derivative targets are projections.
      model_width: returns the model's output width O (an int) or None; only
        called when the targets disagree on O, to say which one is wrong.

    Returns:
      The checked targets.
    """
    if tf.is_tensor(targets) or isinstance(targets, np.ndarray):
      targets = (targets,)
    if not isinstance(targets, (list, tuple)):
      raise TypeError("`targets` must be a sequence (values, jacobians, ...), "
                      f"got {type(targets)}.")
    if len(targets) != self._order + 1:
      raise ValueError(
          f"`targets` must hold {self._order + 1} tensors for order "
          f"{self._order} (values and derivatives up to order "
          f"{self._order}), got {len(targets)}.")
    batch = derivatives.batch_size(x)
    p = self._num_projections
    example = list(x.shape[1:])
    example_rank = len(example)
    out = []
    for j, t in enumerate(targets):
      name = f"targets[{j}]"
      t = derivatives.as_dtype(t, x.dtype, name)
      if j == 0 and t.shape.rank == 1:
        t = t[:, None]
      out_dim = out[0].shape[1] if out else None
      if j >= 1 and projected:
        want = [None] + example
        described = f"[P*B] + {example} (shaped like x)"
      else:
        want = [None] * 2 + example * j
        described = ["[B, O]", f"[B, O] + {example}",
                     f"[B, O] + {example} + {example}"][j]
        if j >= 1 and t.shape.rank == len(want) - 1 and out_dim == 1:
          t = t[:, None]  # Scalar-output shorthand: [B, ...] -> [B, 1, ...].
      if t.shape.rank != len(want):
        if (j >= 1 and not projected and t.shape.rank == len(want) - 1 and
            out_dim is not None and model_width() == 1):
          # `t` is the scalar-output shorthand of a model with O = 1; the
          # values are the wrong width.
          raise _width_error(out[0], 1)
        raise ValueError(f"`{name}` must have rank {len(want)} "
                         f"({described}), got shape {t.shape}.")
      if j >= 1 and not projected:
        if out_dim is not None and t.shape[1] not in (None, out_dim):
          if model_width() == t.shape[1]:
            raise _width_error(out[0], t.shape[1])
          raise ValueError(f"`{name}` has output dimension {t.shape[1]} but "
                           f"`targets[0]` has {out_dim}.")
        for axis in range(2, t.shape.rank):
          expected = example[(axis - 2) % example_rank]
          if expected is not None and t.shape[axis] not in (None, expected):
            raise ValueError(
                f"`{name}` has input dimension {t.shape[axis]} on axis "
                f"{axis} but `x` has {expected} there (x shape {x.shape}).")
      elif j >= 1 and not t.shape[1:].is_compatible_with(example):
        raise ValueError(f"`{name}` must have shape {described}, got "
                         f"{t.shape}.")
      if j >= 1 and projected:
        t = derivatives.assert_batch(
            t, p * batch, name, what=f"num_projections * batch (P = {p})")
      else:
        t = derivatives.assert_batch(t, batch, name)
      mask = mask_list[j]
      if mask is not None:
        if j >= 1 and projected:
          mask = _tile(mask, p)
        shape = tf.concat([tf.shape(mask), tf.ones([t.shape.rank - 1],
                                                   tf.int32)], 0)
        t = tf.where(tf.reshape(mask, shape), t, tf.zeros_like(t))
      out.append(self._check_values(t, name))
    return out

  def _assert_curved(self, model, x, wrt):
    """Raises if the model's Hessian is identically zero (e.g. ReLU nets)."""
    self._curvature_checked = True
    eager = tf.executing_eagerly()
    if wrt is not None and not eager:
      warnings.warn("SobolevLoss: the zero-Hessian check cannot run inside "
                    "tf.function for dict/tuple inputs; skipping it.")
      return
    with tf.init_scope():
      shape = x.shape
      if not shape.is_fully_defined():
        if not shape[1:].is_fully_defined():
          warnings.warn("SobolevLoss: input shape unknown; skipping the "
                        "zero-Hessian check.")
          return
        shape = tf.TensorShape([4] + shape[1:].as_list())
      probe = (x if eager else
               tf.random.stateless_normal(shape, seed=[0, 1], dtype=x.dtype))
      try:
        # `tf.init_scope` pauses gradient tapes (also new ones), so the probe
        # uses symbolic `tf.gradients` inside its own graph.
        model(probe)  # Builds lazily created variables outside the graph.
        curvature = float(_max_abs_hvp(model, probe).numpy())
      except (tf.errors.OpError, RuntimeError, TypeError) as e:
        warnings.warn(f"SobolevLoss: could not run the zero-Hessian check "
                      f"eagerly ({e}); skipping it.")
        return
    if curvature == 0.0:
      raise ValueError(
          "SobolevLoss(order=2): the model's Hessian with respect to its "
          "input is identically zero, so the order-2 term cannot be "
          "trained. Piecewise-linear networks (ReLU layers with a linear "
          "output) have zero second derivatives: use a smooth activation "
          "(softplus, tanh, sigmoid) or order=1. Pass check_curvature=False "
          "to skip this check.")


# `snt.Module` wraps methods in a name scope without `functools.wraps`; give
# the wrapper the docstring and signature so `help(SobolevLoss.__call__)`
# documents the call.
functools.update_wrapper(SobolevLoss.__call__, _ORIGINALS["__call__"])


def _tile_structure(structure, times: int):
  """Tiles every tensor leaf of a dict/tuple of batched inputs (see `_tile`)."""
  return tf.nest.map_structure(lambda t: _tile(t, times), structure)


@tf.function(autograph=False)
def _max_abs_hvp(model: Model, x: tf.Tensor) -> tf.Tensor:
  """max |D_x<D_x<m, v1>, v2>| at `x` for fixed random v1, v2 (graph only).

  The same projection as `derivatives.value_and_hvp`, written with symbolic
  `tf.gradients` because it runs inside `tf.init_scope`, where tapes do not
  record.
  """
  y = derivatives.as_2d_output(model(x), x)
  v1 = tf.random.stateless_normal(tf.shape(y), [1, 2], dtype=y.dtype)
  v2 = tf.random.stateless_normal(tf.shape(x), [2, 3], dtype=x.dtype)
  p1 = tf.gradients(y, x, grad_ys=v1)[0]
  if p1 is None:
    raise derivatives.not_connected_error("the vector-Jacobian product")
  p2 = tf.gradients(tf.reduce_sum(p1 * v2), x,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO)[0]
  return tf.reduce_max(tf.abs(p2))


def _output_width(fn: Model, x: tf.Tensor) -> Optional[int]:
  """The model's static output width O, or None if it cannot be had.

  Only called to word an error about targets of disagreeing widths (it runs
  the model once).
  """
  try:
    return derivatives.as_2d_output(fn(x), x).shape[1]
  except Exception:  # pylint: disable=broad-except
    return None


def _width_error(values: tf.Tensor, width: int,
                 what: str = "`targets[0]` (the values)") -> ValueError:
  """The error for value targets `[B, O']` when the model outputs O."""
  return ValueError(
      f"{what} has width {values.shape[1]} (shape "
      f"{values.shape}) but the model's output dimension is {width}: give "
      f"values of shape [B, {width}]" + (" (or [B])" if width == 1 else "") +
      ".")


def _check_output_dims(y: tf.Tensor, target: tf.Tensor,
                       from_fn: bool = False) -> None:
  """Checks the values `target` against the model's outputs `y` `[B, O]`."""
  if (y.shape[1] is not None and target.shape[1] is not None and
      y.shape[1] != target.shape[1]):
    raise _width_error(target, y.shape[1],
                       "`target_fn`'s output" if from_fn else
                       "`targets[0]` (the values)")
  if (y.shape[0] is not None and target.shape[0] is not None and
      y.shape[0] != target.shape[0]):
    raise ValueError(f"The model's batch size is {y.shape[0]} but the "
                     f"targets' is {target.shape[0]}.")
