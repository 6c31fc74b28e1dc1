"""Tests for sobolev.losses and sobolev.sampling."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev import losses
from sobolev import sampling


class LossesTest(tf.test.TestCase, parameterized.TestCase):

  def test_hand_computed(self):
    p = tf.constant([[[1.0, 2.0]], [[0.0, -1.0]]])  # [2, 1, 2]
    t = tf.constant([[[0.0, 0.0]], [[1.0, 1.0]]])
    self.assertAllClose(losses.l2(p, t), ((1 + 4) + (1 + 4)) / 2)
    self.assertAllClose(losses.l1(p, t), ((1 + 2) + (1 + 2)) / 2)
    self.assertAllClose(losses.l2_norm(p, t), np.sqrt(5.0), atol=1e-5)

  @parameterized.parameters("l2", "l1", "l2_norm")
  def test_target_gets_no_gradient(self, name):
    p = tf.Variable([[1.0, 2.0]])
    t = tf.Variable([[0.5, 0.0]])
    with tf.GradientTape() as tape:
      value = losses.get(name)(p, t)
    g_p, g_t = tape.gradient(value, [p, t])
    self.assertIsNotNone(g_p)
    self.assertIsNone(g_t)

  def test_l2_norm_gradient_finite_at_zero(self):
    p = tf.Variable([[1.0, 2.0]])
    with tf.GradientTape() as tape:
      value = losses.l2_norm(p, tf.constant([[1.0, 2.0]]))
    self.assertTrue(np.all(np.isfinite(tape.gradient(value, p).numpy())))

  @parameterized.parameters("l2", "l1", "l2_norm")
  def test_per_example_twins(self, name):
    p = tf.constant([[[1.0, 2.0]], [[0.0, -1.0]], [[3.0, 0.5]]])
    t = tf.constant([[[0.0, 0.0]], [[1.0, 1.0]], [[3.0, 0.0]]])
    per_example = losses.per_example(name)(p, t)
    self.assertEqual(per_example.shape, (3,))
    self.assertAllClose(tf.reduce_mean(per_example), losses.get(name)(p, t))
    error = {"l2": lambda d: np.sum(d**2, (1, 2)),
             "l1": lambda d: np.sum(np.abs(d), (1, 2)),
             "l2_norm": lambda d: np.sqrt(np.sum(d**2, (1, 2)) + 1e-12)}[name]
    self.assertAllClose(per_example, error((p - t).numpy()))
    self.assertIsNone(losses.per_example(lambda a, b: a - b))
    self.assertEqual(losses.is_l2(name), name == "l2")

  @parameterized.parameters("l2", "l1", "l2_norm")
  def test_shapes_that_would_broadcast_are_rejected(self, name):
    # l2(zeros([4, 1]), ones([4])) used to broadcast to [4, 4] and return 4.0.
    with self.assertRaisesRegex(ValueError, r"prediction has shape \(4, 1\) "
                                r"but the target has shape \(4,\)"):
      losses.get(name)(tf.zeros([4, 1]), tf.ones([4]))
    with self.assertRaisesRegex(ValueError, "must be equal"):
      losses.get(name)(tf.zeros([4, 1]), tf.ones([1, 1]))
    fn = tf.function(losses.get(name), input_signature=[
        tf.TensorSpec([None, None]), tf.TensorSpec([None, None])])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "must have equal shapes"):
      fn(tf.zeros([4, 1]), tf.ones([1, 1]))
    self.assertAllClose(fn(tf.zeros([4, 1]), tf.ones([4, 1])),
                        losses.get(name)(tf.zeros([4, 1]), tf.ones([4, 1])))

  def test_get(self):
    self.assertIs(losses.get("l1"), losses.l1)
    fn = lambda p, t: tf.reduce_sum(p - t)
    self.assertIs(losses.get(fn), fn)
    with self.assertRaisesRegex(ValueError, "unknown loss 'huber'"):
      losses.get("huber")
    with self.assertRaisesRegex(TypeError, "`loss_fn` must be a loss name"):
      losses.get(1.5)


class SamplingTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(1, 3, 10)
  def test_unit_norm_and_moments(self, dim):
    v = sampling.unit_sphere([20000], dim, tf.float64, seed=[3, 4]).numpy()
    self.assertEqual(v.shape, (20000, dim))
    self.assertAllClose(np.linalg.norm(v, axis=1), np.ones(20000))
    # Uniform on the sphere: mean 0 and E[v v^T] = I / dim.
    self.assertAllClose(v.mean(0), np.zeros(dim), atol=0.03)
    self.assertAllClose(v.T @ v / 20000, np.eye(dim) / dim, atol=0.02)

  def test_seeded_and_generator_sampling_is_deterministic(self):
    a = sampling.unit_sphere([4], 3, seed=[1, 2])
    self.assertAllEqual(a, sampling.unit_sphere([4], 3, seed=[1, 2]))
    g1, g2 = tf.random.Generator.from_seed(5), tf.random.Generator.from_seed(5)
    self.assertAllEqual(sampling.unit_sphere([4], 3, rng=g1),
                        sampling.unit_sphere([4], 3, rng=g2))

  def test_int_seed(self):
    # An int seed s (as SobolevLoss takes) is the stateless seed [s, 0].
    a = sampling.unit_sphere([4], 3, seed=0)
    self.assertAllEqual(a, sampling.unit_sphere([4], 3, seed=[0, 0]))
    self.assertAllEqual(a, sampling.unit_sphere([4], 3, seed=np.int64(0)))
    self.assertNotAllClose(a, sampling.unit_sphere([4], 3, seed=1))
    self.assertAllClose(np.linalg.norm(a, axis=1), np.ones(4))
    graph = tf.function(lambda: sampling.unit_sphere([4], 3, seed=0))()
    self.assertAllEqual(a, graph)

  @parameterized.named_parameters(
      ("string", "abc", TypeError, "`seed` must be an int or a shape"),
      ("float", 1.5, TypeError, "`seed` must be an int or a shape"),
      ("bool", True, TypeError, "`seed` must be an int or a shape"),
      ("shape", [1, 2, 3], ValueError, r"`seed` must be an int or have shape "
       r"\[2\], got shape \[3\]"),
      ("float_tensor", tf.constant([1.0, 2.0]), TypeError,
       "`seed` must have an integer dtype"),
  )
  def test_bad_seeds(self, seed, error, regex):
    with self.assertRaisesRegex(error, regex):
      sampling.unit_sphere([2], 3, seed=seed)

  def test_check_seed(self):
    self.assertIsNone(sampling.check_seed(None))
    self.assertEqual(sampling.check_seed(np.int32(3)), 3)
    with self.assertRaisesRegex(TypeError, "`seed` must be an int or None, "
                                "got 'abc'"):
      sampling.check_seed("abc")

  def test_bad_inputs(self):
    with self.assertRaisesRegex(TypeError, "`rng` must be a tf.random"):
      sampling.unit_sphere([2], 2, rng=3)
    with self.assertRaisesRegex(TypeError, "`dtype` must be floating"):
      sampling.unit_sphere([2], 2, dtype=tf.int32)
    with self.assertRaisesRegex(ValueError, "`dim` must be >= 1"):
      sampling.unit_sphere([2], 0)
    with self.assertRaisesRegex(ValueError, "at most one of `rng` and `seed`"):
      sampling.unit_sphere([2], 2, rng=tf.random.Generator.from_seed(1),
                           seed=[1, 2])


if __name__ == "__main__":
  tf.test.main()
