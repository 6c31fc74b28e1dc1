"""Tests of sobolev.experiment.cli: quiet TensorFlow, one-line user errors."""

import os
import re
import shutil
import subprocess
import sys

from absl.testing import parameterized
import tensorflow as tf

from sobolev.experiment import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Imports TensorFlow (and Sonnet) and runs an op, after `cli.quiet()` when
# the first argument is "quiet".
_TF_SCRIPT = """
import sys
if sys.argv[1] == "quiet":
  from sobolev.experiment import cli
  cli.quiet()
  print("argv", sys.argv[1:])
import sonnet as snt
import tensorflow as tf
print("result", float(snt.Linear(1)(tf.ones([1, 2])).shape[1]))
"""

# A CLI in the entry-point pattern; the first argument picks what main does.
_CLI_SCRIPT = """
from sobolev.experiment import cli
from absl import flags
from absl import logging
from sobolev.experiment import errors
cli.define_workdir_flags()
flags.DEFINE_string("do", "ok", "What main does.")
flags.DEFINE_integer("a", 1, "The setting of the 'open' run.")
FLAGS = flags.FLAGS

def main(argv):
  del argv
  policy = cli.if_different()
  if FLAGS.do == "config":
    raise errors.ConfigError("`learning_rate` must be finite,\\n  got nan.")
  if FLAGS.do == "workdir":
    raise errors.WorkdirMismatchError("/w holds results made with other "
                                      "settings: steps: 40 -> 20.")
  if FLAGS.do == "divergence":
    raise errors.DivergenceError("Training diverged (step 3): loss = nan.")
  if FLAGS.do == "bug":
    raise RuntimeError("a bug keeps its traceback")
  if FLAGS.do == "interrupt":
    raise KeyboardInterrupt
  if FLAGS.do == "sigterm":  # As `kill` would, mid-record.
    import os, signal, time
    from sobolev.experiment import provenance
    with provenance.recorded(FLAGS.workdir, {"a": FLAGS.a},
                             statuses={KeyboardInterrupt: "interrupted"}):
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(60)
  if FLAGS.do == "log":
    logging.info("an info line")
    logging.warning("a warning line")
  if FLAGS.do == "permission":
    raise PermissionError(13, "Permission denied", "/w/config.json")
  if FLAGS.do == "full":
    raise OSError(28, "No space left on device", "/w/runs/k/result.json")
  if FLAGS.do == "shard":
    cli.quiet()
    from sobolev import rollouts
    raise rollouts.CorruptShardError(5, "not a readable rollout shard "
                                     "(BadZipFile: File is not a zip file)",
                                     "/w/shard-00000.npz")
  if FLAGS.do in ("open", "fail_before_work"):
    from sobolev.experiment import provenance
    from sobolev.experiment import runs
    from sobolev.experiment import workdirs
    with workdirs.opened(FLAGS.workdir, {"a": FLAGS.a}) as w:
      with provenance.recorded(w, {"a": FLAGS.a}):
        if FLAGS.do == "fail_before_work":
          raise errors.UserError("failed before any work.")
        store = runs.RunStore(w)
        if store.result({"a": FLAGS.a}) is None:
          store.save({"a": FLAGS.a}, {"r": 1})
  if FLAGS.do == "weights":
    cli.quiet()
    import tensorflow as tf
    from sobolev.experiment import checkpoints
    v = tf.Variable(tf.ones([1000]))
    path = tf.train.Checkpoint(v=v).write(FLAGS.workdir + "/weights")
    with open(FLAGS.workdir + "/weights.data-00000-of-00001", "r+b") as f:
      f.truncate(100)
    checkpoints.read(tf.train.Checkpoint(v=v), path,
                     remedy="delete it to train again")
  print("policy", policy, "workdir", FLAGS.workdir)

if __name__ == "__main__":
  cli.run(main)
"""


# A command in the entry-point shape: `cli.run(main, define_flags)`.
_SHAPE_SCRIPT = """
from absl import flags
from sobolev.experiment import cli
cli.quiet()

def define_flags():
  cli.define_workdir_flags(default="unused")
  cli.define_dry_run_flag()
  flags.DEFINE_integer("steps", 3, "The command's own flag.")

def main(argv):
  del argv
  print("steps", flags.FLAGS.steps, "dry", cli.dry_run())

if __name__ == "__main__":
  cli.run(main, define_flags)
"""


# `cli.run` handles SIGTERM during `main` only (a process that runs several
# commands gets its own handling back).
_RESTORE_SCRIPT = """
import signal
from sobolev.experiment import cli

def main(argv):
  del argv
  print("inside", signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)

try:
  cli.run(main)
except SystemExit:
  pass
print("after", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


def _run(script, *args, env=None):
  env = dict(os.environ if env is None else env,
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=600,
                        check=False)


def _without_tf_log_level():
  return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def _sources(stderr):
  """The C++ sources of TensorFlow's log lines ('port.cc', ...)."""
  return set(re.findall(r"\s(\w+\.cc):\d+\]", stderr))


class QuietTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.loud = _run(_TF_SCRIPT, "loud", env=_without_tf_log_level())

  def setUp(self):
    super().setUp()
    self.assertEqual(self.loud.returncode, 0, msg=self.loud.stderr[-3000:])
    if not _sources(self.loud.stderr):
      self.skipTest("TensorFlow printed nothing at start-up here, so there "
                    "is nothing to hide.")

  def test_quiet_hides_the_tensorflow_start_up_lines(self):
    quiet = _run(_TF_SCRIPT, "quiet", env=_without_tf_log_level())
    self.assertEqual(quiet.returncode, 0, msg=quiet.stderr[-3000:])
    self.assertEqual(quiet.stderr, "")
    self.assertIn("result 1.0", quiet.stdout)

  def test_verbose_tf_flag_keeps_them_and_is_consumed(self):
    out = _run(_TF_SCRIPT, "quiet", "--verbose_tf",
               env=_without_tf_log_level())
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    self.assertIn("argv ['quiet']", out.stdout)
    self.assertEqual(_sources(out.stderr), _sources(self.loud.stderr))

  def test_user_log_level_zero_keeps_them(self):
    env = dict(_without_tf_log_level(), TF_CPP_MIN_LOG_LEVEL="0")
    out = _run(_TF_SCRIPT, "quiet", env=env)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    self.assertContainsSubset(_sources(self.loud.stderr),
                              _sources(out.stderr))


class RunTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(
      ("config", "error: `learning_rate` must be finite, got nan."),
      ("workdir", "error: /w holds results made with other settings: "
       "steps: 40 -> 20."),
      ("divergence", "error: Training diverged (step 3): loss = nan."),
  )
  def test_user_error_is_one_line_with_status_2(self, do, line):
    out = _run(_CLI_SCRIPT, "--workdir=/w", f"--do={do}")
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(out.stderr, line + "\n")
    self.assertEqual(out.stdout, "")

  def test_bug_keeps_its_traceback(self):
    out = _run(_CLI_SCRIPT, "--workdir=/w", "--do=bug")
    self.assertEqual(out.returncode, 1)
    self.assertIn("Traceback", out.stderr)
    self.assertIn("RuntimeError: a bug keeps its traceback", out.stderr)

  def test_interrupt_is_one_line_with_status_130(self):
    out = _run(_CLI_SCRIPT, "--workdir=/w", "--do=interrupt")
    self.assertEqual(out.returncode, 130)
    self.assertEqual(out.stderr, "interrupted.\n")

  def test_sigterm_handler_is_restored_after_main(self):
    out = _run(_RESTORE_SCRIPT)
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertEqual(out.stdout, "inside True\nafter True\n")

  def test_sigterm_unwinds_and_closes_the_record(self):
    workdir = self.create_tempdir().full_path
    out = _run(_CLI_SCRIPT, f"--workdir={workdir}", "--do=sigterm")
    self.assertEqual(out.returncode, 143, msg=out.stderr)
    self.assertEqual(out.stderr, "terminated.\n")
    record = files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"][-1]
    self.assertEqual(record["status"], "interrupted")

  @parameterized.parameters(([], "refuse"), (["--fresh"], "fresh"),
                            (["--separate"], "separate"),
                            (["--nofresh", "--separate"], "separate"))
  def test_workdir_flags_give_the_policy(self, flags, policy):
    out = _run(_CLI_SCRIPT, "--workdir=/tmp/w", *flags)
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertEqual(out.stdout, f"policy {policy} workdir /tmp/w\n")

  def test_absl_info_lines_only_with_verbosity(self):
    out = _run(_CLI_SCRIPT, "--workdir=/w", "--do=log")
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertIn("a warning line", out.stderr)
    self.assertNotIn("an info line", out.stderr)
    out = _run(_CLI_SCRIPT, "--workdir=/w", "--do=log", "--verbosity=0")
    self.assertIn("an info line", out.stderr)

  def test_fresh_and_separate_together_are_refused(self):
    out = _run(_CLI_SCRIPT, "--workdir=/w", "--fresh", "--separate")
    self.assertEqual(out.returncode, 2)
    self.assertEqual(out.stderr,
                     "error: Pass at most one of --fresh and --separate.\n")

  @parameterized.parameters(
      ("permission", "error: /w/config.json: Permission denied; check its "
       "permissions (and its folder's), or give another path."),
      ("full", "error: /w/runs/k/result.json: No space left on device; free "
       "some space and run again (finished work is kept)."),
      ("shard", "error: /w/shard-00000.npz: not a readable rollout shard "
       "(BadZipFile: File is not a zip file)."),
  )
  def test_file_faults_are_one_line_with_status_2(self, do, line):
    out = _run(_CLI_SCRIPT, "--workdir=/w", f"--do={do}",
               env=_without_tf_log_level())
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(out.stderr, line + "\n")

  def _open(self, workdir, *args):
    return _run(_CLI_SCRIPT, f"--workdir={workdir}", "--do=open", *args)

  def test_workdir_under_a_file_or_a_file(self):
    tmp = self.create_tempdir().full_path
    a_file = os.path.join(tmp, "f")
    with open(a_file, "w") as f:
      f.write("x")
    out = self._open(os.path.join(a_file, "w"))
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(
        out.stderr, f"error: {a_file}/w: Not a directory; a part of this "
        "path is a file, not a folder: move that file aside or give another "
        "path.\n")
    out = self._open(a_file)
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(
        out.stderr, f"error: {a_file}: File exists; a file is where a folder "
        "belongs: move it aside or give another path.\n")

  def test_runs_being_a_file(self):
    workdir = self.create_tempdir().full_path
    self.assertEqual(self._open(workdir).returncode, 0)
    shutil.rmtree(os.path.join(workdir, "runs"))
    with open(os.path.join(workdir, "runs"), "w") as f:
      f.write("x")
    out = self._open(workdir)
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertRegex(out.stderr, "^error: " + re.escape(workdir) +
                     r"/runs/\w+: Not a directory; a part of this path is a "
                     r"file, not a folder: move that file aside or give "
                     r"another path\.\n$")

  @parameterized.parameters(("provenance.json", "move it aside (it only "
                             "records how the workdir was made; a new one is "
                             "started)"),
                            ("result.json", "delete {unit} to redo that unit"),
                            ("settings.json", "delete {unit} to redo that "
                             "unit"))
  def test_garbled_json_names_the_file(self, name, remedy):
    workdir = self.create_tempdir().full_path
    self.assertEqual(self._open(workdir).returncode, 0)
    (unit,) = [os.path.join(workdir, "runs", k)
               for k in os.listdir(os.path.join(workdir, "runs"))]
    path = os.path.join(workdir if name == "provenance.json" else unit, name)
    with open(path, "w") as f:
      f.write('{"a": ')
    out = self._open(workdir)
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(out.stderr,
                     f"error: {path} is not valid JSON (line 1 column 7: "
                     f"Expecting value); {remedy.format(unit=unit)}.\n")

  def test_truncated_weights_name_the_file(self):
    workdir = self.create_tempdir().full_path
    out = _run(_CLI_SCRIPT, f"--workdir={workdir}", "--do=weights",
               env=_without_tf_log_level())
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(out.stderr,
                     f"error: the weights {workdir}/weights cannot be read "
                     "(Read less bytes than requested); delete it to train "
                     "again.\n")

  def test_a_run_that_failed_before_work_does_not_block_other_settings(self):
    workdir = self.create_tempdir().full_path
    out = _run(_CLI_SCRIPT, f"--workdir={workdir}", "--do=fail_before_work")
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(out.stderr, "error: failed before any work.\n")
    self.assertTrue(os.path.exists(os.path.join(workdir, "config.json")))
    out = self._open(workdir, "--a=2")  # Other settings, no --fresh.
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    # Once there are results, other settings are refused again.
    out = self._open(workdir, "--a=3")
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(
        out.stderr, f"error: {workdir} holds results made with other "
        "settings: a: 2 -> 3. Pass --fresh to move them aside and start "
        "again, or --separate to keep these settings as a separate run "
        "set.\n")

  @parameterized.parameters(
      (["--config.stepz=5"], "error: --config.stepz: the config has no such "
       "field; did you mean --config.steps?"),
      (["--config=benchmarks/configs/default.py", "--config.stepz=5"],
       "error: --config.stepz: the config has no such field; did you mean "
       "--config.steps?"),
      (["--config.steps=abc"], "error: flag --config.steps=abc: invalid "
       "literal for int() with base 10: 'abc' (--helpfull lists the flags)"),
      (["--workdirr=x"], "error: Unknown command line flag 'workdirr'. Did "
       "you mean: workdir ? (--helpfull lists the flags)"),
  )
  def test_flag_errors_of_an_entry_point_are_one_line(self, args, line):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    env = dict(_without_tf_log_level(), PYTHONPATH=ROOT + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", f"--workdir={workdir}",
         *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600, check=False)
    self.assertEqual(out.returncode, 2, msg=out.stderr[-3000:])
    self.assertEqual(out.stderr, line + "\n")
    self.assertFalse(os.path.exists(workdir))

  def test_positional_arguments_are_one_line(self):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    out = _run(_CLI_SCRIPT, f"--workdir={workdir}", "extra", "args")
    self.assertEqual(out.returncode, 2, msg=out.stderr)
    self.assertEqual(out.stderr, "error: Unexpected arguments: ['extra', "
                     "'args']\n")
    self.assertFalse(os.path.exists(workdir))

  def test_help_lists_the_commands_flags_and_not_tensorflows(self):
    out = _run(_SHAPE_SCRIPT, "--help")
    listing = out.stdout.partition("\nflags:\n")[2]
    listed = set(re.findall(r"^  --(?:\[no\])?(\w+)", listing, re.M))
    self.assertEqual(listed, {"workdir", "fresh", "separate", "dry_run",
                              "steps"}, msg=out.stdout)
    full = _run(_SHAPE_SCRIPT, "--helpfull").stdout
    self.assertIn("--test_srcdir", full)  # absl's, listed by --helpfull only.
    out = _run(_SHAPE_SCRIPT, "--steps=5", "--dry_run")
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertEqual(out.stdout, "steps 5 dry True\n")

  def test_workdir_is_required(self):
    out = _run(_CLI_SCRIPT)
    self.assertNotEqual(out.returncode, 0)
    self.assertIn("--workdir", out.stderr)
    self.assertNotIn("Traceback", out.stderr)


# A CLI with `cli.define_config_flag`: argv[1] is the config file.
_CONFIG_SCRIPT = """
import sys
from sobolev.experiment import cli
from absl import flags
config_file = sys.argv.pop(1)
cli.define_config_flag(config_file, "The config.")

def main(argv):
  del argv
  config = flags.FLAGS.config
  if cli.dry_run():
    cli.say_dry_run(f"would use names {config.names}\\n  and {config.nums}")
    return
  print("names", config.names, "nums", config.nums)

if __name__ == "__main__":
  cli.run(main)
"""

_CONFIG_FILE = """
import ml_collections

def get_config():
  return ml_collections.ConfigDict({"names": ("a", "b"), "nums": (1, 2)})
"""


class ConfigFlagAndDryRunTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.config = self.create_tempfile("config.py", _CONFIG_FILE).full_path

  @parameterized.parameters(
      ([], "names ('a', 'b') nums (1, 2)"),
      # Not Python (nw0.3): one string, which the experiments split.
      (["--config.names=naive,base,nw0.3"],
       "names ('naive,base,nw0.3',) nums (1, 2)"),
      (["--config.names=booth,beale"], "names ('booth,beale',) nums (1, 2)"),
      (["--config.names=('x', 'y')"], "names ('x', 'y') nums (1, 2)"),
      (["--config.nums=3,4"], "names ('a', 'b') nums (3, 4)"),
  )
  def test_tuple_fields_take_bare_names(self, args, line):
    out = _run(_CONFIG_SCRIPT, self.config, *args)
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertEqual(out.stdout, line + "\n")

  def test_dry_run_prints_one_line(self):
    out = _run(_CONFIG_SCRIPT, self.config, "--dry_run",
               "--config.names=p,q")
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertEqual(out.stdout,
                     "dry run: would use names ('p,q',) and (1, 2)\n")

  def test_dry_run_is_false_where_undefined(self):
    out = _run("from sobolev.experiment import cli\n"
               "from absl import flags\n"
               "flags.FLAGS(['x'])\n"
               "print(cli.dry_run())\n")
    self.assertEqual(out.returncode, 0, msg=out.stderr)
    self.assertEqual(out.stdout, "False\n")


if __name__ == "__main__":
  tf.test.main()
