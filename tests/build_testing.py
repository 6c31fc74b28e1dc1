"""Test helpers: the Bazel BUILD file evaluated in Python, and the import graph.

The BUILD file is Starlark, a Python dialect: `load_build` evaluates it with
the rules recording their targets, so the BUILD checks run without Bazel.
`imports_of` derives what a Python source file imports from its syntax tree
(module-level and function-level imports, `importlib.import_module` with a
constant name, `python -m <module>` command lines and embedded `-c` scripts),
so that tests can compare BUILD dependencies and package boundaries with the
real code. `python tests/build_testing.py [--write]` prints (or rewrites in
BUILD) the `TEST_DEPS` that the test files need.
"""

import ast
import dataclasses
import fnmatch
import glob as glob_lib
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_FILE = os.path.join(ROOT, "BUILD")
Target = Tuple[str, Dict[str, Any]]  # (rule kind, attributes)


@dataclasses.dataclass(frozen=True)
class Build:
  """An evaluated BUILD file.

  Attributes:
    targets: name -> (rule kind, attributes).
    scope: the BUILD file's top-level variables after evaluation (e.g. a
      dict of test deps).
  """
  targets: Mapping[str, Target]
  scope: Mapping[str, Any]


def glob(include, exclude=(), root: str = ROOT) -> List[str]:
  """Bazel's `glob` relative to `root` (files only, sorted)."""
  found = set()
  for pattern in include:
    pat = pattern.replace("**/", "*").replace("**", "*")  # ** spans 0+ dirs.
    for path in glob_lib.glob(os.path.join(root, pattern), recursive=True):
      rel = os.path.relpath(path, root)
      if os.path.isfile(path) and fnmatch.fnmatch(rel, pat):
        found.add(rel)
  return sorted(p for p in found
                if not any(fnmatch.fnmatch(p, e) for e in exclude))


def evaluate_build(path: str = BUILD_FILE) -> Build:
  """Evaluates a BUILD file, recording its targets.

  Args:
    path: the BUILD file (its directory is the package root for `glob`).

  Returns:
    The targets and the top-level variables.

  Raises:
    ValueError: for a duplicate target name.
  """
  root = os.path.dirname(os.path.abspath(path))
  targets = {}

  def rule(kind):
    def record(name, **kwargs):
      if name in targets:
        raise ValueError(f"duplicate target {name}")
      targets[name] = (kind, kwargs)
    return record

  builtins = {
      "py_library": rule("py_library"),
      "py_test": rule("py_test"),
      "py_binary": rule("py_binary"),
      "glob": lambda include, exclude=(): glob(include, exclude, root),
      "package": lambda **kwargs: None,
      "licenses": lambda *args: None,
      "exports_files": lambda *args, **kwargs: None,
      "load": lambda *args: None,
  }
  scope = dict(builtins)
  with open(path, encoding="utf-8") as f:
    exec(compile(f.read(), path, "exec"), scope)  # pylint: disable=exec-used
  variables = {k: v for k, v in scope.items()
               if k not in builtins and not k.startswith("__")}
  return Build(targets=targets, scope=variables)


def load_build(path: str = BUILD_FILE) -> Dict[str, Target]:
  """Evaluates BUILD, returning {name: (rule, attributes)}."""
  return dict(evaluate_build(path).targets)


@dataclasses.dataclass(frozen=True)
class Import:
  """One module a source file uses.

  Attributes:
    module: the absolute dotted module name (e.g. 'sobolev.experiment.files').
    line: the line number in the file.
    how: 'import', 'import_module', 'python -m', 'name' (a string naming an
      in-repo module) or 'script' (an import in an embedded `python -c`
      script).
  """
  module: str
  line: int
  how: str = "import"


def _package_of(path: str, root: str) -> List[str]:
  """The dotted package (as parts) that the file at `path` belongs to."""
  rel = os.path.relpath(os.path.abspath(path), root)
  parts = rel.split(os.sep)[:-1]
  # Only directories with an __init__.py are packages; tests/ is not one.
  package = []
  directory = root
  for part in parts:
    directory = os.path.join(directory, part)
    if not os.path.exists(os.path.join(directory, "__init__.py")):
      return []
    package.append(part)
  return package


def _strings(node: ast.AST) -> List[Tuple[str, int]]:
  return [(n.value, n.lineno) for n in ast.walk(node)
          if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _imports_in_tree(tree: ast.AST, package: List[str], how: str,
                     line_offset: int = 0) -> List[Import]:
  """Import statements (any depth) and constant `import_module` calls."""
  found = []
  for node in ast.walk(tree):
    line = getattr(node, "lineno", 0) + line_offset
    if isinstance(node, ast.Import):
      found.extend(Import(a.name, line, how) for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = package[:len(package) - node.level + 1]
        if node.level > len(package):
          base = []
        prefix = ".".join(base + ([node.module] if node.module else []))
      else:
        prefix = node.module or ""
      for alias in node.names:
        # `from a import b` may import module a.b or name b of a: record
        # both a and a.b (callers map them to packages).
        found.append(Import(prefix, line, how))
        if alias.name != "*":
          found.append(Import(f"{prefix}.{alias.name}", line, how))
    elif isinstance(node, ast.Call):
      func = node.func
      name = (func.attr if isinstance(func, ast.Attribute) else
              func.id if isinstance(func, ast.Name) else None)
      if (name in ("import_module", "__import__") and node.args and
          isinstance(node.args[0], ast.Constant) and
          isinstance(node.args[0].value, str)):
        found.append(Import(node.args[0].value, line,
                            "import_module" if how == "import" else how))
  return found


def _is_module(text: str, root: str) -> bool:
  """Whether `text` is the dotted name of a module under `root` ('a.b')."""
  parts = text.split(".")
  if len(parts) < 2 or not all(p.isidentifier() for p in parts):
    return False
  if not os.path.exists(os.path.join(root, parts[0], "__init__.py")):
    return False
  base = os.path.join(root, *parts)
  return (os.path.isfile(base + ".py") or
          os.path.isfile(os.path.join(base, "__init__.py")))


def imports_of(path: str, root: str = ROOT) -> List[Import]:
  """Every module that the Python file at `path` imports or runs.

  Covers `import` and `from ... import` at any depth (functions included;
  relative imports resolved), `importlib.import_module("name")`, command
  lines `[..., "-m", "name", ...]`, string constants that are exactly the
  dotted name of a module in this repository (e.g. a list of CLI modules a
  test runs), and the imports of string constants that are Python scripts
  run with `-c` (any multi-line string constant that parses as Python and
  contains an import).

  Args:
    path: the file.
    root: the repository root (for resolving relative imports).

  Returns:
    The imports, in no particular order (duplicates possible).
  """
  with open(path, encoding="utf-8") as f:
    source = f.read()
  tree = ast.parse(source, filename=path)
  package = _package_of(path, root)
  found = _imports_in_tree(tree, package, "import")
  for node in ast.walk(tree):
    if isinstance(node, (ast.List, ast.Tuple)):
      elts = node.elts
    elif isinstance(node, ast.Call):
      elts = node.args
    else:
      continue
    for a, b in zip(elts, elts[1:]):
      if (isinstance(a, ast.Constant) and a.value == "-m" and
          isinstance(b, ast.Constant) and isinstance(b.value, str)):
        found.append(Import(b.value, b.lineno, "python -m"))
  for text, line in _strings(tree):
    if _is_module(text, root):
      found.append(Import(text, line, "name"))
    if "\n" not in text or "import" not in text:
      continue
    try:
      script = ast.parse(text)
    except (SyntaxError, ValueError):
      continue
    found.extend(_imports_in_tree(script, [], "script", line - 1))
  return found


def python_files(directory: str, root: str = ROOT) -> List[str]:
  """The .py files under `directory` (recursive), relative to `root`."""
  return sorted(
      os.path.relpath(p, root)
      for p in glob_lib.glob(os.path.join(root, directory, "**", "*.py"),
                             recursive=True))


def entry_points(root: str = ROOT) -> Tuple[str, ...]:
  """Every `python -m` command of the experiment packages: the modules
  directly in them that call `cli.run(` (e.g. 'benchmarks.run')."""
  out = []
  for package in ("benchmarks", "distillation", "synthetic_gradients"):
    for path in sorted(glob_lib.glob(os.path.join(root, package, "*.py"))):
      with open(path, encoding="utf-8") as f:
        if "cli.run(" in f.read():
          out.append(f"{package}.{os.path.basename(path)[:-3]}")
  return tuple(out)


def library_modules(build: Build) -> Dict[str, str]:
  """Top-level importable name -> py_library target (':name').

  A library whose sources live in `pkg/...` provides `pkg`; one with
  `imports = ["dir"]` provides the module names of its sources in `dir`.
  """
  provided = {}
  for name, (kind, attrs) in build.targets.items():
    if kind != "py_library":
      continue
    dirs = list(attrs.get("imports", ()))
    for src in attrs.get("srcs", ()):
      top = None
      for d in dirs:
        if src.startswith(d.rstrip("/") + "/"):
          top = os.path.splitext(src[len(d.rstrip("/")) + 1:])[0]
          top = top.split("/")[0]
      if top is None:
        top = src.split("/")[0]
        if top.endswith(".py"):
          top = top[:-3]
      if top in provided and provided[top] != f":{name}":
        raise ValueError(f"both {provided[top]} and :{name} provide {top!r}")
      provided[top] = f":{name}"
  return provided


def target_of(module: str, provided: Mapping[str, str]) -> Optional[str]:
  """The library providing `module` (by its top-level name), or None."""
  return provided.get(module.split(".")[0])


def used_libraries(rel: str, build: Build,
                   root: str = ROOT) -> Dict[str, List[Import]]:
  """{library target: [imports]} that the file `rel` uses (not its own)."""
  provided = library_modules(build)
  own = None
  for name, (kind, attrs) in build.targets.items():
    if kind == "py_library" and rel in attrs.get("srcs", ()):
      own = f":{name}"
  out = {}
  for imp in imports_of(os.path.join(root, rel), root):
    target = target_of(imp.module, provided)
    if target is not None and target != own:
      out.setdefault(target, []).append(imp)
  return out


def test_deps_from_sources(build: Build,
                           root: str = ROOT) -> Dict[str, List[str]]:
  """What BUILD's TEST_DEPS must be: test name -> sorted library targets."""
  return {os.path.basename(rel)[:-len(".py")]:
          sorted(used_libraries(rel, build, root))
          for rel in glob(["tests/*_test.py"], root=root)}


def format_test_deps(deps: Mapping[str, List[str]]) -> str:
  """`TEST_DEPS = {...}` as it is written in BUILD."""
  return "TEST_DEPS = {\n" + "".join(
      f'    "{name}": [' + ", ".join(f'"{t}"' for t in targets) + "],\n"
      for name, targets in sorted(deps.items())) + "}\n"


def write_test_deps(path: str = BUILD_FILE) -> bool:
  """Rewrites the TEST_DEPS dict in BUILD from the sources.

  Returns:
    Whether BUILD changed.
  """
  with open(path, encoding="utf-8") as f:
    text = f.read()
  start = text.index("TEST_DEPS = {\n")
  end = text.index("\n}\n", start) + len("\n}\n")
  new = text[:start] + format_test_deps(
      test_deps_from_sources(evaluate_build(path),
                             os.path.dirname(os.path.abspath(path)))
  ) + text[end:]
  if new != text:
    with open(path, "w", encoding="utf-8") as f:
      f.write(new)
  return new != text


if __name__ == "__main__":
  # `python tests/build_testing.py`: print TEST_DEPS as the sources need it;
  # with `--write`: rewrite it in BUILD.
  import sys  # pylint: disable=g-import-not-at-top
  if sys.argv[1:] == ["--write"]:
    print("BUILD updated." if write_test_deps() else "BUILD is up to date.")
  else:
    print(format_test_deps(test_deps_from_sources(evaluate_build())), end="")
