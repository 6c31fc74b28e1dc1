"""Tests of sobolev.experiment.cli: quiet TensorFlow, one-line user errors."""

import os
import re
import subprocess
import sys

from absl.testing import parameterized
import tensorflow as tf

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
  if FLAGS.do == "log":
    logging.info("an info line")
    logging.warning("a warning line")
  print("policy", policy, "workdir", FLAGS.workdir)

if __name__ == "__main__":
  cli.run(main)
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
