"""Tests of the distillation study (issue 20): config, loop, end to end."""

import glob
import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from distillation import distill
from distillation import experiment
from distillation import study_report
from distillation import study_runner
from distillation import study_training
from distillation import sobolev_terms
from distillation.configs import study as study_config
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import runs
import distillation_testing


def tiny_study(teacher_root: str, **overrides):
  """A study that runs in about a minute with a tiny Pong teacher."""
  config = study_config.get_config()
  config.games = ("Pong",)
  config.teacher_root = teacher_root
  config.num_states = 48
  config.collect_envs = 4
  config.train_fractions = (0.25,)
  config.variant_fractions = (0.25,)
  config.test_states = 16
  config.validation_states = 8
  config.train_eval_states = 8
  config.probe_states = 4
  config.initial_scale_states = 4
  config.batch_size = 4
  config.steps = 4
  config.eval_every = 2
  config.seeds = 2
  config.tune_steps = 2
  config.tune_seed = 100
  config.regular_lrs = (1e-3, 1e-2)
  config.sobolev_grid = ((1e-3, 0.1), (1e-3, 0.001))
  config.variants = ("stochastic_p1", "exact_initial")
  config.diagnostic_states = 6
  config.diagnostic_projections = 2
  config.bootstrap_samples = 100
  config.timing_steps = 2
  config.workers = 1
  config.update(overrides)
  return config


def _states(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 84, 84, 4),
                                              dtype=np.uint8)


class ConfigTest(tf.test.TestCase, parameterized.TestCase):

  def test_the_preset_validates(self):
    config = study_runner.resolve(study_config.get_config())
    study_runner.check(config)
    self.assertEqual(config.games, ("Breakout", "SpaceInvaders"))
    self.assertEqual(tuple(config.train_fractions), (0.01, 0.05))
    self.assertGreaterEqual(config.seeds, 5)
    self.assertLen(config.sobolev_grid, len(config.regular_lrs))
    self.assertEqual(min(w for _, w in config.sobolev_grid), 1e-3)
    self.assertIn("exact", config.variants)

  @parameterized.parameters(
      ({"regular_lrs": (1e-3,)}, "Tuning budgets differ"),
      ({"variants": ("stochastic_p0",)}, "Unknown Sobolev variant"),
      ({"final_variants": ("exact",), "variants": ("stochastic_p1",)},
       "final_variants"),
      ({"games": ("Tetris",)}, "Tetris"),
      ({"tune_seed": 2}, "tune_seed"),
      ({"train_fractions": (0.95,)}, "must be < 1"))
  def test_bad_settings_are_refused(self, overrides, message):
    config = study_config.get_config()
    config.update(overrides)
    with self.assertRaisesRegex(errors.ConfigError, message):
      study_runner.check(study_runner.resolve(config))

  def test_names_given_on_the_command_line_are_split(self):
    config = study_config.get_config()
    config.games = ("Breakout,Pong",)
    self.assertEqual(study_runner.resolve(config).games, ("Breakout", "Pong"))

  def test_figure4_unit_keys_are_unchanged(self):
    # A Figure 4 student's key (distillation.run) computed before the study
    # existed: the study adds no field to those settings.
    config = distillation_testing.tiny_config("/nonexistent")
    ctx = experiment._Context(config, "/tmp", None, "digest0", None, 6,
                              "rollkey", None)
    settings = ctx.settings(0.25, "sobolev", 1, 1e-3, 0.1, 4, "test")
    self.assertEqual(runs.RunStore.key(settings), "09703b901dfce968")
    self.assertEqual(runs.RunStore.key(
        experiment.rollout_settings(config, "digest0")), "12c15066cfe58cdc")


class LoopTest(tf.test.TestCase):

  def test_early_stopping_picks_the_lowest_validation_kl(self):
    history = [{"step": 0, "validation_kl": 0.9},
               {"step": 2, "validation_kl": 0.3},
               {"step": 4, "validation_kl": 0.5},
               {"step": 6, "validation_kl": 0.3}]
    self.assertEqual(study_training.early_stopping(history)["step"], 2)
    with self.assertRaises(ValueError):
      study_training.early_stopping([])

  def test_default_students_match_the_figure4_loop(self):
    teacher = distillation_testing.tiny_teacher()
    states = _states(10)
    lp = teacher.log_policy(states).numpy()
    for method in ("regular", "sobolev"):
      cfg = distill.StudentConfig(method=method, steps=4, eval_every=2,
                                  batch_size=3, seed=2, sobolev_weight=0.5)
      ours, _ = study_training.train(
          cfg, sobolev_terms.parse("stochastic_p1"), teacher, states, lp,
          {"test": (states[:6], lp[:6])}, 6)
      theirs = distill.train_student(cfg, teacher, states, lp, states[:6],
                                     lp[:6], 6)
      self.assertAllClose([h["test_kl"] for h in ours],
                          [h["test_kl"] for h in theirs], rtol=1e-6)
      self.assertAllClose([h["train_loss"] for h in ours[1:]],
                          [h["train_loss"] for h in theirs[1:]], rtol=1e-6)
      if method == "sobolev":
        # The loss is the KL term plus lambda times the gradient term.
        for h in ours[1:]:
          self.assertAllClose(h["train_loss"], h["train_kl_term"] +
                              0.5 * h["train_sobolev_term"], rtol=1e-5)
      self.assertIn("probe_gradient_error", study_training.train(
          cfg, sobolev_terms.parse("exact"), teacher, states, lp, {}, 6,
          probe=study_training.make_probe(teacher.log_policy, states[:3],
                                          6))[0][-1])


class StudyTest(tf.test.TestCase):

  def test_tiny_study_runs_end_to_end_and_resumes(self):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    distillation_testing.tiny_teacher_dir(os.path.join(root, "Pong"))
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = tiny_study(root)
    outcome = study_runner.run(config, workdir, show_progress=False)
    trials = files.read_csv(os.path.join(workdir, "tuning.csv"))
    # Equal budgets: 2 trials for regular and for each of the 2 variants.
    arms = [t["arm"] for t in trials]
    self.assertEqual(sorted(set(arms)),
                     ["exact_initial", "regular", "stochastic_p1"])
    self.assertTrue(all(arms.count(a) == 2 for a in set(arms)))
    self.assertEqual({t["steps"] for t in trials}, {"2"})
    self.assertLen([t for t in trials if t["chosen"] == "True"], 3)
    rows = files.read_csv(os.path.join(workdir,
                                       "distillation_study_results.csv"))
    final_arms = {r["arm"] for r in rows}
    self.assertContainsSubset({"regular", "stochastic_p1", "regular "
                               "(published)", "stochastic_p1 (published)"},
                              final_arms)
    self.assertLen(rows, 2 * len(final_arms))  # Two seeds per arm.
    for r in rows:
      self.assertIn(int(r["early_step"]), (0, 2, 4))
      self.assertEqual(r["steps"], "4")
      self.assertTrue(np.isfinite(float(r["test_kl_early"])))
    # The early-stopped test KL is the test KL where validation KL is
    # lowest in the unit's curve.
    unit = rows[0]["unit"]
    result = files.read_json(os.path.join(workdir, "runs", unit,
                                          "result.json"))
    best = min(result["history"], key=lambda h: (h["validation_kl"],
                                                 h["step"]))
    self.assertAllClose(float(rows[0]["test_kl_early"]), best["test_kl"])
    self.assertEqual(int(rows[0]["early_step"]), best["step"])
    gaps = files.read_csv(os.path.join(workdir,
                                       "distillation_study_gaps.csv"))
    # The published pair gets its own gap unless both of its arms share
    # the tuned arms' students (same settings): then it is that gap.
    units = {a: {r["unit"] for r in rows if r["arm"] == a} for a in (
        "regular", "regular (published)", "stochastic_p1",
        "stochastic_p1 (published)")}
    both_shared = (units["regular"] == units["regular (published)"] and
                   units["stochastic_p1"] == units["stochastic_p1 (published)"])
    self.assertEqual(
        any(g["arm"] == "stochastic_p1 (published)" and
            g["baseline"] == "regular (published)" for g in gaps),
        not both_shared)
    self.assertEqual({g["seeds"] for g in gaps}, {"2"})
    for name in ("study.md", "paired_gaps.png", "kl_vs_steps_Pong.png",
                 "terms_Pong.png", "teacher_gradients.csv", "step_times.csv",
                 "distillation_study_curves.csv", "estimate.json"):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    self.assertGreater(outcome.estimate["cpu_hours"], 0)
    units = sorted(glob.glob(os.path.join(workdir, "runs", "*",
                                          "result.json")))
    stamps = {p: os.path.getmtime(p) for p in units}
    # Resume: nothing is trained again and the results are the same.
    again = study_runner.run(config, workdir, show_progress=False)
    self.assertEqual(stamps, {p: os.path.getmtime(p) for p in units})
    self.assertEqual(again.rows, outcome.rows)
    self.assertEqual(again.estimate["cpu_hours_left"], 0)
    # A worker finds nothing left to do.
    self.assertEqual(study_runner.work_on(workdir, "final", 0, 2), 0)
    # Another step budget in the same workdir is refused.
    with self.assertRaises(errors.WorkdirMismatchError):
      study_runner.run(tiny_study(root, steps=6), workdir,
                       show_progress=False)

  def test_gaps_are_paired_by_seed(self):
    def row(arm, seed, kl, unit=None):
      return study_report.ResultRow(
          "G", 0.1, arm, "x", "-", False, seed, 1e-3, 0.0, 4, 2, kl, 0.1,
          kl, kl, 0.1, kl, kl, kl, kl, kl, 0.01, unit or f"{arm}{seed}")
    rows = [row("regular", s, k) for s, k in ((0, 0.5), (1, 0.7), (2, 0.6))]
    rows += [row("exact", s, k) for s, k in ((0, 0.4), (1, 0.5), (2, 0.6))]
    gap = [g for g in study_report.gaps(rows, 200)
           if (g.metric, g.at) == ("test_kl", "early")][0]
    diffs = np.array([-0.1, -0.2, 0.0])
    self.assertAllClose(gap.mean_gap, diffs.mean())
    half = 4.3026527297 * diffs.std(ddof=1) / np.sqrt(3)  # t(2) 97.5%.
    self.assertAllClose([gap.t_low, gap.t_high],
                        [diffs.mean() - half, diffs.mean() + half], rtol=1e-4)
    self.assertLessEqual(gap.bootstrap_low, gap.mean_gap)
    # Published arms that share both sides' students add no second gap; one
    # with students of its own is compared with the published regular.
    shared = rows + [row(f"{r.arm} (published)", r.seed, r.test_kl_early,
                         r.unit) for r in rows]
    self.assertEqual({g.arm for g in study_report.gaps(shared, 200)},
                     {"exact"})
    shared[-1] = row("exact (published)", 2, 0.9)
    published = [g for g in study_report.gaps(shared, 200)
                 if g.arm == "exact (published)"
                 and (g.metric, g.at) == ("test_kl", "early")]
    self.assertEqual(published[0].baseline, "regular (published)")
    self.assertAllClose(published[0].mean_gap, np.mean([-0.1, -0.2, 0.3]))

  def test_explained_by_hand(self):
    def row(arm, seed, grad_error, kl, unit=None):
      return study_report.ResultRow(
          "G", 0.1, arm, "x", "-", False, seed, 1e-3, 0.0, 4, 2, kl, 0.1,
          kl, kl, 0.1, kl, kl, kl, kl, grad_error, 0.01,
          unit or f"{arm}{seed}")
    # KL = 0.1 * error^2 exactly for 'regular'; 'exact' is reversed in rank.
    rows = [row("regular", s, e, 0.1 * e ** 2)
            for s, e in enumerate((1.0, 2.0, 4.0, 8.0))]
    rows += [row("exact", s, e, k) for s, (e, k) in
             enumerate(((1.0, 0.4), (2.0, 0.3), (3.0, 0.2)))]
    rows.append(row("exact", 9, float("nan"), 0.1))  # Skipped: not finite.
    got = {e.arms: e for e in study_report.explained(rows)}
    self.assertCountEqual(got, ["all", "regular", "exact"])
    self.assertAllClose([got["regular"].r_squared, got["regular"].slope,
                         got["regular"].spearman_rho], [1.0, 2.0, 1.0])
    self.assertEqual((got["regular"].students, got["all"].students), (4, 7))
    self.assertAllClose(got["exact"].spearman_rho, -1.0)
    x = np.log10([1.0, 2.0, 3.0])
    y = np.log10([0.4, 0.3, 0.2])
    self.assertAllClose(got["exact"].r_squared,
                        np.corrcoef(x, y)[0, 1] ** 2)
    md = study_report.markdown(rows, [], [], [], [], "cost")
    self.assertIn("| G | 0.1 | regular | 4 | +1.00 |", md)
    # A published arm that shares the regular students (same settings) is
    # named as such, and neither counted again in 'all' nor given a row.
    rows += [row("regular (published)", r.seed, r.probe_gradient_error_final,
                 r.test_kl_final, r.unit) for r in rows[:4]]
    self.assertEqual(study_report.same_students(rows),
                     {("G", 0.1, "regular (published)"): "regular"})
    again = {e.arms: e for e in study_report.explained(rows)}
    self.assertCountEqual(again, ["all", "regular", "exact"])
    self.assertEqual(again["all"], got["all"])
    md = study_report.markdown(rows, [], [], [], [], "cost")
    self.assertIn("| G | 0.1 | regular (published): the regular students |",
                  md)

  def test_tuning_table_marks_trials_not_run_yet(self):
    done = study_runner.TuneRow("G", 0.05, "regular", 1e-3, 0.0, 3000, 1000,
                                0.0782, 3000, 0.08, True, "k1")
    todo = study_runner.TuneRow("G", 0.05, "regular", 3e-3, 0.0, 3000, 1000,
                                float("nan"), -1, float("nan"), False, "k2")
    md = study_report.markdown([], [], [done, todo], [], [], "cost")
    self.assertIn("| G | 0.05 | regular | 0.001 | 0 | **0.0782** | 3000 |",
                  md)
    self.assertIn("| G | 0.05 | regular | 0.003 | 0 | not run yet | - |", md)


if __name__ == "__main__":
  tf.test.main()
