"""Tests of sobolev.experiment.schedules (cosine decay, Python and TF)."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev.experiment import schedules


# The two formulas the helper replaces, verbatim from commit 7475d0b.
def _old_benchmarks(learning_rate, final_lr_fraction, steps, step):
  """benchmarks/trainer.py `learning_rate(config, step)` at 7475d0b."""
  frac = tf.minimum(tf.cast(step, tf.float32) / float(steps), 1.0)
  final = final_lr_fraction
  cosine = 0.5 * (1.0 + tf.cos(math.pi * frac))
  return learning_rate * (final + (1.0 - final) * cosine)


def _old_synthetic_gradients(base, schedule, step, total_steps):
  """synthetic_gradients/distribute.py `learning_rate_at` at 7475d0b."""
  if schedule == "constant":
    return base
  if schedule == "cosine":
    frac = min(1.0, step / max(1, total_steps))
    return base * 0.5 * (1.0 + math.cos(math.pi * frac))
  raise ValueError(schedule)


class CosineTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(
      (0, 0.0, 1.0), (50, 0.0, 0.5), (25, 0.0, 0.5 * (1 + math.sqrt(0.5))),
      (100, 0.0, 0.0), (150, 0.0, 0.0), (0, 0.1, 1.0), (50, 0.1, 0.55),
      (100, 0.1, 0.1), (1000, 0.1, 0.1), (75, 0.2, 0.2 + 0.8 * 0.5 *
                                          (1 - math.sqrt(0.5))))
  def test_hand_values_python_and_tf(self, step, final, expected):
    got = schedules.cosine(2.0, step, 100, final)
    self.assertIsInstance(got, float)
    self.assertAlmostEqual(got, 2.0 * expected, places=12)
    for dtype in (tf.int32, tf.int64, tf.float32):
      tensor = schedules.cosine(2.0, tf.constant(step, dtype), 100, final)
      self.assertEqual(tensor.dtype, tf.float32)
      self.assertAllClose(tensor, 2.0 * expected, atol=1e-6)

  def test_numpy_steps_give_python_numbers(self):
    for step in (np.int64(50), np.int32(50), np.float64(50.0)):
      got = schedules.cosine(1.0, step, 100)
      self.assertIsInstance(got, float)
      self.assertAlmostEqual(got, 0.5, places=12)

  def test_inside_tf_function_with_a_variable_step(self):
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def lr():
      return schedules.cosine(1e-3, step, 10, 0.5)

    values = []
    for _ in range(12):
      values.append(float(lr()))
      step.assign_add(1)
    self.assertAllClose(values, [schedules.cosine(1e-3, s, 10, 0.5)
                                 for s in range(12)], atol=1e-9)

  @parameterized.parameters((1e-3, 0.0, 100), (3e-3, 0.1, 250),
                            (0.1, 0.01, 7))
  def test_identical_to_the_old_benchmarks_formula(self, base, final, steps):
    step = tf.range(steps + 5)
    self.assertAllEqual(schedules.cosine(base, step, steps, final),
                        _old_benchmarks(base, final, steps, step))

  @parameterized.parameters((1e-3, 100), (0.05, 37), (0.1, 1))
  def test_identical_to_the_old_synthetic_gradients_formula(self, base,
                                                            total):
    for step in range(total + 3):
      self.assertEqual(schedules.get("cosine", base, step, total),
                       _old_synthetic_gradients(base, "cosine", step, total))
      self.assertEqual(schedules.get("constant", base, step, total),
                       _old_synthetic_gradients(base, "constant", step,
                                                total))

  @parameterized.parameters(0, -3, 2.5, True)
  def test_bad_total_steps_raise(self, total):
    with self.assertRaisesRegex(ValueError, "`total_steps` must be an "
                                "integer >= 1"):
      schedules.cosine(1.0, 0, total)

  def test_unknown_schedule_raises(self):
    with self.assertRaisesRegex(ValueError, "`schedule` must be 'constant' or "
                                "'cosine', got 'linear'"):
      schedules.get("linear", 1.0, 0, 10)


if __name__ == "__main__":
  tf.test.main()
