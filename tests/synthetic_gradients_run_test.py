"""The synthetic-gradients command line: kill -9 and resume, one-line errors.

Each test runs `python -m synthetic_gradients.run` in subprocesses on a tiny
digits config.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("--config.methods=sobolev", "--config.seeds=1",
        "--config.widths=4,4,4,4", "--config.image_size=8",
        "--config.num_modules=1", "--config.max_train_examples=48",
        "--config.max_test_examples=32", "--config.batch_size=16",
        "--config.export_saved_model=False")


def _command(workdir, *flags):
  return [sys.executable, "-m", "synthetic_gradients.run",
          f"--workdir={workdir}", *TINY, *flags]


def _env():
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The CLI quiets TensorFlow itself.
  return env


def _run(workdir, *flags):
  return subprocess.run(_command(workdir, *flags), cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=900,
                        check=False)


def _result(workdir):
  paths = glob.glob(os.path.join(workdir, "runs", "*", "result.json"))
  if not paths:
    return None
  assert len(paths) == 1, paths
  with open(paths[0]) as f:
    return json.load(f)


class RunTest(tf.test.TestCase):

  def test_kill_9_then_resume_gives_the_uninterrupted_numbers(self):
    epochs = "--config.epochs=12"
    tmp = self.create_tempdir().full_path
    straight, killed = os.path.join(tmp, "straight"), os.path.join(tmp, "k")
    uninterrupted = subprocess.Popen(
        _command(straight, epochs), cwd=ROOT, env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_command(killed, epochs), cwd=ROOT, env=_env(),
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
      deadline = time.time() + 600
      pattern = os.path.join(killed, "runs", "*", "checkpoints",
                             "ckpt-3.index")
      while not glob.glob(pattern):
        self.assertIsNone(victim.poll(), "the run ended before the kill")
        self.assertLess(time.time(), deadline)
        time.sleep(0.02)
      victim.send_signal(signal.SIGKILL)
      victim.wait(timeout=60)
    finally:
      if victim.poll() is None:
        victim.kill()
    self.assertEqual(victim.returncode, -signal.SIGKILL)
    self.assertIsNone(_result(killed), "the run finished before the kill")
    resumed = _run(killed, epochs)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertRegex(resumed.stdout, r"resumed sobolev seed 0 at epoch [1-9]")
    out, err = uninterrupted.communicate(timeout=900)
    self.assertEqual(uninterrupted.returncode, 0, err[-3000:])
    self.assertNotIn("resumed", out)
    a, b = _result(straight), _result(killed)
    for name in ("epoch", "train_ce", "test_accuracy", "test_top5"):
      self.assertEqual(a["history"][name], b["history"][name], name)
    self.assertLen(a["history"]["epoch"], 12)
    for name in ("train_ce", "test_accuracy", "test_top5", "sg_cosine",
                 "sg_cosine_per_module"):
      self.assertEqual(a[name], b[name], name)
    # The per-epoch metrics file has each epoch once, with the same numbers.
    rows = [open(glob.glob(os.path.join(w, "runs", "*", "metrics.csv"))[0])
            .read().splitlines() for w in (straight, killed)]
    self.assertLen(rows[1], 13)
    wall = rows[0][0].split(",").index("wall_s")
    drop = lambda lines: [[c for i, c in enumerate(l.split(",")) if i != wall]
                          for l in lines]
    self.assertEqual(drop(rows[0]), drop(rows[1]))
    # So do the TensorBoard events (the killed attempt's are rewritten).
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    curves = []
    for w in (straight, killed):
      acc = event_accumulator.EventAccumulator(
          os.path.join(w, "tb", "sobolev_seed0"),
          size_guidance={event_accumulator.TENSORS: 0})  # 0: keep all.
      acc.Reload()
      curves.append([(e.step, float(tf.make_ndarray(e.tensor_proto)))
                     for e in acc.Tensors("train/ce")])
    self.assertEqual([step for step, _ in curves[1]], list(range(1, 13)))
    self.assertAllClose(curves[0], curves[1])
    with open(os.path.join(killed, "provenance.json")) as f:
      statuses = [r["status"] for r in json.load(f)["invocations"]]
    self.assertEqual(statuses, ["running", "finished"])  # The kill, then us.

  def test_separate_prints_its_run_set_in_the_last_line(self):
    workdir = self.create_tempdir().full_path
    first = _run(workdir, "--config.epochs=1")
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    self.assertIn(f"results in {workdir} (", first.stdout.splitlines()[-1])
    apart = _run(workdir, "--config.epochs=2", "--separate")
    self.assertEqual(apart.returncode, 0, apart.stderr[-3000:])
    (key,) = os.listdir(os.path.join(workdir, "sets"))
    where = os.path.join(workdir, "sets", key)
    self.assertEqual(
        apart.stdout.splitlines()[-1],
        f"1 runs; results in {where} (results.md, results.csv, curves.png; "
        f"TensorBoard: tensorboard --logdir {where}/tb)")

  def test_user_errors_are_one_line(self):
    workdir = self.create_tempdir().full_path
    for flags, message in (
        (("--config.learning_rate=nan",), "`learning_rate` must be finite"),
        (("--config.dataset=mnist",), "`dataset` must be one of"),
        (("--config.methods=sobolev,magic",), "`methods` must be one of"),
        (("--fresh", "--separate"), "at most one of --fresh and --separate"),
    ):
      proc = _run(workdir, *flags)
      self.assertEqual(proc.returncode, 2, proc.stderr[-3000:])
      self.assertNotIn("Traceback", proc.stderr)
      lines = [l for l in proc.stderr.splitlines() if l.strip()]
      self.assertLen(lines, 1, proc.stderr)
      self.assertStartsWith(lines[0], "error: ")
      self.assertIn(message, lines[0])
    self.assertFalse(os.path.exists(os.path.join(workdir, "config.json")))


class StallTest(tf.test.TestCase):

  def test_stalled_run_is_one_line_and_exit_2(self):
    # A learning rate that is 0 in float32: the parameters never change.
    workdir = self.create_tempdir().full_path
    proc = _run(workdir, "--config.methods=backprop", "--config.epochs=3",
                "--config.learning_rate=1e-50", "--config.schedule=constant",
                "--config.stall_patience=2")
    self.assertEqual(proc.returncode, 2, proc.stderr[-3000:])
    self.assertNotIn("Traceback", proc.stderr)
    last = proc.stderr.strip().splitlines()[-1]
    self.assertStartsWith(
        last, "error: Training stalled (backprop seed 0): the parameters did "
        "not change from epoch 1 to epoch 3 (2 evaluations in a row).")
    self.assertIn("stall_patience=0", last)
    self.assertIsNone(_result(workdir))


if __name__ == "__main__":
  tf.test.main()
