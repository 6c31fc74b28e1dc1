"""Per-method learning rates: the preset field, the tuning command, Table 1.

Tiny digits configs (8x8 images, widths 4) in temporary directories.
"""

import csv
import json
import os
from unittest import mock

from absl.testing import parameterized
import ml_collections
import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files
from synthetic_gradients import experiment
from synthetic_gradients import table1
from synthetic_gradients import tune
from synthetic_gradients.configs import digits
from synthetic_gradients.configs import fashion_mnist_tuning


def _tiny(**overrides):
  config = digits.get_config()
  config.update(dict(methods="backprop,direct", seeds=1, epochs=1,
                     batch_size=16, widths=(4, 4, 4, 4), image_size=8,
                     num_modules=1, max_train_examples=48,
                     max_test_examples=32, export_saved_model=False,
                     schedule="constant"))
  config.update(overrides)
  return config


def _per_method(text, **overrides):
  config = _tiny(**overrides)
  config.method_learning_rates = text
  return config


def _tuning(**overrides):
  config = ml_collections.ConfigDict()
  config.model = _tiny(validation_size=16, eval_split="validation")
  config.methods = "backprop,direct"
  config.learning_rates = (1e-3, 1e-2)
  config.seed = 0
  config.update(overrides)
  return config


class MethodLearningRatesTest(parameterized.TestCase, tf.test.TestCase):

  def test_parse_and_resolve(self):
    config = _per_method("direct=1e-3, vfbn = 2e-3")
    self.assertEqual(experiment.method_learning_rates(config),
                     {"direct": 1e-3, "vfbn": 2e-3})
    self.assertEqual(experiment.for_method(config, "direct").learning_rate,
                     1e-3)
    self.assertEqual(experiment.for_method(config, "backprop").learning_rate,
                     config.learning_rate)  # Not named: the preset's rate.
    self.assertEqual(experiment.tuning(config), "per_method")
    plain = _tiny()
    self.assertIs(experiment.for_method(plain, "direct"), plain)
    self.assertEqual(experiment.tuning(plain), "backprop")
    self.assertEqual(experiment.method_learning_rates(plain), {})

  def test_unit_key_is_a_plain_presets_with_that_rate(self):
    # A per-method-tuned run is the run of a plain preset with its rate, so
    # the published paper-protocol units keep their keys.
    config = _per_method("direct=1e-3")
    self.assertEqual(experiment.unit_settings(config, "direct", 0),
                     experiment.unit_settings(_tiny(learning_rate=1e-3),
                                              "direct", 0))
    self.assertEqual(experiment.unit_settings(config, "backprop", 0),
                     experiment.unit_settings(_tiny(), "backprop", 0))
    self.assertNotIn("method_learning_rates",
                     experiment.unit_settings(config, "direct", 0))

  @parameterized.named_parameters(
      ("no_equals", "direct:1e-3", "method=rate"),
      ("unknown", "sgd=1e-3", "method_learning_rates"),
      ("twice", "direct=1e-3,direct=2e-3", "twice"),
      ("not_a_number", "direct=fast", "number"),
      ("zero", "direct=0", r"method_learning_rates\[direct\]"),
      ("nan", "direct=nan", r"method_learning_rates\[direct\]"))
  def test_bad_values_name_the_field(self, text, pattern):
    with self.assertRaisesRegex(errors.ConfigError, pattern):
      experiment.check(_per_method(text))

  def test_each_method_trains_at_its_rate(self):
    workdir = self.create_tempdir().full_path
    rows = experiment.train_and_evaluate(
        _per_method("direct=3e-3"), workdir, log=None)
    got = {r.method: (r.tuning, r.learning_rate) for r in rows}
    self.assertEqual(got, {"backprop": ("per_method", 2e-3),
                           "direct": ("per_method", 3e-3)})
    for r in rows:  # The rate the optimiser used (constant schedule).
      logged = files.read_csv(os.path.join(workdir, "runs", r.key,
                                           "metrics.csv"))
      self.assertAllClose(float(logged[0]["learning_rate"]),
                          r.learning_rate)


class TuneTest(tf.test.TestCase):

  def test_check(self):
    tune.check(_tuning())
    for overrides, pattern in (
        (dict(learning_rates=()), "learning_rates"),
        (dict(learning_rates=(1e-3, 1e-3)), "duplicates"),
        (dict(learning_rates=(1e-3, -1.0)), r"learning_rates\[1\]"),
        (dict(methods="sgd"), "methods"),
        (dict(seed=-1), "seed")):
      with self.assertRaisesRegex(errors.ConfigError, pattern):
        tune.check(_tuning(**overrides))
    config = _tuning()  # Backprop trains without modules, direct cannot.
    config.model.num_modules = 0
    with self.assertRaisesRegex(errors.ConfigError, "num_modules"):
      tune.check(config)
    config = _tuning()
    config.model.eval_split = "test"
    with self.assertRaisesRegex(errors.ConfigError, "never looks at the test"):
      tune.check(config)

  def test_preset_validates(self):
    config = fashion_mnist_tuning.get_config()
    tune.check(config)
    self.assertEqual(tune.trial_config(config, "vfbn", 1e-3).epochs, 5)

  def test_writes_and_resumes_its_records(self):
    workdir = self.create_tempdir().full_path
    out = tune.tune(_tuning(), workdir, log=None)
    self.assertCountEqual(out["best"], ["backprop", "direct"])
    with open(os.path.join(workdir, "tuning.csv")) as f:
      records = list(csv.DictReader(f))
    self.assertLen(records, 4)  # 2 methods x 2 rates.
    self.assertCountEqual({(r["method"], float(r["learning_rate"]))
                           for r in records},
                          {(m, lr) for m in ("backprop", "direct")
                           for lr in (1e-3, 1e-2)})
    for method, rows in out["trials"].items():
      best = max(rows, key=lambda t: t["score"])
      self.assertEqual(out["best"][method], best["learning_rate"])
      for t in rows:  # The score is the trial run's validation accuracy.
        run = experiment.train_and_evaluate(
            tune.trial_config(_tuning(), method, t["learning_rate"]),
            tune.trial_dir(workdir, t["learning_rate"]), log=None)[0]
        self.assertEqual(run.eval_split, "validation")
        self.assertAllClose(run.test_accuracy, t["score"])
    with open(os.path.join(workdir, "tuned.json")) as f:
      self.assertEqual(json.load(f)["best"], out["best"])
    with open(os.path.join(workdir, "tuning.md")) as f:
      self.assertIn("| direct |", f.read())
    # Rerun: every trial comes from the records, nothing is trained.
    with mock.patch.object(experiment, "train_and_evaluate",
                           side_effect=AssertionError("trained")):
      again = tune.tune(_tuning(), workdir, log=None)
    self.assertEqual(again["best"], out["best"])
    self.assertTrue(all(t["reused"] for rows in again["trials"].values()
                        for t in rows))
    # A wider grid runs only the new trials.
    logs = []
    tune.tune(_tuning(learning_rates=(1e-3, 1e-2, 3e-3)), workdir,
              log=logs.append)
    self.assertLen([l for l in logs if l.startswith("trial ")], 2)
    with open(os.path.join(workdir, "tuning.csv")) as f:
      self.assertLen(list(csv.DictReader(f)), 6)

  def test_a_diverged_trial_ranks_last(self):
    workdir = self.create_tempdir().full_path
    calls = []

    def fake(config, trial_workdir, log):
      del trial_workdir, log
      calls.append(config.learning_rate)
      if config.learning_rate == 1e-2:
        raise errors.DivergenceError("loss is nan")
      return [experiment.Row("digits", config.methods, 0, 0.5, 1.0, 0.1, 1,
                             1, 1.0, eval_split="validation")]

    with mock.patch.object(experiment, "train_and_evaluate", fake):
      out = tune.tune(_tuning(methods="backprop"), workdir, log=None)
    self.assertEqual(out["best"], {"backprop": 1e-3})
    self.assertEqual(sorted(calls), [1e-3, 1e-2])
    with open(os.path.join(workdir, "tuning.md")) as f:
      self.assertIn("diverged", f.read())


class Table1SettingsTest(tf.test.TestCase):

  def test_tunings_and_budgets_are_separate_settings(self):
    def row(method, seed, acc, epochs, tuning):
      return experiment.Row(dataset="d", method=method, seed=seed,
                            test_accuracy=acc, test_top5=1.0, train_ce=0.1,
                            epochs=epochs, num_modules=3, wall_s=1.0,
                            tuning=tuning)
    rows = []
    for epochs, tuning, gain in ((5, "backprop", 0.1), (5, "per_method", -0.1),
                                 (20, "backprop", 0.2)):
      for s in range(3):
        rows += [row("noprop", s, 0.5 + 0.01 * s, epochs, tuning),
                 row("direct", s, 0.5 + gain + 0.02 * s, epochs, tuning)]
    got = {o.setting: o.verdict for o in table1.orderings(rows)}
    self.assertEqual(got, {
        "d, 3 SG modules, 5 epochs, lr tuned for backprop": "holds",
        "d, 3 SG modules, 5 epochs, per-method lr": "reversed",
        "d, 3 SG modules, 20 epochs, lr tuned for backprop": "holds"})
    text = table1.timing_table(rows)
    self.assertIn("d, 3 SG modules, 20 epochs, lr tuned for backprop", text)


if __name__ == "__main__":
  tf.test.main()
