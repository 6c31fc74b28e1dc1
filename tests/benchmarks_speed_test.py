"""Smoke tests of the step-time benchmark and profile (no timing checks)."""

import csv
import os

from absl.testing import parameterized
import tensorflow as tf

from benchmarks import speed
from benchmarks import speed_profile
from benchmarks.configs import speed as speed_config
from benchmarks.configs import speed_profile as profile_config
from sobolev.experiment import errors
from sobolev.experiment import files


def _config(module, **overrides):
  config = module.get_config()
  config.update(overrides)
  return config


class SpeedBenchmarkTest(tf.test.TestCase, parameterized.TestCase):

  def test_smoke_run_writes_csv_with_exact_columns(self):
    workdir = self.create_tempdir().full_path
    config = _config(speed_config, cases=("mlp_order1,multi_output",),
                     repeats=1, calls=1, steps_per_call=2, warmup_calls=1,
                     compile_modes=("graph",), mlp_batches=(8,),
                     multi_output_dims=(1, 3))
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
    record = files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"][-1]
    self.assertEqual(record["status"], "finished")
    self.assertEqual(record["config"]["cases"],
                     ["mlp_order1", "multi_output"])
    self.assertEqual(record["versions"]["tensorflow"], tf.__version__)

  @parameterized.parameters(
      ({"cases": ("gpu",)}, "unknown case 'gpu'"),
      # The Atari student case moved to `distillation.speed`.
      ({"cases": ("atari_student",)}, "unknown case 'atari_student'"),
      ({"repeats": 0}, "`repeats` must be >= 1"),
      ({"compile_modes": ("tpu",)}, "`compile_modes` must be"),
      ({"mlp_batches": (0,)}, "`mlp_batches` must be >= 1"),
      ({"seed": -1}, "`seed` must be >= 0"),
  )
  def test_bad_config(self, overrides, message):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    with self.assertRaisesRegex(errors.ConfigError, message):
      speed.run(_config(speed_config, **overrides), workdir, log=None)
    self.assertFalse(os.path.exists(workdir))

  def test_profile_smoke_run_writes_every_part(self):
    workdir = self.create_tempdir().full_path
    config = _config(profile_config, repeats=1, calls=1, steps_per_call=2,
                     warmup_calls=1, multi_output_dims=(1, 3))
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
    self.assertTrue(os.path.exists(os.path.join(workdir, "provenance.json")))
    for cases in (("x",), ("atari_student",)):
      with self.assertRaisesRegex(errors.ConfigError, "unknown case"):
        speed_profile.check(_config(profile_config, cases=cases))


if __name__ == "__main__":
  tf.test.main()
