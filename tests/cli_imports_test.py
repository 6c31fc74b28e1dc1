"""Every command-line module can be imported together, and parses its flags.

The CLIs share flag names (`--seeds`, `--workdir`, `--game`, ...); absl
flags are global, so each module defines its flags only when run as a
program. Importing them all into one process must not raise.
"""

import os
import subprocess
import sys

import tensorflow as tf

CLI_MODULES = (
    "benchmarks.run", "benchmarks.speed", "benchmarks.tune",
    "distillation.run", "distillation.train_teacher",
    "distillation.evaluate_teacher", "distillation.collect_rollouts",
    "distillation.plot_teachers",
    "synthetic_gradients.run",
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600,
                        check=False)


class CliImportsTest(tf.test.TestCase):

  def test_all_cli_modules_import_in_one_process(self):
    code = "import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in CLI_MODULES)
    out = _python("-c", code)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])

  def test_run_as_program_defines_its_flags(self):
    # (absl exits with status 1 after --helpshort when a flag is required.)
    out = _python("-m", "distillation.run", "--helpshort")
    self.assertIn("--train_fractions", out.stdout + out.stderr,
                  msg=out.stderr[-3000:])


if __name__ == "__main__":
  tf.test.main()
