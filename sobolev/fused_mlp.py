"""A fused order-1 Sobolev pass for scalar-output piecewise-linear MLPs.

The tape-based order-1 step (`sobolev.derivatives.value_and_jacobian`, then
the training step's `tape.gradient`) differentiates the values `y = m(x)` and
the input gradients `g = D_x m(x)` separately: the value term gets its own
backward pass and its own weight gradients, next to the reverse-over-reverse
pass of the gradient term. For an MLP with one output (O = 1) and a
piecewise-linear activation (relu, leaky_relu: zero second derivative) they
share almost everything. With `d_l` the backward signal at layer l's
pre-activation for the output cotangent 1 (what computing `g` produces),
`h_l` the layer inputs, `c = dL/dy` `[B, 1]` and `e = dL/dg` `[B, D]`:

    value term:     dL/dW_l += (c * h_l)^T d_l     (its backward signal is
                                                    c * d_l, per example)
    gradient term:  dL/dW_l += a_l^T d_l,   a_0 = e,
                    a_{l+1} = act'(z_l) * (a_l W_l)

so each weight gradient is one matmul `(c * h_l + a_l)^T d_l`, and the value
term's backward pass is not computed at all. For two hidden layers of width
H this is 4 matmuls of size B x H x H per step instead of 6 (measured in
`docs/speed.md`). `mlp_value_and_gradient` returns `(y, g)` with this
gradient attached (`tf.custom_gradient`); the values and input gradients
are computed with the same ops as the tape (`ReluGrad`), the parameter
gradients equal the tape's up to float rounding (tested). They are first
derivatives only: do not differentiate the parameter gradients again.

Supported: exactly `snt.nets.MLP` (or, with `allow_subclasses`, a subclass
not overriding `__call__`) with activation relu or leaky_relu (alpha 0.2),
no dropout, `activate_final=False`, one output, on inputs `[B, D]`. Used by
`SobolevLoss(order=1, jacobian_mode='fused')`.
"""

from typing import Callable, List, Tuple

import sonnet as snt
import tensorflow as tf

from sobolev import forward_mode


def _activation_grad(activation) -> Callable[[tf.Tensor, tf.Tensor],
                                             tf.Tensor]:
  """`(grad, pre) -> grad * act'(pre)` for relu/leaky_relu, else None."""
  if activation is tf.nn.relu:
    return lambda grad, pre: tf.raw_ops.ReluGrad(gradients=grad, features=pre)
  if activation is tf.nn.leaky_relu:
    # The tape's gradient of tf.nn.leaky_relu (default alpha 0.2).
    return lambda grad, pre: tf.raw_ops.LeakyReluGrad(
        gradients=grad, features=pre, alpha=0.2)
  return None


def supports(model, allow_subclasses: bool = False) -> bool:
  """Whether `mlp_value_and_gradient` can take `model` (see module doc)."""
  # pylint: disable=protected-access
  if not forward_mode.supports(model, allow_subclasses=allow_subclasses):
    return False
  return (_activation_grad(model._activation) is not None and
          not model._activate_final and
          forward_mode.output_size(model) == 1)


def mlp_value_and_gradient(mlp: snt.nets.MLP, x: tf.Tensor,
                           allow_subclasses: bool = False
                          ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Values and input gradients, with the fused parameter gradient.

  Args:
    mlp: an MLP with `supports(mlp, allow_subclasses)`.
    x: inputs `[B, D]` with a static D.
    allow_subclasses: accept subclasses that do not override `__call__`.

  Returns:
    `(y, g)`: values `[B, 1]` and input gradients `[B, D]`, differentiable
    (once) with respect to `x` and the MLP's variables.

  Raises:
    ValueError: for an unsupported MLP or input shape.
  """
  if not supports(mlp, allow_subclasses=allow_subclasses):
    raise ValueError(
        "mlp_value_and_gradient needs an snt.nets.MLP with activation relu "
        "or leaky_relu, no dropout, activate_final=False and one output.")
  if x.shape.rank != 2 or x.shape[1] is None:
    raise ValueError("mlp_value_and_gradient needs inputs [B, D] with a "
                     f"static D, got shape {x.shape}.")
  layers = mlp._layers  # pylint: disable=protected-access
  if not all(hasattr(layer, "w") for layer in layers):
    mlp(x)  # Builds the layers' variables.
  biased = [getattr(layer, "with_bias", True) and hasattr(layer, "b")
            for layer in layers]
  params = []
  for layer, bias in zip(layers, biased):
    params.append(tf.convert_to_tensor(layer.w))
    if bias:
      params.append(tf.convert_to_tensor(layer.b))
  activation = mlp._activation  # pylint: disable=protected-access
  return _fused(activation, _activation_grad(activation), biased)(x, *params)


def _fused(activation, act_grad, biased: List[bool]):
  """The custom-gradient function `(x, *params) -> (y, g)` (module doc)."""

  @tf.custom_gradient
  def fused(x, *params):
    params = list(params)
    ws, bs = [], []
    for bias in biased:
      ws.append(params.pop(0))
      bs.append(params.pop(0) if bias else None)
    # Forward: inputs h_l and pre-activations z_l of every layer.
    hs, zs, h = [], [], x
    for i, (w, b) in enumerate(zip(ws, bs)):
      hs.append(h)
      z = tf.matmul(h, w)
      if b is not None:
        z += b
      zs.append(z)
      h = activation(z) if i < len(ws) - 1 else z
    y = h
    # Backward for the output cotangent 1 (as the tape computes g):
    # ds[l] is the signal at z_l.
    ds = [None] * len(ws)
    d = tf.ones_like(y)
    for i in reversed(range(len(ws))):
      ds[i] = d
      g = tf.matmul(d, ws[i], transpose_b=True)
      if i > 0:
        d = act_grad(g, zs[i - 1])

    def grad_fn(dy, dg):
      dy = tf.zeros_like(y) if dy is None else dy
      a = tf.zeros_like(x) if dg is None else dg
      grads = []
      for i, w in enumerate(ws):
        grads.append(tf.matmul(dy * hs[i] + a, ds[i], transpose_a=True))
        if bs[i] is not None:
          grads.append(tf.reduce_sum(dy * ds[i], axis=0))
        if i < len(ws) - 1:
          a = act_grad(tf.matmul(a, w), zs[i])
      return [dy * g] + grads

    return (y, g), grad_fn

  return fused
