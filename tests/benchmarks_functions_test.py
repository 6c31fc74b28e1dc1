"""Tests of the benchmark functions: minima and hand-derived gradients."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from benchmarks import functions


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


if __name__ == "__main__":
  tf.test.main()
