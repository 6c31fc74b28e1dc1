"""Checks that the Bazel BUILD covers every module and test file.

The BUILD file is Starlark, a Python dialect: it is evaluated in Python
(`build_testing.load_build`) with the rules recording their targets, so the
check runs without Bazel. Where Bazel is installed (`.ci/run` installs
Debian's bazel-bootstrap), `bazel query //...` must also load the workspace
offline and list the same targets.
"""

import glob as glob_lib
import os
import shutil
import subprocess

import tensorflow as tf

import build_testing

ROOT = build_testing.ROOT
PACKAGES = ("sobolev", "benchmarks", "distillation", "synthetic_gradients")
_load_build = build_testing.load_build


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
