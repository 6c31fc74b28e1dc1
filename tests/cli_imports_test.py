"""Every command-line module imports together, parses its flags, and talks
to a user in one line.

The CLIs share flag names (`--config`, `--workdir`, ...); absl flags are
global, so each module defines its flags only when run as a program.
Importing them all into one process must not raise. A bad setting must be
reported as one line (exit status 2), before any work, and without
TensorFlow's start-up chatter.
"""

import os
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import tensorflow as tf

CLI_MODULES = (
    "benchmarks.run", "benchmarks.speed", "benchmarks.speed_profile",
    "benchmarks.tune", "benchmarks.study", "benchmarks.compare_runs",
    "benchmarks.architecture_study",
    "distillation.run", "distillation.train_teacher",
    "distillation.evaluate_teacher", "distillation.collect_rollouts",
    "distillation.plot_teachers", "distillation.export",
    "distillation.report", "distillation.speed", "distillation.study",
    "synthetic_gradients.run", "synthetic_gradients.symmetry_report",
    "synthetic_gradients.table1", "synthetic_gradients.speed",
)
RUN_MODULES = ("benchmarks.run", "distillation.run", "synthetic_gradients.run")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(*args):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # What a user's shell has.
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600,
                        check=False)


class CliImportsTest(parameterized.TestCase):

  def test_all_cli_modules_import_in_one_process(self):
    code = "import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in CLI_MODULES)
    out = _python("-c", code)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])

  @parameterized.parameters(*RUN_MODULES)
  def test_run_as_program_defines_its_flags(self, module):
    # (absl exits with status 1 after --helpshort when a flag is required.)
    out = _python("-m", module, "--helpshort")
    text = out.stdout + out.stderr
    for flag in ("--config", "--workdir", "--fresh", "--separate"):
      self.assertIn(flag, text, msg=text[-3000:])

  @parameterized.parameters(
      ("benchmarks.run", "--config.learning_rate=nan", "learning_rate"),
      ("distillation.run", "--config.steps=-5", "steps"),
      ("distillation.study", "--config.steps=-5", "steps"),
      ("synthetic_gradients.run", "--config.learning_rate=inf",
       "learning_rate"),
  )
  def test_bad_setting_is_one_quiet_line(self, module, flag, field):
    workdir = os.path.join(tempfile.mkdtemp(dir=self.create_tempdir().full_path),
                           "w")
    out = _python("-m", module, flag, f"--workdir={workdir}")
    self.assertEqual(out.returncode, 2, msg=out.stderr[-3000:])
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    self.assertLen(lines, 1, msg=out.stderr)
    self.assertStartsWith(lines[0], "error: ")
    self.assertIn(field, lines[0])
    self.assertNotIn("Traceback", out.stderr)
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))


if __name__ == "__main__":
  tf.test.main()
