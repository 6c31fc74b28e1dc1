"""Tests for sobolev.derivatives: analytic values and finite differences."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import finite_differences

# Execution modes: eager, graph (tf.function) and XLA (jit_compile=True).
MODES = (("eager", None), ("graph", False), ("xla", True))


def _run(fn, mode_jit, *args):
  if mode_jit is None:
    return fn(*args)
  return tf.function(fn, jit_compile=mode_jit)(*args)


def two_output_fn(x):
  """f(x) = [x0^2 x1 + 3 x1^3, sin(x0) exp(x1)], maps [B, 2] -> [B, 2]."""
  x0, x1 = x[:, 0], x[:, 1]
  return tf.stack([x0**2 * x1 + 3.0 * x1**3, tf.sin(x0) * tf.exp(x1)], axis=1)


def two_output_jacobian(x):
  x0, x1 = x[:, 0], x[:, 1]
  return np.stack([
      np.stack([2 * x0 * x1, x0**2 + 9 * x1**2], axis=1),
      np.stack([np.cos(x0) * np.exp(x1), np.sin(x0) * np.exp(x1)], axis=1),
  ], axis=1)  # [B, 2, 2]


def two_output_hessian(x):
  x0, x1 = x[:, 0], x[:, 1]
  h0 = np.stack([np.stack([2 * x1, 2 * x0], 1),
                 np.stack([2 * x0, 18 * x1], 1)], 1)
  s, c, e = np.sin(x0), np.cos(x0), np.exp(x1)
  h1 = np.stack([np.stack([-s * e, c * e], 1),
                 np.stack([c * e, s * e], 1)], 1)
  return np.stack([h0, h1], axis=1)  # [B, 2, 2, 2]


# Scalar functions of x in R^3 with hand-derived gradient and Hessian.
SCALAR_CASES = {
    "polynomial": (
        lambda x: x[:, 0]**3 + 2.0 * x[:, 0] * x[:, 1] - x[:, 2]**2,
        lambda x: np.stack([3 * x[:, 0]**2 + 2 * x[:, 1], 2 * x[:, 0],
                            -2 * x[:, 2]], 1),
        lambda x: np.stack([
            np.stack([6 * x[:, 0], 2 + 0 * x[:, 0], 0 * x[:, 0]], 1),
            np.stack([2 + 0 * x[:, 0], 0 * x[:, 0], 0 * x[:, 0]], 1),
            np.stack([0 * x[:, 0], 0 * x[:, 0], -2 + 0 * x[:, 0]], 1)], 1)),
    "sin": (
        lambda x: tf.sin(x[:, 0] * x[:, 1]) + tf.sin(x[:, 2]),
        lambda x: np.stack([x[:, 1] * np.cos(x[:, 0] * x[:, 1]),
                            x[:, 0] * np.cos(x[:, 0] * x[:, 1]),
                            np.cos(x[:, 2])], 1),
        lambda x: _sin_hessian(x)),
    "exp": (
        lambda x: tf.exp(x[:, 0] + 2.0 * x[:, 1] - x[:, 2]),
        lambda x: np.exp(x[:, 0] + 2 * x[:, 1] - x[:, 2])[:, None] *
        np.array([1.0, 2.0, -1.0]),
        lambda x: np.exp(x[:, 0] + 2 * x[:, 1] - x[:, 2])[:, None, None] *
        np.outer([1.0, 2.0, -1.0], [1.0, 2.0, -1.0])),
}


def _sin_hessian(x):
  a, b = x[:, 0], x[:, 1]
  s, c = np.sin(a * b), np.cos(a * b)
  z = 0 * a
  return np.stack([
      np.stack([-b * b * s, c - a * b * s, z], 1),
      np.stack([c - a * b * s, -a * a * s, z], 1),
      np.stack([z, z, -np.sin(x[:, 2])], 1)], 1)


def _points(batch, dim, seed=0):
  return tf.constant(
      np.random.RandomState(seed).uniform(-1.5, 1.5, (batch, dim)), tf.float64)


class AnalyticDerivativesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(m, j) for m, j in MODES])
  def test_jacobian_and_hessian_of_two_output_function(self, jit):
    x = _points(5, 2)
    y, jac, hess = _run(derivatives.value_and_hessian, jit, two_output_fn, x)
    self.assertEqual(y.shape, (5, 2))
    self.assertEqual(jac.shape, (5, 2, 2))
    self.assertEqual(hess.shape, (5, 2, 2, 2))
    self.assertAllClose(jac, two_output_jacobian(x.numpy()), atol=1e-10)
    self.assertAllClose(hess, two_output_hessian(x.numpy()), atol=1e-10)

  @parameterized.product(case=sorted(SCALAR_CASES), mode=[m for m, _ in MODES])
  def test_scalar_functions(self, case, mode):
    fn, grad_fn, hess_fn = SCALAR_CASES[case]
    jit = dict(MODES)[mode]
    x = _points(4, 3, seed=1)
    y, g = _run(derivatives.value_and_gradient, jit, fn, x)
    self.assertEqual(y.shape, (4, 1))
    self.assertAllClose(y[:, 0], fn(x))
    self.assertAllClose(g, grad_fn(x.numpy()), atol=1e-10)
    hess = _run(derivatives.hessian, jit, fn, x)
    self.assertEqual(hess.shape, (4, 1, 3, 3))
    self.assertAllClose(hess[:, 0], hess_fn(x.numpy()), atol=1e-10)

  @parameterized.named_parameters(*[(m, j) for m, j in MODES])
  def test_projections_match_contracted_full_derivatives(self, jit):
    x = _points(6, 2, seed=2)
    rng = np.random.RandomState(3)
    v1 = tf.constant(rng.normal(size=(6, 2)))
    v2 = tf.constant(rng.normal(size=(6, 2)))
    y, p1, p2 = _run(derivatives.value_and_hvp, jit, two_output_fn, x, v1, v2)
    jac = two_output_jacobian(x.numpy())
    hess = two_output_hessian(x.numpy())
    self.assertAllClose(p1, np.einsum("bo,bod->bd", v1, jac), atol=1e-10)
    self.assertAllClose(p2, np.einsum("bo,bode,be->bd", v1, hess, v2),
                        atol=1e-10)
    self.assertAllClose(y, two_output_fn(x))
    # A shared (unbatched) vector broadcasts over the batch.
    shared = tf.constant([0.3, -0.7], tf.float64)
    self.assertAllClose(
        _run(derivatives.vjp, jit, two_output_fn, x, shared),
        np.einsum("o,bod->bd", shared, jac), atol=1e-10)

  @parameterized.parameters(True, False)
  def test_unrolled_and_vectorised_paths_agree(self, jit):
    tf.random.set_seed(3)
    mlp = snt.nets.MLP([16, 3], activation=tf.nn.softplus)
    x = _points(4, 2, seed=5)
    results = []
    for unroll in (True, False):
      fn = lambda z, u=unroll: derivatives.value_and_hessian(mlp, z, unroll=u)
      results.append(tf.function(fn, jit_compile=jit)(x))
    for a, b in zip(*results):
      self.assertAllClose(a, b, atol=1e-12)
    self.assertEqual(results[0][2].shape, (4, 3, 2, 2))

  def test_derivatives_are_per_example(self):
    # Example b's Jacobian must not pick up other examples' outputs.
    x = _points(3, 2)
    jac = derivatives.jacobian(two_output_fn, x)
    single = derivatives.jacobian(two_output_fn, x[1:2])
    self.assertAllClose(jac[1:2], single)


class FiniteDifferenceAgreementTest(tf.test.TestCase, parameterized.TestCase):

  def _softplus_mlp(self, out):
    mlp = snt.nets.MLP([16, 16, out], activation=tf.nn.softplus)
    mlp(tf.zeros([1, 3], tf.float64))
    return mlp

  @parameterized.named_parameters(*[(m, j) for m, j in MODES])
  def test_softplus_mlp_jacobian_and_hessian(self, jit):
    tf.random.set_seed(0)
    mlp = self._softplus_mlp(2)
    x = _points(4, 3, seed=4)
    _, jac, hess = _run(derivatives.value_and_hessian, jit, mlp, x)
    fd_jac = finite_differences.jacobian(lambda a: mlp(tf.constant(a)).numpy(),
                                         x.numpy(), step=1e-6)
    self.assertAllClose(jac, fd_jac, atol=1e-7)
    # Hessian rows are Jacobians of the gradient.
    for o in range(2):
      grad_o = lambda a, o=o: derivatives.jacobian(mlp, tf.constant(a))[:, o]
      fd_hess = finite_differences.jacobian(lambda a: grad_o(a).numpy(),
                                            x.numpy(), step=1e-5)
      self.assertAllClose(hess[:, o], fd_hess, atol=1e-6)
    # The Hessian of a smooth network is symmetric and non-zero.
    self.assertAllClose(hess, tf.transpose(hess, [0, 1, 3, 2]), atol=1e-12)
    self.assertGreater(float(tf.reduce_max(tf.abs(hess))), 1e-4)

  def test_relu_mlp_hessian_is_zero(self):
    mlp = snt.nets.MLP([16, 1])
    hess = derivatives.hessian(mlp, _points(4, 3))
    self.assertAllEqual(hess, tf.zeros_like(hess))


def image_fn(x):
  """A smooth two-output function of images `[B, 2, 3, 2]`."""
  w = tf.reshape(tf.range(12, dtype=x.dtype) / 12.0 - 0.4, [1, 2, 3, 2])
  return tf.stack([tf.reduce_sum(tf.sin(x * w) * x, axis=[1, 2, 3]),
                   tf.reduce_sum(x**3, axis=[1, 2, 3]) *
                   tf.reduce_sum(x * w, axis=[1, 2, 3])], axis=1)


class AnyShapeTest(tf.test.TestCase, parameterized.TestCase):
  """Inputs `[B, ...]`: derivatives shaped like `x`, equal to the flat path."""

  def _flat(self, x):
    return (lambda z: image_fn(tf.reshape(z, x.shape))), tf.reshape(
        x, [x.shape[0], -1])

  @parameterized.named_parameters(*[(m, j) for m, j in MODES])
  def test_jacobian_and_hessian_match_flattened(self, jit):
    x = tf.constant(np.random.RandomState(0).normal(size=(3, 2, 3, 2)))
    y, jac, hess = _run(derivatives.value_and_hessian, jit, image_fn, x)
    self.assertEqual(jac.shape, (3, 2, 2, 3, 2))
    self.assertEqual(hess.shape, (3, 2, 2, 3, 2, 2, 3, 2))
    flat_fn, flat_x = self._flat(x)
    y_f, jac_f, hess_f = derivatives.value_and_hessian(flat_fn, flat_x)
    self.assertAllClose(y, y_f)
    self.assertAllClose(tf.reshape(jac, [3, 2, 12]), jac_f, atol=1e-12)
    self.assertAllClose(tf.reshape(hess, [3, 2, 12, 12]), hess_f, atol=1e-12)
    for unroll in (True, False):
      _, jac_u, hess_u = derivatives.value_and_hessian(image_fn, x,
                                                       unroll=unroll)
      self.assertAllClose(jac_u, jac, atol=1e-12)
      self.assertAllClose(hess_u, hess, atol=1e-12)

  @parameterized.named_parameters(*[(m, j) for m, j in MODES])
  def test_projections_are_shaped_like_x(self, jit):
    rng = np.random.RandomState(1)
    x = tf.constant(rng.normal(size=(3, 2, 3, 2)))
    v1 = tf.constant(rng.normal(size=(3, 2)))
    v2 = tf.constant(rng.normal(size=(3, 2, 3, 2)))
    y, p1, p2 = _run(derivatives.value_and_hvp, jit, image_fn, x, v1, v2)
    self.assertEqual(p1.shape, x.shape)
    self.assertEqual(p2.shape, x.shape)
    _, jac, hess = derivatives.value_and_hessian(image_fn, x)
    # The public contractions of full derivatives give the same numbers.
    self.assertAllClose(p1, derivatives.project_jacobian(jac, v1), atol=1e-10)
    self.assertAllClose(p2, derivatives.project_hessian(hess, v1, v2),
                        atol=1e-10)
    self.assertAllClose(
        p2, np.einsum("bo,bode,be->bd", v1, tf.reshape(hess, [3, 2, 12, 12]),
                      tf.reshape(v2, [3, 12])).reshape(3, 2, 3, 2),
        atol=1e-10)
    # A shared v2 (one example's shape) broadcasts over the batch.
    shared = derivatives.hvp(image_fn, x, v1, v2[0])
    self.assertAllClose(shared, derivatives.hvp(
        image_fn, x, v1, tf.tile(v2[:1], [3, 1, 1, 1])))

  def test_project_functions_on_vectors(self):
    rng = np.random.RandomState(2)
    jac, hess = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2, 2))
    v1, v2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    self.assertAllClose(derivatives.project_jacobian(jac, v1),
                        np.einsum("bo,bod->bd", v1, jac))
    self.assertAllClose(derivatives.project_hessian(hess, v1, v2),
                        np.einsum("bo,bode,be->bd", v1, hess, v2))

  def test_callable_v1_gets_the_output_dimension(self):
    x = _points(4, 2)
    seen = []

    def sample(out_dim):
      seen.append(out_dim)
      return tf.ones([4, out_dim], tf.float64)

    p1 = derivatives.vjp(two_output_fn, x, sample)
    self.assertEqual(seen, [2])
    self.assertAllClose(p1, derivatives.vjp(two_output_fn, x,
                                            tf.ones([2], tf.float64)))

  def test_dict_inputs(self):
    x = _points(4, 2)
    inputs = {"x": x, "shift": tf.ones([4, 1], tf.float64)}
    fn = lambda d: two_output_fn(d["x"]) + d["shift"]
    self.assertAllClose(derivatives.jacobian(fn, inputs, wrt="x"),
                        two_output_jacobian(x.numpy()))
    with self.assertRaisesRegex(TypeError, r"pass `wrt=`"):
      derivatives.jacobian(fn, inputs)
    self.assertAllClose(
        derivatives.jacobian(lambda t: two_output_fn(t[1]), (1.0, x), wrt=1),
        two_output_jacobian(x.numpy()))


class BadInputTest(tf.test.TestCase):

  def test_integer_inputs(self):
    with self.assertRaisesRegex(TypeError, "`x` must be a floating"):
      derivatives.gradient(lambda x: x[:, 0], tf.ones([2, 2], tf.int32))

  def test_wrong_rank(self):
    with self.assertRaisesRegex(ValueError, r"`x` must have shape \[batch"):
      derivatives.jacobian(lambda x: x, tf.ones([2]))

  def test_output_not_depending_on_input(self):
    const = lambda x: tf.ones([2, 1])
    with self.assertRaisesRegex(ValueError, "does not depend on its input"):
      derivatives.gradient(const, tf.ones([2, 3]))
    with self.assertRaisesRegex(ValueError, "does not depend on its input"):
      derivatives.vjp(lambda x: 2.0 * tf.stop_gradient(x), tf.ones([2, 3]),
                      tf.ones([3]))

  def test_output_not_depending_on_input_in_graph(self):
    fn = tf.function(lambda x: derivatives.jacobian(lambda z: 0.0 * tf.ones(
        [2, 2]), x))
    with self.assertRaisesRegex(ValueError, "does not depend on its input"):
      fn(tf.ones([2, 3]))

  def test_dtype_mismatches_name_both_dtypes(self):
    with self.assertRaisesRegex(TypeError, "The model returned dtype float64 "
                                "for inputs `x` of dtype float32"):
      derivatives.jacobian(lambda x: tf.cast(x, tf.float64), tf.ones([2, 2]))
    with self.assertRaisesRegex(TypeError, "`v1` has dtype float32 but the "
                                "model computes in float64"):
      derivatives.vjp(two_output_fn, _points(2, 2), tf.ones([2]))
    with self.assertRaisesRegex(TypeError, "`v2` has dtype int64"):
      derivatives.hvp(two_output_fn, _points(2, 2), np.ones(2),
                      np.ones(2, np.int64))

  def test_vector_batch_checked_in_graph(self):
    fn = tf.function(lambda x, v: derivatives.vjp(two_output_fn, x, v),
                     input_signature=[tf.TensorSpec([None, 2], tf.float64),
                                      tf.TensorSpec([None, 2], tf.float64)])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "`v1` and `x` must have the same batch size"):
      fn(_points(4, 2), tf.ones([1, 2], tf.float64))

  def test_empty_batch(self):
    with self.assertRaisesRegex(ValueError, "`x` has batch size 0"):
      derivatives.jacobian(two_output_fn, tf.zeros([0, 2]))

  def test_gradient_needs_scalar_output(self):
    with self.assertRaisesRegex(ValueError, "scalar-output"):
      derivatives.gradient(lambda x: x, tf.ones([2, 3]))

  def test_projection_vector_dimension(self):
    with self.assertRaisesRegex(ValueError,
                                r"`v1` must have shape \[2\] or \[batch\]"):
      derivatives.vjp(two_output_fn, tf.ones([2, 2]), tf.ones([3]))
    with self.assertRaisesRegex(ValueError,
                                r"`v2` must have shape \[2\] or \[batch\]"):
      derivatives.hvp(two_output_fn, tf.ones([2, 2]), tf.ones([2]),
                      tf.ones([5]))


if __name__ == "__main__":
  tf.test.main()
