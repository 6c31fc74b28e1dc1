"""Per-example input derivatives of a model, computed with `tf.GradientTape`.

Every function takes a callable `model` mapping inputs `x: [B, ...]` (`[B, D]`
vectors, `[B, H, W, C]` images, ...) to outputs `[B, O]` (or `[B]`, read as
`[B, 1]`) and returns the values with the derivatives (one forward pass).
`...` is the shape of one example, `x.shape[1:]`, and `D` its number of
elements. Example `b`'s output must depend on example `b`'s input only (no
batch-coupling layers such as batch normalisation in training mode).

Conventions (the paper's Figure 1b):
  * Jacobian `J[b, o, i] = d m(x_b)_o / d x_b[i]`, shape `[B, O, ...]`.
  * Hessian `H[b, o, i, j] = d^2 m(x_b)_o / d x_b[i] d x_b[j]`,
    shape `[B, O, ..., ...]`.
  * Order-1 projection `D_x<m, v1> = J^T v1` with `v1 [B, O]` in output
    space, shaped like `x` (a vector-Jacobian product; one backward pass).
  * Order-2 projection `D_x<D_x<m, v1>, v2> = (sum_o v1_o H_o) v2` with `v2`
    shaped like `x`, shaped like `x` (a Hessian-vector product; two passes).
  (`project_jacobian`, `project_hessian`: the same from full derivatives.)

Dict or tuple inputs (a model of several inputs): `wrt=` names the entry to
differentiate with respect to; the others are passed through unchanged.
Dtypes: `x` is floating and the model returns its dtype; tensors given as
vectors or targets must have it too (NumPy/Python floats are converted), or
a `TypeError` names both. Everything works eagerly, in `tf.function` and
with `jit_compile=True`.
"""

from typing import Any, Callable, Mapping, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

Model = Callable[[Any], tf.Tensor]
# v1 as a tensor `[O]` or `[B, O]`, or a callable `out_dim -> [B, O]` called
# once the model's output dimension is known (after the forward pass).
Vector = Union[tf.Tensor, np.ndarray, Callable[[Any], tf.Tensor]]


def _is_structure(x) -> bool:
  """A dict, or a list/tuple of tensors/arrays/dicts (not a list of numbers)."""
  if isinstance(x, Mapping):
    return True
  if isinstance(x, (list, tuple)):
    return any(isinstance(e, (tf.Tensor, tf.Variable, np.ndarray, Mapping))
               or _is_structure(e) for e in x)
  return False


def _structure_error(x, name: str) -> TypeError:
  if isinstance(x, Mapping):
    keys = sorted(map(str, x))
    example = f"wrt={keys[0]!r}" if keys else "wrt='<key>'"
    return TypeError(
        f"`{name}` is a dict with keys {keys}: pass `wrt=` the key of the "
        f"entry to differentiate with respect to (e.g. {example}); the other "
        "entries are passed to the model unchanged.")
  return TypeError(
      f"`{name}` is a {type(x).__name__} of {len(x)} entries: pass `wrt=` "
      "the index of the entry to differentiate with respect to (e.g. "
      "wrt=0); the other entries are passed to the model unchanged.")


def check_inputs(x: tf.Tensor, name: str = "x") -> tf.Tensor:
  """`x` as a floating tensor `[B, ...]` (rank >= 2); `name` is for errors.

  Raises:
    TypeError: if `x` is not floating point, or is a dict or tuple of inputs
      (then the message says to pass `wrt=`).
    ValueError: if `x` has rank < 2 or a batch size of 0 (known statically).
  """
  if _is_structure(x):
    raise _structure_error(x, name)
  x = tf.convert_to_tensor(x)
  if not x.dtype.is_floating:
    raise TypeError(
        f"`{name}` must be a floating point tensor (derivatives with respect "
        f"to it are taken), got dtype {x.dtype.name}.")
  if x.shape.rank is not None and x.shape.rank < 2:
    raise ValueError(
        f"`{name}` must have shape [batch, ...] with at least one axis per "
        f"example (e.g. [batch, input_dim]), got shape {x.shape}; reshape "
        "scalar inputs to [batch, 1].")
  if x.shape.rank is not None and x.shape[0] == 0:
    raise ValueError(f"`{name}` has batch size 0; Sobolev losses need at "
                     "least one example.")
  return x


WrtPath = Union[str, int, Tuple[Union[str, int], ...]]


def with_respect_to(model: Model, inputs: Any,
                    wrt: Optional[WrtPath] = None,
                    name: str = "x") -> Tuple[Model, Any]:
  """Binds a model of several inputs to the entry `wrt` of `inputs`.

  Args:
    model: callable taking `inputs`.
    inputs: a tensor `[B, ...]`, or a (nested) dict or tuple of them.
    wrt: a dict key, a tuple index (or namedtuple field name), a tuple path
      of them for nested inputs (e.g. `('obs', 'image')`), or None for a
      plain tensor.
    name: the argument's name, used in error messages.

  Returns:
    `(fn, x)`: the selected entry `x` and `fn(z)`, `model` on `inputs` with
    that entry replaced by `z` (`model` itself when `wrt` is None).

  Raises:
    TypeError: if `inputs` is a dict or tuple and `wrt` is None, `wrt` is
      given for a plain tensor, or `wrt` selects a dict or tuple.
    ValueError: if `wrt` names no entry of `inputs`.
  """
  if wrt is None:
    if _is_structure(inputs):
      raise _structure_error(inputs, name)
    return model, inputs
  path = tuple(wrt) if isinstance(wrt, (tuple, list)) else (wrt,)
  if not path:
    raise ValueError("`wrt` must name an entry, got an empty path.")
  node, where = inputs, name
  resolved = []
  for key in path:
    if isinstance(node, Mapping):
      if key not in node:
        raise ValueError(f"`wrt`={wrt!r}: {key!r} is not a key of `{where}` "
                         f"(keys: {sorted(map(str, node))}).")
    elif isinstance(node, (list, tuple)):
      fields = getattr(type(node), "_fields", ())
      if isinstance(key, str) and key in fields:  # A namedtuple field.
        key = fields.index(key)
      if (isinstance(key, bool) or not isinstance(key, (int, np.integer)) or
          not -len(node) <= key < len(node)):
        raise ValueError(f"`wrt`={wrt!r}: `{where}` is a "
                         f"{type(node).__name__} of {len(node)} entries, so "
                         f"{key!r} must be an index into it.")
    else:
      raise TypeError(f"`wrt`={wrt!r} is only for inputs given as a dict or "
                      f"tuple; `{where}` is a {type(node).__name__}.")
    node, where = node[key], f"{where}[{key!r}]"
    resolved.append(key)
  path = tuple(resolved)
  if _is_structure(node):
    raise TypeError(f"`wrt`={wrt!r} selects `{where}`, itself a "
                    f"{type(node).__name__}: give the path to one tensor, "
                    f"e.g. wrt={path + (_first_key(node),)!r}.")

  def fn(z):
    return model(_replace(inputs, path, z))

  return fn, node


def _first_key(node):
  """An example key of a dict, namedtuple or tuple, for error messages."""
  if isinstance(node, Mapping):
    return sorted(node)[0] if node else "<key>"
  fields = getattr(type(node), "_fields", ())
  return fields[0] if fields else 0


def _replace(node, path, z):
  """`node` with the entry at `path` replaced by `z` (containers copied)."""
  if not path:
    return z
  key, rest = path[0], path[1:]
  if isinstance(node, Mapping):
    replaced = {**node, key: _replace(node[key], rest, z)}
    is_dict = type(node) is dict  # pylint: disable=unidiomatic-typecheck
    return replaced if is_dict else type(node)(replaced)
  items = list(node)
  items[key] = _replace(node[key], rest, z)
  if hasattr(type(node), "_fields"):  # A namedtuple.
    return type(node)(*items)
  return type(node)(items)


def as_dtype(value: Any, dtype: tf.DType, name: str) -> tf.Tensor:
  """`value` (tensor, array or list) as a tensor of the model's `dtype`.

  Floating arrays are converted; tensors must have `dtype` already.

  Raises:
    TypeError: on a dtype mismatch (naming `name` and both dtypes).
  """
  if tf.is_tensor(value) or isinstance(value, tf.Variable):
    if value.dtype != dtype:
      raise TypeError(
          f"`{name}` has dtype {value.dtype.name} but the model computes in "
          f"{dtype.name} (the dtype of `x`); cast it with "
          f"tf.cast({name}, tf.{dtype.name}).")
    return tf.convert_to_tensor(value)
  array = np.asarray(value)
  if array.dtype.kind != "f":
    raise TypeError(
        f"`{name}` has dtype {array.dtype.name} but the model computes in "
        f"{dtype.name} (the dtype of `x`); give floating values.")
  check_overflow(array, dtype, name)
  return tf.convert_to_tensor(array, dtype=dtype)


def check_overflow(array: np.ndarray, dtype: tf.DType, name: str,
                   wider: str = "`x` and the model in float64") -> None:
  """Raises if finite values of `array` become Inf when cast to `dtype`.

  Args:
    array: floating values (only scanned when wider than `dtype`).
    dtype: the floating dtype they are cast to.
    name: the argument's name, used in the message.
    wider: how to compute in a wider dtype, for the message.

  Raises:
    ValueError: naming `name`, its largest magnitude and `dtype.max` (NaN
      and Inf already in `array` are left to the finiteness checks).
  """
  if array.size == 0 or array.dtype.itemsize <= dtype.size:
    return
  with np.errstate(over="ignore", invalid="ignore"):
    cast = array.astype(dtype.as_numpy_dtype)
  overflow = np.isinf(cast) & np.isfinite(array)
  if np.any(overflow):
    largest = float(np.max(np.abs(array[overflow])))
    raise ValueError(
        f"`{name}` overflows {dtype.name}: it holds magnitudes up to "
        f"{largest:.3g}, above {dtype.name}'s largest finite value "
        f"{float(dtype.max):.3g}, so they would become Inf. Scale `{name}` "
        f"down or compute in a wider dtype ({wider}).")


def model_dtype(model: Any) -> Optional[tf.DType]:
  """The floating dtype a model computes in, when it can be told cheaply.

  Args:
    model: a `tf.Module` (e.g. an `snt.Module`), a Keras layer, or any callable.

  Returns:
    A Keras functional model's one output dtype; a Keras layer's (without
    sublayers) compute dtype; the one dtype of a `tf.Module`'s floating
    variables; else None.
  """
  try:
    if hasattr(model, "compute_dtype") and hasattr(model, "dtype_policy"):
      outputs = getattr(model, "outputs", None)  # Keras functional models.
      if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        dtype = tf.as_dtype(outputs[0].dtype)
      elif not getattr(model, "_layers", None):
        dtype = tf.as_dtype(model.compute_dtype)
      else:
        return None
      return dtype if dtype.is_floating else None
    if isinstance(model, tf.Module):
      dtypes = {v.dtype for v in model.variables if v.dtype.is_floating}
      return dtypes.pop() if len(dtypes) == 1 else None
  except (ValueError, AttributeError, TypeError):
    return None  # E.g. a Sonnet module whose variables are not created yet.
  return None


def check_model_dtype(model: Any, x: tf.Tensor) -> None:
  """Raises a `TypeError` naming both if `x`'s dtype is not `model_dtype`'s.

  Checked before the targets, so the message names `x` and the weights.
  """
  dtype = model_dtype(model)
  if dtype is not None and dtype != x.dtype:
    raise TypeError(
        f"`x` has dtype {x.dtype.name} but the model's weights compute in "
        f"{dtype.name}: give `x` (and the targets) as {dtype.name}, e.g. "
        f"tf.cast(x, tf.{dtype.name}), or build the model in "
        f"{x.dtype.name}.")


def batch_size(x: tf.Tensor):
  """The batch size: a Python int when known statically, else a tensor."""
  return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def example_size(x: tf.Tensor):
  """Elements per example `D = prod(x.shape[1:])`: an int when known."""
  if x.shape[1:].is_fully_defined():
    return int(np.prod(x.shape[1:]))
  return tf.reduce_prod(tf.shape(x)[1:])


def example_shape(x: tf.Tensor) -> list:
  """`x.shape[1:]` as a list of ints (static) or scalar tensors."""
  return [tf.shape(x)[i] if dim is None else dim
          for i, dim in enumerate(x.shape[1:], start=1)]


def assert_batch(t: tf.Tensor, batch, name: str,
                 what: str = "`x`") -> tf.Tensor:
  """Checks that `t` `[N, ...]` has N = `batch` (an int or scalar tensor).

  Returns:
    `t`, with a run-time assertion when the sizes are not both static (so a
    batch-1 tensor cannot broadcast against a larger batch).

  Raises:
    ValueError: naming `name` and `what`, if the static sizes differ.
  """
  static = t.shape[0] if t.shape.rank else None
  if isinstance(batch, (int, np.integer)) and static is not None:
    if static != batch:
      raise ValueError(f"`{name}` has batch size {static} but {what} has "
                       f"{batch}.")
    return t
  if tf.executing_eagerly():
    if int(tf.shape(t)[0]) != int(batch):
      raise ValueError(f"`{name}` has batch size {int(tf.shape(t)[0])} but "
                       f"{what} has {int(batch)}.")
    return t
  with tf.control_dependencies([tf.debugging.assert_equal(
      tf.shape(t)[0], tf.cast(batch, tf.int32),
      message=f"`{name}` and {what} must have the same batch size.")]):
    return tf.identity(t)


def as_2d_output(y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
  """The model's output `y` (`[B, O]` or `[B]`) as `[B, O]`, checked with `x`.

  Raises:
    ValueError: for an output of another rank or batch size.
    TypeError: for an output that is not floating point or whose dtype
      differs from `x`'s (the message names both dtypes).
  """
  y = tf.convert_to_tensor(y)
  if y.shape.rank == 1:
    y = y[:, None]
  if y.shape.rank != 2:
    raise ValueError(
        "The model must map inputs [batch, ...] to outputs "
        f"[batch, output_dim] or [batch]; got output shape {y.shape} for "
        f"input shape {x.shape}.")
  if not y.dtype.is_floating:
    raise TypeError(
        f"The model's output must be floating point, got {y.dtype.name}.")
  if y.dtype != x.dtype:
    raise TypeError(
        f"The model returned dtype {y.dtype.name} for inputs `x` of dtype "
        f"{x.dtype.name}; derivatives need one dtype: give `x` as "
        f"{y.dtype.name} or cast the model's output to {x.dtype.name}.")
  return assert_batch(y, batch_size(x), "the model's output")


def not_connected_error(what: str) -> ValueError:
  """The error raised when a derivative with respect to `x` is None."""
  return ValueError(
      f"The model's output does not depend on its input `x` ({what} is None): "
      "Sobolev training needs a model that is differentiable with respect to "
      "its input. Check that the model uses `x` and that no "
      "`tf.stop_gradient` or non-differentiable op cuts the path.")


def _check_vector(v: tf.Tensor, shape: list, batch, dtype: tf.DType,
                  name: str) -> tf.Tensor:
  """Checks a shared vector `[*shape]` or a batch `[B, *shape]` of them."""
  v = as_dtype(v, dtype, name)
  rank = len(shape)
  described = "[" + ", ".join(str(d) if isinstance(d, int) else "?"
                              for d in shape) + "]"
  if v.shape.rank not in (rank, rank + 1) or any(
      got is not None and isinstance(want, int) and got != want
      for got, want in zip(v.shape[v.shape.rank - rank:], shape)):
    raise ValueError(f"`{name}` must have shape {described} or "
                     f"[batch] + {described}, got shape {v.shape}.")
  if v.shape.rank == rank:
    return tf.broadcast_to(v[None], tf.concat([[batch], tf.shape(v)], 0))
  return assert_batch(v, batch, name)


def value_and_gradient(model: Model, x: tf.Tensor,
                       wrt: Optional[WrtPath] = None
                      ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and input gradients of a scalar-output model.

  Args (also of the other `value_and_*` functions):
    model: callable mapping `[B, ...]` to `[B, O]` (here O = 1, or `[B]`).
    x: inputs, shape `[B, ...]` (or a dict/tuple with `wrt`).
    wrt: the entry of a dict/tuple `x` to differentiate with respect to.

  Returns:
    `(y, g)`: values `[B, 1]` and gradients `g[b] = d m(x_b) / d x_b`,
    shaped like `x`.

  Raises:
    ValueError: if the model has more than one output or does not depend on
      `x`.
  """
  model, x = with_respect_to(model, x, wrt)
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
                       unroll: Optional[bool] = None,
                       wrt: Optional[WrtPath] = None
                      ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and per-example input Jacobians.

  Args:
    model, x, wrt: as for `value_and_gradient`.
    unroll: O separate backward passes (True) or one vectorised
      `batch_jacobian` (False, `pfor`); by default unrolled when
      O <= `UNROLL_LIMIT` (faster for few outputs, quick XLA compilation).
      Same numbers either way.

  Returns:
    `(y, J)`: values `[B, O]` and Jacobians `[B, O, ...]`.

  Raises:
    ValueError: if the model does not depend on `x`.
  """
  model, x = with_respect_to(model, x, wrt)
  x = check_inputs(x)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    y = as_2d_output(model(x), x)
    out_dim = y.shape[1]
    unrolled = out_dim != 1 and _unroll(unroll, out_dim)
    rows = [y[:, o] for o in range(out_dim)] if unrolled else [y]
  # A pass per output when unrolled; else one: the Jacobian when O = 1, else
  # a connectivity check (`batch_jacobian` returns zeros, not None, for an
  # unconnected output inside tf.function; there the unused pass is pruned).
  grads = [tape.gradient(row, x) for row in rows]
  if grads[0] is None:
    raise not_connected_error("the Jacobian")
  if unrolled:
    return y, tf.stack(grads, axis=1)
  if out_dim == 1:
    return y, grads[0][:, None]
  return y, tape.batch_jacobian(y, x)


def value_and_hessian(
    model: Model,
    x: tf.Tensor,
    unroll: Optional[bool] = None,
    wrt: Optional[WrtPath] = None
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Values, per-example Jacobians and per-example Hessians (nested tapes).

  Args:
    model, x, wrt: as for `value_and_gradient`.
    unroll: O * D second backward passes (True) or a vectorised
      `batch_jacobian` (False); by default unrolled when
      O * D <= 2 * `UNROLL_LIMIT`. Same numbers either way.

  Returns:
    `(y, J, H)`: values `[B, O]`, Jacobians `[B, O, ...]` and Hessians
    `[B, O, ..., ...]` (zero for piecewise-linear, e.g. ReLU, models).

  Raises:
    ValueError: if the model does not depend on `x`.
  """
  model, x = with_respect_to(model, x, wrt)
  x = check_inputs(x)
  zero = tf.UnconnectedGradients.ZERO
  with tf.GradientTape(persistent=True) as outer:
    outer.watch(x)
    y, jac = value_and_jacobian(model, x, unroll=unroll)
    out_dim, in_dim = jac.shape[1], example_size(x)
    count = (out_dim * in_dim
             if out_dim is not None and isinstance(in_dim, int) else None)
    unrolled = _unroll(unroll, count // 2 if count else None)
    if count is None and unrolled:
      raise ValueError("unroll=True needs static output and input sizes.")
    batch = batch_size(x)
    flat = (jac if x.shape.rank == 2 else
            tf.reshape(jac, [batch, -1 if out_dim is None else out_dim,
                             in_dim]))
    if unrolled:
      entries = [flat[:, o, d] for o in range(out_dim) for d in range(in_dim)]
    else:
      flat = tf.reshape(flat, [batch, -1])
  if unrolled:
    hess = tf.stack([outer.gradient(e, x, unconnected_gradients=zero)
                     for e in entries], axis=1)  # [B, O * D, ...]
  else:
    hess = outer.batch_jacobian(flat, x, unconnected_gradients=zero)
  o_dim = out_dim if out_dim is not None else tf.shape(jac)[1]
  shape = example_shape(x)
  return y, jac, tf.reshape(hess, [batch, o_dim] + shape + shape)


def value_and_vjp(model: Model, x: tf.Tensor, v1: Vector,
                  wrt: Optional[WrtPath] = None
                 ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and the order-1 projection `D_x<m, v1> = J^T v1`.

  Args:
    model, x, wrt: as for `value_and_gradient`.
    v1: output-space vectors, shape `[O]` (shared) or `[B, O]`; or a
      callable `v1(O) -> [B, O]` called once after the forward pass with the
      output dimension (an int, or a scalar tensor if unknown).

  Returns:
    `(y, p1)`: values `[B, O]` and projections shaped like `x`.

  Raises:
    ValueError: for mismatched shapes or a model not depending on `x`.
    TypeError: for a vector not of the model's dtype.
  """
  model, x = with_respect_to(model, x, wrt)
  x = check_inputs(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = as_2d_output(model(x), x)
  out_dim = y.shape[1] if y.shape[1] is not None else tf.shape(y)[1]
  if callable(v1) and not tf.is_tensor(v1):
    v1 = v1(out_dim)
  v1 = _check_vector(v1, [out_dim], batch_size(x), y.dtype, "v1")
  p1 = tape.gradient(y, x, output_gradients=tf.stop_gradient(v1))
  if p1 is None:
    raise not_connected_error("the vector-Jacobian product")
  return y, p1


def value_and_hvp(
    model: Model, x: tf.Tensor, v1: Vector, v2: tf.Tensor,
    wrt: Optional[WrtPath] = None
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Values and the order-1 and order-2 projections (nested tapes).

  Args:
    model, x, wrt: as for `value_and_gradient`.
    v1: as for `value_and_vjp`.
    v2: input-space vectors shaped like one example (shared) or like `x`.

  Returns:
    `(y, p1, p2)`: values `[B, O]`, `p1 = D_x<m, v1>` and
    `p2 = D_x<D_x<m, v1>, v2>`, both shaped like `x`.

  Raises:
    As `value_and_vjp`.
  """
  model, x = with_respect_to(model, x, wrt)
  x = check_inputs(x)
  v2 = _check_vector(v2, example_shape(x), batch_size(x), x.dtype, "v2")
  with tf.GradientTape() as outer:
    outer.watch(x)
    y, p1 = value_and_vjp(model, x, v1)
    inner = tf.reduce_sum(p1 * tf.stop_gradient(v2),
                          axis=list(range(1, p1.shape.rank)))
  p2 = outer.gradient(inner, x,
                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return y, p1, p2


def project_jacobian(jacobian: tf.Tensor, v1: tf.Tensor) -> tf.Tensor:
  """`J^T v1` from full Jacobians: what `value_and_vjp` computes.

  Args:
    jacobian: `[N, O, ...]`.
    v1: `[N, O]`.

  Returns:
    `[N, ...]`: `sum_o v1[n, o] J[n, o, ...]`.
  """
  jacobian = tf.convert_to_tensor(jacobian)
  v1 = as_dtype(v1, jacobian.dtype, "v1")
  if jacobian.shape.rank == 3:
    # v1^T J as a batched matmul: under XLA on CPU this is ~4x faster than
    # the equivalent einsum (measured, O = 100).
    return tf.squeeze(tf.matmul(v1[:, None, :], jacobian), axis=1)
  shape = tf.shape(jacobian)
  flat = tf.reshape(jacobian, tf.stack([shape[0], shape[1], -1]))
  out = tf.squeeze(tf.matmul(v1[:, None, :], flat), axis=1)
  return tf.reshape(out, tf.concat([shape[:1], shape[2:]], 0))


def project_hessian(hessian: tf.Tensor, v1: tf.Tensor,
                    v2: tf.Tensor) -> tf.Tensor:
  """`(sum_o v1_o H_o) v2` from full Hessians: what `value_and_hvp` computes.

  Args:
    hessian: `[N, O, ..., ...]`.
    v1: `[N, O]`.
    v2: `[N, ...]` (shaped like the inputs).

  Returns:
    `[N, ...]`, shaped like `v2`.
  """
  hessian = tf.convert_to_tensor(hessian)
  v1 = as_dtype(v1, hessian.dtype, "v1")
  v2 = as_dtype(v2, hessian.dtype, "v2")
  if hessian.shape.rank == 4:
    return tf.einsum("bo,bode,be->bd", v1, hessian, v2)
  batch, out_dim = tf.shape(hessian)[0], tf.shape(hessian)[1]
  flat_v2 = tf.reshape(v2, tf.stack([batch, -1]))
  in_dim = tf.shape(flat_v2)[1]
  flat = tf.reshape(hessian, tf.stack([batch, out_dim, in_dim, in_dim]))
  out = tf.einsum("bo,bode,be->bd", v1, flat, flat_v2)
  return tf.reshape(out, tf.shape(v2))


def gradient(model: Model, x: tf.Tensor,
             wrt: Optional[WrtPath] = None) -> tf.Tensor:
  """Input gradients (shaped like `x`) of a scalar-output model."""
  return value_and_gradient(model, x, wrt=wrt)[1]


def jacobian(model: Model, x: tf.Tensor,
             wrt: Optional[WrtPath] = None) -> tf.Tensor:
  """Per-example input Jacobians `[B, O, ...]`."""
  return value_and_jacobian(model, x, wrt=wrt)[1]


def hessian(model: Model, x: tf.Tensor,
            wrt: Optional[WrtPath] = None) -> tf.Tensor:
  """Per-example input Hessians `[B, O, ..., ...]`."""
  return value_and_hessian(model, x, wrt=wrt)[2]


def vjp(model: Model, x: tf.Tensor, v1: Vector,
        wrt: Optional[WrtPath] = None) -> tf.Tensor:
  """Order-1 projections `D_x<m, v1>`, shaped like `x`."""
  return value_and_vjp(model, x, v1, wrt=wrt)[1]


def hvp(model: Model, x: tf.Tensor, v1: Vector, v2: tf.Tensor,
        wrt: Optional[WrtPath] = None) -> tf.Tensor:
  """Order-2 projections `D_x<D_x<m, v1>, v2>`, shaped like `x`."""
  return value_and_hvp(model, x, v1, v2, wrt=wrt)[2]
