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
         ("multi_output", "regular", "3"), ("multi_output", "stochastic", "3")])
    for r in table:
      self.assertGreater(float(r["min_us"]), 0.0)
    with self.assertRaisesRegex(ValueError, "unknown case"):
      speed_profile.ProfileConfig(cases=("x",)).validate()
    # The Atari student case moved to `distillation.speed`.
    with self.assertRaisesRegex(ValueError, "unknown case 'atari_student'"):
      speed_profile.ProfileConfig(cases=("atari_student",)).validate()
    with self.assertRaisesRegex(ValueError, "unknown case 'atari_student'"):
      speed.SpeedConfig(cases=("atari_student",)).validate()


if __name__ == "__main__":
  tf.test.main()
