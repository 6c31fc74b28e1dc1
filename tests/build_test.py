"""Checks that the Bazel BUILD covers every module and test file.

The BUILD file is Starlark, a Python dialect: it is evaluated here with the
rules recording their targets, so the check runs without Bazel. Where Bazel
is installed (`.ci/run` installs Debian's bazel-bootstrap), `bazel query //...`
must also load the workspace offline and list the same targets.
"""

import fnmatch
import glob as glob_lib
import os
import shutil
import subprocess

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("sobolev", "benchmarks", "distillation", "synthetic_gradients")


def _load_build():
  """Evaluates BUILD, returning {name: (rule, attributes)}."""
  targets = {}

  def rule(kind):
    def record(name, **kwargs):
      if name in targets:
        raise ValueError(f"duplicate target {name}")
      targets[name] = (kind, kwargs)
    return record

  def glob(include, exclude=()):
    found = set()
    for pattern in include:
      pat = pattern.replace("**", "*")
      for path in glob_lib.glob(os.path.join(ROOT, pattern), recursive=True):
        rel = os.path.relpath(path, ROOT)
        if os.path.isfile(path) and fnmatch.fnmatch(rel, pat):
          found.add(rel)
    return sorted(p for p in found
                  if not any(fnmatch.fnmatch(p, e) for e in exclude))

  scope = {
      "py_library": rule("py_library"),
      "py_test": rule("py_test"),
      "py_binary": rule("py_binary"),
      "glob": glob,
      "package": lambda **kwargs: None,
      "licenses": lambda *args: None,
      "exports_files": lambda *args, **kwargs: None,
      "load": lambda *args: None,
  }
  with open(os.path.join(ROOT, "BUILD")) as f:
    exec(compile(f.read(), "BUILD", "exec"), scope)  # pylint: disable=exec-used
  return targets


class BuildCoverageTest(tf.test.TestCase):

  def test_every_module_is_in_its_package_library(self):
    targets = _load_build()
    for package in PACKAGES:
      self.assertIn(package, targets)
      kind, attrs = targets[package]
      self.assertEqual(kind, "py_library")
      modules = sorted(
          os.path.relpath(p, ROOT)
          for p in glob_lib.glob(os.path.join(ROOT, package, "**", "*.py"),
                                 recursive=True))
      self.assertNotEmpty(modules)
      self.assertSameElements(attrs["srcs"], modules,
                              msg=f"py_library {package} misses modules")
      if package != "sobolev":
        self.assertIn(":sobolev", attrs["deps"])

  def test_every_test_file_has_a_py_test(self):
    targets = _load_build()
    tests = sorted(
        os.path.relpath(p, ROOT)
        for p in glob_lib.glob(os.path.join(ROOT, "tests", "*_test.py")))
    self.assertIn("tests/build_test.py", tests)
    by_src = {attrs["srcs"][0]: name for name, (kind, attrs) in targets.items()
              if kind == "py_test"}
    self.assertSameElements(by_src, tests)
    for src, name in by_src.items():
      self.assertEqual(name, os.path.basename(src)[:-3])

  def test_bazel_query_loads_offline(self):
    bazel = shutil.which("bazel")
    if bazel is None:
      self.skipTest("bazel is not installed (`.ci/run` installs it).")
    out = subprocess.run(
        [bazel, "--batch", "query", "//..."], cwd=ROOT, capture_output=True,
        text=True, timeout=900, check=False)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    listed = {line.split(":", 1)[1] for line in out.stdout.split()
              if line.startswith("//:")}
    self.assertSameElements(listed, _load_build())


if __name__ == "__main__":
  tf.test.main()
