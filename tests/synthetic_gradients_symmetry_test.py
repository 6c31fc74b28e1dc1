"""Tests of Proposition 4: critic SGs are gradient fields, direct SGs are not."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from synthetic_gradients import decoupled
from synthetic_gradients import networks
from synthetic_gradients import sg_modules
from synthetic_gradients import symmetry


def _inputs(seed=0):
  rng = np.random.RandomState(seed)
  h = tf.constant(rng.randn(3, 2, 2, 4), tf.float32)
  y = tf.constant(rng.randint(0, 10, 3), tf.int32)
  return h, y


class SymmetryTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*decoupled.SG_METHODS)
  def test_proposition_4_per_method(self, method):
    """Critic-based modules (vfbn, critic, sobolev) give symmetric Jacobians;
    direct SG does not."""
    tf.random.set_seed(1)
    parts = networks.conv_net_parts((4, 4, 8), 3, 10)
    model = decoupled.SplitModel(parts, method, 10)
    x = tf.random.normal([3, 8, 8, 1])
    model.build(x)
    module = model.sg_modules[1]  # At a 2x2x4 split: D = 16.
    for v in module.trainable_variables:  # Non-zero direct-SG output layer.
      v.assign(tf.random.normal(v.shape, stddev=0.3, seed=2))
    h, y = _inputs()
    asym = symmetry.jacobian_asymmetry(module.synthetic_gradient, h, y)
    if method in decoupled.CRITIC_METHODS:
      self.assertLess(float(tf.reduce_max(asym)), 1e-4)
      self.assertTrue(symmetry.is_gradient_field(module.synthetic_gradient,
                                                 h, y))
    else:
      self.assertGreater(float(tf.reduce_min(asym)), 0.1)
      self.assertFalse(symmetry.is_gradient_field(module.synthetic_gradient,
                                                  h, y))

  def test_jacobian_matches_finite_differences(self):
    critic = sg_modules.LossCritic([(8, True)], 10, 1.0)
    h, y = _inputs(1)
    jac = symmetry.sg_jacobian(critic.synthetic_gradient, h, y).numpy()
    self.assertEqual(jac.shape, (3, 16, 16))
    eps = 1e-2
    e = np.zeros((3, 16), np.float32)
    e[:, 5] = eps
    plus = critic.synthetic_gradient(h + tf.reshape(e, h.shape), y)
    minus = critic.synthetic_gradient(h - tf.reshape(e, h.shape), y)
    fd = (tf.reshape(plus, [3, 16]) - tf.reshape(minus, [3, 16])) / (2 * eps)
    self.assertAllClose(jac[:, :, 5], fd, atol=2e-3, rtol=2e-2)

  def test_linear_field(self):
    """A linear SG Ah is a gradient field iff A is symmetric."""
    a = np.random.RandomState(0).randn(4, 4).astype(np.float32)
    h = tf.random.normal([2, 4])
    y = tf.zeros([2], tf.int32)
    sym = lambda h, y: h @ tf.constant(a + a.T)
    asym = lambda h, y: h @ tf.constant(a)
    self.assertTrue(symmetry.is_gradient_field(sym, h, y))
    self.assertFalse(symmetry.is_gradient_field(asym, h, y))

  def test_bad_sg_fn(self):
    h, y = _inputs()
    with self.assertRaisesRegex(ValueError, "shape"):
      symmetry.sg_jacobian(lambda h, y: tf.reduce_sum(h, axis=-1), h, y)


if __name__ == "__main__":
  tf.test.main()
