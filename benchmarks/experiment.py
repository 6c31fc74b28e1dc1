"""The benchmarks experiment: Figures 2 and 3 of the paper.

`train_and_evaluate(config, workdir)` runs (or resumes) a sweep
(`configs/default.py`): for every function, training-set size and seed, a
regular and a Sobolev MLP, tested on each function's fixed test set.

Every trained model is a unit of the workdir's `runs/` store
(`benchmarks.units`, keyed by `settings.unit_settings`); models of one
(size, method, input dimension) are trained together as one batched
computation (`benchmarks.trainer`). `results.csv`/`results.md` and the
figures are rebuilt from the units of the current sweep, and
`provenance.json` records every invocation. Functions of any input
dimension work (`benchmarks.functions`); Figure 3 is a 2-D plot and needs a
2-D `figure3_function` (`benchmarks.figure3`). Protocol tuning is
`benchmarks.protocol_tuning`.
"""

import dataclasses
import os
import sys
from typing import Any, List, Optional

from benchmarks import figure3
from benchmarks import plots
from benchmarks import report
from benchmarks import settings
from benchmarks import trainer
from benchmarks import units
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import provenance
from sobolev.experiment import runs
from sobolev.experiment import workdirs


@dataclasses.dataclass
class Outcome:
  """What a sweep (or tuning run, or study) produced.

  Attributes:
    workdir: the directory written (the workdir, or its `sets/<hash>` for
      `if_different='separate'`).
    rows: the result rows of the sweep's models.
    outputs: paths of the files written (CSV, Markdown, figures).
  """
  workdir: str
  rows: List[Any]
  outputs: List[str]


def sweep_runs(config: Any) -> List[trainer.Run]:
  """The runs of a sweep: sizes, then methods, then functions and seeds."""
  return [trainer.Run(f, size, method, seed) for size in config.sizes
          for method in report.METHODS for f in config.functions
          for seed in range(config.seeds)]


def plan(config: Any, workdir: str) -> str:
  """Checks a sweep as `train_and_evaluate` does; says what it would do.

  The dry run of `python -m benchmarks.run` (nothing is written; the
  functions are analytic, so there are no data to check).

  Returns:
    One line: the models the sweep trains and where.

  Raises:
    errors.ConfigError: for invalid settings.
  """
  config = settings.resolve(config)
  settings.check(config)
  n = len(sweep_runs(config))
  return (f"would train {n} models ({len(config.functions)} functions x "
          f"{len(config.sizes)} sizes x {len(report.METHODS)} methods x "
          f"{config.seeds} seeds, {config.steps} steps each, protocol "
          f"{config.protocol}) and write results.csv, results.md and the "
          f"figures to {workdir} (finished models are reused).")


def train_and_evaluate(config: Any, workdir: str, *,
                       if_different: str = "refuse",
                       show_progress: Optional[bool] = None) -> Outcome:
  """Runs (or resumes) a sweep and writes its outputs.

  Writes into the workdir: `results.csv` (`report.Row` columns),
  `results.md`, `figure2.png`, `figure3.png` (if its function is swept),
  `config.json`, `provenance.json`, `runs/` and `tb/`.

  Args:
    config: the sweep (`configs/default.py`).
    workdir: the output directory.
    if_different: what to do if the workdir holds results of other protocol
      settings: 'refuse' (a `WorkdirMismatchError` naming the fields),
      'fresh' or 'separate' (`sobolev.experiment.workdirs`).
    show_progress: draw a progress bar (None: when stderr is a terminal;
      otherwise one line per trained group).

  Returns:
    The outcome: the directory written, the sweep's rows and output files.

  Raises:
    errors.ConfigError: for invalid settings (before any work).
    errors.WorkdirMismatchError: see `if_different`.
    errors.DivergenceError: if a model diverges (no row is written for it).
  """
  config = settings.resolve(config)
  settings.check(config)
  with workdirs.opened(workdir, settings.recorded(config),
                       ignore=settings.SWEEP_EXTENT,
                       if_different=if_different) as workdir, \
      provenance.recorded(workdir, config,
                          statuses={errors.DivergenceError: "diverged"}):
    return _sweep(config, workdir, show_progress)


def _sweep(config: Any, workdir: str,
           show_progress: Optional[bool]) -> Outcome:
  store = runs.RunStore(workdir)
  protocol = settings.protocol(config)
  evaluation = {"set": "test", "size": config.test_size}
  requests = units.unit_requests(sweep_runs(config), protocol, evaluation)
  done = units.train_units(requests, store, workdir,
                           show_progress=show_progress)
  rows = []
  for request in requests:
    result = done[request.key]
    rows.append(report.Row(
        function=request.run.function, size=request.run.size,
        method=request.run.method, seed=request.run.seed,
        test_mse=result["mse"], test_grad_mse=result["grad_mse"],
        train_seconds=result["train_seconds"]))
  rows.sort(key=report.sort_key)
  outputs = [os.path.join(workdir, n) for n in ("results.csv", "results.md",
                                                "figure2.png")]
  report.write(outputs[0], rows)
  files.atomic_write_text(outputs[1], report.markdown(rows))
  plots.figure2(rows, outputs[2])
  drawn = figure3.draw(config, workdir, store, protocol, evaluation)
  if drawn is None:
    print(f"figure3.png not drawn: it needs {config.figure3_function} in "
          "`functions`.", file=sys.stderr)
  else:
    outputs.append(drawn)
  return Outcome(workdir=workdir, rows=rows, outputs=outputs)
