"""A guard: no function in the library and experiment packages exceeds 80
lines (issue 23). Split long functions into a step, an evaluation and a short
loop (flax's shape) rather than adding an exemption here."""

import ast
import os

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGES = ("sobolev", "benchmarks", "distillation", "synthetic_gradients")
MAX_LINES = 80
# "path:function" -> reason. Empty: every function fits.
EXEMPT = {}


def long_functions(root: str = _ROOT, max_lines: int = MAX_LINES):
  """`(lines, 'path:qualified name')` of every function over `max_lines`."""
  found = []
  for package in _PACKAGES:
    for folder, _, names in os.walk(os.path.join(root, package)):
      for name in sorted(names):
        if not name.endswith(".py"):
          continue
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
          tree = ast.parse(f.read(), path)
        found.extend(_walk(tree, os.path.relpath(path, root), "", max_lines))
  return sorted(found, reverse=True)


def _walk(node, path, prefix, max_lines):
  """Every function under `node`, also inside `if`/`with`/`try` blocks."""
  for child in ast.iter_child_nodes(node):
    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                          ast.ClassDef)):
      name = f"{prefix}{child.name}"
      if not isinstance(child, ast.ClassDef):
        lines = child.end_lineno - child.lineno + 1
        if lines > max_lines:
          yield lines, f"{path}:{name}"
      yield from _walk(child, path, name + ".", max_lines)
    else:
      yield from _walk(child, path, prefix, max_lines)


class FunctionLengthTest(absltest.TestCase):

  def test_no_function_is_longer_than_80_lines(self):
    over = [f"{where} ({lines} lines)" for lines, where in long_functions()
            if where not in EXEMPT]
    self.assertEqual(over, [], "Split these functions (issue 23): " +
                     "; ".join(over))

  def test_the_guard_sees_a_long_function(self):
    root = self.create_tempdir().full_path
    os.makedirs(os.path.join(root, "sobolev"))
    body = "\n".join(f"  x{i} = {i}" for i in range(MAX_LINES))
    with open(os.path.join(root, "sobolev", "m.py"), "w") as f:
      f.write(f"class C:\n  def short(self):\n    return 1\n\n"
              f"  def long(self):\n{body.replace('  x', '    x')}\n")
    self.assertEqual(long_functions(root),
                     [(MAX_LINES + 1, os.path.join("sobolev", "m.py") +
                       ":C.long")])
    with open(os.path.join(root, "sobolev", "main.py"), "w") as f:
      f.write(f"if __name__ == '__main__':\n  def main():\n"
              f"{body.replace('  x', '    x')}\n")
    self.assertIn((MAX_LINES + 1, os.path.join("sobolev", "main.py") +
                   ":main"), long_functions(root))

  def test_exemptions_name_existing_long_functions(self):
    current = {where for _, where in long_functions()}
    self.assertEqual(sorted(set(EXEMPT) - current), [])


if __name__ == "__main__":
  absltest.main()
