"""Tests for sobolev.strided_conv: equal to tf.nn.conv2d up to 2nd order."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import strided_conv


def _inputs(shape, kernel, c_out, seed=0):
  rng = np.random.RandomState(seed)
  x = tf.constant(rng.normal(size=shape), tf.float64)
  w = tf.constant(rng.normal(size=(kernel, kernel, shape[3], c_out)),
                  tf.float64)
  return x, w


def _derivatives(conv, x, w, stride, v, t, jit=None):
  """y, dx = J^T v, and d/dw of ||dx - t||^2 and of sum(y * y)."""

  def fn(x, w):
    with tf.GradientTape(persistent=True) as outer:
      outer.watch(w)
      with tf.GradientTape() as inner:
        inner.watch(x)
        y = conv(x, w, stride)
      dx = inner.gradient(y, x, output_gradients=v)
      second = tf.reduce_sum(tf.square(dx - t))
      first = tf.reduce_sum(y * y)
    return (y, dx, outer.gradient(second, w), outer.gradient(first, w),
            outer.gradient(second, x, unconnected_gradients="zero"))

  if jit is not None:
    fn = tf.function(fn, jit_compile=jit)
  return fn(x, w)


def _reference(x, w, stride):
  return tf.nn.conv2d(x, w, stride, "VALID")


class StridedConvTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(
      # (input shape, kernel, stride, output channels, jit)
      ((2, 84, 84, 4), 8, 4, 3, None),  # Atari conv1.
      ((2, 20, 20, 3), 4, 2, 5, None),  # Atari conv2.
      ((2, 86, 85, 2), 8, 4, 3, None),  # Rows/columns the conv never reads.
      ((1, 9, 11, 2), 3, 3, 2, None),
      ((2, 84, 84, 4), 8, 4, 3, False),
      ((2, 20, 20, 3), 4, 2, 5, True),
  )
  def test_matches_tf_conv_to_second_order(self, shape, kernel, stride, c_out,
                                           jit):
    x, w = _inputs(shape, kernel, c_out)
    y_ref = _reference(x, w, stride)
    rng = np.random.RandomState(1)
    v = tf.constant(rng.normal(size=y_ref.shape), tf.float64)
    t = tf.constant(rng.normal(size=shape), tf.float64)
    fast = _derivatives(strided_conv.conv2d, x, w, stride, v, t, jit)
    ref = _derivatives(_reference, x, w, stride, v, t, jit)
    self.assertEqual(fast[0].shape, y_ref.shape)
    self.assertEqual(fast[1].shape, shape)
    for name, a, b in zip(["y", "J^T v", "d2/dw", "d/dw", "d2/dx"], fast,
                          ref):
      self.assertAllClose(a, b, rtol=1e-10, atol=1e-10, msg=name)
    # The conv never reads the trailing rows/columns: zero gradient there.
    used_h = (y_ref.shape[1] - 1) * stride + kernel
    if used_h < shape[1]:
      self.assertAllEqual(fast[1][:, used_h:], tf.zeros_like(
          fast[1][:, used_h:]))
      self.assertGreater(float(tf.reduce_max(tf.abs(fast[1]))), 0.0)

  def test_rearranged_kernel_equals_space_to_depth_conv(self):
    x, w = _inputs((2, 12, 12, 3), 4, 2)
    y = tf.nn.conv2d(tf.nn.space_to_depth(x, 2),
                     strided_conv.rearrange_kernel(w, 2), 1, "VALID")
    self.assertAllClose(y, _reference(x, w, 2), rtol=1e-12, atol=1e-12)

  def test_module_equals_sonnet_conv_and_shares_checkpoints(self):
    x, _ = _inputs((3, 84, 84, 4), 8, 16)
    x = tf.cast(x, tf.float32)
    fast = strided_conv.Conv2D(16, 8, stride=4, padding="VALID", name="c")
    ref = snt.Conv2D(16, 8, stride=4, padding="VALID", name="c")
    tf.random.set_seed(0)
    y_fast = fast(x)
    tf.random.set_seed(0)
    self.assertAllClose(y_fast, ref(x), rtol=1e-5, atol=1e-5)
    self.assertEqual([v.name for v in fast.variables],
                     [v.name for v in ref.variables])
    # A checkpoint of the Sonnet module restores into the fast one.
    for v in ref.variables:
      v.assign(v + 1.0)
    path = tf.train.Checkpoint(m=ref).save(self.get_temp_dir() + "/ckpt")
    tf.train.Checkpoint(m=fast).restore(path).assert_consumed()
    self.assertAllClose(fast(x), ref(x), rtol=1e-5, atol=1e-4)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      y_fast, y_ref = fast(x), ref(x)
    self.assertAllClose(tape.gradient(y_fast, x), tape.gradient(y_ref, x),
                        rtol=1e-5, atol=1e-5)

  @parameterized.parameters(
      dict(kernel=3, stride=1, padding="VALID"),
      dict(kernel=3, stride=2, padding="VALID"),
      dict(kernel=4, stride=2, padding="SAME"),
  )
  def test_unsupported_layers_fall_back_to_sonnet(self, kernel, stride,
                                                  padding):
    self.assertFalse(strided_conv.supported(kernel, stride, padding))
    x = tf.random.stateless_normal([2, 10, 10, 3], seed=[0, 1])
    fast = strided_conv.Conv2D(4, kernel, stride=stride, padding=padding)
    ref = snt.Conv2D(4, kernel, stride=stride, padding=padding)
    tf.random.set_seed(0)
    y_fast = fast(x)
    tf.random.set_seed(0)
    self.assertAllEqual(y_fast, ref(x))

  @parameterized.parameters(
      dict(x_shape=(2, 10, 10), kernel=4, stride=2, match="`x`"),
      dict(x_shape=(2, 10, 10, 3), kernel=4, stride=1, match="`stride`"),
      dict(x_shape=(2, 10, 10, 3), kernel=5, stride=2, match="multiple"),
      dict(x_shape=(2, 3, 10, 3), kernel=4, stride=2, match="smaller"),
  )
  def test_bad_arguments_raise(self, x_shape, kernel, stride, match):
    x = tf.zeros(x_shape)
    w = tf.zeros([kernel, kernel, 3, 2])
    with self.assertRaisesRegex(ValueError, match):
      strided_conv.conv2d(x, w, stride)

  def test_channel_mismatch_raises(self):
    with self.assertRaisesRegex(ValueError, "channels"):
      strided_conv.conv2d(tf.zeros([1, 8, 8, 2]), tf.zeros([4, 4, 3, 1]), 2)


if __name__ == "__main__":
  tf.test.main()
