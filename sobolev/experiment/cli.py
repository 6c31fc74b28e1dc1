"""What every experiment command line shares.

`quiet()` (call it first) silences TensorFlow's start-up chatter. `run(main,
define_flags)` is the entry point of every command: `--help` lists the
command's flags and none of TensorFlow's, and a user mistake (a `UserError`,
a file-system fault, a flag or `--config` error) is one `error: ...` line on
stderr with exit status 2 instead of a traceback.
"""

import errno
import os
import signal
import sys
import tempfile
import traceback
from typing import Any, Callable, List, NoReturn, Optional, Sequence

from sobolev.experiment import errors


def quiet() -> None:
  """Silences TensorFlow's start-up chatter unless `--verbose_tf` is given.

  TensorFlow prints oneDNN and CUDA-probe lines before any log level applies,
  so it is imported here with stderr pointed at a temporary file (shown only
  if the import fails). Also installs the hook that prints `--config` errors
  raised while the flags are defined as one line (exit status 2).
  """
  _install_flag_error_hook()
  if "--verbose_tf" in sys.argv:
    sys.argv.remove("--verbose_tf")
    return
  level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if level in ("0", "1") or "tensorflow" in sys.modules:
    return  # The user asked for TF's INFO/WARNING lines, or it is loaded.
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as log:
    os.dup2(log.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    except BaseException:
      os.dup2(saved, 2)
      log.seek(0)
      sys.stderr.write(log.read().decode("utf-8", "replace"))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
  import logging  # pylint: disable=g-import-not-at-top
  logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _from_config_flags(tb: Any) -> bool:
  """Whether a traceback passes through ml_collections' config flags."""
  return any("ml_collections" in frame.filename and "config_flags" in
             frame.filename for frame in traceback.extract_tb(tb))


def config_flag_error(error: BaseException) -> str:
  """`error: ...` for what ml_collections raised about a `--config.<field>`
  override, naming it and, for an unknown field, the closest fields."""
  config, field = None, None
  for frame, _ in traceback.walk_tb(error.__traceback__):  # Innermost wins.
    local = frame.f_locals
    if "field_path" in local and "config" in local:
      config, field = local["config"], local["field_path"]
  if field is not None and isinstance(error, (AttributeError, KeyError)):
    known = _fields(config)
    import difflib  # pylint: disable=g-import-not-at-top
    close = difflib.get_close_matches(field, known, n=3)
    hint = (f"; did you mean {', '.join('--config.' + c for c in close)}?"
            if close else f"; its fields are {', '.join(sorted(known))}.")
    return f"error: --config.{field}: the config has no such field{hint}"
  where = "" if field is None or isinstance(error, OSError) else f".{field}"
  return f"error: --config{where}: {one_line(error)}"


def _fields(config: Any, prefix: str = "") -> List[str]:
  """The dotted field names of a ConfigDict (best effort)."""
  names = []
  try:
    items = list(config.items())
  except Exception:  # pylint: disable=broad-except
    return names
  for name, value in items:
    names.append(prefix + name)
    if hasattr(value, "items") and hasattr(value, "lock"):
      names.extend(_fields(value, f"{prefix}{name}."))
  return names


def _install_flag_error_hook() -> None:
  """Prints config-override errors raised at flag definition as one line."""
  if getattr(sys.excepthook, "_sobolev_flag_hook", False):
    return
  previous = sys.excepthook

  def hook(kind, error, tb):
    if (issubclass(kind, Exception) and not isinstance(error, SystemExit) and
        _from_config_flags(tb)):
      sys.stdout.flush()
      print(config_flag_error(error), file=sys.stderr)
      sys.stderr.flush()
      os._exit(2)  # pylint: disable=protected-access
    previous(kind, error, tb)

  hook._sobolev_flag_hook = True  # pylint: disable=protected-access
  sys.excepthook = hook


def define_workdir_flags(default: Optional[str] = None) -> None:
  """Defines `--workdir`, `--fresh` and `--separate` (absl flags).

  Args:
    default: the default workdir (None: `--workdir` is required).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string(
      "workdir", default,
      "Directory for the results, checkpoints, TensorBoard events and "
      "provenance.")
  flags.DEFINE_bool(
      "fresh", False,
      "If the workdir holds results of other settings, move them aside to "
      "<workdir>.old-<time> (nothing is deleted) and start again.")
  flags.DEFINE_bool(
      "separate", False,
      "If the workdir holds results of other settings, keep them and write "
      "these settings' results to <workdir>/sets/<hash>.")
  if default is None:
    flags.mark_flag_as_required("workdir")


def if_different() -> str:
  """The `workdirs.open_workdir(if_different=...)` policy that `--fresh` and
  `--separate` ask for: 'fresh', 'separate' or 'refuse'.

  Raises:
    errors.UserError: if both are set.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  fresh, separate = flags.FLAGS.fresh, flags.FLAGS.separate
  if fresh and separate:
    raise errors.UserError("Pass at most one of --fresh and --separate.")
  return "fresh" if fresh else "separate" if separate else "refuse"


DRY_RUN_PREFIX = "dry run: "


def define_dry_run_flag() -> None:
  """Defines `--dry_run` (read by `dry_run()`, reported by `say_dry_run`)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_bool(
      "dry_run", False,
      "Check the flags, the settings and that the data exist, print one "
      "line saying what would be done, and exit without doing it (nothing "
      "is written).")


def dry_run() -> bool:
  """Whether `--dry_run` was given (False where the flag is not defined)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  return "dry_run" in flags.FLAGS and bool(flags.FLAGS.dry_run)


def say_dry_run(plan: str) -> None:
  """Prints the dry run's one line: `dry run: <plan>` (newlines folded)."""
  print(DRY_RUN_PREFIX + " ".join(plan.split()), flush=True)


def _name_list_parser():
  """A tuple parser that gives `a,b` that is not a Python literal (`nw0.3`)
  as the 1-tuple `('a,b',)`, as ml-collections does for `booth,beale`; the
  experiments split it with `configs.split_names`."""
  from ml_collections.config_flags import tuple_parser  # pylint: disable=g-import-not-at-top

  class NameListParser(tuple_parser.TupleParser):

    def parse(self, argument):
      try:
        return super().parse(argument)
      except ValueError:
        if isinstance(argument, str) and "," in argument:
          return (argument,)
        raise

  return NameListParser()


def define_config_flag(default: str, help_string: str, **kwargs) -> None:
  """Defines `--config` (tuple fields take bare `a,b,c`) and `--dry_run`.

  Args:
    default: the default config file.
    help_string: the flag's help.
    **kwargs: for `config_flags.DEFINE_config_file` (e.g. `lock_config`).
  """
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.register_flag_parser_for_type(tuple, _name_list_parser())
  config_flags.DEFINE_config_file("config", default=default,
                                  help_string=help_string, **kwargs)
  define_dry_run_flag()


def one_line(error: BaseException) -> str:
  """`error`'s message on one line (newlines and runs of spaces folded)."""
  text = " ".join(str(error).split())
  return text or type(error).__name__


# What to do about an OSError, by errno.
_OS_ADVICE = {
    **dict.fromkeys((errno.EACCES, errno.EPERM), "check its permissions "
                    "(and its folder's), or give another path"),
    errno.EROFS: "give a path on a writable file system",
    errno.ENOTDIR: "a part of this path is a file, not a folder: move that "
                   "file aside or give another path",
    errno.EISDIR: "a folder is where a file belongs: move it aside",
    errno.EEXIST: "a file is where a folder belongs: move it aside or give "
                  "another path",
    errno.ENOENT: "check the path",
    **dict.fromkeys((errno.ENOSPC, errno.EDQUOT), "free some space and run "
                    "again (finished work is kept)"),
}


def file_error(error: BaseException) -> Optional[str]:
  """`error: <path>: <what>; <what to do>` for an `OSError` naming a file or
  TensorFlow's `PermissionDeniedError`/`DataLossError`; None otherwise."""
  if isinstance(error, OSError) and error.filename is not None:
    path = str(error.filename)
    if error.filename2 is not None:
      path += f" -> {error.filename2}"
    what = error.strerror or one_line(error)
    advice = _OS_ADVICE.get(error.errno)
    text = f"{path}: {what}" + (f"; {advice}." if advice else "")
    if not text.endswith((".", "?", "!")):
      text += "."
    return "error: " + " ".join(text.split())
  tf = sys.modules.get("tensorflow")
  if tf is not None and isinstance(
      error, (tf.errors.PermissionDeniedError, tf.errors.DataLossError)):
    message = one_line(getattr(error, "message", None) or error)
    advice = ("check the permissions of that path, or give another one"
              if isinstance(error, tf.errors.PermissionDeniedError) else
              "that file is truncated or corrupt: delete it (a run resumes "
              "from what is left) or restore it")
    return f"error: {message}; {advice}."
  return None


def _parse_flags(argv: Sequence[str]) -> List[str]:
  """absl's flag parsing, with every flag error as one line (exit 2)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    line = f"error: {one_line(e)} (--helpfull lists the flags)"
  except Exception as e:  # pylint: disable=broad-except
    if not _from_config_flags(e.__traceback__):
      raise
    line = config_flag_error(e)
  _exit(line)


def _exit(line: str, status: int = 2) -> NoReturn:
  """Prints `line` on stderr, after what stdout holds, and exits."""
  sys.stdout.flush()
  print(line, file=sys.stderr)
  sys.exit(status)


# Packages whose flags a command's `--help` lists (not TensorFlow's).
_OWN_PACKAGES = ("sobolev", "benchmarks", "distillation", "synthetic_gradients",
                 "ml_collections")


def define(define_flags: Callable[[], None]) -> List[str]:
  """Defines a command's flags as key flags of the main module (`--help`).

  Args:
    define_flags: defines the command's flags (absl).

  Returns:
    The names of the flags it defined.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  before = set(flags.FLAGS)
  define_flags()
  owners = {id(flag): module for module, defined in
            flags.FLAGS.flags_by_module_dict().items() for flag in defined}
  main_module = sys.argv[0]
  names = sorted(set(flags.FLAGS) - before)
  for name in names:
    flag = flags.FLAGS[name]
    owner = owners.get(id(flag), "")
    if owner == main_module or owner.split(".")[0] in _OWN_PACKAGES:
      flags.FLAGS.register_key_flag_for_module(main_module, flag)
  return names


class Terminated(KeyboardInterrupt):
  """SIGTERM (`kill`, or a parent stopping its workers), raised in the main
  thread so that it unwinds like Ctrl-C: provenance records close as
  'interrupted' and workdir locks are released, instead of the process
  vanishing mid-record."""


def _terminate(signum: int, frame: Any) -> NoReturn:
  del signum, frame
  raise Terminated()


def run(main: Callable[[List[str]], Any],
        define_flags: Optional[Callable[[], None]] = None,
        argv: Optional[List[str]] = None) -> None:
  """Runs a command: defines its flags, parses them, calls `main`.

  Args:
    main: the program, called with the command line left after flag
      parsing (only the program's name: positional arguments are refused).
    define_flags: defines the command's flags (`define`: `--help` lists
      them); None if they are defined already.
    argv: the command line (default `sys.argv`).

  User mistakes exit 2 with one line (module docstring), Ctrl-C 130,
  SIGTERM 143 (both unwind: `Terminated`); bugs keep their tracebacks. absl
  logs warnings and up unless `--verbosity`.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  if define_flags is not None:
    define(define_flags)

  def guarded(args):
    from absl import flags  # pylint: disable=g-import-not-at-top
    from absl import logging  # pylint: disable=g-import-not-at-top
    if not flags.FLAGS["verbosity"].present:
      # absl apps log INFO to stderr by default (e.g. TensorFlow's
      # "Sharding callback duration" on every checkpoint write).
      logging.set_verbosity(logging.WARNING)
    # For `main` only: a process that runs several commands (the README
    # test's driver) gets its own SIGTERM handling back after each.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
      if len(args) > 1:
        raise errors.UserError(f"Unexpected arguments: {args[1:]}")
      return main(args)
    except errors.UserError as e:
      _exit(f"error: {one_line(e)}")
    except Terminated:
      _exit("terminated.", 143)
    except KeyboardInterrupt:
      _exit("interrupted.", 130)
    except Exception as e:  # pylint: disable=broad-except
      line = file_error(e)
      if line is None:
        raise
      _exit(line)
    finally:
      signal.signal(signal.SIGTERM, previous)

  app.run(guarded, argv=argv, flags_parser=_parse_flags)
