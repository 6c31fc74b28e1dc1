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

  def _module(self, method):
    tf.random.set_seed(1)
    parts = networks.conv_net_parts((4, 4, 8), 3, 10)
    model = decoupled.SplitModel(parts, method, 10)
    model.build(tf.random.normal([3, 8, 8, 1]))
    module = model.sg_modules[1]  # At a 2x2x4 split: D = 16.
    for v in module.trainable_variables:
      v.assign(tf.random.normal(v.shape, stddev=0.3, seed=2))
    return module

  @parameterized.parameters("direct", "critic")
  def test_projected_asymmetry_with_basis_is_exact(self, method):
    """With the D basis vectors as probes the estimator is the exact ratio."""
    module = self._module(method)
    h, y = _inputs()
    basis = tf.reshape(tf.eye(16), [16, 1, 2, 2, 4])
    basis = tf.tile(basis, [1, 3, 1, 1, 1])  # Every example probed alike.
    exact = symmetry.jacobian_asymmetry(module.synthetic_gradient, h, y)
    probed = symmetry.projected_asymmetry(module.synthetic_gradient, h, y,
                                          vectors=basis)
    self.assertAllClose(probed, exact, atol=1e-5, rtol=1e-4)

  def test_projected_asymmetry_random_probes(self):
    """Gaussian probes estimate the exact ratio; a critic's is ~0."""
    direct = self._module("direct")
    h, y = _inputs()
    exact = symmetry.jacobian_asymmetry(direct.synthetic_gradient, h, y)
    est = symmetry.projected_asymmetry(direct.synthetic_gradient, h, y,
                                       num_vectors=400, seed=3)
    self.assertAllClose(est, exact, rtol=0.1)
    again = symmetry.projected_asymmetry(direct.synthetic_gradient, h, y,
                                         num_vectors=400, seed=3)
    self.assertAllEqual(est, again)  # Deterministic under the seed.
    critic = self._module("critic")
    est = symmetry.projected_asymmetry(critic.synthetic_gradient, h, y,
                                       num_vectors=4)
    self.assertLess(float(tf.reduce_max(est)), 1e-4)

  def test_projected_asymmetry_linear_field_by_hand(self):
    """SG = h A has J = A^T: the ratio is ||A - A^T||_F / ||A||_F."""
    a = np.array([[1., 2.], [0., 3.]], np.float32)
    h = tf.constant([[1., -1.], [0.5, 2.]])
    y = tf.zeros([2], tf.int32)
    basis = tf.tile(tf.eye(2)[:, None, :], [1, 2, 1])
    est = symmetry.projected_asymmetry(lambda h, y: h @ tf.constant(a), h, y,
                                       vectors=basis)
    want = np.sqrt(8.0) / np.sqrt(14.0)
    self.assertAllClose(est, [want, want], rtol=1e-6)
    est, norm = symmetry.projected_asymmetry(
        lambda h, y: h @ tf.constant(a), h, y, vectors=basis, with_norm=True)
    self.assertAllClose(est, [want, want], rtol=1e-6)
    self.assertAllClose(norm, np.sqrt([14.0 / 2, 14.0 / 2]), rtol=1e-6)
    est, norm = symmetry.projected_asymmetry(  # A constant SG: J = 0.
        lambda h, y: 0.0 * h + 1.0, h, y, vectors=basis, with_norm=True)
    self.assertAllEqual(norm, [0.0, 0.0])
    self.assertAllEqual(est, [0.0, 0.0])

  def test_projected_asymmetry_bad_arguments(self):
    h, y = _inputs()
    fn = lambda h, y: h
    with self.assertRaisesRegex(ValueError, "num_vectors"):
      symmetry.projected_asymmetry(fn, h, y, num_vectors=0)
    with self.assertRaisesRegex(ValueError, "vectors"):
      symmetry.projected_asymmetry(fn, h, y, vectors=tf.zeros([2, 3, 16]))
    with self.assertRaisesRegex(ValueError, "shape"):
      symmetry.projected_asymmetry(lambda h, y: tf.reduce_sum(h, -1), h, y)

  def test_bad_sg_fn(self):
    h, y = _inputs()
    with self.assertRaisesRegex(ValueError, "shape"):
      symmetry.sg_jacobian(lambda h, y: tf.reduce_sum(h, axis=-1), h, y)


if __name__ == "__main__":
  tf.test.main()
