"""Smoke test of the step-time benchmark (tiny repeats, no timing checks)."""

import csv
import os

import tensorflow as tf

from benchmarks import speed
from benchmarks import speed_profile


class SpeedBenchmarkTest(tf.test.TestCase):

  def test_smoke_run_writes_csv_with_exact_columns(self):
    workdir = self.create_tempdir().full_path
    config = speed.SpeedConfig(
        cases=("mlp_order1", "multi_output"), repeats=1, calls=1,
        steps_per_call=2, warmup_calls=1, compile_modes=("graph",),
        mlp_batches=(8,), multi_output_dims=(1, 3))
    rows = speed.run(config, workdir, log=None)
    with open(os.path.join(workdir, "speed.csv")) as f:
      reader = csv.DictReader(f)
      self.assertEqual(tuple(reader.fieldnames), speed.CSV_COLUMNS)
      table = list(reader)
    self.assertLen(table, 2 + 4)
    self.assertEqual([(r["case"], r["variant"]) for r in table[:2]],
                     [("mlp_order1", "regular"), ("mlp_order1", "sobolev")])
    self.assertEqual([(r["variant"], r["out_dim"]) for r in table[2:]],
                     [("exact", "1"), ("stochastic", "1"), ("exact", "3"),
                      ("stochastic", "3")])
    for r in table:
      self.assertGreater(float(r["min_us"]), 0.0)
      self.assertGreaterEqual(float(r["median_us"]), float(r["min_us"]))
    self.assertLen(rows, 6)
    self.assertTrue(os.path.exists(os.path.join(workdir, "speed.md")))

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, "unknown case 'gpu'"):
      speed.SpeedConfig(cases=("gpu",)).validate()
    with self.assertRaisesRegex(ValueError, "`repeats` must be an int >= 1"):
      speed.SpeedConfig(repeats=0).validate()
    with self.assertRaisesRegex(ValueError, "`compile_modes` must be"):
      speed.SpeedConfig(compile_modes=("tpu",)).validate()


  def test_profile_smoke_run_writes_every_part(self):
    workdir = self.create_tempdir().full_path
    config = speed_profile.ProfileConfig(
        repeats=1, calls=1, steps_per_call=2, warmup_calls=1,
        multi_output_dims=(1, 3))
    speed_profile.run(config, workdir, log=None)
    with open(os.path.join(workdir, "profile.csv")) as f:
      reader = csv.DictReader(f)
      self.assertEqual(tuple(reader.fieldnames), speed_profile.CSV_COLUMNS)
      table = list(reader)
    self.assertEqual(
        [(r["case"], r["part"], r["out_dim"]) for r in table],
        [("multi_output", "regular", "1"), ("multi_output", "stochastic", "1"),
         ("multi_output", "regular", "3"), ("multi_output", "stochastic", "3"),
         ("atari_student", "kl_step", "6"),
         ("atari_student", "teacher_vjp", "6"),
         ("atari_student", "student_vjp", "6"),
         ("atari_student", "student_grads", "6"),
         ("atari_student", "kl_sobolev_step", "6")])
    for r in table:
      self.assertGreater(float(r["min_us"]), 0.0)
    with self.assertRaisesRegex(ValueError, "unknown case"):
      speed_profile.ProfileConfig(cases=("x",)).validate()

  def test_replayed_teacher_gives_the_teacher_loss(self):
    # The profile's student_grads part replays precomputed teacher terms;
    # its loss must equal the loss with the teacher itself.
    from distillation import distill  # pylint: disable=g-import-not-at-top
    w = tf.constant([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]])
    target_fn = lambda x: tf.nn.log_softmax(tf.sin(x @ w))
    model = lambda x: tf.nn.log_softmax(tf.cos(x @ w))
    x = tf.constant([[0.1, 0.2, 0.3], [-0.4, 0.5, 0.6]])
    v = tf.constant([[0.6, 0.8], [1.0, 0.0]])
    with tf.GradientTape() as tape:
      tape.watch(x)
      t_logp = target_fn(x)
    t_proj = tape.gradient(t_logp, x, output_gradients=v)
    loss = distill.make_loss("sobolev", sobolev_weight=1.0)
    replayed = loss(model, x, target_fn=speed_profile._replay(t_logp, t_proj),
                    vectors=(v, None))[0]
    direct = loss(model, x, target_fn=target_fn, vectors=(v, None))[0]
    self.assertAllClose(replayed, direct)


if __name__ == "__main__":
  tf.test.main()
