"""Strided 2-D convolutions with a fast input gradient.

Sobolev training of conv nets differentiates the input gradient again with
respect to the parameters. On CPU, TensorFlow's input gradient of a strided
convolution (`Conv2DBackpropInput`, e.g. the Atari nets' 8x8 stride-4 first
layer) is several times slower than the forward convolution (see README,
Performance).

When the kernel size k is a multiple of the stride s, a VALID convolution
with stride s is a stride-1 convolution of `space_to_depth(x, s)` with the
kernel rearranged to `[k/s, k/s, s*s*C_in, C_out]`; its input gradient is a
stride-1 transposed convolution and `depth_to_space`, at forward speed, with
stride-1 gradients of its own.

`conv2d` keeps the ordinary forward convolution and uses the rearranged form
in its gradient only; `Conv2D` is an `snt.Conv2D` calling it, with the same
variables (checkpoints load into either). Results equal `tf.nn.conv2d`'s up
to rounding (tests check values, first and second derivatives).
"""

from typing import Optional

import sonnet as snt
import tensorflow as tf


def supported(kernel: int, stride: int, padding: str = "VALID") -> bool:
  """Whether the fast gradient applies: VALID padding, k a multiple of s > 1."""
  return padding == "VALID" and stride > 1 and kernel % stride == 0


def rearrange_kernel(w: tf.Tensor, stride: int) -> tf.Tensor:
  """`[k, k, C, O]` kernel -> `[k/s, k/s, s*s*C, O]` for space_to_depth inputs.

  Entry `[a, b, (i * s + j) * C + c, o]` is `w[a * s + i, b * s + j, c, o]`,
  matching the channel order of `tf.nn.space_to_depth`.

  Args:
    w: kernel `[k, k, C, O]` with k a multiple of `stride`.
    stride: the convolution's stride s.

  Returns:
    The rearranged kernel `[k/s, k/s, s*s*C, O]`.
  """
  k, _, c_in, c_out = w.shape
  kb = k // stride
  w = tf.reshape(w, [kb, stride, kb, stride, c_in, c_out])
  w = tf.transpose(w, [0, 2, 1, 3, 4, 5])
  return tf.reshape(w, [kb, kb, stride * stride * c_in, c_out])


def _check(x: tf.Tensor, w: tf.Tensor, stride: int) -> None:
  if x.shape.rank != 4:
    raise ValueError(f"`x` must be [B, H, W, C], got shape {x.shape}.")
  if w.shape.rank != 4 or w.shape[0] != w.shape[1]:
    raise ValueError(f"`w` must be a square kernel [k, k, C, O], got "
                     f"{w.shape}.")
  if not isinstance(stride, int) or stride < 2:
    raise ValueError(f"`stride` must be an int >= 2, got {stride!r}.")
  if w.shape[0] % stride:
    raise ValueError(f"The kernel size ({w.shape[0]}) must be a multiple of "
                     f"`stride` ({stride}).")
  if x.shape[3] is not None and x.shape[3] != w.shape[2]:
    raise ValueError(f"`x` has {x.shape[3]} channels, `w` expects "
                     f"{w.shape[2]}.")
  for axis in (1, 2):
    if x.shape[axis] is None:
      raise ValueError("`x` needs static spatial sizes, got shape "
                       f"{x.shape}.")
    if x.shape[axis] < w.shape[0]:
      raise ValueError(f"`x` ({x.shape}) is smaller than the kernel "
                       f"({w.shape[0]}).")


def conv2d(x: tf.Tensor, w: tf.Tensor, stride: int) -> tf.Tensor:
  """VALID strided convolution whose input gradient avoids the slow kernel.

  Args:
    x: inputs `[B, H, W, C]` (static H, W, C).
    w: kernel `[k, k, C, O]`, k a multiple of `stride`.
    stride: stride s >= 2 along both spatial axes.

  Returns:
    `tf.nn.conv2d(x, w, stride, 'VALID')`: `[B, Ho, Wo, O]` with
    `Ho = (H - k) // s + 1`.

  Raises:
    ValueError: for shapes or a stride the fast path does not support.
  """
  x, w = tf.convert_to_tensor(x), tf.convert_to_tensor(w)
  _check(x, w, stride)
  k = int(w.shape[0])
  h_out = (x.shape[1] - k) // stride + 1
  w_out = (x.shape[2] - k) // stride + 1
  # Rows/columns the convolution reads; the rest get zero gradient.
  h_used, w_used = (h_out - 1) * stride + k, (w_out - 1) * stride + k
  h_pad, w_pad = x.shape[1] - h_used, x.shape[2] - w_used
  return _conv2d(x, w, stride, h_used, w_used, h_pad, w_pad)


def _conv2d(x, w, stride, h_used, w_used, h_pad, w_pad):
  """The custom-gradient op behind `conv2d` (arguments checked there)."""

  @tf.custom_gradient
  def op(x, w):
    y = tf.nn.conv2d(x, w, stride, "VALID")

    def grad(dy):
      c_in = w.shape[2]
      blocks = tf.nn.conv2d_transpose(
          dy, rearrange_kernel(w, stride),
          output_shape=tf.stack([tf.shape(dy)[0], h_used // stride,
                                 w_used // stride, stride * stride * c_in]),
          strides=1, padding="VALID")
      dx = tf.nn.depth_to_space(blocks, stride)
      if h_pad or w_pad:
        dx = tf.pad(dx, [[0, 0], [0, h_pad], [0, w_pad], [0, 0]])
      dw = tf.raw_ops.Conv2DBackpropFilter(
          input=x, filter_sizes=tf.shape(w), out_backprop=dy,
          strides=[1, stride, stride, 1], padding="VALID")
      return dx, dw

    return y, grad

  return op(x, w)


class Conv2D(snt.Conv2D):
  """`snt.Conv2D` whose strided VALID layers use `conv2d`'s fast gradient.

  Same constructor, variables and results as `snt.Conv2D`; layers the fast
  path does not cover (SAME padding, stride 1, kernel not a multiple of the
  stride, dilation, NCHW) run `snt.Conv2D` unchanged.
  """

  def __init__(self, output_channels: int, kernel_shape: int,
               stride: int = 1, padding: str = "VALID",
               name: Optional[str] = None, **kwargs):
    super().__init__(output_channels, kernel_shape, stride=stride,
                     padding=padding, name=name, **kwargs)
    self._fast = (isinstance(kernel_shape, int) and isinstance(stride, int)
                  and kwargs.get("rate", 1) == 1
                  and kwargs.get("data_format", "NHWC") == "NHWC"
                  and supported(kernel_shape, stride, padding))

  def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
    """`[B, H, W, C]` -> `[B, Ho, Wo, output_channels]`."""
    if not self._fast:
      return super().__call__(inputs)
    self._initialize(inputs)
    outputs = conv2d(inputs, self.w, self.stride)
    if self.with_bias:
      outputs = tf.nn.bias_add(outputs, self.b)
    return outputs
