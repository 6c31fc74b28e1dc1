"""Tests of the benchmark functions: minima and hand-derived gradients."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from benchmarks import functions
from sobolev import finite_differences


def _hand_gradient(name, p):
  """Hand-derived gradients (numpy), `p [N, 2] -> [N, 2]`."""
  x, y = p[:, 0], p[:, 1]
  if name == "ackley":
    r = np.sqrt(0.5 * (x**2 + y**2))
    e1 = np.exp(-0.2 * r)
    e2 = np.exp(0.5 * (np.cos(2 * np.pi * x) + np.cos(2 * np.pi * y)))
    # d/dx [-20 exp(-0.2 r)] = 20 * 0.2 * exp(-0.2 r) * dr/dx, dr/dx = 0.5x/r.
    gx = 4 * e1 * 0.5 * x / r + e2 * np.pi * np.sin(2 * np.pi * x)
    gy = 4 * e1 * 0.5 * y / r + e2 * np.pi * np.sin(2 * np.pi * y)
  elif name == "beale":
    a = 1.5 - x + x * y
    b = 2.25 - x + x * y**2
    c = 2.625 - x + x * y**3
    gx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1)
    gy = 2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2
  elif name == "booth":
    gx = 2 * (x + 2 * y - 7) + 4 * (2 * x + y - 5)
    gy = 4 * (x + 2 * y - 7) + 2 * (2 * x + y - 5)
  elif name == "bukin":
    d = y - 0.01 * x**2
    s = np.sign(d)
    gx = 100 * 0.5 / np.sqrt(np.abs(d)) * s * (-0.02 * x) + 0.01 * np.sign(
        x + 10)
    gy = 100 * 0.5 / np.sqrt(np.abs(d)) * s
  elif name == "mccormick":
    gx = np.cos(x + y) + 2 * (x - y) - 1.5
    gy = np.cos(x + y) - 2 * (x - y) + 2.5
  elif name == "rosenbrock":
    gx = -2 * (1 - x) - 400 * x * (y - x**2)
    gy = 200 * (y - x**2)
  elif name == "styblinski_tang":
    gx = 0.5 * (4 * x**3 - 32 * x + 5)
    gy = 0.5 * (4 * y**3 - 32 * y + 5)
  else:
    raise ValueError(name)
  return np.stack([gx, gy], axis=1)


class FunctionsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*functions.NAMES)
  def test_minimum_value_and_stationarity(self, name):
    bench = functions.get(name)
    v, g = functions.value_and_gradient(name, np.array([bench.minimizer]))
    self.assertAllClose(v, [bench.minimum], atol=1e-7)
    self.assertAllClose(g, [[0.0, 0.0]], atol=1e-5)
    self.assertTrue(np.all(np.asarray(bench.low) <= bench.minimizer))
    self.assertTrue(np.all(np.asarray(bench.minimizer) <= bench.high))

  @parameterized.parameters(*functions.NAMES)
  def test_minimum_is_lowest_on_a_grid(self, name):
    bench = functions.get(name)
    gx = np.linspace(bench.low[0], bench.high[0], 101)
    gy = np.linspace(bench.low[1], bench.high[1], 101)
    pts = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    v, _ = functions.value_and_gradient(name, pts)
    self.assertGreaterEqual(v.min(), bench.minimum - 1e-9)

  @parameterized.parameters(*functions.NAMES)
  def test_autodiff_matches_hand_gradient(self, name):
    bench = functions.get(name)
    rng = np.random.default_rng(0)
    low, high = np.asarray(bench.low), np.asarray(bench.high)
    pts = low + (high - low) * rng.random((50, 2))
    _, g = functions.value_and_gradient(name, pts)
    self.assertAllClose(g, _hand_gradient(name, pts), rtol=1e-9, atol=1e-9)

  def test_hand_computed_values(self):
    one = np.array([[1.0, 2.0]])
    expected = {
        "beale": (1.5 - 1 + 2)**2 + (2.25 - 1 + 4)**2 + (2.625 - 1 + 8)**2,
        "booth": (1 + 4 - 7)**2 + (2 + 2 - 5)**2,
        "mccormick": np.sin(3.0) + 1 - 1.5 + 5 + 1,
        "rosenbrock": 0 + 100 * (2 - 1)**2,
        "styblinski_tang": 0.5 * ((1 - 16 + 5) + (16 - 64 + 10)),
        "ackley": (-20 * np.exp(-0.2 * np.sqrt(2.5)) - np.exp(1.0) + np.e +
                   20),
    }
    for name, value in expected.items():
      self.assertAllClose(functions.value_and_gradient(name, one)[0], [value],
                          msg=name)
    # Bukin at (-10, 0): 100 sqrt(|0 - 1|) + 0.
    self.assertAllClose(
        functions.value_and_gradient("bukin", np.array([[-10.0, 0.0]]))[0],
        [100.0])

  def test_non_differentiable_points_give_finite_zero_gradient(self):
    _, g = functions.value_and_gradient("ackley", np.zeros([1, 2]))
    self.assertAllEqual(g, [[0.0, 0.0]])
    # Bukin ridge y = 0.01 x^2 (x = -10 too): the sqrt term's gradient is 0.
    _, g = functions.value_and_gradient("bukin", np.array([[-5.0, 0.25],
                                                           [-10.0, 1.0]]))
    self.assertTrue(np.all(np.isfinite(g)))
    self.assertAllClose(g, [[0.01, 0.0], [0.0, 0.0]])

  def test_float32_graph_mode(self):
    for name in functions.NAMES:
      fn = tf.function(functions.get(name).fn)
      out = fn(tf.constant([[0.5, -0.5]], tf.float32))
      self.assertEqual(out.shape, [1])
      self.assertEqual(out.dtype, tf.float32)

  def test_unknown_name(self):
    with self.assertRaisesRegex(ValueError, "Unknown benchmark.*ackley"):
      functions.get("sphere")
    with self.assertRaisesRegex(ValueError, r"shape \[N, 2\]"):
      functions.value_and_gradient("booth", np.zeros([3]))


class DimensionTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(3, 4, 8, 16)
  def test_minima_of_the_d_dimensional_families(self, dim):
    for family in functions.FAMILIES:
      bench = functions.get(functions.with_dim(family, dim))
      self.assertEqual(bench.dim, dim)
      self.assertEqual(bench.name, f"{family}_{dim}d")
      v, g = functions.value_and_gradient(bench.name,
                                          np.array([bench.minimizer]))
      self.assertAllClose(v, [bench.minimum], atol=1e-9)
      self.assertAllClose(g, np.zeros([1, dim]), atol=1e-6)
    self.assertEqual(functions.get(f"rosenbrock_{dim}d").minimum, 0.0)
    self.assertAllClose(functions.get(f"styblinski_tang_{dim}d").minimum,
                        -39.16616570377142 * dim)

  def test_hand_computed_points(self):
    # Rosenbrock 3-D at (0, 1, 2): [100 (1 - 0)^2 + 1] + [100 (2 - 1)^2 + 0];
    # gradient (-2 (1 - x1) - 400 x1 (x2 - x1^2), 200 (x2 - x1^2) - 2 (1 -
    # x2) - 400 x2 (x3 - x2^2), 200 (x3 - x2^2)) = (-2, 200 - 400, 200).
    v, g = functions.value_and_gradient("rosenbrock_3d",
                                        np.array([[0.0, 1.0, 2.0]]))
    self.assertAllClose(v, [201.0])
    self.assertAllClose(g, [[-2.0, -200.0, 200.0]])
    # Styblinski-Tang 3-D at (1, -1, 2): 0.5 (-10 - 20 - 38); gradient
    # 0.5 (4 x^3 - 32 x + 5) = (-11.5, 16.5, -13.5).
    v, g = functions.value_and_gradient("styblinski_tang_3d",
                                        np.array([[1.0, -1.0, 2.0]]))
    self.assertAllClose(v, [-34.0])
    self.assertAllClose(g, [[-11.5, 16.5, -13.5]])

  @parameterized.parameters("rosenbrock_5d", "styblinski_tang_4d")
  def test_gradients_match_finite_differences(self, name):
    bench = functions.get(name)
    rng = np.random.default_rng(3)
    x = np.asarray(bench.low) + (np.asarray(bench.high) -
                                 np.asarray(bench.low)) * rng.random(
                                     (20, bench.dim))
    _, g = functions.value_and_gradient(name, x)
    fd = finite_differences.gradient(
        lambda p: functions.value_and_gradient(name, p)[0], x, step=1e-5)
    self.assertAllClose(g, fd, rtol=1e-6, atol=1e-5)

  def test_two_dimensional_members_are_the_published_functions(self):
    self.assertEqual(functions.with_dim("rosenbrock", 2), "rosenbrock")
    self.assertEqual(functions.with_dim("styblinski_tang", 2),
                     "styblinski_tang")
    with self.assertRaisesRegex(ValueError, "Unknown benchmark"):
      functions.get("rosenbrock_2d")
    # The general formula agrees with the published 2-D one (to rounding).
    x = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))
    general = functions.rosenbrock_nd(tf.constant(x)).numpy()
    self.assertAllClose(general, functions.value_and_gradient("rosenbrock",
                                                              x)[0],
                        rtol=1e-12)
    # The published 2-D names, domains and seeding indices are unchanged.
    self.assertEqual(functions.NAMES, (
        "ackley", "beale", "booth", "bukin", "mccormick", "rosenbrock",
        "styblinski_tang"))
    self.assertEqual([functions.get(n).index for n in functions.NAMES],
                     list(range(7)))
    self.assertEqual(functions.get("bukin").low, (-15.0, -3.0))
    # A family member's index depends on its name only (and avoids 0-99).
    self.assertEqual(functions.get("rosenbrock_4d").index,
                     functions.name_index("rosenbrock_4d"))
    self.assertBetween(functions.get("rosenbrock_4d").index, 100, 9099)
    self.assertNotEqual(functions.get("rosenbrock_4d").index,
                        functions.get("rosenbrock_8d").index)

  @parameterized.parameters(("rosenbrock", 1), ("ackley", 3),
                            ("rosenbrock", 2.5))
  def test_bad_families(self, family, dim):
    with self.assertRaises(ValueError):
      functions.with_dim(family, dim)

  def test_wrong_input_dimension(self):
    with self.assertRaisesRegex(ValueError, r"shape \[N, 4\]"):
      functions.value_and_gradient("rosenbrock_4d", np.zeros([3, 2]))


class RegisterTest(tf.test.TestCase):

  def tearDown(self):
    for name in ("plane3", "bowl"):
      if name in functions.BENCHMARKS:
        functions.unregister(name)
    super().tearDown()

  def test_register_a_user_function(self):
    plane = functions.Benchmark(
        "plane3", "Plane 3-D", lambda p: tf.reduce_sum(p * [1.0, 2.0, 3.0],
                                                       axis=1),
        (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
    self.assertIs(functions.register(plane), plane)
    self.assertIs(functions.get("plane3"), plane)
    functions.get("rosenbrock_6d")  # Built on use, not listed as a user's.
    self.assertEqual(functions.known_names(), functions.NAMES + ("plane3",))
    self.assertFalse(functions.is_builtin("plane3"))
    v, g = functions.value_and_gradient("plane3", np.array([[1.0, 1.0, 0.5]]))
    self.assertAllClose(v, [4.5])
    self.assertAllClose(g, [[1.0, 2.0, 3.0]])
    with self.assertRaisesRegex(ValueError, "exists already"):
      functions.register(plane)
    for taken in ("booth", "rosenbrock_3d"):
      with self.assertRaisesRegex(ValueError, "exists already"):
        functions.register(functions.Benchmark(taken, "x", plane.fn,
                                               (0.0,), (1.0,)))
    with self.assertRaisesRegex(ValueError, "not a user-registered"):
      functions.unregister("booth")

  def test_bad_benchmarks(self):
    fn = lambda p: p[:, 0]
    with self.assertRaisesRegex(ValueError, "`name` must be"):
      functions.Benchmark("Bad Name", "x", fn, (0.0,), (1.0,))
    with self.assertRaisesRegex(ValueError, "low < high"):
      functions.Benchmark("bowl", "x", fn, (0.0, 1.0), (1.0, 1.0))
    with self.assertRaisesRegex(ValueError, "same length"):
      functions.Benchmark("bowl", "x", fn, (0.0, 1.0), (1.0,))
    with self.assertRaisesRegex(TypeError, "`fn` must be callable"):
      functions.Benchmark("bowl", "x", None, (0.0,), (1.0,))
    with self.assertRaisesRegex(TypeError, "functions.Benchmark"):
      functions.register("bowl")
    bad = functions.register(functions.Benchmark(
        "bowl", "x", lambda p: tf.reduce_sum(p, axis=1, keepdims=True),
        (0.0,), (1.0,)))
    with self.assertRaisesRegex(ValueError, r"must map \[N, 1\] to \[N\]"):
      functions.value_and_gradient(bad.name, np.zeros([2, 1]))


if __name__ == "__main__":
  tf.test.main()
