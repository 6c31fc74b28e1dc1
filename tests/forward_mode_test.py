"""Tests for sobolev.forward_mode: equal to the tape-based derivatives."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import forward_mode
from sobolev import sobolev_loss

ACTIVATIONS = {
    "relu": tf.nn.relu, "leaky_relu": tf.nn.leaky_relu, "elu": tf.nn.elu,
    "softplus": tf.nn.softplus, "tanh": tf.nn.tanh, "sigmoid": tf.nn.sigmoid,
}


class ForwardModeTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(activation=sorted(ACTIVATIONS),
                         activate_final=[False, True], jit=[None, True])
  def test_matches_reverse_mode(self, activation, activate_final, jit):
    tf.random.set_seed(1)
    mlp = snt.nets.MLP([16, 8, 5], activation=ACTIVATIONS[activation],
                       activate_final=activate_final)
    x = tf.constant(np.random.RandomState(0).normal(size=(7, 3)), tf.float64)
    self.assertTrue(forward_mode.supports(mlp))
    fwd = forward_mode.mlp_value_and_jacobian
    if jit is not None:
      fwd = tf.function(fwd, jit_compile=jit)
    y_f, j_f = fwd(mlp, x)
    y_r, j_r = derivatives.value_and_jacobian(mlp, x)
    self.assertEqual(j_f.shape, (7, 5, 3))
    self.assertAllClose(y_f, y_r, atol=1e-12)
    self.assertAllClose(j_f, j_r, atol=1e-12)

  def test_parameter_gradients_match(self):
    tf.random.set_seed(2)
    mlp = snt.nets.MLP([16, 4], activation=tf.nn.softplus)
    x = tf.constant(np.random.RandomState(1).normal(size=(5, 2)), tf.float64)
    target = tf.constant(np.random.RandomState(2).normal(size=(5, 4, 2)))

    def grads(mode):
      loss = sobolev_loss.SobolevLoss(order=1, jacobian_mode=mode)
      with tf.GradientTape() as tape:
        total, _ = loss(mlp, x, targets=(tf.zeros([5, 4], tf.float64),
                                         target))[:2]
      return total, tape.gradient(total, mlp.trainable_variables)

    total_f, grads_f = grads("forward")
    total_r, grads_r = grads("reverse")
    self.assertAllClose(total_f, total_r, atol=1e-12)
    for a, b in zip(grads_f, grads_r):
      self.assertAllClose(a, b, atol=1e-10)

  def test_supports(self):
    self.assertFalse(forward_mode.supports(lambda x: x))
    self.assertFalse(forward_mode.supports(
        snt.nets.MLP([3], activation=tf.nn.gelu)))
    self.assertFalse(forward_mode.supports(
        snt.nets.MLP([3], dropout_rate=0.5)))
    self.assertTrue(forward_mode.supports(snt.nets.MLP([3])))

    class Plain(snt.nets.MLP):
      pass

    class Overriding(snt.nets.MLP):

      def __call__(self, inputs, is_training=None):
        return super().__call__(inputs) + 1.0

    # Subclasses only by explicit opt-in, and never one overriding __call__.
    self.assertFalse(forward_mode.supports(Plain([3])))
    self.assertTrue(forward_mode.supports(Plain([3]), allow_subclasses=True))
    self.assertFalse(forward_mode.supports(Overriding([3]),
                                           allow_subclasses=True))
    self.assertTrue(forward_mode.overrides_call(Overriding([3])))
    self.assertFalse(forward_mode.overrides_call(Plain([3])))
    with self.assertRaisesRegex(ValueError, "needs an snt.nets.MLP"):
      forward_mode.mlp_value_and_jacobian(Overriding([3]), tf.ones([1, 2]),
                                          allow_subclasses=True)
    with self.assertRaisesRegex(ValueError, r"needs inputs \[B, D\]"):
      forward_mode.mlp_value_and_jacobian(snt.nets.MLP([3]),
                                          tf.ones([1, 2, 2]))
    with self.assertRaisesRegex(ValueError, "needs an snt.nets.MLP"):
      forward_mode.mlp_value_and_jacobian(lambda x: x, tf.ones([1, 2]))
    with self.assertRaisesRegex(ValueError, "jacobian_mode='forward' needs"):
      sobolev_loss.SobolevLoss(order=1, jacobian_mode="forward")(
          lambda x: x, tf.ones([2, 2]), targets=(tf.ones([2, 2]),
                                                 tf.ones([2, 2, 2])))
    with self.assertRaisesRegex(ValueError, "`jacobian_mode` must be one of"):
      sobolev_loss.SobolevLoss(jacobian_mode="sideways")


if __name__ == "__main__":
  tf.test.main()
