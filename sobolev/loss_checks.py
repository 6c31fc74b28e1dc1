"""Every argument and input check of `SobolevLoss`, in one place.

`check_options` checks the constructor's arguments once, `check_call` the
inputs of one call before any derivative is taken; the checks that need the
model's outputs, the choice of forward-mode Jacobians and the zero-Hessian
probe are here too. The loss itself is `sobolev.terms`. Checks of tensor
values (finite, non-negative weights) raise a `ValueError` eagerly and are
`tf.debugging` assertions inside `tf.function` (which XLA ignores).
"""

from typing import Any, List, NamedTuple, Optional, Tuple
import warnings

import numpy as np
import tensorflow as tf

from sobolev import derivatives
from sobolev import forward_mode
from sobolev import fused_mlp
from sobolev import losses
from sobolev import sampling
from sobolev import terms

MAX_ORDER = 2
MODES = ("exact", "stochastic")
JACOBIAN_MODES = ("auto", "reverse", "forward", "fused")


class Options(NamedTuple):
  """The checked constructor arguments of a `SobolevLoss`."""
  order: int
  mode: str
  loss_fns: List[losses.LossFn]
  per_example_fns: List[Optional[losses.LossFn]]  # Built-ins' `[N]` twins.
  weights: List[float]
  num_projections: int
  scale: List[bool]  # Per order: multiply by O (order 1) or O * D (order 2).
  seed: Optional[int]
  check_curvature: bool
  validate_targets: bool
  jacobian_mode: str


class Inputs(NamedTuple):
  """The checked inputs of one `SobolevLoss` call."""
  fn: Any  # The model as a function of `x` alone (see `wrt`).
  x: tf.Tensor  # `[B, ...]`, finite, B >= 1.
  targets: Optional[List[tf.Tensor]]  # Masked entries zeroed.
  sample_weights: List[Optional[tf.Tensor]]  # Per order, `[B]` or None.
  masks: List[Optional[tf.Tensor]]  # Per order, bool `[B]` or None.
  vectors: Tuple[Optional[tf.Tensor], Optional[tf.Tensor]]  # (v1, v2).
  projected: bool  # Derivative targets are projections `[P*B, ...]`.


def _per_order(arg, order: int, name: str) -> list:
  """Broadcasts a scalar/str/callable to one entry per order; checks lengths."""
  if isinstance(arg, (list, tuple)):
    if len(arg) != order + 1:
      raise ValueError(
          f"`{name}` must have one entry per order 0..{order} "
          f"({order + 1} entries), got {len(arg)}.")
    return list(arg)
  return [arg] * (order + 1)


def check_bool(value, name: str) -> bool:
  """`value` as a bool; a `TypeError` for anything but a (NumPy) bool."""
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"`{name}` must be a bool, got {value!r}.")
  return bool(value)


def _is_int(value) -> bool:
  return (not isinstance(value, bool) and
          isinstance(value, (int, np.integer)))


def _check_order_and_mode(order, mode) -> None:
  if not _is_int(order):
    raise TypeError(f"`order` must be an int, got {type(order).__name__}.")
  if not 0 <= order <= MAX_ORDER:
    raise ValueError(
        f"`order` must be between 0 and {MAX_ORDER}, got {order}.")
  if mode not in MODES:
    raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
  if mode == "stochastic" and order == 0:
    raise ValueError("mode='stochastic' projects derivatives of order >= 1 "
                     "and order=0 has none: use mode='exact' (the default) "
                     "for order 0.")


def _check_applies(order, mode, num_projections, unbiased_scaling, seed,
                   check_curvature, jacobian_mode) -> None:
  """Raises for an argument given for a mode or order it does not apply to."""
  if mode != "stochastic":
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
    if mode == "stochastic" or order != 1:
      raise ValueError(
          "`jacobian_mode` applies to mode='exact' with order=1 only (it "
          "chooses how full Jacobians are computed), but order="
          f"{order}, mode={mode!r}; remove it.")
  if check_curvature is not None:
    if order < 2:
      raise ValueError("`check_curvature` applies to order=2 only, but "
                       f"order={order}; remove it.")
    check_bool(check_curvature, "check_curvature")


def _scaling(unbiased_scaling, loss_fns, stochastic) -> List[bool]:
  """Whether each order's stochastic term is scaled (see `sobolev.terms`)."""
  order = len(loss_fns) - 1
  if not stochastic:
    return [False] * (order + 1)
  is_l2 = [losses.is_l2(fn) for fn in loss_fns]
  if unbiased_scaling is None:
    return [j >= 1 and is_l2[j] for j in range(order + 1)]
  unbiased_scaling = check_bool(unbiased_scaling, "unbiased_scaling")
  if unbiased_scaling:
    for j in range(1, order + 1):
      if not is_l2[j]:
        raise ValueError(
            f"unbiased_scaling=True is defined for the 'l2' loss only (it "
            f"makes E||projection error||^2 equal the exact squared "
            f"error), but loss_fns[{j}] is {loss_fns[j]!r}; pass "
            "unbiased_scaling=False (raw projection losses) or leave it "
            "None (scale only the 'l2' orders).")
  return [j >= 1 and unbiased_scaling for j in range(order + 1)]


def _check_weights(weights, order) -> List[float]:
  weights = _per_order(weights, order, "weights")
  for j, w in enumerate(weights):
    if isinstance(w, bool) or not isinstance(
        w, (int, float, np.floating, np.integer)):
      raise TypeError(f"`weights[{j}]` must be a number, got {type(w)}.")
    if not np.isfinite(w) or w < 0:
      raise ValueError(f"`weights[{j}]` must be finite and >= 0, got {w}.")
  return [float(w) for w in weights]


def check_options(order, loss_fns, weights, mode, num_projections,
                  unbiased_scaling, seed, check_curvature, validate_targets,
                  jacobian_mode) -> Options:
  """Checks `SobolevLoss`'s constructor arguments (see there).

  Returns:
    The `Options`, with defaults filled in.

  Raises:
    ValueError, TypeError: as documented on `SobolevLoss.__init__`.
  """
  _check_order_and_mode(order, mode)
  _check_applies(order, mode, num_projections, unbiased_scaling, seed,
                 check_curvature, jacobian_mode)
  num_projections = 1 if num_projections is None else num_projections
  if not _is_int(num_projections) or num_projections < 1:
    raise ValueError(
        f"`num_projections` must be an int >= 1, got {num_projections!r}.")
  seed = sampling.check_seed(seed)
  loss_fns = [losses.get(fn, name=f"loss_fns[{j}]")
              for j, fn in enumerate(_per_order(loss_fns, order, "loss_fns"))]
  scale = _scaling(unbiased_scaling, loss_fns, mode == "stochastic")
  weights = _check_weights(weights, order)
  return Options(
      order=int(order), mode=mode, loss_fns=loss_fns,
      per_example_fns=[losses.per_example(fn) for fn in loss_fns],
      weights=weights, num_projections=int(num_projections), scale=scale,
      seed=seed, check_curvature=order >= 2 and check_curvature is not False,
      validate_targets=check_bool(validate_targets, "validate_targets"),
      jacobian_mode=jacobian_mode or "auto")


def _check_sources(opts: Options, model, targets, target_fn, vectors,
                   projected_targets) -> bool:
  """Checks which of the call's arguments go together; returns `projected`."""
  if not callable(model):
    raise TypeError(f"`model` must be callable, got {type(model)}.")
  if (targets is None) == (target_fn is None):
    raise ValueError("Give exactly one of `targets` (tensors) and "
                     "`target_fn` (a differentiable callable).")
  if target_fn is not None and not callable(target_fn):
    raise TypeError(f"`target_fn` must be callable, got {type(target_fn)}.")
  stochastic = opts.mode == "stochastic"
  if vectors is not None and not stochastic:
    raise ValueError("`vectors` applies to mode='stochastic' only.")
  projected = check_bool(projected_targets, "projected_targets")
  if projected:
    if not stochastic:
      raise ValueError("`projected_targets` applies to mode='stochastic' "
                       "only.")
    if targets is None or vectors is None:
      raise ValueError(
          "projected_targets=True needs `targets` (values and projected "
          "derivatives) and the `vectors` they were projected along.")
  return projected


def check_call(opts: Options, model, x, targets, target_fn, vectors,
               sample_weights, masks, projected_targets, wrt) -> Inputs:
  """Checks the arguments of `SobolevLoss.__call__` (see there).

  Returns:
    The checked `Inputs`.

  Raises:
    ValueError, TypeError: as documented on `SobolevLoss.__call__`.
  """
  projected = _check_sources(opts, model, targets, target_fn, vectors,
                             projected_targets)
  fn, x = derivatives.with_respect_to(model, x, wrt)
  x = derivatives.check_inputs(x)
  derivatives.check_model_dtype(model, x)
  x = _check_x(x)
  batch = derivatives.batch_size(x)
  weights = _check_sample_weights(opts, sample_weights, x, batch)
  mask_list = _check_masks(opts.order, masks, batch)
  if targets is not None:
    targets = _check_targets(opts, targets, fn, x, mask_list, projected)
  if vectors is not None:
    vectors = _check_vectors(opts, vectors, x, opts.num_projections * batch)
  return Inputs(fn=fn, x=x, targets=targets, sample_weights=weights,
                masks=mask_list, vectors=vectors or (None, None),
                projected=projected)


def _check_x(x: tf.Tensor) -> tf.Tensor:
  """Finite values and B >= 1 (a static B = 0 is `check_inputs`' error)."""
  checks = []
  if not tf.executing_eagerly() and x.shape[0] is None:
    checks.append(tf.debugging.assert_positive(
        tf.shape(x)[0], message="`x` has batch size 0; Sobolev losses need "
        "at least one example."))
  with tf.control_dependencies(checks):
    return _check_finite(x, "x")


def _check_finite(t, name, non_negative=False, validate=True):
  """Finite (and optionally >= 0) values, eagerly or as assertions."""
  if not validate:  # Targets and weights with `validate_targets=False`.
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


def _check_sample_weights(opts: Options, sample_weights, x,
                          batch) -> List[Optional[tf.Tensor]]:
  """Per-order sample weights `[B]` (or None), checked."""
  count = opts.order + 1
  per_order = isinstance(sample_weights, (list, tuple)) and any(
      w is None or tf.is_tensor(w) or
      isinstance(w, (np.ndarray, list, tuple)) for w in sample_weights)
  if per_order and len(sample_weights) != count:
    raise ValueError(
        f"`sample_weights` given per order must have {count} entries "
        f"(orders 0..{opts.order}), got {len(sample_weights)}; or give "
        "one [B] tensor for every order.")
  weight_list = list(sample_weights) if per_order else [sample_weights] * count
  checked = {}
  for j, w in enumerate(weight_list):
    if w is None:
      continue
    if id(w) not in checked:
      name = f"sample_weights[{j}]" if per_order else "sample_weights"
      t = _batch_vector(derivatives.as_dtype(w, x.dtype, name), batch, name)
      checked[id(w)] = _check_finite(t, name, True, opts.validate_targets)
    weight_list[j] = checked[id(w)]
  return weight_list


def _check_masks(order: int, masks, batch) -> List[Optional[tf.Tensor]]:
  """Per-order bool masks `[B]` (or None), checked."""
  count = order + 1
  if masks is None:
    return [None] * count
  if not isinstance(masks, (list, tuple)):
    raise TypeError(
        f"`masks` must be a sequence of {count} entries (orders "
        f"0..{order}), each None or a bool [B] tensor, got "
        f"{type(masks).__name__}.")
  if len(masks) != count:
    raise ValueError(f"`masks` must have {count} entries (orders "
                     f"0..{order}), got {len(masks)}.")
  mask_list = list(masks)
  for j, m in enumerate(masks):
    if m is not None:
      name = f"masks[{j}]"
      t = tf.convert_to_tensor(m)
      if t.dtype != tf.bool:
        raise TypeError(f"`{name}` must be a bool tensor [B], got dtype "
                        f"{t.dtype.name}.")
      mask_list[j] = _batch_vector(t, batch, name)
  return mask_list


def _batch_vector(t: tf.Tensor, batch, name: str) -> tf.Tensor:
  """`t` checked to be `[B]`."""
  if t.shape.rank != 1:
    raise ValueError(f"`{name}` must have shape [B], got {t.shape}.")
  return derivatives.assert_batch(t, batch, name)


def _check_targets(opts: Options, targets, fn, x, mask_list,
                   projected) -> List[tf.Tensor]:
  """The targets checked, as `[B, O]`, `[B, O, ...]`, ... (or `[P*B, ...]`).

  Masked-out targets become 0 (they may hold anything, e.g. NaN); the model
  `fn` only runs to word a width error.
  """
  if tf.is_tensor(targets) or isinstance(targets, np.ndarray):
    targets = (targets,)
  if not isinstance(targets, (list, tuple)):
    raise TypeError("`targets` must be a sequence (values, jacobians, ...), "
                    f"got {type(targets)}.")
  if len(targets) != opts.order + 1:
    raise ValueError(
        f"`targets` must hold {opts.order + 1} tensors for order "
        f"{opts.order} (values and derivatives up to order "
        f"{opts.order}), got {len(targets)}.")
  batch = derivatives.batch_size(x)
  p = opts.num_projections
  out = []
  for j, t in enumerate(targets):
    name = f"targets[{j}]"
    t = derivatives.as_dtype(t, x.dtype, name)
    if j == 0 and t.shape.rank == 1:
      t = t[:, None]
    if j == 0 and t.shape.rank != 2:
      raise ValueError(f"`{name}` must have rank 2 ([B, O]), got shape "
                       f"{t.shape}.")
    if j >= 1 and projected:
      t = _check_like_x(t, f"`{name}`", x)
      t = derivatives.assert_batch(
          t, p * batch, name, what=f"num_projections * batch (P = {p})")
    else:
      if j >= 1:
        t = _check_full_target(t, j, name, fn, x, out[0])
      t = derivatives.assert_batch(t, batch, name)
    mask = mask_list[j]
    if mask is not None:
      if j >= 1 and projected:
        mask = terms.tile(mask, p)
      shape = tf.concat([tf.shape(mask), tf.ones([t.shape.rank - 1],
                                                 tf.int32)], 0)
      t = tf.where(tf.reshape(mask, shape), t, tf.zeros_like(t))
    out.append(_check_finite(t, name, validate=opts.validate_targets))
  return out


def _check_like_x(t, name: str, x) -> tf.Tensor:
  """`t` (projected targets, v2) checked to be `[P*B] + x.shape[1:]`;
  `name` is quoted for the message."""
  example = list(x.shape[1:])
  described = f"[P*B] + {example} (shaped like x)"
  if t.shape.rank != len(example) + 1:
    raise ValueError(f"{name} must have rank {len(example) + 1} "
                     f"({described}), got shape {t.shape}.")
  if not t.shape[1:].is_compatible_with(example):
    raise ValueError(f"{name} must have shape {described}, got shape "
                     f"{t.shape}.")
  return t


def _check_full_target(t, j, name, fn, x, values) -> tf.Tensor:
  """An order-j target `[B, O] + x.shape[1:] * j` (O = 1 may be left out)."""
  example = list(x.shape[1:])
  want = 2 + len(example) * j
  described = [f"[B, O] + {example}", f"[B, O] + {example} + {example}"][j - 1]
  out_dim = values.shape[1]
  if t.shape.rank == want - 1 and out_dim == 1:
    t = t[:, None]  # Scalar-output shorthand: [B, ...] -> [B, 1, ...].
  if t.shape.rank != want:
    if (t.shape.rank == want - 1 and out_dim is not None and
        _output_width(fn, x) == 1):
      # `t` is the scalar-output shorthand of a model with O = 1; the
      # values are the wrong width.
      raise _width_error(values, 1)
    raise ValueError(f"`{name}` must have rank {want} ({described}), got "
                     f"shape {t.shape}.")
  if out_dim is not None and t.shape[1] not in (None, out_dim):
    if _output_width(fn, x) == t.shape[1]:
      raise _width_error(values, t.shape[1])
    raise ValueError(f"`{name}` has output dimension {t.shape[1]} but "
                     f"`targets[0]` has {out_dim}.")
  for axis in range(2, t.shape.rank):
    expected = example[(axis - 2) % len(example)]
    if expected is not None and t.shape[axis] not in (None, expected):
      raise ValueError(
          f"`{name}` has input dimension {t.shape[axis]} on axis "
          f"{axis} but `x` has {expected} there (x shape {x.shape}).")
  return t


def _check_vectors(opts: Options, vectors, x, rows):
  """Validates user `vectors`; returns `(v1, v2 or None)`."""
  what = f"num_projections * batch (P = {opts.num_projections})"
  if not isinstance(vectors, (list, tuple)) or len(vectors) != 2:
    raise ValueError("`vectors` must be a pair (v1 [P*B, O], v2 [P*B, ...] "
                     "or None).")
  v1, v2 = vectors
  if v1 is None:
    raise ValueError("`vectors` must give v1 [P*B, O].")
  name = "vectors[0] (v1)"
  v1 = derivatives.as_dtype(v1, x.dtype, name)
  if v1.shape.rank != 2:
    raise ValueError(f"`vectors[0]` (v1) must have shape [P*B, O] "
                     f"(P = num_projections = {opts.num_projections}), "
                     f"got shape {v1.shape}.")
  v1 = derivatives.assert_batch(v1, rows, name, what=what)
  if opts.order < 2:
    if v2 is not None:
      raise ValueError("`vectors[1]` (v2) is for order 2; give None for "
                       "order 1.")
    return v1, None
  if v2 is None:
    raise ValueError("`vectors` must give v2 for order 2.")
  name = "vectors[1] (v2)"
  v2 = _check_like_x(derivatives.as_dtype(v2, x.dtype, name),
                     "`vectors[1]` (v2)", x)
  return v1, derivatives.assert_batch(v2, rows, name, what=what)


def check_loss_value(value: tf.Tensor, pred: tf.Tensor, j: int,
                     weighted: bool) -> None:
  """Raises unless `loss_fns[j]` returned `[N]` for `pred` `[N, ...]`, or a
  scalar for an order without sample weights or mask (not `weighted`)."""
  if value.shape.rank not in (0, 1):
    raise ValueError(
        f"`loss_fns[{j}]` must return a scalar or per-example losses "
        f"[N] for predictions of shape {pred.shape}, got shape "
        f"{value.shape}.")
  if (value.shape.rank == 1 and value.shape[0] is not None and
      pred.shape[0] is not None and value.shape[0] != pred.shape[0]):
    raise ValueError(
        f"`loss_fns[{j}]` returned {value.shape[0]} per-example losses "
        f"for {pred.shape[0]} predictions.")
  if value.shape.rank == 0 and weighted:
    raise ValueError(
        f"`loss_fns[{j}]` returns a scalar, so `sample_weights` and "
        f"`masks` cannot apply to order {j}: make it return "
        "per-example losses [N].")


def use_forward_mode(jacobian_mode: str, fn, x: tf.Tensor) -> bool:
  """Whether order-1 Jacobians of `fn` are computed in forward mode.

  Raises:
    ValueError: for `jacobian_mode='forward'` with a model or input that
      forward mode cannot take.
  """
  if jacobian_mode == "reverse":
    return False
  static_d = x.shape.rank == 2 and x.shape[1] is not None
  if jacobian_mode == "forward":
    _check_mlp_mode("forward", fn, x,
                    forward_mode.supports(fn, allow_subclasses=True),
                    "an snt.nets.MLP without dropout and with a supported "
                    "activation")
    return True
  # 'auto', or 'fused' (for a target_fn; the model is fused) as 'auto'.
  if not forward_mode.supports(fn) or not static_d:
    return False
  return x.shape[1] < forward_mode.output_size(fn)


def jacobian_pass(jacobian_mode: str, fn, x: tf.Tensor, *,
                  target: bool = False) -> str:
  """How the order-1 pass of `fn` is computed: 'fused' (the model only;
  `use_fused`), 'forward' (`use_forward_mode`) or 'tape'.

  Raises:
    ValueError: as `use_fused` and `use_forward_mode`.
  """
  if not target and use_fused(jacobian_mode, fn, x):
    return "fused"
  return "forward" if use_forward_mode(jacobian_mode, fn, x) else "tape"


def use_fused(jacobian_mode: str, fn, x: tf.Tensor) -> bool:
  """Whether the model's order-1 pass is `sobolev.fused_mlp`'s.

  Raises:
    ValueError: for `jacobian_mode='fused'` with a model or input that the
      fused pass cannot take.
  """
  if jacobian_mode != "fused":
    return False
  _check_mlp_mode("fused", fn, x, fused_mlp.supports(fn, allow_subclasses=True),
                  "an snt.nets.MLP with activation relu or leaky_relu, no "
                  "dropout, activate_final=False and one output")
  return True


def _check_mlp_mode(mode: str, fn, x: tf.Tensor, supported: bool,
                    needs: str) -> None:
  """Raises `ValueError` if `jacobian_mode=mode` cannot take the MLP `fn`
  (`supported`: the mode's own test; `needs`: what it needs, for the
  message) or inputs `x` that are not `[B, D]` with a static D."""
  if forward_mode.overrides_call(fn):
    raise ValueError(
        f"jacobian_mode='{mode}': this subclass of snt.nets.MLP "
        f"({type(fn).__name__}) overrides __call__, so its layers alone "
        "are not the model; use jacobian_mode='reverse' or 'auto'.")
  if not supported:
    raise ValueError(f"jacobian_mode='{mode}' needs {needs}; use 'auto' or "
                     "'reverse'.")
  if x.shape.rank != 2 or x.shape[1] is None:
    raise ValueError(f"jacobian_mode='{mode}' needs inputs [B, D] with a "
                     f"static D, got shape {x.shape}.")


def _output_width(fn, x: tf.Tensor) -> Optional[int]:
  """The model's static output width O or None (runs the model once)."""
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


def check_output_dims(y: tf.Tensor, target: tf.Tensor,
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


def assert_curved(model, x: tf.Tensor, structured: bool) -> None:
  """Raises a `ValueError` if the Hessian of `model` is zero (e.g. ReLU nets).

  Checked at `x` `[B, ...]` eagerly, at a random probe of its shape inside
  `tf.function` (not for an entry of dict/tuple inputs, `structured`).
  """
  eager = tf.executing_eagerly()
  if structured and not eager:
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


@tf.function(autograph=False)
def _max_abs_hvp(model, x: tf.Tensor) -> tf.Tensor:
  """max |D_x<D_x<m, v1>, v2>| at `x` for fixed random v1, v2, as
  `derivatives.value_and_hvp` but with `tf.gradients` (tapes do not record
  inside `tf.init_scope`)."""
  y = derivatives.as_2d_output(model(x), x)
  v1 = tf.random.stateless_normal(tf.shape(y), [1, 2], dtype=y.dtype)
  v2 = tf.random.stateless_normal(tf.shape(x), [2, 3], dtype=x.dtype)
  p1 = tf.gradients(y, x, grad_ys=v1)[0]
  if p1 is None:
    raise derivatives.not_connected_error("the vector-Jacobian product")
  p2 = tf.gradients(tf.reduce_sum(p1 * v2), x,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO)[0]
  return tf.reduce_max(tf.abs(p2))
