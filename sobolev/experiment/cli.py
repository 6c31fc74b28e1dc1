"""What every experiment command line shares.

* `quiet()`: silence TensorFlow's C++ INFO/WARNING lines and CUDA probing
  chatter; call it before TensorFlow is imported (the entry points do, at
  the top). `--verbose_tf` (or `TF_CPP_MIN_LOG_LEVEL` set by the user)
  keeps them.
* `define_workdir_flags()`: `--workdir`, `--fresh`, `--separate`.
* `if_different()`: the `workdirs.open_workdir` policy those flags ask for.
* `define_config_flag()`: `--config` (tuple fields take bare `a,b,c`
  names) and `--dry_run`; `define_dry_run_flag()` alone for commands
  without a config; `dry_run()` and `say_dry_run()` for the entry points.
* `run(main)`: `absl.app.run` that prints a `UserError` (bad settings, a
  workdir of other settings, divergence) as one line on stderr and exits
  with status 2, instead of a traceback.
"""

import os
import sys
import tempfile
from typing import Any, Callable, List, Optional

from sobolev.experiment import errors


def quiet() -> None:
  """Silences TensorFlow's start-up chatter unless the user asked for it.

  TensorFlow 2.21 prints its oneDNN and CUDA-probe lines through absl's C++
  logging before any log level applies, so `TF_CPP_MIN_LOG_LEVEL` alone does
  not hide them: TensorFlow is imported here with the stderr file descriptor
  pointed at a temporary file, which is shown only if the import fails.
  """
  if "--verbose_tf" in sys.argv:
    sys.argv.remove("--verbose_tf")
    return
  if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in ("0", "1"):
    return  # The user asked for TensorFlow's INFO/WARNING lines.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if "tensorflow" in sys.modules:
    return
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




def define_workdir_flags(default: Optional[str] = None,
                         help_text: str = "Directory for the results, "
                         "checkpoints, TensorBoard events and provenance."
                         ) -> None:
  """Defines `--workdir`, `--fresh` and `--separate` (absl flags).

  Args:
    default: the default workdir (None: `--workdir` is required).
    help_text: the help of `--workdir`.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", default, help_text)
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


def if_different(fresh: Optional[bool] = None,
                 separate: Optional[bool] = None) -> str:
  """The `workdirs.open_workdir(if_different=...)` policy the flags ask for.

  Args:
    fresh: `--fresh` (default: the parsed flag).
    separate: `--separate` (default: the parsed flag).

  Returns:
    'fresh', 'separate' or 'refuse'.

  Raises:
    errors.UserError: if both are set.
  """
  if fresh is None or separate is None:
    from absl import flags  # pylint: disable=g-import-not-at-top
    fresh = flags.FLAGS.fresh if fresh is None else fresh
    separate = flags.FLAGS.separate if separate is None else separate
  if fresh and separate:
    raise errors.UserError("Pass at most one of --fresh and --separate.")
  if fresh:
    return "fresh"
  if separate:
    return "separate"
  return "refuse"


DRY_RUN_PREFIX = "dry run: "


def define_dry_run_flag() -> None:
  """Defines `--dry_run` (an absl flag; read it with `dry_run()`).

  A dry run parses the flags, checks the settings and that the data the
  command reads exist, prints one line (`say_dry_run`) saying what the
  command would do, and exits with status 0 before the first unit of work,
  writing nothing. What fails (a bad setting, missing data) is reported as
  one `error: ...` line with status 2, as without `--dry_run`.
  """
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
  """A tuple parser that also takes bare comma-separated names.

  ml-collections parses `--config.<tuple field>=a,b` with `ast.literal_eval`
  and, when that is not valid Python (`naive,base,nw0.3`: `nw0.3` is not an
  expression), stops flag parsing. This parser gives such a value as the
  1-tuple `('naive,base,nw0.3',)`, as ml-collections already does for
  `booth,beale`; the experiments split name fields on commas
  (`configs.split_names`). Anything else parses as before.
  """
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
  """Defines `--config` (an ml-collections config file) and `--dry_run`.

  Tuple fields also take bare comma-separated names (`--config.candidates=
  naive,base,nw0.3`), which the experiments split on commas (the parser is
  registered for every tuple field of the process's config flags).

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


def run(main: Callable[[List[str]], Any],
        argv: Optional[List[str]] = None) -> None:
  """`absl.app.run(main)`, printing a `UserError` as one line (exit 2).

  Args:
    main: the program, called with the arguments left after flag parsing.
    argv: the command line (default `sys.argv`).

  A `errors.UserError` (a bad setting, a workdir of other settings, a
  diverged run, unreadable checkpoints) is printed as `error: <message>` on
  stderr and the process exits with status 2; Ctrl-C exits with status 130
  and one line. Other exceptions (bugs) keep their tracebacks. absl logging
  shows warnings and errors only, unless `--verbosity` is given.
  """
  from absl import app  # pylint: disable=g-import-not-at-top

  def guarded(args):
    from absl import flags  # pylint: disable=g-import-not-at-top
    from absl import logging  # pylint: disable=g-import-not-at-top
    if not flags.FLAGS["verbosity"].present:
      # absl apps log INFO to stderr by default (e.g. TensorFlow's
      # "Sharding callback duration" on every checkpoint write).
      logging.set_verbosity(logging.WARNING)
    try:
      return main(args)
    except errors.UserError as e:
      sys.stdout.flush()
      print(f"error: {one_line(e)}", file=sys.stderr)
      sys.exit(2)
    except KeyboardInterrupt:
      sys.stdout.flush()
      print("interrupted.", file=sys.stderr)
      sys.exit(130)

  app.run(guarded, argv=argv)
