"""Fused forward-mode input Jacobians for `snt.nets.MLP`.

For few inputs D, forward mode is the cheapest per-example input Jacobian:
the D unit tangents go through the network with the values, in the same
matrix multiplies. For an MLP layer

    h' = act(h W + b)          (values,   [B, H])
    t' = act'(h W + b) * (t W)  (tangents, [D, B, H])

one matmul on `(1 + D) * B` rows, and `J[b, :, d]` is the last layer's
tangent `d`. A Sobolev loss built on it needs one reverse pass for the
parameter gradient instead of reverse-over-reverse; values and Jacobians
equal the tape-based ones (`sobolev.derivatives`) up to rounding (tested).

Supported: `snt.nets.MLP` without dropout, with activation relu, leaky_relu
(alpha 0.2), elu, softplus, tanh or sigmoid, on inputs `[B, D]`. The network
is recomputed from its layers, so only exactly `snt.nets.MLP` qualifies, or
with `allow_subclasses=True` (`SobolevLoss(jacobian_mode='forward')`) a
subclass that does not override `__call__` (else its layers alone are not
the model).
"""

from typing import Callable, Optional, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf


_LEAKY_ALPHA = float(np.float32(0.2))


def _derivative(activation) -> Optional[Callable[[tf.Tensor, tf.Tensor],
                                                 tf.Tensor]]:
  """`(pre, post) -> act'(pre)` for known activations, else None."""
  table = {
      tf.nn.relu: lambda pre, post: tf.cast(pre > 0, pre.dtype),
      # TF stores leaky_relu's alpha (0.2) as a float32 attribute.
      tf.nn.leaky_relu: lambda pre, post: tf.where(
          pre > 0, tf.ones_like(pre), _LEAKY_ALPHA * tf.ones_like(pre)),
      tf.nn.elu: lambda pre, post: tf.where(pre > 0, tf.ones_like(pre),
                                            post + 1.0),
      tf.nn.softplus: lambda pre, post: tf.sigmoid(pre),
      tf.nn.tanh: lambda pre, post: 1.0 - tf.square(post),
      tf.nn.sigmoid: lambda pre, post: post * (1.0 - post),
  }
  return next((deriv for fn, deriv in table.items() if activation is fn),
              None)


def supports(model, allow_subclasses: bool = False) -> bool:
  """Whether `model` is an MLP this module can differentiate in forward mode.

  Args:
    model: any callable.
    allow_subclasses: also accept subclasses of `snt.nets.MLP` that do not
      override `__call__` (see the module docstring).

  Returns:
    True for a supported MLP (no dropout, a supported activation).
  """
  if allow_subclasses:
    exact = isinstance(model, snt.nets.MLP) and not overrides_call(model)
  else:
    exact = type(model) is snt.nets.MLP  # pylint: disable=unidiomatic-typecheck
  return (exact and
          not getattr(model, "_dropout_rate", None) and
          _derivative(getattr(model, "_activation", None)) is not None)


def overrides_call(model) -> bool:
  """Whether `model` subclasses `snt.nets.MLP` and overrides `__call__`."""
  return (isinstance(model, snt.nets.MLP) and
          getattr(type(model), "__call__", None) is not snt.nets.MLP.__call__)


def output_size(mlp: snt.nets.MLP) -> int:
  """The number of outputs O of an MLP (its last layer's size)."""
  return mlp._layers[-1].output_size  # pylint: disable=protected-access


def mlp_value_and_jacobian(
    mlp: snt.nets.MLP, x: tf.Tensor,
    allow_subclasses: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and per-example input Jacobians of an MLP by forward mode.

  Args:
    mlp: an `snt.nets.MLP` for which `supports(mlp, allow_subclasses)` is
      True.
    x: inputs `[B, D]`.
    allow_subclasses: accept subclasses that do not override `__call__`.

  Returns:
    `(y, J)`: values `[B, O]` and Jacobians `[B, O, D]`.

  Raises:
    ValueError: if the MLP is not supported or `x` is not `[B, D]` with a
      known D.
  """
  if not supports(mlp, allow_subclasses=allow_subclasses):
    raise ValueError("mlp_value_and_jacobian needs an snt.nets.MLP (exactly "
                     "that type, or with allow_subclasses=True a subclass "
                     "that does not override __call__) without dropout and "
                     "with a supported activation.")
  if x.shape.rank != 2 or x.shape[1] is None:
    raise ValueError("mlp_value_and_jacobian needs inputs [B, D] with a "
                     f"static D, got shape {x.shape}.")
  deriv = _derivative(mlp._activation)  # pylint: disable=protected-access
  layers = mlp._layers  # pylint: disable=protected-access
  activate_final = mlp._activate_final  # pylint: disable=protected-access
  batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
  in_dim = x.shape[1]
  # Tangents, input-major: row d * B + b carries e_d for example b.
  eye = tf.eye(in_dim, dtype=x.dtype)
  tangents = tf.reshape(
      tf.broadcast_to(eye[:, None, :], [in_dim, batch, in_dim]),
      [in_dim * batch, in_dim])
  h = x
  for i, layer in enumerate(layers):
    if not hasattr(layer, "w"):
      layer(h)  # Builds the layer's variables.
    both = tf.matmul(tf.concat([h, tangents], axis=0), layer.w)
    pre = both[:batch]
    if getattr(layer, "with_bias", True) and hasattr(layer, "b"):
      pre += layer.b
    tangents = both[batch:]
    if i < len(layers) - 1 or activate_final:
      h = mlp._activation(pre)  # pylint: disable=protected-access
      slope = deriv(pre, h)
      width = pre.shape[1]
      tangents = tf.reshape(
          tf.reshape(tangents, [in_dim, batch, width]) * slope,
          [in_dim * batch, width])
    else:
      h = pre
  out_dim = h.shape[1] if h.shape[1] is not None else tf.shape(h)[1]
  jac = tf.transpose(tf.reshape(tangents, [in_dim, batch, out_dim]), [1, 2, 0])
  return h, jac
