"""Smoke tests of the step-time benchmark and profile (no timing checks)."""

import csv
import os
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from benchmarks import jax_baseline
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
                     multi_output_dims=(1, 3), jax_baseline=False)
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

  def test_jax_rows_or_one_line_without_the_extra(self):
    workdir = self.create_tempdir().full_path
    config = _config(speed_config, cases=("mlp_order1",), repeats=1,
                     calls=1, steps_per_call=2, warmup_calls=1,
                     compile_modes=("graph",), mlp_batches=(8,))
    lines = []
    rows = speed.run(config, workdir, log=lines.append)
    if not jax_baseline.available():
      self.assertLen(rows, 2)
      self.assertTrue(any(line.startswith("JAX rows skipped") and
                          "[bench]" in line for line in lines))
      return
    self.assertEqual([(r["variant"], r["framework"]) for r in rows],
                     [("regular", "tf"), ("sobolev", "tf"),
                      ("regular", "jax"), ("sobolev", "jax")])
    for r in rows:
      self.assertGreater(r["vs_jax"], 0)
    self.assertEqual(rows[2]["vs_jax"], 1.0)
    self.assertAllClose(rows[1]["vs_jax"],
                        rows[1]["median_us"] / rows[3]["median_us"])

  def test_fused_variant_is_compared_with_jax_sobolev(self):
    workdir = self.create_tempdir().full_path
    config = _config(speed_config, cases=("mlp_order1",), repeats=1,
                     calls=1, steps_per_call=2, warmup_calls=1,
                     compile_modes=("graph",), mlp_batches=(8,),
                     mlp_order1_variants=("sobolev,sobolev_fused",))
    rows = speed.run(config, workdir, log=None)
    tf_rows = [(r["variant"], r["framework"]) for r in rows]
    self.assertEqual(tf_rows[:2], [("sobolev", "tf"),
                                   ("sobolev_fused", "tf")])
    if not jax_baseline.available():
      self.assertLen(rows, 2)
      return
    self.assertEqual(tf_rows[2:], [("sobolev", "jax")])
    self.assertAllClose(rows[1]["vs_jax"],
                        rows[1]["median_us"] / rows[2]["median_us"])

  @parameterized.parameters(
      ({"cases": ("gpu",)}, "unknown case 'gpu'"),
      ({"mlp_order1_variants": ("fast",)}, "`mlp_order1_variants` must be"),
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

  @parameterized.parameters(("speed", "_measure"),
                            ("speed_profile", "_profile"))
  def test_ctrl_c_is_recorded_as_interrupted(self, name, inner):
    module = {"speed": speed, "speed_profile": speed_profile}[name]
    config_module = {"speed": speed_config, "speed_profile": profile_config}
    workdir = self.create_tempdir().full_path

    def interrupt(*unused_args):
      raise KeyboardInterrupt

    with mock.patch.object(module, inner, interrupt):
      with self.assertRaises(KeyboardInterrupt):
        module.run(config_module[name].get_config(), workdir, log=None)
    record = files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"][-1]
    self.assertEqual(record["status"], "interrupted")

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
    # Other settings are refused before any work (`--fresh`/`--separate`
    # are the ways out), as in every other command's workdir.
    other = _config(profile_config, repeats=2, calls=1, steps_per_call=2,
                    warmup_calls=1, multi_output_dims=(1, 3))
    with self.assertRaisesRegex(errors.WorkdirMismatchError, "repeats"):
      speed_profile.run(other, workdir, log=None)
    with self.assertRaises(errors.WorkdirMismatchError):
      speed.run(_config(speed_config, cases=("multi_output",), repeats=1),
                workdir, log=None)
    self.assertLen(files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"], 1)
    for cases in (("x",), ("atari_student",)):
      with self.assertRaisesRegex(errors.ConfigError, "unknown case"):
        speed_profile.check(_config(profile_config, cases=cases))



class JaxBaselineTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(0, 1)
  def test_loss_equals_the_tf_step_loss(self, order):
    # Same weights, batch and targets: the JAX loss is the core's loss.
    if not jax_baseline.available():
      self.skipTest("needs the bench extra (jax, optax)")
    model, loss, batch = speed.mlp_regression(8, 2, 1, order, "exact",
                                              tf.nn.relu, 0)
    params = jax_baseline.init_mlp([16, 16, 1], 2, seed=3)
    import sonnet as snt  # pylint: disable=g-import-not-at-top
    net = snt.nets.MLP([16, 16, 1])
    net(batch["x"])
    for layer, (w, b) in zip(net._layers, params):  # pylint: disable=protected-access
      layer.w.assign(np.asarray(w))
      layer.b.assign(np.asarray(b))
    want = float(loss(net, batch["x"], targets=batch["targets"]).total)
    x = np.asarray(batch["x"])
    y = np.asarray(batch["targets"][0])
    dy = (np.asarray(batch["targets"][1]).reshape(x.shape) if order == 1
          else np.zeros_like(x))
    got = float(jax_baseline.make_loss(order)(params, x, y, dy))
    self.assertAllClose(got, want, rtol=1e-5)
    del model

  def test_a_call_lowers_the_loss(self):
    if not jax_baseline.available():
      self.skipTest("needs the bench extra (jax, optax)")
    _, _, batch = speed.mlp_regression(16, 2, 1, 1, "exact", tf.nn.relu, 0)
    call = jax_baseline.make_call(batch, 1, steps_per_call=20,
                                  learning_rate=1e-2, hidden=(16, 16))
    first = float(call())
    for _ in range(5):
      last = float(call())
    self.assertLess(last, first)


if __name__ == "__main__":
  tf.test.main()
