"""The import graph, derived from the sources, respects the package boundaries.

* `benchmarks`, `distillation` and `synthetic_gradients` depend on the core
  `sobolev` and never on each other; the core depends on none of them; no
  package imports a test fixture.
* BUILD's deps match the real imports: each py_library's deps are the
  in-repo libraries its sources import, each py_test's deps the libraries
  its test file imports or runs (`TEST_DEPS` in BUILD).

Imports are read from the syntax trees (`build_testing.imports_of`), so
function-level imports, `importlib.import_module("...")`, `python -m
<module>` command lines and embedded `-c` scripts count too. Failures say
which file and line, and which BUILD entry to add or change.
"""

import os

from absl.testing import parameterized
import tensorflow as tf

import build_testing

ROOT = build_testing.ROOT
CORE = "sobolev"
EXPERIMENTS = ("benchmarks", "distillation", "synthetic_gradients")
SOURCE_DIRS = (CORE,) + EXPERIMENTS + ("tests",)
# Test modules that are not tests or libraries.
NOT_LIBRARIES = ("tests/conftest.py",)


def _label(targets):
  return "[" + ", ".join(f'"{t}"' for t in sorted(targets)) + "]"


def _top(module):
  return module.split(".")[0]


def _specific(modules):
  """Drops names that prefix another ('a' of 'a.b'), sorted."""
  modules = set(modules)
  return sorted(m for m in modules
                if not any(o.startswith(m + ".") for o in modules))


def _uses(rel, imports, keep):
  """'file:line uses a.b (how)' lines for the imports that `keep` accepts."""
  by_line = {}
  for imp in imports:
    if keep(imp):
      by_line.setdefault((imp.line, imp.how), set()).add(imp.module)
  return [f"{rel}:{line} uses {', '.join(_specific(mods))} ({how})"
          for (line, how), mods in sorted(by_line.items())]


def _describe(imports, limit=4):
  """A short list of the modules behind a dependency."""
  names = sorted({f"{m}" for m in _specific(i.module for i in imports)})
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more


class ImportsOfTest(tf.test.TestCase):
  """The import scanner finds every kind of import (so the graph is whole)."""

  def test_finds_function_level_relative_and_dynamic_imports(self):
    directory = self.create_tempdir().full_path
    package = os.path.join(directory, "pkg")
    os.makedirs(os.path.join(package, "sub"))
    for name in ("pkg/__init__.py", "pkg/sub/__init__.py", "pkg/other.py"):
      with open(os.path.join(directory, name), "w") as f:
        f.write("")
    source = os.path.join(package, "sub", "mod.py")
    with open(source, "w") as f:
      f.write(
          "import os\n"
          "from . import sibling\n"
          "from .. import other\n"
          "def f():\n"
          "  import json\n"
          "  from pkg import deep\n"
          "  importlib.import_module('late.module')\n"
          "  run(['python', '-m', 'tool.main'])\n"
          "  call('-m', 'pkg.other')\n"
          "SCRIPT = '''\n"
          "import scripted\n"
          "'''\n")
    found = {(i.module, i.how)
             for i in build_testing.imports_of(source, root=directory)}
    for expected in [("os", "import"), ("pkg.sub", "import"),
                     ("pkg.sub.sibling", "import"), ("pkg", "import"),
                     ("pkg.other", "import"), ("json", "import"),
                     ("pkg.deep", "import"),
                     ("late.module", "import_module"),
                     ("tool.main", "python -m"), ("pkg.other", "python -m"),
                     ("pkg.other", "name"), ("scripted", "script")]:
      self.assertIn(expected, found)

  def test_library_modules_maps_packages_and_fixtures(self):
    provided = build_testing.library_modules(build_testing.evaluate_build())
    for package in (CORE,) + EXPERIMENTS:
      self.assertEqual(provided[package], f":{package}")
    self.assertEqual(provided["distillation_testing"],
                     ":distillation_testing")
    self.assertEqual(
        build_testing.target_of("sobolev.any.module", provided),
        ":sobolev")
    self.assertIsNone(build_testing.target_of("tensorflow", provided))


class ImportGraphTest(parameterized.TestCase, tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.build = build_testing.evaluate_build()
    cls.provided = build_testing.library_modules(cls.build)
    cls._cache = {}

  def _imports(self, rel):
    """The imports of the file `rel` (relative to the root), cached."""
    if rel not in self._cache:
      self._cache[rel] = build_testing.imports_of(os.path.join(ROOT, rel))
    return self._cache[rel]

  def _in_repo(self, rel):
    """{library target: [imports]} of a file, its own library left out."""
    if ("libs", rel) not in self._cache:
      self._cache[("libs", rel)] = build_testing.used_libraries(rel,
                                                                self.build)
    return self._cache[("libs", rel)]

  def _owner(self, rel):
    for name, (kind, attrs) in self.build.targets.items():
      if kind == "py_library" and rel in attrs.get("srcs", ()):
        return f":{name}"
    return None

  def test_sources_were_found(self):
    for directory in SOURCE_DIRS:
      self.assertNotEmpty(build_testing.python_files(directory), directory)
    self.assertIn("sobolev/experiment/files.py",
                  build_testing.python_files(CORE))

  @parameterized.parameters(*EXPERIMENTS)
  def test_experiment_package_imports_no_other_experiment(self, package):
    problems = []
    for rel in build_testing.python_files(package):
      problems += _uses(rel, self._imports(rel),
                        lambda i: _top(i.module) in EXPERIMENTS and
                        _top(i.module) != package)
    if problems:
      self.fail(f"The experiment package {package} must depend only on the "
                f"core ({CORE}), never on another experiment package; move "
                "the shared code into sobolev/ or into this package:\n  " +
                "\n  ".join(problems))

  def test_core_imports_no_experiment_package(self):
    problems = []
    for rel in build_testing.python_files(CORE):
      problems += _uses(rel, self._imports(rel),
                        lambda i: _top(i.module) in EXPERIMENTS)
    if problems:
      self.fail("The core package sobolev must not depend on an experiment "
                "package:\n  " + "\n  ".join(problems))

  def test_core_and_harness_do_not_import_each_other(self):
    # The core (loss, derivatives, training, keras, rollouts, policies) is
    # a library of its own; the harness (sobolev/experiment) serves the
    # experiment packages and needs none of it. `sobolev/__init__.py` only
    # names both for lazy loading.
    harness = "sobolev/experiment/"
    problems = []
    for rel in build_testing.python_files(CORE):
      if rel == "sobolev/__init__.py":
        continue
      in_harness = rel.startswith(harness)
      for i in self._imports(rel):
        if not i.module.startswith("sobolev."):
          continue
        if in_harness != i.module.startswith("sobolev.experiment"):
          problems.append(f"{rel}:{i.line}: {i.how} {i.module}")
    if problems:
      self.fail("The core must not import sobolev.experiment and the "
                "harness must not import the core:\n  " +
                "\n  ".join(problems))

  def test_packages_import_no_test_code(self):
    test_modules = {os.path.splitext(os.path.basename(p))[0]
                    for p in build_testing.python_files("tests")}
    problems = []
    for package in (CORE,) + EXPERIMENTS:
      for rel in build_testing.python_files(package):
        problems += _uses(rel, self._imports(rel),
                          lambda i: _top(i.module) in test_modules | {"tests"})
    if problems:
      self.fail("Packages must not import test code:\n  " +
                "\n  ".join(problems))

  def test_every_test_helper_is_a_testonly_library(self):
    problems = []
    for rel in build_testing.python_files("tests"):
      if rel.endswith("_test.py") or rel in NOT_LIBRARIES:
        continue
      owner = self._owner(rel)
      name = os.path.splitext(os.path.basename(rel))[0]
      deps = sorted(self._in_repo(rel))
      if owner is None:
        problems.append(
            f'{rel} is imported by tests but is in no py_library; add to '
            f'BUILD: py_library(name = "{name}", testonly = True, srcs = '
            f'["{rel}"], imports = ["tests"], srcs_version = "PY3", '
            f"deps = {_label(deps)})")
      elif not self.build.targets[owner[1:]][1].get("testonly"):
        problems.append(f"BUILD: py_library {owner} ({rel}) needs "
                        "testonly = True")
    if problems:
      self.fail("\n".join(problems))

  def test_library_deps_match_imports(self):
    problems = []
    for name, (kind, attrs) in sorted(self.build.targets.items()):
      if kind != "py_library":
        continue
      used = {}
      for src in attrs.get("srcs", ()):
        for target, imps in self._in_repo(src).items():
          if target != f":{name}":
            used.setdefault(target, []).extend(imps)
      declared = set(attrs.get("deps", ()))
      if declared != set(used):
        why = "; ".join(f"{t}: {_describe(imps)}" for t, imps in
                        sorted(used.items())) or "nothing in-repo"
        problems.append(
            f'BUILD: py_library "{name}" must have deps = {_label(used)} '
            f"(its sources use {why}); it has {_label(declared)}.")
    if problems:
      self.fail("\n".join(problems))

  def test_test_deps_match_imports(self):
    test_deps = self.build.scope.get("TEST_DEPS")
    self.assertIsInstance(test_deps, dict,
                          msg="BUILD must define TEST_DEPS = {test: deps}.")
    tests = {attrs["srcs"][0]: (name, attrs)
             for name, (kind, attrs) in self.build.targets.items()
             if kind == "py_test"}
    expected_all, problems = {}, []
    for rel in build_testing.python_files("tests"):
      if not rel.endswith("_test.py"):
        continue
      name = os.path.basename(rel)[:-len(".py")]
      used = self._in_repo(rel)
      expected_all[name] = sorted(used)
      unknown = sorted({_top(i.module) for i in self._imports(rel)
                        if os.path.exists(os.path.join(
                            ROOT, "tests", _top(i.module) + ".py"))
                        and _top(i.module) not in self.provided})
      if unknown:
        problems.append(f"{rel} imports the test module(s) {unknown}, which "
                        "no py_library provides (see the testonly library "
                        "check).")
      if name not in test_deps:
        problems.append(f'BUILD: add "{name}": {_label(used)}, to TEST_DEPS.')
        continue
      if rel not in tests:
        problems.append(f"BUILD has no py_test for {rel}.")
        continue
      declared = set(tests[rel][1].get("deps", ()))
      if declared != set(used):
        why = "; ".join(f"{t}: {_describe(imps)}" for t, imps in
                        sorted(used.items())) or "nothing in-repo"
        problems.append(
            f'BUILD: TEST_DEPS["{name}"] must be {_label(used)} ({rel} uses '
            f"{why}); it is {_label(declared)}.")
    stale = sorted(set(test_deps) - set(expected_all))
    if stale:
      problems.append(f"BUILD: TEST_DEPS has entries for missing test files: "
                      f"{stale}; remove them.")
    self.assertEqual(expected_all,
                     build_testing.test_deps_from_sources(self.build))
    if problems:
      problems.append(
          "`python tests/build_testing.py --write` rewrites TEST_DEPS in "
          "BUILD from the sources; the whole dict they need:\n" +
          build_testing.format_test_deps(expected_all))
    if problems:
      self.fail("\n".join(problems))


if __name__ == "__main__":
  tf.test.main()
