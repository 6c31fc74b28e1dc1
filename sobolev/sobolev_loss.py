"""The Sobolev training loss (Czarnecki et al. 2017, Eq. 1, stochastic too).

`SobolevLoss` fits a model `m` to a target `f` on values and on input
derivatives up to order K:

    total = sum_{j=0..K} w_j * l_j(D^j m(x), D^j f(x))

exactly (full Jacobians and Hessians) or, in stochastic mode (the paper's
Figure 1b), with the derivatives replaced by random projections on
directions shared by model and target. Inputs `x` have any shape `[B, ...]`
(vectors `[B, D]`, images `[B, H, W, C]`, ...).

The math (also of sample weights, masks and the stochastic scaling) is
`sobolev.terms`; every check is `sobolev.loss_checks`; `SobolevLoss` puts the
two together and holds the random generator.
"""

from typing import (Any, Callable, Dict, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import loss_checks
from sobolev import losses
from sobolev import terms

Model = Callable[[Any], tf.Tensor]
MAX_ORDER = loss_checks.MAX_ORDER


class LossOutput(NamedTuple):
  """What `SobolevLoss.__call__` returns (a NamedTuple).

  The first two fields are `(total, terms)`, so `total, terms = out[:2]`
  works. Keys of the dicts are `'order_0'`, ..., `'order_K'`.

  Attributes (the formulas are in `sobolev.terms`, section 4):
    total: scalar, `sum_j weights[j] * terms[order_j]`; differentiate this.
    terms: unweighted per-order losses (scalars), the (weighted, masked)
      means over examples.
    weighted_terms: `weights[j] * terms[order_j]`; they sum to `total`.
    per_example: `[B]`, `sum_j weights[j] * mask_j[b] * l_j[b]` (sample
      weights not applied); None if a user loss returns a scalar.
    per_example_terms: `[B]` unweighted per-example losses `l_j[b]` per
      order (0 where masked out); orders whose loss returns a scalar are
      left out.
    values: the model's outputs `[B, O]`.
  """
  total: tf.Tensor
  terms: Dict[str, tf.Tensor]
  weighted_terms: Dict[str, tf.Tensor]
  per_example: Optional[tf.Tensor]
  per_example_terms: Dict[str, tf.Tensor]
  values: tf.Tensor


class SobolevLoss(snt.Module):
  """Sobolev loss of order K, exact or stochastic.

  Example (inside a user's training step):

    loss_module = sobolev.SobolevLoss(order=1)
    with tf.GradientTape() as tape:
      total, terms = loss_module(model, x, targets=(y, dy))[:2]
    grads = tape.gradient(total, model.trainable_variables)

  The call returns a `LossOutput`. No trainable variables; in stochastic
  mode a `tf.random.Generator` seeded from `seed`.
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
        and the order-2 term by O * D (see `sobolev.terms`). None
        (default): scale the orders whose loss is `'l2'`; True: scale every
        derivative order, which must all use `'l2'`; False: no scaling.
      seed: stochastic mode only: int seed of the generator for the random
        directions; None draws a non-deterministic seed.
      check_curvature: order 2 only (default True): check once (on first
        call) that the model's Hessian is not identically zero, as it is for
        piecewise-linear (ReLU) networks, and raise a `ValueError` if it is.
      validate_targets: check that target tensors and sample weights are
        finite (weights also non-negative) at run time: a `ValueError`
        eagerly, a `tf.debugging` assertion inside `tf.function`, which XLA
        ignores. False skips those checks, e.g. in a training loop whose
        targets were checked once when the data set was built (the
        benchmarks do so); the inputs `x` are always checked.
      jacobian_mode: exact mode with order 1 only: `'reverse'` (tapes),
        `'forward'` (tangents through an `snt.nets.MLP` or a subclass that
        does not override `__call__`; see `sobolev.forward_mode`) or `'auto'`
        (default): forward for exactly `snt.nets.MLP` (supported activation,
        no dropout) with fewer inputs than outputs. Same numbers up to
        rounding. Or `'fused'` (opt-in): for an `snt.nets.MLP` with one
        output and a relu or leaky_relu activation, values, input
        gradients and the parameter gradient of both terms in one
        hand-written pass, without the value term's own backward pass
        (`sobolev.fused_mlp`; 4 instead of 6 large matmuls for two hidden
        layers). Same values and input gradients, parameter gradients
        equal up to float rounding; differentiable once only.
      name: module name.

    Raises:
      ValueError: for an unsupported order or mode, per-order arguments of
        the wrong length, negative weights, `num_projections < 1`, an
        argument given for a mode or order it does not apply to, or
        `unbiased_scaling=True` with a non-L2 derivative loss.
      TypeError: for arguments of the wrong type (e.g. `seed='abc'`).
    """
    super().__init__(name=name)
    self._options = loss_checks.check_options(
        order, loss_fns, weights, mode, num_projections, unbiased_scaling,
        seed, check_curvature, validate_targets, jacobian_mode)
    self._curvature_checked = False
    self._rng = None
    if mode == "stochastic":
      with tf.init_scope():
        self._rng = (tf.random.Generator.from_seed(seed) if seed is not None
                     else tf.random.Generator.from_non_deterministic_state())

  @property
  def order(self) -> int:
    return self._options.order

  @property
  def mode(self) -> str:
    return self._options.mode

  @property
  def weights(self) -> Tuple[float, ...]:
    return tuple(self._options.weights)

  @property
  def num_projections(self) -> int:
    return self._options.num_projections

  @property
  def unbiased_scaling(self) -> Tuple[bool, ...]:
    """Per order, whether its stochastic term is scaled (False for order 0)."""
    return tuple(self._options.scale)

  # `snt.Module` would wrap `__call__` in its name scope without
  # `functools.wraps`, hiding this docstring and signature from `help`; the
  # scope is entered here instead.
  @snt.no_name_scope
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
      target_fn: instead of `targets`, a differentiable callable `f` called
        like `model` (an analytic function or a teacher); differentiated
        like the model, on the same random directions.
      vectors: stochastic mode only: `(v1 [P*B, O], v2)` to use instead of
        sampling, with `v2` shaped `[P*B, ...]` for order 2 and None for
        order 1 (rows are projection-major: row `p * B + b` is draw p for
        example b).
      sample_weights: optional example weights `[B]` (finite, >= 0) for
        every order, or a sequence of K+1 entries (`[B]` or None) with
        weights per order; see `sobolev.terms` for the normalisation.
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
      A `LossOutput`: `total, terms = out[:2]` gives the weighted total and
      the unweighted per-order terms `{'order_0': ..., ...}`.

    Raises:
      ValueError: for mismatched shapes or batch sizes, missing or extra
        targets, non-finite targets or inputs (eagerly), an empty batch, a
        model not depending on `x`, `vectors`/`projected_targets` in exact
        mode, (order 2) a zero Hessian, or a user loss of the wrong shape.
      TypeError: for non-callable models, non-floating inputs, dtype
        mismatches, non-bool masks, or dict/tuple inputs without `wrt`.
    """
    with self.name_scope:
      inputs = loss_checks.check_call(
          self._options, model, x, targets, target_fn, vectors,
          sample_weights, masks, projected_targets, wrt)
      preds, tgts = self._derivatives(inputs, model, x, target_fn, wrt)
      return self._combine(preds, tgts, inputs)

  def _derivatives(self, inputs: loss_checks.Inputs, model: Model, x: Any,
                   target_fn: Optional[Model], wrt):
    """Per order, the model's and the target's derivatives (or projections).

    `model`, `x` (whole, also when a dict or tuple), `target_fn` and `wrt` are
    the call's arguments.
    """
    opts = self._options
    if opts.check_curvature and not self._curvature_checked:
      self._curvature_checked = True
      loss_checks.assert_curved(inputs.fn, inputs.x, wrt is not None)
    # The model and target as functions of the entry `wrt` of `inputs_`.
    bind = lambda f, inputs_: (
        f if f is None or wrt is None else
        derivatives.with_respect_to(f, inputs_, wrt)[0])
    if opts.mode == "stochastic":
      tiled = (x if wrt is None else
               terms.tile_structure(x, opts.num_projections))
      return self._stochastic(inputs, bind(model, tiled),
                              bind(target_fn, tiled))
    jacobian = lambda f, target=False: (
        "tape" if opts.order != 1 else loss_checks.jacobian_pass(
            opts.jacobian_mode, f, inputs.x, target=target))
    preds = terms.exact_derivatives(inputs.fn, inputs.x, opts.order,
                                    jacobian(inputs.fn))
    tgts = inputs.targets
    if target_fn is not None:
      target = bind(target_fn, x)
      tgts = [tf.stop_gradient(t) for t in terms.exact_derivatives(
          target, inputs.x, opts.order, jacobian(target, target=True))]
    loss_checks.check_output_dims(preds[0], tgts[0],
                                  from_fn=target_fn is not None)
    return preds, tgts

  def _stochastic(self, inputs: loss_checks.Inputs, fn: Model,
                  target: Optional[Model]):
    """Model and target projections on shared random directions."""
    opts, x = self._options, inputs.x
    p = opts.num_projections
    v1, v2 = inputs.vectors
    if v1 is None:
      v1, v2 = terms.random_directions(
          self._rng, x, p * derivatives.batch_size(x), opts.order)
    preds, v1 = terms.projected_derivatives(fn, x, opts.order, p, v1, v2)
    if target is None:
      loss_checks.check_output_dims(preds[0], inputs.targets[0])
      return preds, (inputs.targets if inputs.projected else
                     terms.project_targets(inputs.targets, v1, v2, p))
    tgts = [tf.stop_gradient(t) for t in terms.projected_derivatives(
        target, x, opts.order, p, v1, v2)[0]]
    loss_checks.check_output_dims(preds[0], tgts[0], from_fn=True)
    return preds, tgts

  def _combine(self, preds, tgts, inputs: loss_checks.Inputs) -> LossOutput:
    """Per-order losses, their weighted means and per-example totals."""
    opts, x = self._options, inputs.x
    weights = terms.example_weights(inputs.sample_weights, inputs.masks,
                                    x.dtype)
    values = []
    for j in range(opts.order + 1):
      value = terms.order_losses(opts.loss_fns[j], opts.per_example_fns[j],
                                 preds[j], tgts[j])
      loss_checks.check_loss_value(value, preds[j], j,
                                   weighted=weights[j] is not None)
      if j >= 1:
        value = terms.mean_over_projections(value, opts.num_projections,
                                            derivatives.batch_size(x))
      if opts.scale[j]:
        value *= terms.projection_scale(j, preds[0], x)
      values.append(value)
    # `combine` returns the first five fields, in order.
    return LossOutput(*terms.combine(values, opts.weights, weights,
                                     inputs.masks, preds[0].dtype),
                      values=preds[0])
