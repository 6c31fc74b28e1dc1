"""Every command and Python snippet of the READMEs works as written.

The documents are every `README*.md` and `PROTOCOL.md` of the repository
(`DOCS`). From their fenced code blocks (and inline code spans) the test
collects:

* **Commands**: each `python -m <module> ...` line, with backslash
  continuations joined, `VAR=value` prefixes set in the environment, `&`,
  `# comments` and the brackets of optional flags (`[--record]`) dropped. It
  runs as a `--dry_run`, which parses the flags, checks the settings and that
  the data exist, and prints one `dry run: ...` line (exit 0). Every output
  flag (`OUTPUT_FLAGS`: `--workdir=`, `--out=`, ...) is rewritten to a temp
  dir, `$TFDS_DIR` is an empty temp dir, and a snippet that is a file
  (first line `# <name>.py`) is written to the temp dir and named there.
  Commands whose data cannot exist here end in exit status 2 and one
  `error: ...` line that `EXPECTED_ERRORS` names (CIFAR-10 and ImageNet not
  prepared in `$TFDS_DIR`: the line says how to prepare them offline; the
  Fashion-MNIST commands when Debian's `dataset-fashion-mnist` is not
  installed; reports of runs that the dry runs before them did not make).
  `python -m pytest` (the suite itself) is not run. An inline mention with a
  placeholder (`--workdir=<dir>`) or without flags must name an entry point.
* **Snippets**: each ```` ```python ```` block runs as written; the blocks
  of one document run in order in one namespace, as a reader pasting them
  into one session would. A `python -c "..."` line runs after the commands
  before it in its block, and a command whose output it reads (its `--out=`
  path appears in the code) runs for real instead of dry.

A few dry runs of invalid settings (`INVALID`) must end in one `error: ...`
line with status 2, as without `--dry_run`.

The dry runs share one Python process (each entry point runs as `__main__`
through `runpy` with its flags reset in between), so TensorFlow is imported
once; the snippets run in a second process at the same time.
"""

import dataclasses
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from absl.testing import absltest
from absl.testing import parameterized

import build_testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every command-line module of the project (`cli.run(main, define_flags)`).
ENTRY_POINTS = build_testing.entry_points()
# Modules the documents run that are not entry points of this project.
NOT_RUN = ("pytest",)
# Flags naming what a command writes: rewritten to the temp dir.
OUTPUT_FLAGS = ("workdir", "workdirs", "out", "output", "output_dir",
                "markdown", "figure")
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz",
                       "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
HAVE_FASHION_MNIST = all(
    os.path.isfile(os.path.join(DEBIAN_FASHION_MNIST, f))
    for f in FASHION_MNIST_FILES)
# (module, pattern of the command, pattern of its one error line): the dry
# runs that must stop with status 2 here.
EXPECTED_ERRORS = (
    ("synthetic_gradients.run", r"configs/(cifar10|imagenet2012)\.py",
     r"is not prepared in the tfds data_dir .*tfds build"),
    ("synthetic_gradients.symmetry_report", r"",
     r"No finished SG run of these settings"),
    ("synthetic_gradients.table1", r"", r"has no results\.csv"),
    ("distillation.export", r"--student=", r"holds no finished student"),
) + (() if HAVE_FASHION_MNIST else (
    ("synthetic_gradients.run", r"configs/fashion_mnist\.py",
     r"apt-get install dataset-fashion-mnist"),))


# Dry runs of invalid settings: (module, flags, a word of the error line).
INVALID = (
    ("benchmarks.run", ["--config.learning_rate=nan", "--workdir=<tmp>/a"],
     "learning_rate"),
    ("benchmarks.tune", ["--config.candidates=naive,nw0.3,bogus",
                         "--workdir=<tmp>/b"], "bogus"),
    ("distillation.run", ["--config.steps=-5", "--workdir=<tmp>/c"], "steps"),
    ("distillation.export", ["--game=Nope", "--out=<tmp>/d"], "Nope"),
    ("synthetic_gradients.run", ["--config.learning_rate=inf",
                                 "--workdir=<tmp>/e"], "learning_rate"),
)


def docs(root: str = ROOT) -> List[str]:
  """The documents, relative to `root`: README*.md and PROTOCOL.md."""
  found = set()
  for pattern in ("**/README*.md", "**/PROTOCOL.md"):
    found.update(os.path.relpath(p, root) for p in
                 glob.glob(os.path.join(root, pattern), recursive=True))
  return sorted(p for p in found if not p.startswith("."))


@dataclasses.dataclass(frozen=True)
class Block:
  """A fenced code block: its language, first line number and text."""
  lang: str
  line: int
  text: str


def fenced_blocks(text: str) -> List[Block]:
  """The fenced (```) code blocks of a Markdown text, in order."""
  blocks, lang, start, body = [], None, 0, []
  for number, line in enumerate(text.splitlines(), 1):
    stripped = line.strip()
    if lang is None and stripped.startswith("```"):
      lang, start, body = stripped[3:].strip(), number + 1, []
    elif lang is not None and stripped == "```":
      blocks.append(Block(lang, start, "\n".join(body)))
      lang = None
    elif lang is not None:
      body.append(line)
  if lang is not None:
    raise ValueError(f"A code block opened at line {start - 1} is not "
                     "closed (a closing ``` must be alone on its line).")
  return blocks


def logical_lines(text: str, first: int = 1) -> List[Tuple[int, str]]:
  """`(line number, line)` with backslash continuations joined."""
  out, pending, start = [], "", first
  for number, line in enumerate(text.splitlines(), first):
    if not pending:
      start = number
    if line.rstrip().endswith("\\"):
      pending += line.rstrip()[:-1] + " "
      continue
    out.append((start, pending + line))
    pending = ""
  if pending:
    out.append((start, pending))
  return out


@dataclasses.dataclass(frozen=True)
class Command:
  """A `python -m` (or `python -c`) command of a document."""
  doc: str
  line: int
  text: str
  env: Tuple[Tuple[str, str], ...]
  module: Optional[str]  # None for `python -c`.
  args: Tuple[str, ...]  # For `python -c`: the code.
  inline: bool = False

  @property
  def name(self) -> str:
    what = self.module or "python_c"
    return re.sub(r"\W", "_", f"{self.doc}_L{self.line}_{what}")


def parse_command(text: str) -> Optional[Tuple[Dict[str, str], List[str]]]:
  """`(env, argv after 'python')` of one shell line, or None if no python.

  Drops `# comments`, `&`, `VAR=value` prefixes (returned as `env`) and the
  brackets around optional flags (`[--record]` -> `--record`).
  """
  tokens = shlex.split(text, comments=True)
  env = {}
  while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", tokens[0]):
    key, value = tokens.pop(0).split("=", 1)
    env[key] = value
  if not tokens or tokens[0] not in ("python", "python3"):
    return None
  args = [re.sub(r"^\[(--.*)\]$", r"\1", t) for t in tokens[1:]
          if t not in ("&", ";")]
  return env, args


def commands_of(doc: str, text: str) -> List[Command]:
  """The commands of a document's fenced blocks and inline code spans."""
  out = []
  for block in fenced_blocks(text):
    if block.lang == "python":
      continue
    for number, line in logical_lines(block.text, block.line):
      parsed = parse_command(line)
      if parsed is not None:
        out.append(_command(doc, number, line, *parsed))
  prose = "".join(  # Fenced blocks blanked, line numbers kept.
      "\n" * part.count("\n") if i % 2 else part for i, part in
      enumerate(re.split(r"^\s*```.*$", text, flags=re.M)))
  for match in re.finditer(r"`(python -m [^`]+)`", prose):
    number = prose[:match.start()].count("\n") + 1
    parsed = parse_command(" ".join(match.group(1).split()))
    out.append(_command(doc, number, match.group(1), *parsed, inline=True))
  return out


def _command(doc, number, line, env, args, inline=False) -> Command:
  if args[:1] == ["-m"]:
    return Command(doc, number, line.strip(), tuple(sorted(env.items())),
                   args[1], tuple(args[2:]), inline)
  if args[:1] == ["-c"]:
    return Command(doc, number, line.strip(), tuple(sorted(env.items())),
                   None, (args[1],), inline)
  raise ValueError(f"{doc}:{number}: a python command that is neither "
                   f"`-m` nor `-c`: {line!r}")


@dataclasses.dataclass(frozen=True)
class Snippet:
  """A ```python block; `file` is its name if its first line is `# x.py`."""
  doc: str
  line: int
  code: str
  file: Optional[str]


def snippets_of(doc: str, text: str) -> List[Snippet]:
  out = []
  for block in fenced_blocks(text):
    if block.lang == "python":
      first = block.text.splitlines()[0] if block.text else ""
      match = re.fullmatch(r"#\s*(\w+\.py)\s*", first)
      out.append(Snippet(doc, block.line, block.text,
                         match.group(1) if match else None))
  return out


def _read(doc: str) -> str:
  with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
    return f.read()


DOCS = docs()
COMMANDS = [c for d in DOCS for c in commands_of(d, _read(d))]
SNIPPETS = [s for d in DOCS for s in snippets_of(d, _read(d))]


def runnable(command: Command) -> bool:
  """Whether the test runs it (an inline mention may be a pattern)."""
  if command.module in NOT_RUN:
    return False
  if command.inline:
    return (any(a.startswith("--") for a in command.args) and
            not any("<" in a for a in command.args))
  return True


RUN = [c for c in COMMANDS if runnable(c)]


def expected_error(command: Command) -> Optional[str]:
  """The pattern of the one error line a dry run must end with, or None."""
  for module, pattern, error in EXPECTED_ERRORS:
    if command.module == module and re.search(pattern, command.text):
      return error
  return None


class Rewriter:
  """Maps the documents' output paths and variables into a temp dir."""

  def __init__(self, tmp: str):
    self.tmp = tmp
    self.vars = {"TFDS_DIR": os.path.join(tmp, "tfds_dir")}
    self.files = {}  # Snippet file name -> its path in the temp dir.
    self.outputs = {}  # Document path -> temp path.

  def path(self, value: str) -> str:
    if value not in self.outputs:
      name = re.sub(r"[^\w.-]", "_", os.path.normpath(value).lstrip("./"))
      self.outputs[value] = os.path.join(self.tmp, "out", name)
    return self.outputs[value]

  def args(self, command: Command) -> List[str]:
    out = []
    for arg in command.args:
      arg = re.sub(r"\$(\w+)", lambda m: self.vars[m.group(1)], arg)
      flag, sep, value = arg.partition("=")
      if sep and flag.lstrip("-") in OUTPUT_FLAGS:
        value = ",".join(self.path(v) for v in value.split(","))
      elif sep and flag == "--config" and value in self.files:
        value = self.files[value]
      out.append(flag + sep + value)
    return out

  def code(self, code: str) -> str:
    for original in sorted(self.outputs, key=len, reverse=True):
      code = code.replace(original, self.outputs[original])
    return code


# Runs the dry runs: reads `[{"module", "argv", "env", "real", "code"}]` as
# JSON on stdin, writes `[{"status", "stdout", "stderr"}]` to argv[1].
_DRIVER = r"""
import contextlib, io, json, os, runpy, sys, time, traceback, warnings
# (Entry points that another one imports are in sys.modules before runpy
# runs them as __main__, as in any process that imports them both.)
warnings.filterwarnings("ignore", message=".*found in sys.modules after")
from sobolev.experiment import cli
cli.quiet()
import tensorflow
from absl import flags
base = set(flags.FLAGS)
results_path = sys.argv[1]
jobs = json.load(sys.stdin)
out = []
for job in jobs:
  for name in list(flags.FLAGS):
    if name not in base and name in flags.FLAGS:
      delattr(flags.FLAGS, name)
  flags.FLAGS.unparse_flags()
  saved_env = dict(os.environ)
  os.environ.update(job["env"])
  stdout, stderr, status = io.StringIO(), io.StringIO(), 0
  start = time.time()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
      if job["code"] is not None:
        exec(compile(job["code"], "<python -c>", "exec"), {})
      else:
        sys.argv = [job["module"]] + job["argv"]
        runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
      status = e.code if isinstance(e.code, int) else (0 if e.code is None
                                                      else 1)
    except BaseException:
      traceback.print_exc()
      status = 1
  os.environ.clear()
  os.environ.update(saved_env)
  out.append({"status": status, "stdout": stdout.getvalue(),
              "stderr": stderr.getvalue(), "seconds": time.time() - start})
with open(results_path, "w") as f:
  json.dump(out, f)
"""

# Runs the snippets: reads `[{"doc", "line", "code", "path"}]` on stdin; the
# snippets of one document share a namespace; writes `[error or None]`.
_SNIPPET_RUNNER = r"""
import json, sys, traceback
jobs = json.load(sys.stdin)
namespaces, out = {}, []
for job in jobs:
  try:
    code = compile(job["code"], f"{job['doc']}:{job['line']}", "exec")
    if job["path"]:  # A file: its own module namespace, as when loaded.
      namespace = {"__name__": "snippet", "__file__": job["path"]}
      exec(code, namespace)
      if "get_config" in namespace:
        namespace["get_config"]()
    else:
      exec(code, namespaces.setdefault(job["doc"], {"__name__": "__main__"}))
    out.append(None)
  except BaseException:
    out.append(traceback.format_exc()[-3000:])
with open(sys.argv[1], "w") as f:
  json.dump(out, f)
"""


def _env(tmp: str) -> Dict[str, str]:
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
      [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  env["TFDS_DATA_DIR"] = os.path.join(tmp, "tfds_default")  # Nothing there.
  env["MPLBACKEND"] = "Agg"
  return env


def _start(script: str, jobs, out: str, tmp: str) -> subprocess.Popen:
  proc = subprocess.Popen([sys.executable, "-c", script, out], cwd=ROOT,
                          env=_env(tmp), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  proc.stdin.write(json.dumps(jobs))
  proc.stdin.close()
  return proc


def _finish(proc: subprocess.Popen, out: str):
  log = proc.stdout.read()
  proc.wait(timeout=900)
  if proc.returncode != 0 or not os.path.exists(out):
    raise AssertionError(f"the runner failed ({proc.returncode}):\n"
                         f"{log[-5000:]}")
  with open(out, encoding="utf-8") as f:
    return json.load(f)


class ParsingTest(parameterized.TestCase):

  def test_continuations_env_comments_and_optional_flags(self):
    text = ("```bash\n"
            "TF_NUM_INTRAOP_THREADS=1 python -m a.b --x=1 \\\n"
            "  --y=2 &   # a comment\n"
            "python -m c.d --game=Pong [--record]\n"
            "tensorboard --logdir=x\n"
            "```\n"
            "Run `python -m e.f --workdir=<dir>` or `python -m g.h`.\n")
    commands = commands_of("doc.md", text)
    self.assertEqual(
        [(c.line, c.module, c.args, dict(c.env), c.inline) for c in commands],
        [(2, "a.b", ("--x=1", "--y=2"), {"TF_NUM_INTRAOP_THREADS": "1"},
          False),
         (4, "c.d", ("--game=Pong", "--record"), {}, False),
         (7, "e.f", ("--workdir=<dir>",), {}, True),
         (7, "g.h", (), {}, True)])
    self.assertEqual([runnable(c) for c in commands],
                     [True, True, False, False])

  def test_an_unclosed_block_is_an_error(self):
    with self.assertRaisesRegex(ValueError, "not closed"):
      fenced_blocks("```\npython -m a.b\n``` trailing text\n")

  def test_outputs_and_variables_are_rewritten(self):
    rewriter = Rewriter("/tmp/t")
    command = commands_of("d.md", (
        "```\npython -m a.b --workdirs=r/x,r/y --out=docs "
        "--config.data_dir=$TFDS_DIR --results=docs/r.csv\n```\n"))[0]
    self.assertEqual(rewriter.args(command), [
        "--workdirs=/tmp/t/out/r_x,/tmp/t/out/r_y", "--out=/tmp/t/out/docs",
        "--config.data_dir=/tmp/t/tfds_dir", "--results=docs/r.csv"])
    self.assertEqual(rewriter.code("load('docs')"), "load('/tmp/t/out/docs')")


class ReadmeTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix="readme_test_")
    os.makedirs(os.path.join(cls.tmp, "tfds_dir"))
    rewriter = Rewriter(cls.tmp)
    for snippet in SNIPPETS:
      if snippet.file:
        path = os.path.join(cls.tmp, snippet.file)
        with open(path, "w", encoding="utf-8") as f:
          f.write(snippet.code)
        rewriter.files[snippet.file] = path
    cls.existed = {c.name: [p for p in _outputs(c) if os.path.exists(
        os.path.join(ROOT, p))] for c in RUN}
    jobs, real = [], _read_by_code(RUN)
    for command in RUN:
      args = rewriter.args(command)
      if command.module is not None and command not in real:
        args.append("--dry_run")
      jobs.append({"module": command.module, "argv": args,
                   "env": dict(command.env),
                   "code": (rewriter.code(command.args[0])
                            if command.module is None else None)})
    for module, args, _ in INVALID:
      jobs.append({"module": module, "env": {}, "code": None,
                   "argv": [a.replace("<tmp>", cls.tmp) for a in args] +
                           ["--dry_run"]})
    snippet_jobs = [{"doc": s.doc, "line": s.line, "code": s.code,
                     "path": rewriter.files.get(s.file)} for s in SNIPPETS]
    runs = os.path.join(cls.tmp, "runs.json")
    snippets = os.path.join(cls.tmp, "snippets.json")
    driver = _start(_DRIVER, jobs, runs, cls.tmp)
    runner = _start(_SNIPPET_RUNNER, snippet_jobs, snippets, cls.tmp)
    results = _finish(driver, runs)
    cls.results = dict(zip([c.name for c in RUN], results))
    cls.invalid = results[len(RUN):]
    cls.snippet_errors = _finish(runner, snippets)
    cls.real = {c.name for c in real}

  def test_documents_were_found(self):
    for doc in ("README.md", "benchmarks/README.md", "benchmarks/PROTOCOL.md",
                "distillation/README.md", "synthetic_gradients/README.md"):
      self.assertIn(doc, DOCS)
    for doc in DOCS:
      self.assertTrue(any(c.doc == doc for c in COMMANDS),
                      msg=f"{doc} shows no python command")
    self.assertNotEmpty(SNIPPETS)

  def test_command_names_are_unique(self):
    names = [c.name for c in COMMANDS]
    self.assertLen(set(names), len(names))

  def test_commands_name_entry_points(self):
    for command in COMMANDS:
      if command.module is not None and command.module not in NOT_RUN:
        self.assertIn(command.module, ENTRY_POINTS,
                      msg=f"{command.doc}:{command.line}: {command.text}")

  def test_the_tuning_command_takes_bare_candidate_names(self):
    tuning = [c for c in RUN if c.module == "benchmarks.tune" and
              any(a.startswith("--config.candidates=") and "nw0.3" in a
                  for a in c.args)]
    self.assertNotEmpty(tuning)
    for command in tuning:
      self.assertEqual(self.results[command.name]["status"], 0,
                       msg=self.results[command.name])

  @parameterized.named_parameters(*[(c.name, c) for c in RUN])
  def test_command(self, command):
    result = self.results[command.name]
    where = (f"{command.doc}:{command.line}: {command.text}\n"
             f"stdout: {result['stdout'][-2000:]}\n"
             f"stderr: {result['stderr'][-3000:]}")
    lines = [l for l in result["stderr"].splitlines() if l.strip()]
    error = expected_error(command)
    if error is not None:
      self.assertEqual(result["status"], 2, msg=where)
      self.assertLen(lines, 1, msg=where)
      self.assertRegex(lines[0], "^error: .*" + error, msg=where)
    else:
      self.assertEqual(result["status"], 0, msg=where)
      self.assertNotIn("Traceback", result["stderr"], msg=where)
      if command.module is not None and command.name not in self.real:
        out = result["stdout"].strip().splitlines()
        self.assertNotEmpty(out, msg=where)
        self.assertStartsWith(out[-1], "dry run: would ", msg=where)
    for path in _outputs(command):
      if path not in self.existed[command.name]:
        self.assertFalse(os.path.exists(os.path.join(ROOT, path)),
                         msg=f"{where}\nwrote {path} into the repository")

  @parameterized.parameters(*range(len(INVALID)))
  def test_a_dry_run_of_an_invalid_setting_is_one_error_line(self, index):
    module, args, word = INVALID[index]
    result = self.invalid[index]
    lines = [l for l in result["stderr"].splitlines() if l.strip()]
    self.assertEqual(result["status"], 2, msg=(module, args, result))
    self.assertLen(lines, 1, msg=result)
    self.assertStartsWith(lines[0], "error: ")
    self.assertIn(word, lines[0])
    self.assertNotIn("dry run", result["stdout"])

  @parameterized.named_parameters(
      *[(re.sub(r"\W", "_", f"{s.doc}_L{s.line}"), i)
        for i, s in enumerate(SNIPPETS)])
  def test_snippet(self, index):
    snippet = SNIPPETS[index]
    self.assertIsNone(self.snippet_errors[index],
                      msg=f"{snippet.doc}:{snippet.line}:\n{snippet.code}")


def _outputs(command: Command) -> List[str]:
  """The document's output paths of a command (before rewriting)."""
  out = []
  for arg in command.args:
    flag, sep, value = arg.partition("=")
    if sep and flag.lstrip("-") in OUTPUT_FLAGS:
      out.extend(v for v in value.split(",") if v and "$" not in v)
  return out


def _read_by_code(commands: List[Command]) -> List[Command]:
  """The commands whose outputs a later `python -c` of their block reads."""
  real = []
  for i, command in enumerate(commands):
    if command.module is not None:
      continue
    for earlier in commands[:i]:
      if (earlier.doc == command.doc and earlier.module is not None and
          any(p in command.args[0] for p in _outputs(earlier))):
        real.append(earlier)
  return real


if __name__ == "__main__":
  absltest.main()
