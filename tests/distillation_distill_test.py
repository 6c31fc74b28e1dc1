"""Tests of the distillation objectives, the experiment and its flags."""

import csv
import dataclasses
import os
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from distillation import distill
from distillation import experiment
from distillation import networks
from distillation import plot_teachers
from distillation import reporting
from distillation import run
from sobolev import derivatives
import distillation_testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _states(n, seed=0):
  return np.random.default_rng(seed).integers(
      0, 256, size=(n, 84, 84, 4)).astype(np.uint8)


class ObjectiveTest(tf.test.TestCase):

  def test_kl_direction_is_student_first(self):
    student = tf.math.log(tf.constant([[0.9, 0.1]]))
    teacher = tf.math.log(tf.constant([[0.5, 0.5]]))
    # KL(p||q) = 0.9 ln 1.8 + 0.1 ln 0.2 = 0.368064; KL(q||p) = 0.510826.
    self.assertAllClose(distill.kl_student_teacher(student, teacher),
                        0.368064, atol=1e-5)
    self.assertAllClose(distill.kl_student_teacher(teacher, student),
                        0.510826, atol=1e-5)

  def test_kl_gradient_flows_to_the_student_only(self):
    s = tf.Variable([[0.3, -0.2, 0.1]])
    t = tf.Variable([[0.0, 0.5, -0.5]])
    with tf.GradientTape(persistent=True) as tape:
      kl = distill.kl_student_teacher(tf.nn.log_softmax(s),
                                      tf.nn.log_softmax(t))
    self.assertIsNone(tape.gradient(kl, t))
    self.assertGreater(float(tf.norm(tape.gradient(kl, s))), 0.0)

  def test_action_error(self):
    s = tf.math.log(tf.constant([[0.6, 0.4], [0.2, 0.8], [0.7, 0.3]]))
    t = tf.math.log(tf.constant([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]]))
    self.assertAllClose(distill.action_error(s, t), 2.0 / 3.0)

  def test_sobolev_term_is_zero_when_student_equals_teacher(self):
    tf.random.set_seed(0)
    net = distill.FlatLogPolicy(networks.StudentNet(4, hidden=8))
    x = tf.constant(distill.to_flat_float(_states(3)))
    loss = distill.make_loss("sobolev", sobolev_weight=1.0, seed=0)
    total, terms = loss(net, x, target_fn=net)
    self.assertAllClose(terms["order_0"], 0.0, atol=1e-6)
    self.assertAllClose(terms["order_1"], 0.0, atol=1e-3)
    self.assertAllClose(total, 0.0, atol=1e-3)
    other = distill.FlatLogPolicy(networks.StudentNet(4, hidden=8))
    _, terms = loss(other, x, target_fn=net)
    self.assertGreater(float(terms["order_1"]), 1e-3)

  def test_sobolev_term_matches_the_papers_formula(self):
    tf.random.set_seed(1)
    student = distill.FlatLogPolicy(networks.StudentNet(3, hidden=8))
    teacher = distill.FlatLogPolicy(networks.TeacherNet(
        3, channels=(4, 4, 4), hidden=8))
    x = tf.constant(distill.to_flat_float(_states(2, seed=1)))
    v = tf.math.l2_normalize(tf.constant([[1.0, -2.0, 0.5],
                                          [0.3, 0.3, -1.0]]), axis=-1)
    loss = distill.make_loss("sobolev", sobolev_weight=2.0)
    total, terms = loss(student, x, target_fn=teacher, vectors=(v, None))
    # E_v || D_s<log pi*, v> - D_s<log pi, v> ||, one v per state.
    diff = (derivatives.vjp(teacher, x, v) - derivatives.vjp(student, x, v))
    expected = tf.reduce_mean(tf.norm(diff, axis=-1))
    self.assertAllClose(terms["order_1"], expected, rtol=1e-4)
    kl = distill.kl_student_teacher(student(x), teacher(x))
    self.assertAllClose(total, kl + 2.0 * expected, rtol=1e-4)

  def test_make_loss_rejects_unknown_method(self):
    with self.assertRaisesRegex(ValueError, "method"):
      distill.make_loss("dagger")


class ExperimentTest(tf.test.TestCase):

  def _teacher_dir(self):
    return distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))

  def test_smoke_run_writes_results_and_resumes(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = experiment.RunConfig(
        game="Pong", train_fractions=(0.25,), seeds=1, steps=4,
        eval_every=2, batch_size=4, num_states=48, collect_envs=4,
        validation_fraction=0.1, max_eval_states=16,
        teacher_dir=self._teacher_dir(), tune=True, tune_steps=2,
        regular_grid=((1e-3, 0.0),), sobolev_grid=((1e-3, 1.0),))
    rows = experiment.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.csv")) as f:
      reader = csv.reader(f)
      self.assertEqual(next(reader), [
          "game", "train_fraction", "method", "seed", "step",
          "test_action_error", "test_kl"])
      self.assertLen(list(reader), 6)  # 2 methods x steps 0, 2, 4.
    self.assertEqual({r["method"] for r in rows}, {"regular", "sobolev"})
    for r in rows:
      self.assertBetween(r["test_action_error"], 0.0, 1.0)
      self.assertGreaterEqual(r["test_kl"], -1e-6)
    for name in ("results.md", "figure4.png", "tuning.csv"):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    with open(os.path.join(workdir, "results.md")) as f:
      self.assertIn("| 0.25 | sobolev | 1 | 4 |", f.read())
    # Re-running reuses the rollouts and the finished runs.
    runs = os.path.join(workdir, "runs")
    mtimes = {n: os.path.getmtime(os.path.join(runs, n))
              for n in os.listdir(runs)}
    again = experiment.train_and_evaluate(config, workdir)
    self.assertEqual(again, rows)
    self.assertEqual(mtimes, {n: os.path.getmtime(os.path.join(runs, n))
                              for n in os.listdir(runs)})
    self.assertCountEqual(mtimes, [
        "frac0.25_regular_lr0.001_lambda0_seed0.csv",
        "frac0.25_sobolev_lr0.001_lambda1_seed0.csv"])
    # A new grid: only its trials compete (the old, better-or-worse trial
    # stays in tuning.csv but is not chosen), and students trained with
    # other settings are not reused.
    retuned = dataclasses.replace(
        config, regular_grid=((2e-3, 0.0),), sobolev_grid=((1e-3, 0.5),))
    experiment.train_and_evaluate(retuned, workdir)
    self.assertCountEqual(os.listdir(runs), list(mtimes) + [
        "frac0.25_regular_lr0.002_lambda0_seed0.csv",
        "frac0.25_sobolev_lr0.001_lambda0.5_seed0.csv"])
    with open(os.path.join(workdir, "tuning.csv")) as f:
      self.assertLen(list(csv.DictReader(f)), 4)
    with open(os.path.join(workdir, "results.md")) as f:
      self.assertIn("regular lr=0.002; Sobolev lr=0.001, lambda=0.5", f.read())

  def test_tune_per_fraction_tunes_every_split(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    # A tuning file of the old format (no split, no length): never reused.
    with open(os.path.join(workdir, "tuning.csv"), "w") as f:
      f.write("method,learning_rate,sobolev_weight,val_action_error,val_kl\n"
              "regular,0.001,0.0,0.0,0.0\n")
    config = experiment.RunConfig(
        game="Pong", train_fractions=(0.2, 0.4), seeds=1, steps=2,
        eval_every=2, batch_size=4, num_states=48, collect_envs=4,
        validation_fraction=0.1, max_eval_states=8,
        teacher_dir=self._teacher_dir(), tune=True, tune_per_fraction=True,
        tune_steps=1, regular_grid=((1e-3, 0.0), (1e-2, 0.0)),
        sobolev_grid=((1e-3, 0.1), (1e-3, 1.0)))
    experiment.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "tuning.csv")) as f:
      trials = list(csv.DictReader(f))
    new = [t for t in trials if t["train_fraction"]]
    self.assertLen(new, 8)  # 2 fractions x 2 methods x 2 settings.
    self.assertCountEqual({(t["train_fraction"], t["tune_steps"])
                           for t in new}, {("0.2", "1"), ("0.4", "1")})
    best = {}
    for fraction in ("0.2", "0.4"):
      for method in ("regular", "sobolev"):
        t = min((t for t in new if t["train_fraction"] == fraction and
                 t["method"] == method), key=lambda t: float(t["val_kl"]))
        best[fraction, method] = (float(t["learning_rate"]),
                                  float(t["sobolev_weight"]))
    expected = {experiment.run_filename(float(f), m, 0, *best[f, m])
                for f, m in best}
    self.assertEqual(set(os.listdir(os.path.join(workdir, "runs"))),
                     expected)
    with open(os.path.join(workdir, "results.md")) as f:
      text = f.read()
    self.assertIn("fraction 0.2: regular lr=", text)
    self.assertIn("fraction 0.4: regular lr=", text)
    self.assertIn("each tuned on its fraction's validation games", text)

  def test_regular_and_sobolev_students_start_identically(self):
    teacher = distillation_testing.tiny_teacher()
    states = _states(6)
    lp = teacher.log_policy(states).numpy()
    hist = {}
    for method in distill.METHODS:
      cfg = distill.StudentConfig(method=method, steps=1, eval_every=1,
                                  batch_size=2, seed=3, hidden=8)
      hist[method] = distill.train_student(cfg, teacher, states, lp, states,
                                           lp, 6)
    self.assertAllClose(hist["regular"][0]["test_kl"],
                        hist["sobolev"][0]["test_kl"])

  def test_device_loop_matches_the_host_loop(self):
    # The fast loop (device-resident states, in-graph minibatches, several
    # steps per call) must draw the same minibatches and directions and
    # give the same numbers as the straightforward one-call-per-step loop.
    # steps=5, eval_every=2 runs chunks of 2, 2 and 1 steps.
    teacher = distillation_testing.tiny_teacher()
    states = _states(10)
    lp = teacher.log_policy(states).numpy()
    for method in distill.METHODS:
      hist = {}
      for device_loop in (False, True):
        cfg = distill.StudentConfig(method=method, steps=5, eval_every=2,
                                    batch_size=3, seed=4, hidden=8,
                                    learning_rate=1e-2,
                                    device_loop=device_loop)
        hist[device_loop] = distill.train_student(
            cfg, teacher, states[:7], lp[:7], states[7:], lp[7:], 6)
      self.assertEqual([h["step"] for h in hist[True]], [0, 2, 4, 5])
      self.assertEqual([h["step"] for h in hist[False]], [0, 2, 4, 5])
      for fast, ref in zip(hist[True], hist[False]):
        self.assertEqual(fast.keys(), ref.keys())
        for key in ref:
          self.assertAllClose(fast[key], ref[key], rtol=1e-4, atol=1e-6,
                              msg=f"{method} {key}")
      # Training moved the student, so the comparison is not vacuous.
      self.assertNotAllClose(hist[True][0]["test_kl"],
                             hist[True][-1]["test_kl"])


class FlagsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(
      (dict(game="Tetris"), "Unknown game 'Tetris'"),
      (dict(train_fractions=(0.1, 1.5)), "train_fractions"),
      (dict(train_fractions=(0.0,)), "train_fractions"),
      (dict(train_fractions=()), "train_fractions"),
      (dict(seeds=0), "seeds"),
      (dict(tune=True, validation_fraction=0.0), "validation_fraction"),
      (dict(tune=True, regular_grid=((1e-3, 0.0),)), "budgets differ"),
      (dict(tune_fraction=0.05, tune_per_fraction=True), "not both"),
      (dict(tune_fraction=1.0), "tune_fraction"),
      (dict(tune_fraction=0.95), "tune_fraction"))
  def test_bad_config_is_rejected_before_compute(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      experiment.train_and_evaluate(experiment.RunConfig(**kwargs),
                                    "/nonexistent/never/written")

  def test_parse_fractions(self):
    self.assertEqual(run.parse_fractions(["0.01", "0.5"]), (0.01, 0.5))
    for bad in (["1"], ["0"], ["-0.2"], ["x"]):
      with self.assertRaisesRegex(ValueError, "train_fractions"):
        run.parse_fractions(bad)

  def test_parse_grids(self):
    self.assertEqual(run.parse_grids(["1e-3"], ["2e-3:10"]),
                     (((1e-3, 0.0),), ((2e-3, 10.0),)))
    with self.assertRaisesRegex(ValueError, "tune_sobolev_grid"):
      run.parse_grids(["1e-3"], ["2e-3"])

  @parameterized.parameters(
      (["--game=Tetris"], "Unknown game 'Tetris'"),
      (["--train_fractions=0.1,1.2"], "train_fractions"),
      (["--tune_fraction=1.5"], "`tune_fraction` must be in (0, 1)"),
      (["--tune_fraction=0.05", "--tune_per_fraction"], "not both"))
  def test_command_line_rejects_bad_flags(self, flags, message):
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.run", "--workdir=/nonexistent",
         *flags], cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn(message, proc.stderr)
    self.assertFalse(os.path.exists("/nonexistent"))


class ReportingTest(tf.test.TestCase):

  def test_table_mean_and_std_hand_computed(self):
    rows = []
    for seed, (e0, e1) in enumerate([(0.5, 0.2), (0.5, 0.4)]):
      for step, e in ((0, e0), (10, e1)):
        rows.append({"game": "Pong", "train_fraction": 0.1,
                     "method": "regular", "seed": seed, "step": step,
                     "test_action_error": e, "test_kl": 2 * e})
    table = reporting.markdown_table(rows, "Pong")
    # Final errors 0.2, 0.4 -> 0.3 +- 0.1; KL 0.6 +- 0.2.
    self.assertIn("| 0.1 | regular | 2 | 10 | 0.3 ± 0.1 | 0.6 ± 0.2 | "
                  "0.3 ± 0.1 | 0.6 ± 0.2 |", table)

  def test_teacher_curves_with_marks(self):
    log = os.path.join(self.get_temp_dir(), "train_log.csv")
    with open(log, "w") as f:
      f.write("frames,updates,env,episode_return,episode_length,wall_time\n")
      for i in range(30):
        f.write(f"{1000 * i},{i},0,{-21 + i % 3},800,0.0\n")
    out = os.path.join(self.get_temp_dir(), "curves.png")
    reporting.plot_teacher_curves({"Pong": log}, out, {"Pong": 15000.0},
                                  "setting changed")
    with open(out, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

  def test_parse_marks(self):
    self.assertEqual(plot_teachers.parse_marks(["Pong:7840960"]),
                     {"Pong": 7840960.0})
    for bad, message in ((["Pong"], "GAME:FRAMES"),
                         (["Tetris:5"], "Unknown game"),
                         (["Pong:x"], "must be a number")):
      with self.assertRaisesRegex(ValueError, message):
        plot_teachers.parse_marks(bad)


if __name__ == "__main__":
  tf.test.main()
