"""A command that measures one table into its workdir.

`measure_into`: the timing commands' open-workdir, record-provenance,
measure, write `<name>.csv` and `<name>.md` pattern, once.
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
  """Measures and returns rows; writes (and prints) `<name>.csv`, `<name>.md`.

  Args:
    workdir: the command's workdir.
    config: its settings (`config.json`).
    measure: `config -> rows` (dataclass instances).
    markdown: `(rows, config) -> the Markdown of <name>.md`.
    name: the files' name.
    ignore: fields that may change between invocations (`workdirs`).
    if_different: 'refuse', 'fresh' or 'separate' (`workdirs`).

  Raises:
    As `workdirs.open_workdir`.
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
