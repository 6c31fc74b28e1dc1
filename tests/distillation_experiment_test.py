"""Tests of the Figure 4 experiment's harness: run keys, workdirs, resume,
divergence, provenance, TensorBoard events and SavedModel export."""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from distillation import experiment
from distillation import settings
from distillation import export
from distillation import teachers
from distillation.configs import breakout
from distillation.configs import pong
from distillation.configs import spaceinvaders
from sobolev.experiment import errors
from sobolev.experiment import files
import distillation_testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_env():
  """The environment of a user who set no TensorFlow log level (the tests'
  conftest sets one)."""
  return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def _finished_units(workdir):
  return sorted(glob.glob(os.path.join(workdir, "runs", "*", "result.json")))


class PresetTest(tf.test.TestCase):
  """The published Figure 4 presets: valid, and the settings of the README."""

  def test_published_presets(self):
    grid = ((3e-4, 0.1), (1e-3, 0.01), (1e-3, 0.1), (1e-3, 1.0), (3e-3, 0.1),
            (3e-3, 1.0))
    for module, game, seeds in ((breakout, "Breakout", 3),
                                (spaceinvaders, "SpaceInvaders", 3),
                                (pong, "Pong", 5)):
      cfg = module.get_config()
      settings.check(cfg)
      self.assertEqual((cfg.game, cfg.seeds), (game, seeds))
      self.assertTrue(cfg.tune)
      self.assertEqual(cfg.tune_steps, 1000)
      self.assertEqual(tuple(cfg.tune_regular_lrs),
                       (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2))
      self.assertEqual(tuple(tuple(p) for p in cfg.tune_sobolev_grid), grid)


class WorkdirTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    self.workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.config = distillation_testing.tiny_config(self.teacher_dir)
    self.rows = experiment.train_and_evaluate(self.config, self.workdir)

  def test_other_steps_or_batch_size_are_refused_then_kept_apart(self):
    other = distillation_testing.tiny_config(self.teacher_dir, steps=2,
                                             batch_size=2)
    with open(os.path.join(self.workdir, "config.json")) as f:
      before = f.read()
    with self.assertRaises(errors.WorkdirMismatchError) as cm:
      experiment.train_and_evaluate(other, self.workdir)
    message = str(cm.exception)
    self.assertNotIn("\n", message)
    self.assertIn("batch_size: 4 -> 2", message)
    self.assertIn("steps: 4 -> 2", message)
    # Nothing was rewritten: config.json still describes the results.
    with open(os.path.join(self.workdir, "config.json")) as f:
      self.assertEqual(f.read(), before)
    # --separate: its own run set with its own students.
    rows = experiment.train_and_evaluate(other, self.workdir,
                                         if_different="separate")
    self.assertEqual(max(r["step"] for r in rows), 2)
    self.assertLen(_finished_units(self.workdir), 2)
    # --fresh: the old workdir is moved aside, nothing is deleted.
    experiment.train_and_evaluate(other, self.workdir, if_different="fresh")
    aside = glob.glob(self.workdir.rstrip("/") + ".old-*")
    self.assertLen(aside, 1)
    self.assertLen(_finished_units(aside[0]), 2)
    self.assertEqual(files.read_json(os.path.join(
        self.workdir, "config.json"))["steps"], 2)

  def test_more_seeds_resume_and_reuse_finished_students(self):
    before = {p: os.path.getmtime(p) for p in _finished_units(self.workdir)}
    more = distillation_testing.tiny_config(self.teacher_dir, seeds=2)
    rows = experiment.train_and_evaluate(more, self.workdir)
    self.assertEqual(sorted({r["seed"] for r in rows}), [0, 1])
    self.assertEqual([r for r in rows if r["seed"] == 0], self.rows)
    for path, mtime in before.items():
      self.assertEqual(os.path.getmtime(path), mtime)
    self.assertLen(_finished_units(self.workdir), 4)

  def test_workdirs_made_before_stall_patience_resume(self):
    # `stall_patience` changes no number of a finished student: a workdir
    # whose config.json predates the field (or holds another value) is the
    # same run set, and its students are reused.
    path = os.path.join(self.workdir, "config.json")
    recorded = files.read_json(path)
    del recorded["stall_patience"]
    files.write_json(path, recorded)
    before = {p: os.path.getmtime(p) for p in _finished_units(self.workdir)}
    rows = experiment.train_and_evaluate(
        distillation_testing.tiny_config(self.teacher_dir, stall_patience=7),
        self.workdir)
    self.assertEqual(rows, self.rows)
    for p, mtime in before.items():
      self.assertEqual(os.path.getmtime(p), mtime)

  def test_another_teacher_in_the_same_place_is_refused(self):
    # Retrain "the same" teacher directory: its weights differ.
    net = distillation_testing.tiny_teacher(seed=7)
    net(tf.zeros([1, 84, 84, 4], tf.uint8))
    teachers.export(net, self.teacher_dir, {"game": "Pong", "frames": 320})
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "teacher_identity.digest"):
      experiment.train_and_evaluate(self.config, self.workdir)
    rows = experiment.train_and_evaluate(self.config, self.workdir,
                                         if_different="separate")
    # New rollouts were recorded for the new teacher, none reused.
    self.assertLen(os.listdir(os.path.join(self.workdir, "rollouts")), 2)
    self.assertNotEqual(rows, self.rows)

  def test_rollouts_dir_of_another_teacher_is_refused(self):
    (rollout_dir,) = glob.glob(os.path.join(self.workdir, "rollouts", "*"))
    other_teacher = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    net = distillation_testing.tiny_teacher(seed=3)
    net(tf.zeros([1, 84, 84, 4], tf.uint8))
    teachers.export(net, other_teacher, {"game": "Pong", "frames": 0})
    config = distillation_testing.tiny_config(other_teacher,
                                              rollouts_dir=rollout_dir)
    with self.assertRaisesRegex(errors.ConfigError, "teacher: "):
      experiment.train_and_evaluate(
          config, tempfile.mkdtemp(dir=self.get_temp_dir()))

  def test_provenance_and_config(self):
    data = files.read_json(os.path.join(self.workdir, "provenance.json"))
    (record,) = data["invocations"]
    self.assertEqual(record["status"], "finished")
    self.assertIsNotNone(record["end"])
    self.assertEqual(record["config"]["steps"], 4)
    self.assertEqual(record["config"]["teacher_identity"]["digest"],
                     teachers.digest(teachers.load(
                         directory=self.teacher_dir)[0]))
    self.assertTrue(record["versions"]["tensorflow"])
    self.assertTrue(record["versions"]["numpy"])
    self.assertIn("commit", record["git"])
    self.assertGreaterEqual(record["machine"]["cores"], 1)
    config = files.read_json(os.path.join(self.workdir, "config.json"))
    self.assertEqual(config["batch_size"], 4)

  def test_units_keep_settings_weights_and_tensorboard_curves(self):
    units = _finished_units(self.workdir)
    self.assertLen(units, 2)
    for path in units:
      unit = os.path.dirname(path)
      settings = files.read_json(os.path.join(unit, "settings.json"))
      for field in ("teacher", "rollouts", "steps", "batch_size", "seed",
                    "learning_rate", "sobolev_weight", "train_fraction",
                    "max_eval_states", "eval_every", "validation_fraction"):
        self.assertIn(field, settings)
      result = files.read_json(path)
      net = experiment.load_student(unit)
      states = np.random.default_rng(0).integers(
          0, 256, (3, 84, 84, 4)).astype(np.uint8)
      self.assertEqual(net.log_policy(states).shape, (3, 6))
      self.assertEqual(result["history"][-1]["step"], 4)
    tb = os.path.join(self.workdir, "tb", "frac0.25", "sobolev", "seed0")
    acc = event_accumulator.EventAccumulator(tb)
    acc.Reload()
    # tensorboard.summary.Writer stores scalars as tensor events (with the
    # scalars plugin's metadata, so TensorBoard plots them as scalars).
    self.assertIn("test/kl", acc.Tags()["tensors"])
    self.assertIn("train/sobolev_term", acc.Tags()["tensors"])
    events = acc.Tensors("test/kl")
    self.assertEqual([e.step for e in events], [0, 2, 4])
    self.assertEqual(acc.SummaryMetadata("test/kl").plugin_data.plugin_name,
                     "scalars")
    kls = [r["test_kl"] for r in self.rows if r["method"] == "sobolev"]
    self.assertAllClose([float(tf.make_ndarray(e.tensor_proto))
                         for e in events], kls, rtol=1e-6)


class DivergenceTest(tf.test.TestCase):

  def test_diverging_student_stops_without_a_result(self):
    teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = distillation_testing.tiny_config(
        teacher_dir, learning_rate_regular=1e38, steps=6)
    with self.assertRaisesRegex(errors.DivergenceError,
                                "regular student, seed 0"):
      experiment.train_and_evaluate(config, workdir)
    self.assertEmpty(_finished_units(workdir))
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))
    data = files.read_json(os.path.join(workdir, "provenance.json"))
    self.assertEqual(data["invocations"][-1]["status"], "failed")

  def test_stalled_student_stops_without_a_result(self):
    # Lambda = 1e30 with learning rate 1: the loss (~1e31) is finite but the
    # Sobolev student's parameters never change, so its test KL would stay
    # at its step-0 value for the whole run.
    teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = distillation_testing.tiny_config(
        teacher_dir, sobolev_weight=1e30, learning_rate_sobolev=1.0,
        steps=8, eval_every=2, stall_patience=2)
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training stalled \(sobolev student, seed 0\): the parameters did "
        r"not change from step 0 to step 4 \(2 evaluations in a row\)\. No "
        r"result was written; the learning rate \(1\) or sobolev_weight "
        r"\(1e\+30\) is likely so large that every update is lost, or the "
        r"learning rate so small that it rounds away; change it \(or set "
        r"stall_patience=0 to turn this check off\)\.$"):
      experiment.train_and_evaluate(config, workdir)
    # The regular student (healthy) finished; the stalled one did not.
    self.assertLen(_finished_units(workdir), 1)
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))
    # 0 turns the check off (and is the same run set).
    config.stall_patience = 0
    rows = experiment.train_and_evaluate(config, workdir)
    kls = [r["test_kl"] for r in rows if r["method"] == "sobolev"]
    self.assertLen(set(kls), 1)

  def test_stall_on_the_command_line_is_one_line_and_exit_2(self):
    teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.run", f"--workdir={workdir}",
         f"--config.teacher_dir={teacher_dir}",
         "--config.train_fractions=0.25", "--config.seeds=1",
         "--config.steps=8", "--config.eval_every=2",
         "--config.batch_size=4", "--config.num_states=48",
         "--config.collect_envs=4", "--config.max_eval_states=16",
         "--config.sobolev_weight=1e30", "--config.learning_rate_sobolev=1",
         "--config.stall_patience=2"], cwd=REPO, capture_output=True,
        text=True, timeout=600, env=_user_env())
    self.assertEqual(proc.returncode, 2, proc.stderr[-3000:])
    last = proc.stderr.strip().splitlines()[-1]
    self.assertStartsWith(
        last, "error: Training stalled (sobolev student, seed 0): the "
        "parameters did not change from step 0 to step 4")
    self.assertIn("sobolev_weight (1e+30)", last)
    self.assertEmpty([l for l in proc.stderr.splitlines()
                      if "Traceback" in l])


class KillAndResumeTest(tf.test.TestCase):

  def _command(self, teacher_dir, workdir):
    return [sys.executable, "-m", "distillation.run", f"--workdir={workdir}",
            f"--config.teacher_dir={teacher_dir}",
            "--config.train_fractions=0.25", "--config.seeds=2",
            "--config.steps=40", "--config.eval_every=10",
            "--config.batch_size=4", "--config.num_states=48",
            "--config.collect_envs=4", "--config.max_eval_states=16"]

  def test_kill_9_then_resume_gives_the_uninterrupted_numbers(self):
    teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    reference = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = subprocess.run(self._command(teacher_dir, reference), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    killed = subprocess.Popen(self._command(teacher_dir, workdir), cwd=REPO,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not _finished_units(workdir) and time.time() < deadline:
      if killed.poll() is not None:
        break
      time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    self.assertEqual(killed.returncode, -signal.SIGKILL,
                     "the run finished before it could be killed")
    self.assertBetween(len(_finished_units(workdir)), 1, 3)
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))
    proc = subprocess.run(self._command(teacher_dir, workdir), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    with open(os.path.join(reference, "results.csv")) as f:
      expected = f.read()
    with open(os.path.join(workdir, "results.csv")) as f:
      self.assertEqual(f.read(), expected)
    statuses = [r["status"] for r in files.read_json(
        os.path.join(workdir, "provenance.json"))["invocations"]]
    self.assertEqual(statuses, ["running", "finished"])


_LOAD_PLAIN = """
import sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
a = m(tf.constant(x)).numpy()
b = m.signatures["serving_default"](states=tf.constant(x))["log_probs"]
assert "sobolev" not in sys.modules and "distillation" not in sys.modules
np.save(sys.argv[3], np.stack([a, b.numpy()]))
"""


class StudentCheckpointTest(tf.test.TestCase):
  """Students saved by earlier code still load."""

  # A unit written by the code at commit 1b41540, when students trained
  # through the `distill.FlatLogPolicy` wrapper and `_student` saved
  # `student.net` (see expected.json): 2 Sobolev steps of a tiny student
  # (channels (2, 2), hidden 4, 3 actions).
  OLD_UNIT = os.path.join(REPO, "tests", "testdata",
                          "distillation_student_1b41540")

  def test_student_saved_before_the_adapters_were_deleted_restores(self):
    expected = files.read_json(os.path.join(self.OLD_UNIT, "expected.json"))
    net = experiment.load_student(self.OLD_UNIT)  # Asserts all matched.
    probe = np.random.default_rng(expected["probe_seed"]).integers(
        0, 256, expected["probe_shape"]).astype(np.uint8)
    self.assertAllClose(net.log_policy(probe), expected["log_policy"],
                        rtol=1e-6, atol=1e-6)

  def test_new_students_are_saved_in_the_same_layout(self):
    net = experiment.load_student(self.OLD_UNIT)
    unit = tempfile.mkdtemp(dir=self.get_temp_dir())
    prefix = experiment.save_student(net, unit)
    old = tf.train.list_variables(os.path.join(self.OLD_UNIT, "model",
                                               "student"))
    new = tf.train.list_variables(prefix)
    self.assertEqual(new, old)
    self.assertIn(("student/_net/_layers/0/w/.ATTRIBUTES/VARIABLE_VALUE",
                   [8, 8, 4, 2]), new)
    for name, _ in old:
      if name != "_CHECKPOINTABLE_OBJECT_GRAPH":
        self.assertAllEqual(tf.train.load_variable(prefix, name),
                            tf.train.load_variable(os.path.join(
                                self.OLD_UNIT, "model", "student"), name))


class SplitTest(tf.test.TestCase):

  def test_too_few_episodes_for_a_test_set_is_a_one_line_config_error(self):
    # E.g. Pong with too few states: every state is one long episode.
    config = distillation_testing.tiny_config("/no/teacher", num_states=30)
    context = experiment._Context(  # pylint: disable=protected-access
        config, None, None, None, {"episode_ids": np.zeros([30], np.int32)},
        6, "key", None)
    with self.assertRaises(errors.ConfigError) as cm:
      context.split(0.5)
    self.assertEqual(
        str(cm.exception),
        "No episode is left for the test set (1 episodes, train_fraction=0.5, "
        f"validation_fraction={float(config.validation_fraction)}); record "
        "more states or lower the fractions (--config.num_states=30, "
        "--config.train_fractions, --config.validation_fraction).")


class SavedModelTest(tf.test.TestCase):

  def _round_trip(self, path, expected):
    states = np.random.default_rng(1).integers(
        0, 256, (5, 84, 84, 4)).astype(np.uint8)
    inputs = os.path.join(self.get_temp_dir(), "states.npy")
    outputs = os.path.join(self.get_temp_dir(), "out.npy")
    np.save(inputs, states)
    proc = subprocess.run([sys.executable, "-c", _LOAD_PLAIN, path, inputs,
                           outputs], cwd="/", capture_output=True, text=True,
                          timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    got = np.load(outputs)
    want = expected(states).numpy()
    self.assertAllClose(got[0], want, rtol=1e-5, atol=1e-6)
    self.assertAllClose(got[1], want, rtol=1e-5, atol=1e-6)

  def test_teacher_and_student_round_trip_with_plain_tensorflow(self):
    teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    net, _ = teachers.load(directory=teacher_dir)
    path = export.export_teacher(net, os.path.join(self.get_temp_dir(),
                                                   "teacher_sm"))
    self._round_trip(path, net.log_policy)
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    experiment.train_and_evaluate(distillation_testing.tiny_config(
        teacher_dir, export_students=True), workdir)
    unit = os.path.dirname(_finished_units(workdir)[0])
    student = experiment.load_student(unit)
    self._round_trip(os.path.join(unit, "saved_model"), student.log_policy)

  def test_export_command_line(self):
    teacher_dir = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()))
    out = os.path.join(self.get_temp_dir(), "cli_sm")
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.export",
         f"--teacher_dir={teacher_dir}", f"--out={out}"], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    net, _ = teachers.load(directory=teacher_dir)
    self._round_trip(out, net.log_policy)
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.export",
         f"--student={self.get_temp_dir()}", f"--out={out}2"], cwd=REPO,
        capture_output=True, text=True, timeout=300, env=_user_env())
    self.assertEqual(proc.returncode, 2)
    self.assertIn("holds no finished student", proc.stderr)
    self.assertLen(proc.stderr.strip().splitlines(), 1, proc.stderr)


if __name__ == "__main__":
  tf.test.main()
