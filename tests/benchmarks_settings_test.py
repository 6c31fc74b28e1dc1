"""Tests of `benchmarks.settings` and `benchmarks.models` (no training)."""

import os

import tensorflow as tf

from benchmarks import architecture_runner
from benchmarks import models
from benchmarks import settings
from benchmarks import study_runner
from benchmarks import trainer
from benchmarks.configs import architecture
from benchmarks.configs import default
from benchmarks.configs import study
from benchmarks.configs import tune as tune_config
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import runs


class SettingsTest(tf.test.TestCase):

  def test_check_distinct(self):
    settings.check_distinct("sizes", (20, 100))
    settings.check_distinct("protocols", ("ours",), ("ours", "raw_l2"))
    for values, choices, message in (
        ((), (), "`sizes` must not be empty"),
        ((20, 20), (), "`sizes` has duplicates"),
        ((20, 7), (20, 100), "`sizes` must be one of")):
      with self.assertRaisesRegex(errors.ConfigError, message):
        settings.check_distinct("sizes", values, choices)

  def test_resolve_adds_defaults_only_when_asked(self):
    config = default.get_config()
    del config.protocol
    self.assertEqual(settings.resolve(config).protocol, "ours")
    self.assertNotIn("protocol", settings.resolve(config, defaults={}))
    with self.assertRaises(TypeError):
      settings.resolve(["functions"])

  def test_check_tells_a_tuning_config_by_its_candidates(self):
    config = settings.resolve(tune_config.get_config())
    settings.check(config)  # No test_size or figure3_function needed.
    config.candidates = ("base", "bogus")
    with self.assertRaisesRegex(errors.ConfigError, "`candidates`"):
      settings.check(config)
    sweep = settings.resolve(default.get_config())
    sweep.figure3_function = "rosenbrock_3d"
    with self.assertRaisesRegex(errors.ConfigError, "2-D function"):
      settings.check(sweep)

  def test_protocol_overrides_stand_in_for_missing_fields(self):
    config = study_runner.resolve(study.get_config())
    self.assertNotIn("steps", config)
    protocol = settings.protocol(config, steps=7, protocol="raw_l2")
    self.assertEqual((protocol.steps, protocol.protocol), (7, "raw_l2"))
    self.assertEqual(protocol.learning_rate, config.learning_rate)
    self.assertEqual(protocol.steps_per_call, config.steps_per_call)
    # The studies build their protocols the same way.
    self.assertEqual(
        study_runner.variant_protocol(config, study_runner.Variant(
            7, "raw_l2")), protocol)
    arch = architecture_runner.resolve(architecture.get_config())
    lbfgs = architecture_runner.protocol_of(
        arch, architecture_runner.parse_class("tanh-2x64-lbfgs"), 0.1)
    self.assertEqual((lbfgs.steps, lbfgs.learning_rate, lbfgs.optimizer),
                     (arch.lbfgs_steps, 1.0, "lbfgs"))


class ModelsTest(tf.test.TestCase):

  def test_load_model_reads_units_through_the_store(self):
    store = runs.RunStore(self.create_tempdir().full_path)
    unit = {"function": "booth", "seed": 0}
    unit_dir = store.unit_dir(unit)
    with self.assertRaisesRegex(ValueError, "holds no finished unit"):
      models.load_model(unit_dir)
    files.write_json(os.path.join(unit_dir, runs.SETTINGS_FILE), unit)
    with open(os.path.join(unit_dir, runs.RESULT_FILE), "w") as f:
      f.write("{garbled")
    with self.assertRaises(errors.CorruptFileError):
      models.load_model(unit_dir)

  def test_save_and_load_round_trip(self):
    group = trainer.train_group(
        [trainer.Run("booth", 6, "regular", 0)],
        settings.protocol(settings.resolve(default.get_config()), steps=2,
                          hidden_sizes=(4,)))
    store = runs.RunStore(self.create_tempdir().full_path)
    unit = {"hidden_sizes": [4], "seed": 0}
    unit_dir = store.unit_dir(unit)
    models.save(unit_dir, group.mlp(0))
    store.save(unit, {"scaler": models.scaler_record(group.scalers[0])})
    x = group.scalers[0].center[None, :] + 0.1
    v, dv = models.predict(unit_dir, x)
    pv, pdv = group.predict(0, x)
    self.assertAllClose(v, pv)
    self.assertAllClose(dv, pdv)


if __name__ == "__main__":
  tf.test.main()
