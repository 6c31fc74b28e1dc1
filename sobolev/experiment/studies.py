"""The workdir of a study run: held and recorded, or located to report.

A study either works in its workdir (locked, recorded in
`provenance.json`) or, with `--report_only`, reads one another process may
be writing (no lock, nothing recorded; the report goes to
`<workdir>/report_only/`). The study commands also share their flags,
worker share and printed outcome.
"""

import contextlib
import os
from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple

from sobolev.experiment import cli
from sobolev.experiment import errors
from sobolev.experiment import provenance
from sobolev.experiment import workdirs
from sobolev.experiment import workers

#: Where a `--report_only` report goes, inside the workdir.
REPORT_ONLY_DIR = "report_only"
#: How a study's end is recorded in `provenance.json`, by exception.
STATUSES = {errors.DivergenceError: "diverged"}


@contextlib.contextmanager
def session(workdir: str, config: Any, *, ignore: Iterable[str] = (),
            if_different: str = "refuse", report_only: bool = False,
            recorded_config: Optional[Any] = None) -> Iterator[str]:
  """Yields the directory a study works in (see the module docstring).

  Args:
    workdir: the study's workdir.
    config: its settings (recorded in `provenance.json`).
    ignore: fields that may change between invocations (`workdirs`).
    if_different: 'refuse', 'fresh' or 'separate' (`workdirs`).
    report_only: locate the workdir of these settings read-only.
    recorded_config: what `config.json` records and is compared with
      (default: `config`).

  Yields:
    The directory (`workdir` or its `sets/<hash>`).

  Raises:
    As `workdirs.locate_or_raise` (report-only) or `workdirs.open_workdir`.
  """
  compared = config if recorded_config is None else recorded_config
  if report_only:
    yield workdirs.locate_or_raise(workdir, compared, ignore=ignore)
    return
  with workdirs.opened(workdir, compared, ignore=ignore,
                       if_different=if_different) as directory, \
      provenance.recorded(directory, config, statuses=STATUSES):
    yield directory


def report_dir(directory: str, report_only: bool) -> str:
  """Where a study's report goes: the directory, or its `report_only/`."""
  return (os.path.join(directory, REPORT_ONLY_DIR) if report_only
          else directory)


def define_flags(default_config: str, default_workdir: str, *, what: str,
                 stages: Sequence[str] = ()) -> None:
  """Defines `--config`, the workdir flags, `--report_only` and, with
  `stages`, the internal `--worker` and `--stage`.

  Args:
    default_config: the default config file.
    default_workdir: the default workdir.
    what: what the study trains, for the help (`'models'`).
    stages: the study's stages if it starts workers (the first is the
      default `--stage`).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  cli.define_config_flag(default_config, "The study's config file.")
  cli.define_workdir_flags(default=default_workdir)
  flags.DEFINE_bool("report_only", False,
                    f"Train nothing; report the finished {what}.")
  if stages:
    workers.define_flags(stages)


def worker_share() -> Optional[Tuple[int, int]]:
  """`(I, N)` of `--worker=I/N`, or None if this process is not a worker.

  Raises:
    errors.UserError: if `--worker` is not I/N.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  text = flags.FLAGS.worker if "worker" in flags.FLAGS else None
  return workers.parse(text) if text else None


def show(outcome: Any, what: str, report: bool = True) -> None:
  """Prints a study's `study.md` and one line naming what it wrote.

  Args:
    outcome: what the study's `run` returned (`workdir`, `rows`,
      `outputs`).
    what: what its rows are, for the line (`'models'`).
    report: whether to print `study.md` (if it exists).
  """
  md = os.path.join(outcome.workdir, "study.md")
  if report and os.path.exists(md):
    with open(md, encoding="utf-8") as f:
      print(f.read())
  print(f"{len(outcome.rows)} {what}. Wrote " +
        ", ".join(os.path.relpath(p) for p in outcome.outputs))
