"""Tests for sobolev.finite_differences against analytic derivatives."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev import finite_differences


def rosenbrock(x):
  return (1 - x[:, 0])**2 + 100 * (x[:, 1] - x[:, 0]**2)**2


def rosenbrock_grad(x):
  a, b = x[:, 0], x[:, 1]
  return np.stack([-2 * (1 - a) - 400 * a * (b - a**2), 200 * (b - a**2)], 1)


def vector_fn(x):
  return np.stack([np.sin(x[:, 0]) * x[:, 1], np.exp(0.5 * x[:, 1]),
                   x[:, 0]**3], 1)


def vector_jac(x):
  z = np.zeros_like(x[:, 0])
  return np.stack([
      np.stack([np.cos(x[:, 0]) * x[:, 1], np.sin(x[:, 0])], 1),
      np.stack([z, 0.5 * np.exp(0.5 * x[:, 1])], 1),
      np.stack([3 * x[:, 0]**2, z], 1)], 1)


class FiniteDifferencesTest(tf.test.TestCase, parameterized.TestCase):

  def test_gradient_of_rosenbrock(self):
    x = np.random.RandomState(0).uniform(-2, 2, (7, 2))
    self.assertAllClose(finite_differences.gradient(rosenbrock, x),
                        rosenbrock_grad(x), rtol=1e-7, atol=1e-6)

  @parameterized.parameters(True, False)
  def test_jacobian_of_vector_function(self, relative):
    x = np.random.RandomState(1).uniform(-1, 1, (5, 2))
    jac = finite_differences.jacobian(vector_fn, x, relative=relative)
    self.assertEqual(jac.shape, (5, 3, 2))
    self.assertAllClose(jac, vector_jac(x), atol=1e-8)

  def test_central_differences_are_exact_for_quadratics(self):
    # The O(h^2) truncation error vanishes for polynomials of degree <= 2, so
    # even a huge step is exact.
    f = lambda x: 3 * x[:, 0]**2 - x[:, 0] * x[:, 1] + 2 * x[:, 1]
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    expected = np.stack([6 * x[:, 0] - x[:, 1], 2 - x[:, 0]], 1)
    self.assertAllClose(finite_differences.gradient(f, x, step=0.5,
                                                    relative=False), expected)

  def test_step_controls_truncation_error(self):
    f = lambda x: np.sin(x[:, 0])
    x = np.array([[0.7]])
    err = lambda h: abs(finite_differences.gradient(f, x, step=h)[0, 0] -
                        np.cos(0.7))
    # Error ~ h^2 cos(x) / 6: halving h quarters it.
    self.assertAllClose(err(0.1) / err(0.05), 4.0, rtol=0.01)
    self.assertLess(err(1e-5), 1e-9)

  def test_per_coordinate_steps(self):
    f = lambda x: x[:, 0]**3 + x[:, 1]**3
    x = np.array([[1.0, 1.0]])
    grad = finite_differences.gradient(f, x, step=np.array([0.1, 1e-5]),
                                       relative=False)
    # d/dx x^3 by central differences is 3x^2 + h^2 exactly.
    self.assertAllClose(grad, [[3.0 + 0.01, 3.0 + 1e-10]], atol=1e-8)

  def test_smallest_accepted_step(self):
    # Steps just above the floor are accepted (and still accurate to ~1e-2
    # relative for a smooth function), steps just below are refused.
    f = lambda x: np.sin(x[:, 0])
    x = np.array([[0.7]])
    floor = finite_differences.MIN_RELATIVE_STEP
    grad = finite_differences.gradient(f, x, step=1.01 * floor)
    self.assertAllClose(grad[0, 0], np.cos(0.7), rtol=5e-2)
    with self.assertRaisesRegex(ValueError, "too small"):
      finite_differences.gradient(f, x, step=0.99 * floor)

  def test_bad_inputs(self):
    x = np.zeros((3, 2))
    with self.assertRaisesRegex(TypeError, "`f` must be callable"):
      finite_differences.gradient(3, x)
    with self.assertRaisesRegex(ValueError, r"`x` must have shape \[N, D\]"):
      finite_differences.gradient(rosenbrock, np.zeros(3))
    with self.assertRaisesRegex(ValueError, "`step` must be finite and > 0"):
      finite_differences.gradient(rosenbrock, x, step=0.0)
    with self.assertRaisesRegex(ValueError, "`step` is too small for float64"):
      finite_differences.gradient(rosenbrock, x, step=1e-300)
    with self.assertRaisesRegex(ValueError, "`step` is too small for float64"):
      # Absolute steps are compared with |x|: 1e-12 is fine at 0, not at 1e6.
      finite_differences.gradient(rosenbrock, np.array([[0.0, 1e6]]),
                                  step=1e-12, relative=False)
    with self.assertRaisesRegex(ValueError, "`step` must be a scalar"):
      finite_differences.gradient(rosenbrock, x, step=np.ones(3))
    with self.assertRaisesRegex(ValueError, "`x` contains NaN"):
      finite_differences.gradient(rosenbrock, np.full((1, 2), np.nan))
    with self.assertRaisesRegex(ValueError, "scalar-valued"):
      finite_differences.gradient(vector_fn, x)
    with self.assertRaisesRegex(ValueError, "one row per input row"):
      finite_differences.gradient(lambda a: a[:1, 0], x)
    with self.assertRaisesRegex(ValueError, "returned NaN or Inf"):
      with np.errstate(divide="ignore", invalid="ignore"):
        finite_differences.gradient(lambda a: np.log(a[:, 0]), x)

  def test_empty_x_is_named(self):
    with self.assertRaisesRegex(
        ValueError, r"^`x` holds no points \(shape \(0, 3\)\); give at least "
        r"one point \[N, D\] with N >= 1\.$"):
      finite_differences.gradient(lambda a: a.sum(axis=1), np.zeros((0, 3)))
    with self.assertRaisesRegex(ValueError,
                                r"^`x` has no input coordinates \(shape "
                                r"\(2, 0\)\)"):
      finite_differences.jacobian(lambda a: a, np.zeros((2, 0)))


if __name__ == "__main__":
  tf.test.main()
