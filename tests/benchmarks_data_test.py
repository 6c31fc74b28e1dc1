"""Tests of benchmark data sampling and of the protocol's scaling."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from benchmarks import data
from benchmarks import functions
from benchmarks import scaling


class DataTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*functions.NAMES)
  def test_samples_stay_in_domain_and_cover_it(self, name):
    bench = functions.get(name)
    x = data.sample_inputs(name, 5000, np.random.default_rng(1))
    self.assertEqual(x.shape, (5000, 2))
    self.assertTrue(np.all(x >= np.asarray(bench.low)))
    self.assertTrue(np.all(x <= np.asarray(bench.high)))
    # Uniform: each quarter of each axis holds about a quarter of the points.
    for axis in range(2):
      u = (x[:, axis] - bench.low[axis]) / (bench.high[axis] - bench.low[axis])
      counts = np.histogram(u, bins=4, range=(0, 1))[0]
      self.assertAllInRange(counts, 1100, 1400)

  def test_sets_are_seeded_and_distinct(self):
    a = data.train_set("booth", 20, seed=0)
    self.assertAllEqual(a.x, data.train_set("booth", 20, seed=0).x)
    self.assertNotAllClose(a.x, data.train_set("booth", 20, seed=1).x)
    self.assertNotAllClose(a.x, data.train_set("beale", 20, seed=0).x)
    self.assertNotAllClose(a.x[:20], data.validation_set("booth", 0).x[:20])
    test = data.test_set("booth")
    self.assertLen(test, data.TEST_SIZE)
    self.assertAllEqual(test.x, data.test_set("booth").x)
    self.assertNotAllClose(test.x[:20], a.x)

  def test_targets_are_values_and_gradients(self):
    s = data.train_set("rosenbrock", 7, seed=3)
    x, y = s.x[:, 0], s.x[:, 1]
    self.assertAllClose(s.y, (1 - x)**2 + 100 * (y - x**2)**2)
    self.assertAllClose(s.dy[:, 1], 200 * (y - x**2))

  def test_published_draws_are_unchanged(self):
    # The 2-D sets are drawn exactly as before D-dimensional functions
    # existed: SeedSequence([purpose, index in NAMES, size, seed]), [N, 2].
    rng = np.random.default_rng(np.random.SeedSequence([0, 2, 20, 1]))
    x = np.array([-10.0, -10.0]) + 20.0 * rng.random((20, 2))
    self.assertAllEqual(data.train_set("booth", 20, 1).x, x)

  @parameterized.parameters("rosenbrock_4d", "styblinski_tang_16d")
  def test_d_dimensional_sets(self, name):
    bench = functions.get(name)
    s = data.train_set(name, 50, 0)
    self.assertEqual(s.x.shape, (50, bench.dim))
    self.assertEqual(s.dy.shape, (50, bench.dim))
    self.assertTrue(np.all(s.x >= np.asarray(bench.low)))
    self.assertTrue(np.all(s.x <= np.asarray(bench.high)))
    self.assertAllClose(s.y, functions.value_and_gradient(name, s.x)[0])
    self.assertNotAllClose(s.x[:, :2], data.train_set(
        functions.with_dim(functions.family_and_dim(name)[0], 2), 50, 0).x)

  @parameterized.parameters(0, -3)
  def test_bad_size(self, size):
    with self.assertRaisesRegex(ValueError, "size"):
      data.train_set("booth", size, seed=0)

  def test_unknown_function(self):
    with self.assertRaisesRegex(ValueError, "Unknown benchmark"):
      data.train_set("nope", 10, seed=0)


class ScalingTest(tf.test.TestCase, parameterized.TestCase):

  def test_inputs_map_domain_to_unit_box(self):
    sc = scaling.Scaler.fit("bukin", data.train_set("bukin", 50, 0))
    self.assertAllClose(sc.inputs(np.array([[-15.0, -3.0], [-5.0, 3.0],
                                            [-10.0, 0.0]])),
                        [[-1, -1], [1, 1], [0, 0]])

  @parameterized.parameters(
      ("styblinski_tang", "ours"), ("styblinski_tang", "raw_l2"),
      ("styblinski_tang", "differential_ml"),
      ("rosenbrock_3d", "differential_ml"), ("mccormick", "raw_l2"))
  def test_chain_rule_matches_finite_differences_of_scaled_function(
      self, name, protocol):
    train = data.train_set(name, 30, 0)
    dim = functions.get(name).dim
    sc = scaling.Scaler.fit(name, train, protocol)
    v, dv = sc.targets(train.y, train.dy)
    if protocol == "raw_l2":
      self.assertAllEqual(v, train.y)
    else:
      self.assertAllClose(np.mean(v), 0.0, atol=1e-12)
      self.assertAllClose(np.std(v), 1.0)
    u = sc.inputs(train.x)
    if protocol == "differential_ml":
      # Inputs standardised with the training set's own statistics.
      self.assertAllClose(np.mean(u, axis=0), np.zeros(dim), atol=1e-12)
      self.assertAllClose(np.std(u, axis=0), np.ones(dim))
    else:
      self.assertAllInRange(u, -1.0, 1.0)
    eps = 1e-6
    for d in range(dim):
      step = np.zeros(dim)
      step[d] = eps
      xp = (u + step) * sc.half_width + sc.center
      xm = (u - step) * sc.half_width + sc.center
      vp = (functions.value_and_gradient(name, xp)[0] - sc.mean) / sc.std
      vm = (functions.value_and_gradient(name, xm)[0] - sc.mean) / sc.std
      self.assertAllClose(dv[:, d], (vp - vm) / (2 * eps), rtol=1e-5,
                          atol=1e-6)
    y, dy = sc.outputs(v, dv)
    self.assertAllClose(y, train.y)
    self.assertAllClose(dy, train.dy)


if __name__ == "__main__":
  tf.test.main()
