"""Tests of the distillation objectives, the experiment and its flags."""

import csv
import dataclasses
import json
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
from distillation.configs import default as default_config
from sobolev import derivatives
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import results
import distillation_testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_env():
  """The environment of a user who set no TensorFlow log level (the tests'
  conftest sets one)."""
  return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


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
    net = networks.StudentNet(4, hidden=8)
    x = tf.constant(distill.to_float(_states(3)))
    loss = distill.make_loss("sobolev", sobolev_weight=1.0, seed=0)
    total, terms = loss(net.log_policy, x, target_fn=net.log_policy)[:2]
    self.assertAllClose(terms["order_0"], 0.0, atol=1e-6)
    self.assertAllClose(terms["order_1"], 0.0, atol=1e-3)
    self.assertAllClose(total, 0.0, atol=1e-3)
    other = networks.StudentNet(4, hidden=8)
    _, terms = loss(other.log_policy, x, target_fn=net.log_policy)[:2]
    self.assertGreater(float(terms["order_1"]), 1e-3)

  def test_sobolev_term_matches_the_papers_formula(self):
    tf.random.set_seed(1)
    student = networks.StudentNet(3, hidden=8).log_policy
    teacher = networks.TeacherNet(3, channels=(4, 4, 4), hidden=8).log_policy
    x = tf.constant(distill.to_float(_states(2, seed=1)))
    v = tf.math.l2_normalize(tf.constant([[1.0, -2.0, 0.5],
                                          [0.3, 0.3, -1.0]]), axis=-1)
    loss = distill.make_loss("sobolev", sobolev_weight=2.0)
    total, terms = loss(student, x, target_fn=teacher,
                        vectors=(v, None))[:2]
    # E_v || D_s<log pi*, v> - D_s<log pi, v> ||, one v per state; the
    # projections are image-shaped [B, 84, 84, 4], the norm is over all of
    # a state's pixels.
    diff = (derivatives.vjp(teacher, x, v) - derivatives.vjp(student, x, v))
    self.assertEqual(diff.shape, (2, 84, 84, 4))
    expected = tf.reduce_mean(tf.norm(tf.reshape(diff, [2, -1]), axis=-1))
    self.assertAllClose(terms["order_1"], expected, rtol=1e-4)
    kl = distill.kl_student_teacher(student(x), teacher(x))
    self.assertAllClose(total, kl + 2.0 * expected, rtol=1e-4)

  def test_to_float_keeps_the_image_shape(self):
    states = _states(2)
    x = distill.to_float(states)
    self.assertEqual(x.shape, (2, 84, 84, 4))
    self.assertEqual(x.dtype, np.float32)
    self.assertAllClose(x[1, 5, 7], states[1, 5, 7] / 255.0)

  def test_make_loss_rejects_unknown_method(self):
    with self.assertRaisesRegex(ValueError, "method"):
      distill.make_loss("dagger")

  def test_student_config_is_checked_when_made(self):
    for field, value, message in (
        ("method", "dagger", "`method` must be one of"),
        ("batch_size", 0, "`batch_size` must be an int >= 1"),
        ("stall_patience", -1, "`stall_patience` must be an int >= 0"),
        ("learning_rate", 0.0, "`learning_rate` must be > 0"),
        ("sobolev_weight", -1.0, "`sobolev_weight` must be >= 0")):
      with self.assertRaisesRegex(ValueError, message):
        distill.StudentConfig(**{field: value})

  def test_intervals_end_on_multiples_of_eval_every_and_the_last_step(self):
    self.assertEqual(list(distill.intervals(7, 3)), [3, 3, 1])
    self.assertEqual(list(distill.intervals(6, 3)), [3, 3])
    self.assertEqual(list(distill.intervals(2, 5)), [2])
    self.assertEqual(list(distill.intervals(0, 5)), [])

  def test_interval_means_weight_calls_by_their_steps(self):
    means = distill.IntervalMeans((("loss", "loss"),
                                   ("sobolev_term", "order_1")))
    means.add({"loss": 1.0}, 3)  # No order_1: that term is skipped.
    means.add({"loss": 5.0, "order_1": 2.0}, 1)
    self.assertEqual(means.pop(), {"train_loss": 2.0,
                                   "train_sobolev_term": 0.5})
    self.assertEqual(means.pop(), {})  # Reset by `pop`.


def _flattened(policy):
  """The removed adapter, rebuilt here: `[B, 84*84*4] -> [B, A]`.

  Until commit 1b41540 `distill.FlatLogPolicy` / `flat_log_policy` fed the
  core flattened states and reshaped them back inside the model; the
  image-shaped path must give the same numbers.
  """
  return lambda flat: policy(tf.reshape(flat, [-1, 84, 84, 4]))


class ImageShapedPathTest(tf.test.TestCase, parameterized.TestCase):
  """Image-shaped states `[B, 84, 84, 4]` vs the old flattened path."""

  @parameterized.product(method=distill.METHODS, num_projections=(1, 2),
                         compiled=(False, True))
  def test_loss_and_gradients_equal_the_flattened_path(
      self, method, num_projections, compiled):
    tf.random.set_seed(2)
    student = networks.StudentNet(3, channels=(4, 8), hidden=8)
    teacher = networks.TeacherNet(3, channels=(4, 4, 4), hidden=8)
    x = tf.constant(distill.to_float(_states(3, seed=2)))
    flat_x = tf.reshape(x, [3, -1])
    targets = (teacher.log_policy(x),)
    student(x)  # Builds the variables.

    def run(model, inputs, target_fn):
      # A fresh loss with the same seed draws the same directions v.
      loss = distill.make_loss(method, sobolev_weight=0.7, seed=5,
                               num_projections=num_projections)

      def compute(inputs):
        with tf.GradientTape() as tape:
          if method == "regular":
            out = loss(model, inputs, targets=targets)
          else:
            out = loss(model, inputs, target_fn=target_fn)
        grads = tape.gradient(out.total, student.trainable_variables)
        return out.total, out.terms, out.per_example_terms, grads

      return (tf.function(compute) if compiled else compute)(inputs)

    new = run(student.log_policy, x, teacher.log_policy)
    old = run(_flattened(student.log_policy), flat_x,
              _flattened(teacher.log_policy))
    self.assertAllClose(new[0], old[0], rtol=1e-6, atol=1e-7)
    self.assertAllClose(new[1], old[1], rtol=1e-6, atol=1e-7)
    # Per-example Sobolev terms [B] (the KL is a scalar user loss).
    self.assertEqual(set(new[2]), {"order_1"} if method == "sobolev" else
                     set())
    self.assertAllClose(new[2], old[2], rtol=1e-6, atol=1e-7)
    self.assertLen(new[3], 8)  # w and b of 2 convs and 2 linear layers.
    for got, want in zip(new[3], old[3]):
      self.assertAllClose(got, want, rtol=1e-5, atol=1e-7)
    # Not vacuous: the loss and its gradients are non-zero.
    self.assertGreater(float(new[0]), 0.0)
    self.assertGreater(float(tf.linalg.global_norm(new[3])), 0.0)
    if method == "sobolev":
      self.assertGreater(float(new[1]["order_1"]), 0.0)

  def test_projections_are_the_flattened_ones_reshaped(self):
    tf.random.set_seed(3)
    teacher = networks.TeacherNet(3, channels=(4, 4, 4), hidden=8)
    x = tf.constant(distill.to_float(_states(2, seed=3)))
    v = tf.math.l2_normalize(tf.constant([[1.0, -2.0, 0.5],
                                          [0.3, 0.3, -1.0]]), axis=-1)
    image = derivatives.vjp(teacher.log_policy, x, v)
    flat = derivatives.vjp(_flattened(teacher.log_policy),
                           tf.reshape(x, [2, -1]), v)
    self.assertEqual(image.shape, (2, 84, 84, 4))
    self.assertAllClose(tf.reshape(image, [2, -1]), flat, rtol=1e-6,
                        atol=1e-9)
    self.assertGreater(float(tf.reduce_max(tf.abs(image))), 0.0)


class ExperimentTest(tf.test.TestCase):

  def _teacher_dir(self):
    return distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))

  def _units(self, workdir):
    out = {}
    runs_dir = os.path.join(workdir, "runs")
    for key in os.listdir(runs_dir):
      with open(os.path.join(runs_dir, key, "settings.json")) as f:
        s = json.load(f)
      out[key] = (s["train_fraction"], s["method"], s["learning_rate"],
                  s["sobolev_weight"], s["seed"])
    return out

  def test_smoke_run_writes_results_and_resumes(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = distillation_testing.tiny_config(
        self._teacher_dir(), tune=True, tune_steps=2,
        tune_regular_lrs=(1e-3,), tune_sobolev_grid=((1e-3, 1.0),))
    rows = experiment.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.csv")) as f:
      reader = csv.reader(f)
      self.assertEqual(next(reader), [
          "game", "train_fraction", "method", "seed", "step",
          "test_action_error", "test_kl"])
      self.assertLen(list(reader), 6)  # 2 methods x steps 0, 2, 4.
    typed = results.read(os.path.join(workdir, "results.csv"),
                         experiment.Row)
    self.assertEqual([dataclasses.asdict(r) for r in typed], rows)
    self.assertEqual({r["method"] for r in rows}, {"regular", "sobolev"})
    for r in rows:
      self.assertBetween(r["test_action_error"], 0.0, 1.0)
      self.assertGreaterEqual(r["test_kl"], -1e-6)
    for name in ("results.md", "figure4.png", "tuning.csv", "config.json",
                 "provenance.json"):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    with open(os.path.join(workdir, "results.md")) as f:
      text = f.read()
    self.assertIn("| 0.25 | sobolev | 1 | 4 |", text)
    self.assertIn("sample std", text)
    # Re-running the same settings reuses the rollouts and the students.
    units = self._units(workdir)
    self.assertCountEqual(units.values(), [(0.25, "regular", 1e-3, 0.0, 0),
                                           (0.25, "sobolev", 1e-3, 1.0, 0)])
    mtimes = {k: os.path.getmtime(os.path.join(workdir, "runs", k,
                                               "result.json"))
              for k in units}
    again = experiment.train_and_evaluate(config, workdir)
    self.assertEqual(again, rows)
    self.assertEqual(mtimes, {k: os.path.getmtime(
        os.path.join(workdir, "runs", k, "result.json")) for k in units})
    # A new grid is another setting: refused in this workdir, kept apart
    # with 'separate' (where only its trials compete and new students are
    # trained), and the old results stay untouched.
    retuned = distillation_testing.tiny_config(
        config.teacher_dir, tune=True, tune_steps=2,
        tune_regular_lrs=(2e-3,), tune_sobolev_grid=((1e-3, 0.5),))
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "tune_regular_lrs"):
      experiment.train_and_evaluate(retuned, workdir)
    experiment.train_and_evaluate(retuned, workdir, if_different="separate")
    (set_dir,) = [os.path.join(workdir, "sets", d)
                  for d in os.listdir(os.path.join(workdir, "sets"))]
    self.assertCountEqual(self._units(set_dir).values(), [
        (0.25, "regular", 2e-3, 0.0, 0), (0.25, "sobolev", 1e-3, 0.5, 0)])
    with open(os.path.join(set_dir, "results.md")) as f:
      self.assertIn("regular lr=0.002; Sobolev lr=0.001, lambda=0.5", f.read())
    self.assertEqual(self._units(workdir), units)
    # The rollouts of the same teacher and settings are shared by the sets.
    self.assertLen(os.listdir(os.path.join(workdir, "rollouts")), 1)
    self.assertFalse(os.path.exists(os.path.join(set_dir, "rollouts")))

  def test_tune_per_fraction_tunes_every_split(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = distillation_testing.tiny_config(
        self._teacher_dir(), train_fractions=(0.2, 0.4), steps=2,
        max_eval_states=8, tune=True, tune_per_fraction=True, tune_steps=1,
        tune_regular_lrs=(1e-3, 1e-2),
        tune_sobolev_grid=((1e-3, 0.1), (1e-3, 1.0)))
    experiment.train_and_evaluate(config, workdir)
    trials = files.read_csv(os.path.join(workdir, "tuning.csv"))
    self.assertLen(trials, 8)  # 2 fractions x 2 methods x 2 settings.
    self.assertCountEqual({(t["train_fraction"], t["steps"], t["eval_set"])
                           for t in trials},
                          {("0.2", "1", "validation"),
                           ("0.4", "1", "validation")})
    best = {}
    for fraction in ("0.2", "0.4"):
      for method in ("regular", "sobolev"):
        t = min((t for t in trials if t["train_fraction"] == fraction and
                 t["method"] == method), key=lambda t: float(t["score"]))
        best[float(fraction), method] = (float(t["learning_rate"]),
                                         float(t["sobolev_weight"]))
    self.assertCountEqual(self._units(workdir).values(),
                          [(f, m, *best[f, m], 0) for f, m in best])
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
          # rtol 1e-2: the two graphs order float operations differently
          # (oneDNN); at 7475d0b with TF 2.21 the Sobolev test KL (~3e-4)
          # already differed by 0.7% between the loops.
          self.assertAllClose(fast[key], ref[key], rtol=1e-2, atol=1e-6,
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
      (dict(learning_rate_regular=float("nan")), "learning_rate_regular"),
      (dict(learning_rate_sobolev=float("inf")), "learning_rate_sobolev"),
      (dict(sobolev_weight=-1.0), "sobolev_weight"),
      (dict(sobolev_weight=float("nan")), "sobolev_weight"),
      (dict(validation_fraction=float("inf")), "validation_fraction"),
      (dict(tune=True, validation_fraction=0.0), "validation_fraction"),
      (dict(tune=True, tune_regular_lrs=(1e-3,)), "budgets differ"),
      (dict(tune=True, tune_sobolev_grid=((1e-3, float("nan")),) * 6),
       "tune_sobolev_grid"),
      (dict(tune_fraction=0.05, tune_per_fraction=True), "not both"),
      (dict(tune_fraction=1.0), "tune_fraction"),
      (dict(tune_fraction=0.95), "tune_fraction"))
  def test_bad_config_is_rejected_before_compute(self, overrides, message):
    config = default_config.get_config()
    config.update(overrides)
    with self.assertRaisesRegex(errors.ConfigError, message):
      experiment.train_and_evaluate(config, "/nonexistent/never/written")
    self.assertFalse(os.path.exists("/nonexistent"))

  @parameterized.parameters(
      (["--config.game=Tetris"], "Unknown game 'Tetris'"),
      (["--config.train_fractions=0.1,1.2"], "train_fractions"),
      (["--config.learning_rate_regular=nan"],
       "`learning_rate_regular` must be finite"),
      (["--config.tune_fraction=1.5"], "`tune_fraction` must be < 1.0"),
      (["--config.tune_fraction=0.05", "--config.tune_per_fraction=True"],
       "not both"))
  def test_command_line_rejects_bad_flags(self, flags, message):
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.run", "--workdir=/nonexistent",
         *flags], cwd=REPO, capture_output=True, text=True, timeout=300,
        env=_user_env())
    self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
    self.assertIn(message, proc.stderr)
    # One line, no traceback and no TensorFlow start-up chatter (the
    # settings are checked before TensorFlow starts).
    self.assertEqual(proc.stderr.strip().splitlines(),
                     [f"error: {proc.stderr.strip().split('error: ')[-1]}"])
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
    # Final errors 0.2, 0.4 -> 0.3 +- 0.1414 (sample std, ddof=1); KL 0.6
    # +- 0.2828.
    self.assertIn("| 0.1 | regular | 2 | 10 | 0.3 ± 0.14 | 0.6 ± 0.28 | "
                  "0.3 ± 0.14 | 0.6 ± 0.28 |", table)

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
