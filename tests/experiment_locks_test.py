"""Tests of sobolev.experiment.locks: one workdir, one writer."""

import os
import signal
import socket
import subprocess
import sys
import time

import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import locks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Holds the lock of argv[1] until killed.
_HOLDER = """
import sys, time
from sobolev.experiment import locks
locks.hold(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""

# A CLI that opens its workdir the way every experiment does.
_CLI = """
from absl import flags
from sobolev.experiment import cli
from sobolev.experiment import workdirs
cli.define_workdir_flags()

def main(argv):
  del argv
  print("opened", workdirs.open_workdir(flags.FLAGS.workdir, {"steps": 1}))

if __name__ == "__main__":
  cli.run(main)
"""


def _env():
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
             os.environ.get("PYTHONPATH", ""))
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The CLIs quiet TensorFlow.
  return env


def _start_holder(workdir):
  proc = subprocess.Popen([sys.executable, "-c", _HOLDER, workdir], cwd=ROOT,
                          env=_env(), stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def _kill(proc):
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  proc.stdout.close()


def _in_use_line(workdir):
  info = locks.holder(workdir)
  return (f"error: {workdir} is in use by another run (pid {info['pid']} on "
          f"{socket.gethostname()}, since {info['since']}); wait for it to "
          "finish, or give another --workdir.\n")


class LocksTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = os.path.join(self.create_tempdir().full_path, "w")

  def tearDown(self):
    locks.release(self.workdir)
    super().tearDown()

  def test_second_holder_is_refused_naming_the_first(self):
    holder = _start_holder(self.workdir)
    try:
      with self.assertRaises(errors.WorkdirInUseError) as cm:
        locks.hold(self.workdir)
      self.assertIn(f"(pid {holder.pid} on {socket.gethostname()}, since ",
                    str(cm.exception))
      self.assertIsInstance(cm.exception, errors.UserError)
      self.assertFalse(locks.holds(self.workdir))
    finally:
      _kill(holder)

  def test_lock_of_a_killed_process_is_taken_over(self):
    holder = _start_holder(self.workdir)
    _kill(holder)  # kill -9: no clean-up ran; the lock file stays.
    self.assertEqual(locks.holder(self.workdir)["pid"], holder.pid)
    locks.hold(self.workdir)
    self.assertTrue(locks.holds(self.workdir))
    self.assertEqual(locks.holder(self.workdir)["pid"], os.getpid())

  def test_reentrant_and_released(self):
    locks.hold(self.workdir)
    locks.hold(self.workdir)
    self.assertTrue(locks.holds(self.workdir))
    locks.release(self.workdir)  # One hold is left.
    self.assertTrue(locks.holds(self.workdir))
    locks.release(self.workdir)
    self.assertFalse(locks.holds(self.workdir))
    holder = _start_holder(self.workdir)  # Another process may take it now.
    _kill(holder)

  def test_moved_workdir_is_locked_again_at_its_path(self):
    locks.hold(self.workdir)
    os.rename(self.workdir, self.workdir + ".old")
    self.assertFalse(locks.holds(self.workdir))
    locks.hold(self.workdir)
    self.assertTrue(locks.holds(self.workdir))
    holder = _start_holder(self.workdir + ".old")  # Released there.
    _kill(holder)

  def test_cli_on_a_workdir_in_use_exits_2_with_one_line(self):
    holder = _start_holder(self.workdir)
    command = [sys.executable, "-c", _CLI, f"--workdir={self.workdir}"]
    try:
      second = subprocess.run(command, cwd=ROOT, env=_env(),
                              capture_output=True, text=True, timeout=600,
                              check=False)
      self.assertEqual(second.returncode, 2, second.stderr)
      self.assertEqual(second.stderr, _in_use_line(self.workdir))
      self.assertEqual(second.stdout, "")
      self.assertFalse(os.path.exists(os.path.join(self.workdir,
                                                   "config.json")))
    finally:
      _kill(holder)
    third = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True,
                           text=True, timeout=600, check=False)
    self.assertEqual(third.returncode, 0, third.stderr)
    self.assertEqual(third.stdout, f"opened {self.workdir}\n")

  def test_two_experiment_runs_started_together_one_is_refused(self):
    # The bug: both exited 0 and interleaved their files. Now the second
    # of two runs of a real entry point exits 2 with the one line.
    holder = _start_holder(self.workdir)
    try:
      run = subprocess.run(
          [sys.executable, "-m", "synthetic_gradients.run",
           f"--workdir={self.workdir}", "--config.methods=sobolev",
           "--config.seeds=1", "--config.epochs=1"],
          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
          check=False)
      self.assertEqual(run.returncode, 2, run.stderr[-3000:])
      self.assertEqual(run.stderr, _in_use_line(self.workdir))
      self.assertEqual(sorted(os.listdir(self.workdir)), [locks.LOCK_FILE])
    finally:
      _kill(holder)


if __name__ == "__main__":
  tf.test.main()
