"""A command that measures one table into its workdir.

The timing commands (`distillation.speed`, `synthetic_gradients.speed`)
open their workdir for their settings, record provenance, measure rows and
write them as `<name>.csv` (`results.write`) and `<name>.md`; `measure_into`
is that pattern once.
"""

import os
from typing import Any, Callable, Iterable, List

from sobolev.experiment import files
from sobolev.experiment import provenance
from sobolev.experiment import results
from sobolev.experiment import workdirs


def measure_into(workdir: str, config: Any,
                 measure: Callable[[Any], List[Any]],
                 markdown: Callable[[List[Any], Any], str], *,
                 name: str = "speed", ignore: Iterable[str] = ("tf_threads",),
                 if_different: str = "refuse") -> List[Any]:
  """Measures rows and writes `<name>.csv`, `<name>.md`, `provenance.json`.

  The workdir is opened for `config` (`workdirs.opened`: held while the
  rows are measured) and the invocation recorded (`provenance.recorded`);
  the Markdown is also printed.

  Args:
    workdir: the command's workdir.
    config: its settings (`config.json`).
    measure: `config -> rows` (dataclass instances).
    markdown: `(rows, config) -> the Markdown of <name>.md`.
    name: the files' name.
    ignore: fields that may change between invocations (`workdirs`).
    if_different: 'refuse', 'fresh' or 'separate' (`workdirs`).

  Returns:
    The rows.

  Raises:
    errors.WorkdirMismatchError: the workdir holds other settings
      ('refuse').
    errors.WorkdirInUseError: another process holds the workdir.
  """
  with workdirs.opened(workdir, config, ignore=ignore,
                       if_different=if_different) as directory, \
      provenance.recorded(directory, config):
    rows = measure(config)
    results.write(os.path.join(directory, f"{name}.csv"), rows)
    text = markdown(rows, config)
    files.atomic_write_text(os.path.join(directory, f"{name}.md"), text)
    print(text)
  return rows
