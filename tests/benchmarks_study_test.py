"""Tests of the benchmark studies: presets, a tiny study end to end, gaps."""

import math
import os
import subprocess
import sys

from absl.testing import parameterized
import matplotlib.image
import numpy as np
import tensorflow as tf

from benchmarks import study_report
from benchmarks import study_runner
from benchmarks import units
from benchmarks.configs import budget
from benchmarks.configs import dimension
from benchmarks.configs import protocols as protocols_config
from benchmarks.configs import study as study_config
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import results
from sobolev.experiment import stats

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(**overrides):
  config = study_config.get_config()
  config.functions = ("booth",)
  config.dim_families = ("styblinski_tang",)
  config.dims = (2, 3)
  config.sizes = (6,)
  config.seeds = 2
  config.budgets = (6, 12)
  config.steps_per_call = 6
  config.hidden_sizes = (8,)
  config.test_size = 40
  config.bootstrap_samples = 200
  config.update(overrides)
  return config


def _row(function, method, seed, mse, **kw):
  fields = dict(function=function, dim=2, size=20, method=method, seed=seed,
                steps=4000, protocol="ours", learning_rate=3e-3,
                test_mse=mse, test_grad_mse=mse * 10, train_loss=1.0,
                train_value_mse=0.1, train_grad_mse=0.01, train_set_mse=0.5,
                train_set_grad_mse=5.0, train_seconds=1.0,
                unit="x")
  fields.update(kw)
  return study_report.StudyRow(**fields)


class PresetsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(budget, protocols_config, dimension, study_config)
  def test_presets_validate(self, module):
    config = study_runner.resolve(module.get_config())
    study_runner.check(config)
    self.assertNotEmpty(study_runner.study_functions(config))

  def test_preset_contents(self):
    b = budget.get_config()
    self.assertEqual(tuple(b.budgets), (4000, 16000))
    self.assertEqual(tuple(b.sizes), (20, 100))
    self.assertEqual(b.seeds, 10)
    self.assertLen(b.functions, 7)
    p = protocols_config.get_config()
    self.assertEqual(tuple(p.protocols),
                     ("ours", "raw_l2", "differential_ml"))
    self.assertLen(p.tune_learning_rates, 4)
    d = study_runner.resolve(dimension.get_config())
    self.assertEqual(study_runner.study_functions(d), [
        "rosenbrock", "rosenbrock_4d", "rosenbrock_8d", "rosenbrock_16d",
        "styblinski_tang", "styblinski_tang_4d", "styblinski_tang_8d",
        "styblinski_tang_16d"])
    self.assertEqual(tuple(d.sizes), (100, 1000))
    self.assertGreaterEqual(d.seeds, 5)

  @parameterized.parameters(
      ({"budgets": ()}, "`budgets` must not be empty"),
      ({"budgets": (10, 10)}, "`budgets` has duplicates"),
      ({"protocols": ("ours", "magic")}, "`protocols` must be one of"),
      ({"dims": (1,)}, "`dims` must be >= 2"),
      ({"dim_families": ("ackley",)}, "`dim_families` must be one of"),
      ({"functions": ("sphere",)}, "`functions` must be one of"),
      ({"functions": (), "dim_families": (), "dims": ()}, "no function"),
      ({"tune_learning_rates": (0.0,)}, "`tune_learning_rates` must be > 0"),
      ({"dml_lambda": -1.0}, "`dml_lambda` must be >= 0"),
  )
  def test_bad_settings_are_rejected_before_any_work(self, overrides,
                                                     message):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    with self.assertRaisesRegex(errors.ConfigError, message):
      study_runner.run(_tiny(**overrides), workdir, show_progress=False)
    self.assertFalse(os.path.exists(workdir))


class GapsTest(tf.test.TestCase):

  def test_paired_gaps_and_intervals_by_hand(self):
    # Gaps per seed: log10(100/1) = 2, log10(10/1) = 1, log10(1000/10) = 2.
    rows = [_row("booth", "regular", 0, 100.0), _row("booth", "sobolev", 0, 1.0),
            _row("booth", "regular", 1, 10.0), _row("booth", "sobolev", 1, 1.0),
            _row("booth", "regular", 2, 1000.0),
            _row("booth", "sobolev", 2, 10.0),
            # An unpaired seed is left out.
            _row("booth", "regular", 3, 1e9)]
    (g,) = study_report.gaps(rows, samples=500)
    self.assertEqual(g.seeds, 3)
    self.assertAllClose(g.gap, 5 / 3)
    mean, low, high = stats.mean_interval([2.0, 1.0, 2.0])
    self.assertAllClose([g.gap_t_low, g.gap_t_high], [low, high])
    # t_{0.975, 2} = 4.3026527297, sample std sqrt(1/3).
    self.assertAllClose(high - mean,
                        4.3026527297 * math.sqrt(1 / 3) / math.sqrt(3))
    self.assertBetween(g.gap_boot_low, 1.0, 5 / 3)
    self.assertBetween(g.gap_boot_high, 5 / 3, 2.0 + 1e-12)
    self.assertAllClose(g.regular_log10_mse, (2 + 1 + 3) / 3)
    self.assertAllClose(g.grad_gap, 5 / 3)
    md = study_report.markdown([g])
    self.assertIn("| Booth | 2 | 20 | 4000 | ours | 3 |", md)
    self.assertIn("**+1.67**", md)
    # t interval 5/3 +- 1.43 = [0.23, 3.10]: above 0, not above 1.
    self.assertIn("| [+0.23, +3.10] |", md)
    self.assertIn("Sobolev better (95% interval above 0) on 1/1 (booth); "
                  ">= 10x on 0 (none)", md)

  def test_single_seed_has_no_interval(self):
    rows = [_row("booth", "regular", 0, 10.0), _row("booth", "sobolev", 0, 1.0)]
    (g,) = study_report.gaps(rows)
    self.assertAllClose(g.gap, 1.0)
    self.assertTrue(math.isnan(g.gap_t_low) and math.isnan(g.gap_boot_low))


class StudyTest(tf.test.TestCase):

  def test_tiny_study_end_to_end_and_resume(self):
    workdir = self.create_tempdir().full_path
    out = study_runner.run(_tiny(), workdir, show_progress=False)
    # 3 functions (booth, styblinski_tang at D = 2 and 3) x 2 seeds x 2
    # methods x 2 budgets.
    self.assertLen(out.rows, 24)
    rows = results.read(os.path.join(workdir, "study.csv"),
                        study_report.StudyRow)
    self.assertCountEqual([r.unit for r in rows], [r.unit for r in out.rows])
    self.assertEqual({(r.function, r.dim) for r in rows},
                     {("booth", 2), ("styblinski_tang", 2),
                      ("styblinski_tang_3d", 3)})
    self.assertEqual({r.steps for r in rows}, {6, 12})
    # A 12-step model never reuses a 6-step one.
    self.assertLen({r.unit for r in rows}, 24)
    for r in rows:
      for value in (r.test_mse, r.test_grad_mse, r.train_value_mse,
                    r.train_grad_mse, r.train_loss, r.train_set_mse,
                    r.train_set_grad_mse):
        self.assertTrue(np.isfinite(value) and value > 0, msg=r)
    gap_rows = results.read(os.path.join(workdir, "gaps.csv"),
                            study_report.GapRow)
    self.assertLen(gap_rows, 6)
    for g in gap_rows:
      self.assertEqual(g.seeds, 2)
      self.assertLessEqual(g.gap_t_low, g.gap)
      self.assertLessEqual(g.gap, g.gap_t_high)
    with open(os.path.join(workdir, "study.md")) as f:
      md = f.read()
    self.assertIn("| Styblinski-Tang 3-D | 3 | 6 | 12 | ours | 2 |", md)
    names = [os.path.basename(p) for p in out.outputs]
    for name in ("gap_vs_budget.png", "gap_vs_dim.png",
                 "curves_ours_6steps_6pts.png",
                 "curves_ours_12steps_6pts.png"):
      self.assertIn(name, names)
      image = matplotlib.image.imread(os.path.join(workdir, name))
      self.assertGreater(image.shape[0], 100)
    self.assertNotIn("gap_by_protocol.png", names)
    # The training curves are read back from the units.
    unit = rows[0].unit
    curves = study_report.read_curves(os.path.join(workdir, "runs", unit,
                                                   "curves.csv"))
    self.assertAllEqual(curves["step"], [6] if rows[0].steps == 6 else
                        [6, 12])
    # Resume: nothing is trained again; a new budget trains only its models.
    calls = []
    real = units.trainer.train_group

    def spy(runs, *args, **kwargs):
      calls.append(len(runs))
      return real(runs, *args, **kwargs)

    units.trainer.train_group = spy
    try:
      again = study_runner.run(_tiny(), workdir, show_progress=False)
      self.assertEqual(calls, [])
      self.assertEqual([r.test_mse for r in again.rows],
                       [r.test_mse for r in out.rows])
      more = study_runner.run(_tiny(budgets=(6, 12, 18)), workdir,
                              show_progress=False)
    finally:
      units.trainer.train_group = real
    self.assertLen(more.rows, 36)
    # One group per (method, dimension) of the new budget.
    self.assertEqual(sorted(calls), [2, 2, 4, 4])
    with open(os.path.join(workdir, "study.md")) as f:
      study_md = f.read()
    provenance = files.read_json(os.path.join(workdir, "provenance.json"))
    # Report-only is a reader: another process may hold the lock (the
    # running study); it writes into report_only/ and leaves the rest.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from sobolev.experiment "
         "import locks; locks.hold(sys.argv[1]); print('held', flush=True); "
         "time.sleep(600)", workdir], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=_ROOT + os.pathsep +
                 os.environ.get("PYTHONPATH", "")))
    try:
      self.assertEqual(holder.stdout.readline().strip(), "held")
      report_only = study_runner.run(_tiny(budgets=(6, 12, 18, 24)), workdir,
                                     show_progress=False, report_only=True)
    finally:
      holder.kill()
      holder.wait()
      holder.stdout.close()
    self.assertLen(report_only.rows, 36)
    self.assertEqual(report_only.workdir,
                     os.path.join(workdir, study_runner.REPORT_ONLY_DIR))
    self.assertTrue(os.path.exists(os.path.join(report_only.workdir,
                                                "study.md")))
    with open(os.path.join(workdir, "study.md")) as f:
      self.assertEqual(f.read(), study_md)
    self.assertEqual(files.read_json(os.path.join(workdir,
                                                  "provenance.json")),
                     provenance)
    with self.assertRaises(errors.WorkdirMismatchError):
      study_runner.run(_tiny(hidden_sizes=(16,)), workdir, show_progress=False,
                       report_only=True)

  def test_protocols_with_tuning(self):
    workdir = self.create_tempdir().full_path
    config = _tiny(functions=("booth", "mccormick"), dim_families=(),
                   dims=(), seeds=2, budgets=(6,),
                   protocols=("ours", "raw_l2", "differential_ml"),
                   tune_learning_rates=(1e-3, 1e-2), validation_size=30)
    out = study_runner.run(config, workdir, show_progress=False)
    self.assertLen(out.rows, 2 * 2 * 2 * 3)
    trials = results.read(os.path.join(workdir, "tuning.csv"),
                          study_runner.TuneTrial)
    self.assertLen(trials, 3 * 2 * 2)
    for protocol in ("ours", "raw_l2", "differential_ml"):
      for method in ("regular", "sobolev"):
        sel = [t for t in trials if (t.protocol, t.method) ==
               (protocol, method)]
        best = min(sel, key=lambda t: t.score)
        self.assertEqual([t.learning_rate for t in sel if t.chosen],
                         [best.learning_rate])
        used = {r.learning_rate for r in out.rows
                if (r.protocol, r.method) == (protocol, method)}
        self.assertEqual(used, {best.learning_rate})
    self.assertIn("gap_by_protocol.png",
                  [os.path.basename(p) for p in out.outputs])
    with open(os.path.join(workdir, "study.md")) as f:
      self.assertIn("Learning rates (tuned on validation data)", f.read())
    # Tuning units are evaluated on validation data, test units on test.
    settings = [files.read_json(os.path.join(workdir, "runs", d,
                                             "settings.json"))
                for d in os.listdir(os.path.join(workdir, "runs"))]
    self.assertEqual({s["evaluation"]["set"] for s in settings},
                     {"test", "validation"})
    # raw_l2 regular models fit raw values: their scaler has mean 0, std 1.
    raw = [s for s in settings if s.get("protocol") == "raw_l2"]
    self.assertNotEmpty(raw)


if __name__ == "__main__":
  tf.test.main()
