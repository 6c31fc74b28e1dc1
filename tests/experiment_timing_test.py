"""Tests of the shared timing loop (`sobolev.experiment.timing`)."""

import tensorflow as tf

from sobolev.experiment import timing


class TimingTest(tf.test.TestCase):

  def test_block_timer_warms_up_and_divides_by_steps(self):
    calls = []

    def call():
      calls.append(1)
      return {"x": tf.constant(1.0)}

    block = timing.block_timer(call, warmup_calls=2, calls=3,
                               steps_per_call=5)
    self.assertLen(calls, 2)  # Warm-up only.
    us = block()
    self.assertLen(calls, 5)
    self.assertGreater(us, 0.0)

  def test_interleave_rotates_and_counts(self):
    order = []
    timers = [lambda i=i: order.append(i) or float(i) for i in range(3)]
    times = timing.interleave(timers, repeats=2)
    self.assertEqual(order, [0, 1, 2, 1, 2, 0])
    self.assertEqual(times, [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    self.assertEqual(timing.summary([3.0, 1.0, 2.0]),
                     {"median_us": 2.0, "min_us": 1.0})

  def test_stack_batches(self):
    batch = {"x": tf.constant([[1.0], [2.0], [3.0]])}
    stacked = timing.stack_batches(batch, 2)
    self.assertAllEqual(stacked["x"][:, :, 0], [[1, 2, 3], [3, 1, 2]])

  def test_bad_counts(self):
    with self.assertRaisesRegex(ValueError, "calls >= 1"):
      timing.block_timer(lambda: 0, warmup_calls=0, calls=0)


if __name__ == "__main__":
  tf.test.main()
