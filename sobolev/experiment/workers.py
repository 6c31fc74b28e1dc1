"""A study's worker processes: `--worker=I/N --stage=<stage>`.

A study with `workers` > 1 trains a stage's missing units in that many
processes of its own command (`start`). Each reads the study's settings
from `config.json` (`recorded_config`), recomputes the missing units and
trains share I of their deterministic split into N (`balance`). The flags
are internal: a user runs the study, never a worker.
"""

import os
import subprocess
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence
from typing import Tuple, TypeVar

from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import workdirs

Item = TypeVar("Item")


def define_flags(stages: Sequence[str]) -> None:
  """Defines the internal `--worker` and `--stage` flags (absl).

  Args:
    stages: the study's stages; the first is `--stage`'s default.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("worker", None, "Internal: I/N, train share I of N.")
  flags.DEFINE_enum("stage", stages[0], list(stages),
                    "Internal: the stage a --worker trains.")


def parse(text: str) -> Tuple[int, int]:
  """`--worker`'s `I/N` as `(I, N)`.

  Raises:
    errors.UserError: if `text` is not two integers `I/N`.
  """
  try:
    index, count = (int(n) for n in text.split("/"))
  except ValueError:
    raise errors.UserError(f"`--worker` must be I/N, got {text!r}.") from None
  return index, count


def check(stage: str, stages: Sequence[str], index: int, count: int) -> None:
  """Checks a worker's stage and share.

  Raises:
    errors.UserError: for a stage not in `stages` or not `0 <= index <
      count`.
  """
  if stage not in stages:
    raise errors.UserError(f"`--stage` must be one of {tuple(stages)}, got "
                           f"{stage!r}.")
  if not 0 <= index < count:
    raise errors.UserError(f"`--worker` must be I/N with 0 <= I < N, got "
                           f"{index}/{count}.")


def recorded_config(workdir: str) -> Dict[str, Any]:
  """The study's settings as its process recorded them (`config.json`).

  Raises:
    errors.UserError: if the workdir holds no study.
  """
  recorded = files.read_json(os.path.join(workdir, workdirs.CONFIG_FILE))
  if recorded is None:
    raise errors.UserError(f"{workdir} holds no study (no config.json).")
  return recorded


def balance(items: Sequence[Item], count: int, cost: Callable[[Item], float],
            order: Callable[[Item], Any]) -> List[List[Item]]:
  """Splits items into `count` lists balanced by cost (deterministic): the
  costliest first (ties by `order`) goes to the least-loaded list.

  Args:
    items: what to split (e.g. units, or groups of units kept together).
    count: the number of lists.
    cost: an item's estimated cost.
    order: a sort key that breaks ties of cost.
  """
  ordered = sorted(items, key=lambda item: (-cost(item), order(item)))
  loads = [0.0] * count
  parts = [[] for _ in range(count)]
  for item in ordered:
    i = loads.index(min(loads))
    parts[i].append(item)
    loads[i] += cost(item)
  return parts


def start(module: str, workdir: str, stage: str, count: int, *,
          env: Optional[Mapping[str, str]] = None,
          what: str = "units") -> None:
  """Runs `python -m <module> --worker=I/N` for I < count and waits.

  Args:
    module: the study's command (`benchmarks.architecture_study`).
    workdir: the study's workdir (holds `config.json`).
    stage: the stage the workers train.
    count: the number of workers.
    env: variables set for the workers (e.g. `TF_NUM_INTRAOP_THREADS`).
    what: what the study trains, for the error (`'models'`).

  Raises:
    errors.UserError: if a worker failed (the others are terminated).
  """
  environ = dict(os.environ, **(env or {}))
  procs = [subprocess.Popen(
      [sys.executable, "-m", module, f"--workdir={workdir}",
       f"--stage={stage}", f"--worker={i}/{count}"], env=environ)
           for i in range(count)]
  try:
    codes = [p.wait() for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.terminate()
  if any(codes):
    raise errors.UserError(
        f"A {stage} worker failed (exit codes {codes}); its error is printed "
        f"above. Finished {what} are kept: rerun to resume.")
