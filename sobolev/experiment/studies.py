"""The workdir of a study run: held and recorded, or located to report.

A study (`benchmarks.study`, `benchmarks.architecture_study`,
`distillation.study`) either works in its workdir (one writer: the lock is
held for the run, the invocation recorded in `provenance.json`, a
divergence or Ctrl-C recorded as such) or, with `--report_only`, reads a
workdir that another process may be writing (no lock, nothing recorded;
the report goes to `<workdir>/report_only/`).
"""

import contextlib
import os
from typing import Any, Iterable, Iterator, Optional

from sobolev.experiment import errors
from sobolev.experiment import provenance
from sobolev.experiment import workdirs

#: Where a `--report_only` report goes, inside the workdir.
REPORT_ONLY_DIR = "report_only"
#: How a study's end is recorded in `provenance.json`, by exception.
STATUSES = {errors.DivergenceError: "diverged",
            KeyboardInterrupt: "interrupted"}


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
    errors.WorkdirMismatchError: no results of these settings (report-only)
      or other settings there ('refuse').
    errors.WorkdirInUseError: another process holds the workdir.
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
