"""Tests of the `python -m benchmarks.run` command line (subprocesses)."""

import glob
import os
import signal
import subprocess
import sys
import time

import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from benchmarks import experiment
from benchmarks import report
from benchmarks.configs import default
from sobolev.experiment import files

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Two functions x two sizes (full batch and mini-batches) x two methods:
# four groups, eight models.
_TINY = {"functions": ("booth", "styblinski_tang"), "sizes": (6, 150),
         "seeds": 1, "steps": 120, "steps_per_call": 10,
         "hidden_sizes": (16, 16), "test_size": 50}


def _flags(**overrides):
  values = dict(_TINY, **overrides)
  out = []
  for name, value in values.items():
    if isinstance(value, tuple):
      value = ",".join(str(v) for v in value)
    out.append(f"--config.{name}={value}")
  return out


def _command(workdir, *args):
  return [sys.executable, "-m", "benchmarks.run", f"--workdir={workdir}",
          *args]


def _run(workdir, *args):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The CLI must be quiet by itself.
  return subprocess.run(_command(workdir, *args), cwd=_REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def _numbers(rows):
  return {r.key: (r.test_mse, r.test_grad_mse) for r in rows}


class RunCliTest(tf.test.TestCase):

  def test_kill_9_then_resume_gives_the_uninterrupted_numbers(self):
    workdir = self.create_tempdir().full_path
    proc = subprocess.Popen(_command(workdir, *_flags()), cwd=_REPO,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = os.path.join(workdir, "runs", "*", "result.json")
    deadline = time.time() + 500
    while not glob.glob(results) and proc.poll() is None:
      self.assertLess(time.time(), deadline)
      time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(glob.glob(results))
    self.assertBetween(finished, 1, 7)  # Killed mid-run.
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))

    resumed = _run(workdir, *_flags())
    self.assertEqual(resumed.returncode, 0, msg=resumed.stderr[-3000:])
    rows = report.read(os.path.join(workdir, "results.csv"))
    self.assertLen(rows, 8)
    # Every unit's curves start again after an interruption: no step twice.
    for unit in glob.glob(os.path.join(workdir, "runs", "*")):
      steps = [int(r["step"]) for r in files.read_csv(
          os.path.join(unit, "curves.csv")) if r["train/loss"]]
      self.assertEqual(steps, list(range(10, 121, 10)))
    for logdir in glob.glob(os.path.join(workdir, "tb", "*", "*")):
      acc = event_accumulator.EventAccumulator(
          logdir, size_guidance={event_accumulator.TENSORS: 0})  # Keep all.
      acc.Reload()
      steps = [e.step for e in acc.Tensors("train/loss")]
      self.assertEqual(steps, list(range(10, 121, 10)))
    statuses = [r["status"] for r in files.read_json(
        os.path.join(workdir, "provenance.json"))["invocations"]]
    self.assertEqual(statuses, ["running", "finished"])  # The killed one.

    config = default.get_config()
    config.update(_TINY)
    uninterrupted = experiment.train_and_evaluate(
        config, self.create_tempdir().full_path, show_progress=False)
    self.assertEqual(_numbers(rows), _numbers(uninterrupted.rows))

  def test_user_errors_are_one_line_without_chatter(self):
    workdir = self.create_tempdir().full_path
    bad = _run(workdir, *_flags(functions=("booth", "sphere")))
    self.assertEqual(bad.returncode, 2)
    self.assertEqual(bad.stderr.strip().splitlines(), [
        "error: `functions` must be one of ('ackley', 'beale', 'booth', "
        "'bukin', 'mccormick', 'rosenbrock', 'styblinski_tang'), "
        "rosenbrock_<D>d or styblinski_tang_<D>d (D >= 3) or a function "
        "registered with benchmarks.functions.register, got 'sphere'."])
    nan = _run(workdir, *_flags(learning_rate="nan"))
    self.assertEqual(nan.returncode, 2)
    self.assertEqual(nan.stderr.strip().splitlines(),
                     ["error: `learning_rate` must be finite, got nan."])
    both = _run(workdir, "--fresh", "--separate")
    self.assertEqual(both.returncode, 2)
    self.assertIn("at most one of --fresh and --separate", both.stderr)
    self.assertEqual(os.listdir(workdir), [])

    ok = _run(workdir, *_flags(sizes=(6,), functions=("booth",), steps=20))
    self.assertEqual(ok.returncode, 0, msg=ok.stderr[-3000:])
    self.assertNotIn("oneDNN", ok.stderr)
    self.assertNotIn("cuda", ok.stderr.lower())
    self.assertNotIn("I0000", ok.stderr)
    self.assertIn("| Booth |", ok.stdout)
    self.assertIn("figure3.png not drawn", ok.stderr)
    self.assertNotIn("figure3.png", ok.stdout)
    changed = _run(workdir, *_flags(sizes=(6,), functions=("booth",),
                                    steps=30))
    self.assertEqual(changed.returncode, 2)
    lines = changed.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertIn("holds results made with other settings: steps: 20 -> 30",
                  lines[0])


  def test_a_function_registered_in_a_config_file_and_the_study_cli(self):
    tmp = self.create_tempdir().full_path
    config_file = os.path.join(tmp, "wave.py")
    with open(config_file, "w") as f:
      f.write(_USER_CONFIG)
    workdir = os.path.join(tmp, "sweep")
    out = _run(workdir, f"--config={config_file}", "--config.sizes=6",
               "--config.seeds=1", "--config.steps=5",
               "--config.steps_per_call=5", "--config.hidden_sizes=8,8",
               "--config.test_size=30")
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    rows = report.read(os.path.join(workdir, "results.csv"))
    self.assertEqual({(r.function, r.method) for r in rows},
                     {("wave3", "regular"), ("wave3", "sobolev")})

    study = os.path.join(tmp, "study")
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.study",
         "--config=benchmarks/configs/dimension.py", f"--workdir={study}",
         "--config.dim_families=rosenbrock", "--config.dims=2,3",
         "--config.sizes=6,8", "--config.seeds=2", "--config.budgets=5,10",
         "--config.steps_per_call=5", "--config.hidden_sizes=8,8",
         "--config.test_size=30", "--config.bootstrap_samples=100"],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=600)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    self.assertIn("| Rosenbrock 3-D | 3 | 6 | 5 | ours | 2 |", out.stdout)
    self.assertNotIn("oneDNN", out.stderr)
    for name in ("study.md", "gaps.csv", "study.csv", "gap_vs_dim.png",
                 "gap_vs_budget.png"):
      self.assertTrue(os.path.exists(os.path.join(study, name)), msg=name)
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks.study", f"--workdir={study}",
         "--config.protocols=ours,magic"],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=600)
    self.assertEqual(bad.returncode, 2)
    self.assertEqual(bad.stderr.strip().splitlines(), [
        "error: `protocols` must be one of ('ours', 'raw_l2', "
        "'differential_ml'), got 'magic'."])


# A config file that registers its own 3-D function (guarded, in case the
# file is loaded twice) and sweeps it.
_USER_CONFIG = """
import tensorflow as tf

from benchmarks import functions
from benchmarks.configs import default

if "wave3" not in functions.BENCHMARKS:
  functions.register(functions.Benchmark(
      "wave3", "Wave 3-D", lambda p: tf.reduce_sum(tf.sin(p), axis=1),
      (-2.0, -2.0, -2.0), (2.0, 2.0, 2.0)))


def get_config():
  config = default.get_config()
  config.functions = ("wave3",)
  return config
"""


if __name__ == "__main__":
  tf.test.main()
