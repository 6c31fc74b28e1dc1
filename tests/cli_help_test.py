"""`--help` of every command lists its own flags and nothing of TensorFlow's.

Every `python -m` command (a module of the packages calling `cli.run(`:
`build_testing.entry_points`) runs with `--help` in one Python process (through
`runpy` as `__main__`, its flags removed after it), so TensorFlow is
imported once. Its help must list the harness's flags it defines
(`--config`, `--dry_run`, `--workdir`, `--fresh`, `--separate`) and every
flag its module defines, and no flag that TensorFlow or absl define.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Dict, Set

from absl.testing import absltest
from absl.testing import parameterized

import build_testing

ROOT = build_testing.ROOT
ENTRY_POINTS = build_testing.entry_points()
# A command of each package (the discovery must find them).
KNOWN = ("benchmarks.run", "distillation.run", "synthetic_gradients.run")

# Runs `<module> --help` for each module named on stdin (a JSON list);
# writes `{"foreign": [...], "help": {module: [status, stdout]}}`.
_DRIVER = r"""
import contextlib, importlib.util, io, json, runpy, sys, warnings
warnings.filterwarnings("ignore", message=".*found in sys.modules after")
from sobolev.experiment import cli
cli.quiet()
import tensorflow
from absl import app
from absl import flags
app.define_help_flags()
base = set(flags.FLAGS)
results_path = sys.argv[1]
out = {"foreign": sorted(base), "help": {}}
for module in json.load(sys.stdin):
  for name in list(flags.FLAGS):
    if name not in base and name in flags.FLAGS:
      delattr(flags.FLAGS, name)
  flags.FLAGS.unparse_flags()
  stdout, status = io.StringIO(), 0
  with contextlib.redirect_stdout(stdout), \
      contextlib.redirect_stderr(io.StringIO()):
    try:
      sys.argv = [module, "--help"]
      runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
      status = e.code
  out["help"][module] = [status, stdout.getvalue()]
  # What is not the command's: every flag but the key flags of its main
  # module (named by its path, `sys.argv[0]` while it runs).
  path = importlib.util.find_spec(module).origin
  key = {f.name for f in flags.FLAGS.get_key_flags_for_module(path)}
  out["foreign"] = sorted(set(out["foreign"]) | (set(flags.FLAGS) - key))
with open(results_path, "w") as f:
  json.dump(out, f)
"""


def _listed(text: str) -> Set[str]:
  """The flags a help text lists (`--name` or `--[no]name` entries after
  the docstring, under `flags:`)."""
  _, _, listing = text.partition("\nflags:\n")
  return set(re.findall(r"^  --(?:\[no\])?(\w+)", listing, re.M))


def _own_flags(module: str) -> Set[str]:
  """The flags a module's source defines and those its harness calls do."""
  with open(os.path.join(ROOT, *module.split(".")) + ".py",
            encoding="utf-8") as f:
    source = f.read()
  own = set(re.findall(r"flags\.DEFINE_\w+\(\s*\"(\w+)\"", source))
  own.add("dry_run")  # Every command has a dry run.
  if "define_config_flag" in source or "studies.define_flags" in source:
    own.add("config")
  if "define_workdir_flags" in source or "studies.define_flags" in source:
    own.update(("workdir", "fresh", "separate"))
  if "studies.define_flags" in source:
    own.add("report_only")
  if "stages=" in source:
    own.update(("worker", "stage"))
  return own


class CliHelpTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    out = os.path.join(tempfile.mkdtemp(), "help.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(
            os.pathsep) if p]))
    run = subprocess.run([sys.executable, "-c", _DRIVER, out], cwd=ROOT,
                         env=env, input=json.dumps(ENTRY_POINTS),
                         capture_output=True, text=True, timeout=900,
                         check=False)
    if run.returncode != 0:
      raise AssertionError(run.stderr[-3000:])
    with open(out, encoding="utf-8") as f:
      found = json.load(f)
    cls.help: Dict[str, str] = found["help"]
    cls.foreign: Set[str] = set(found["foreign"])

  def test_every_entry_point_is_found(self):
    self.assertGreaterEqual(len(ENTRY_POINTS), 20)
    self.assertContainsSubset(KNOWN, ENTRY_POINTS)
    self.assertCountEqual(self.help, ENTRY_POINTS)

  @parameterized.parameters(*ENTRY_POINTS)
  def test_help_lists_the_commands_flags_only(self, module):
    status, text = self.help[module]
    self.assertIn(status, (0, 1), msg=text)  # absl exits 1 after --help.
    listed = _listed(text)
    own = _own_flags(module)
    self.assertContainsSubset(own, listed, msg=text)
    self.assertEmpty(listed & self.foreign, msg=text)
    self.assertContainsSubset(listed, own, msg=text)
    self.assertIn("\nflags:\n", text)
    self.assertNotIn("tensorflow", text.partition("\nflags:\n")[2].lower())

  def test_the_harness_flags_are_listed_where_defined(self):
    status, text = self.help["benchmarks.run"]
    del status
    for flag in ("config", "workdir", "fresh", "separate", "dry_run"):
      self.assertIn(flag, _listed(text))
    self.assertIn("hbm_oom_exit", self.foreign)  # TensorFlow's TPU flags.


if __name__ == "__main__":
  absltest.main()
