"""Tests of the model-class study (issue 22): keys, preset, a tiny study."""

import csv
import math
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from benchmarks import architecture_report
from benchmarks import architecture_runner
from benchmarks import settings
from benchmarks import trainer
from benchmarks import units
from benchmarks.configs import architecture
from benchmarks.configs import default
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import runs
from sobolev.experiment import workdirs

_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "docs")


def _tiny(**overrides):
  config = architecture.get_config()
  config.functions = ("booth", "beale")
  config.sizes = (6,)
  config.seeds = 2
  config.screen_seeds = 2
  config.steps = 8
  config.lbfgs_steps = 4
  config.steps_per_call = 4
  config.activations = ("relu", "tanh")
  config.architectures = ("1x8",)
  config.lbfgs_activations = ("tanh",)
  config.lbfgs_architectures = ("1x8",)
  config.reference = "relu-1x8-adam"
  config.tune_learning_rates = (1e-3, 1e-2)
  config.test_size = 30
  config.validation_size = 30
  config.bootstrap_samples = 50
  config.workers = 1
  config.update(overrides)
  return config


class UnitKeysTest(tf.test.TestCase, parameterized.TestCase):

  def test_published_keys_are_unchanged(self):
    # The budget study's published units (docs/benchmarks_budget_runs.csv)
    # keep their keys with the new activation/optimizer fields at defaults.
    with open(os.path.join(_DOCS, "benchmarks_budget_runs.csv")) as f:
      rows = [r for r in csv.DictReader(f) if r["steps"] == "4000"][:4]
    config = settings.resolve(default.get_config())
    self.assertEqual(config.activation, "relu")
    self.assertEqual(config.optimizer, "adam")
    for row in rows:
      protocol = settings.protocol(
          config, steps=4000, learning_rate=float(row["learning_rate"]))
      unit_settings = settings.unit_settings(
          trainer.Run(row["function"], int(row["size"]), row["method"],
                      int(row["seed"])), protocol,
          {"set": "test", "size": 10000})
      self.assertNotIn("activation", unit_settings)
      self.assertNotIn("optimizer", unit_settings)
      self.assertEqual(runs.RunStore.key(unit_settings), row["unit"])

  def test_new_fields_split_units_and_lbfgs_drops_adam_fields(self):
    config = settings.resolve(default.get_config())
    run = trainer.Run("booth", 20, "sobolev", 0)
    ev = {"set": "test", "size": 100}
    base = settings.unit_settings(run, settings.protocol(config), ev)
    silu = settings.unit_settings(
        run, settings.protocol(config, activation="silu"), ev)
    self.assertEqual(silu["activation"], "silu")
    self.assertNotEqual(runs.RunStore.key(silu), runs.RunStore.key(base))
    lb = settings.unit_settings(
        run, settings.protocol(config, optimizer="lbfgs"), ev)
    self.assertEqual(lb["optimizer"], "lbfgs")
    for field in ("learning_rate", "final_lr_fraction", "batch_size"):
      self.assertNotIn(field, lb)
    self.assertEqual(lb, settings.unit_settings(
        run, settings.protocol(config, optimizer="lbfgs",
                                  learning_rate=0.5), ev))
    recorded = settings.recorded(config)
    self.assertNotIn("activation", recorded)
    self.assertNotIn("optimizer", recorded)

  @parameterized.parameters(
      ({"activation": "swish"}, "`activation` must be one of"),
      ({"optimizer": "sgd"}, "`optimizer` must be one of"))
  def test_bad_protocol_fields(self, overrides, message):
    config = settings.resolve(default.get_config())
    config.update(overrides)
    with self.assertRaisesRegex(errors.ConfigError, message):
      settings.check_protocol(config)


class PresetTest(tf.test.TestCase, parameterized.TestCase):

  def test_preset_validates(self):
    config = architecture_runner.resolve(architecture.get_config())
    architecture_runner.check(config)
    names = [c.name for c in architecture_runner.classes(config)]
    self.assertLen(names, 5 * 3 + 4)
    self.assertIn("relu-2x256-adam", names)
    self.assertIn("silu-2x64-lbfgs", names)
    self.assertNotIn("relu-2x64-lbfgs", names)
    self.assertEqual(tuple(config.sizes), (20, 100))
    self.assertEqual(config.seeds, 10)
    self.assertEqual(config.screen_seeds, 3)

  def test_architecture_names(self):
    self.assertEqual(architecture_runner.parse_architecture("3x128"),
                     (128, 128, 128))
    self.assertEqual(architecture_runner.parse_architecture("w64x32"),
                     (64, 32))
    self.assertEqual(architecture_runner.architecture_name((64, 32)), "w64x32")
    self.assertEqual(architecture_runner.parse_class("gelu-2x64-lbfgs"),
                     architecture_runner.ModelClass("gelu", (64, 64), "lbfgs"))

  @parameterized.parameters(
      ({"architectures": ("2by64",)}, "`architectures` entries must look"),
      ({"activations": ("relu", "relu")}, "`activations` has duplicates"),
      ({"optimizers": ("adam", "newton")}, "`optimizers` must be one of"),
      ({"reference": "relu-9x9-adam"}, "is not one of the screened"),
      ({"reference": "relu-adam"}, "`reference` must look like"),
      ({"tune_learning_rates": (0.0,)}, "tune_learning_rates"),
      ({"workers": 0}, "workers"),
      ({"grad_weight": float("nan")}, "grad_weight"),
      ({"lbfgs_steps": 0}, "lbfgs_steps"))
  def test_bad_settings_are_rejected_before_any_work(self, overrides,
                                                     message):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.ConfigError, message):
      architecture_runner.run(_tiny(**overrides), workdir,
                              show_progress=False)
    self.assertEmpty(os.listdir(workdir))

  def test_partition_keeps_groups_whole_and_balances(self):
    config = architecture_runner.resolve(_tiny())
    wanted = architecture_runner.screen_requests(config)
    parts = architecture_runner.partition(wanted, 2)
    self.assertEqual(sum(len(p) for p in parts), len(wanted))
    groups = [{units.group_key(w.request) for w in p} for p in parts]
    self.assertEmpty(groups[0] & groups[1])
    self.assertNotEmpty(parts[0])
    self.assertNotEmpty(parts[1])


class StudyTest(tf.test.TestCase):

  def test_tiny_study_end_to_end_and_resume(self):
    workdir = self.create_tempdir().full_path
    out = architecture_runner.run(_tiny(), workdir, show_progress=False)
    config = architecture_runner.resolve(_tiny())
    n_screen = len(architecture_runner.screen_requests(config))
    # 3 classes: relu/tanh Adam at 2 rates, tanh L-BFGS once; 2 methods,
    # 2 functions, 2 seeds.
    self.assertEqual(n_screen, (2 * 2 + 1) * 2 * 2 * 2)
    screen = [r for r in out.rows if r.stage == "screen"]
    final = [r for r in out.rows if r.stage == "final"]
    self.assertLen(screen, n_screen)
    self.assertTrue(all(r.split == "validation" for r in screen))
    self.assertTrue(all(r.seed >= 100 for r in screen))
    self.assertTrue(all(r.split == "test" and r.seed < 2 for r in final))
    self.assertNotEmpty(final)
    records = files.read_csv(os.path.join(workdir, "screening.csv"))
    self.assertLen(records, 5 * 2)
    chosen = [r for r in records if r["chosen"] == "True"]
    self.assertLen(chosen, 3 * 2)
    # Each chosen rate is the best of its class, method and size.
    for r in chosen:
      same = [float(o["score"]) for o in records
              if (o["model_class"], o["method"]) ==
              (r["model_class"], r["method"])]
      self.assertEqual(float(r["score"]), min(same))
    for name in ("runs.csv", "gaps.csv", "study.md", "screening_gaps.png",
                 "final_gaps.png"):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    with open(os.path.join(workdir, "study.md")) as f:
      text = f.read()
    self.assertIn("## Final (test)", text)
    self.assertIn("relu-1x8-adam", text)
    # Final units use each method's tuned rate of their class.
    rates = {(r["model_class"], r["method"]): float(r["learning_rate"])
             for r in chosen}
    for row in final:
      want = rates[(row.model_class, row.method)]
      if math.isnan(want):
        self.assertTrue(math.isnan(row.learning_rate))
      else:
        self.assertEqual(row.learning_rate, want)
    # Resume: nothing is trained again, the same numbers come back.
    before = {r.unit: r.mse for r in out.rows}
    again = architecture_runner.run(_tiny(), workdir, show_progress=False,
                                    report_only=True)
    self.assertEqual({r.unit: r.mse for r in again.rows}, before)
    self.assertEqual(again.workdir, os.path.join(workdir, "report_only"))
    self.assertTrue(os.path.exists(os.path.join(workdir, "report_only",
                                                "study.md")))
    unit_count = len(os.listdir(os.path.join(workdir, "runs")))
    architecture_runner.run(_tiny(seeds=2), workdir, show_progress=False)
    self.assertLen(os.listdir(os.path.join(workdir, "runs")), unit_count)

  def test_a_worker_trains_its_share(self):
    workdir = self.create_tempdir().full_path
    config = _tiny(optimizers=("adam",), activations=("relu",),
                   tune_learning_rates=(1e-2,))
    # The study's process writes config.json (here: the workdir opened
    # and released, as a run that trained nothing).
    resolved = architecture_runner.resolve(config)
    with workdirs.opened(workdir, configs.to_dict(resolved)):
      pass
    resolved = architecture_runner.resolve(config)
    wanted = architecture_runner.screen_requests(resolved)
    mine = architecture_runner.partition(wanted, 2)[1]
    trained = architecture_runner.work_on(workdir, "screen", 1, 2,
                                          show_progress=False)
    self.assertEqual(trained, len(mine))
    store = runs.RunStore(workdir)
    done = [w for w in wanted if store.result(w.request.settings)]
    self.assertCountEqual([w.request.key for w in done],
                          [w.request.key for w in mine])
    with self.assertRaisesRegex(errors.UserError, "--worker"):
      architecture_runner.work_on(workdir, "screen", 2, 2)

  def test_gap_rows_by_hand(self):
    def row(method, seed, mse):
      return architecture_report.ArchRow(
          stage="final", function="booth", size=20, method=method,
          seed=seed, model_class="c", activation="relu", hidden_sizes="8",
          optimizer="adam", learning_rate=0.01, split="test", mse=mse,
          grad_mse=mse, train_seconds=1.0, unit="u")
    reg = [row("regular", s, m) for s, m in enumerate([100.0, 1000.0, 10.0])]
    sob = [row("sobolev", s, m) for s, m in enumerate([1.0, 10.0, 1.0])]
    gap = architecture_report.paired_gap("same class", reg, sob, 100)
    self.assertEqual(gap.seeds, 3)
    self.assertAllClose(gap.gap, np.mean([2.0, 2.0, 1.0]))
    half = 4.302652729911275 * np.std([2, 2, 1], ddof=1) / np.sqrt(3)
    self.assertAllClose(gap.gap_t_high - gap.gap, half, rtol=1e-3)
    self.assertAllClose(gap.regular_log10_mse, 2.0)


if __name__ == "__main__":
  tf.test.main()
