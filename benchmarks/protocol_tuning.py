"""Protocol tuning: candidate protocols scored on validation data.

`tune(config, workdir)` (`python -m benchmarks.tune`, `configs/tune.py`)
trains every candidate's models on the tuning seeds (100, ...) and scores
each candidate by the mean log10 validation MSE of `score_method`; models
are units of the workdir's store (`benchmarks.units`), shared between
candidates whose settings agree.
"""

import dataclasses
import math
import os
import sys
from typing import Any, Mapping, Optional, Sequence

import ml_collections
import numpy as np

from benchmarks import experiment
from benchmarks import protocols
from benchmarks import report
from benchmarks import settings
from benchmarks import trainer
from benchmarks import units
from benchmarks.configs import tune as tune_config
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import provenance
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import tuning
from sobolev.experiment import workdirs


@dataclasses.dataclass(frozen=True)
class TuneRow:
  """One tuning model's validation numbers (a row of `tuning.csv`)."""
  candidate: str
  function: str
  size: int
  method: str
  seed: int
  val_mse: float
  val_grad_mse: float
  train_seconds: float


def candidate_protocol(config: Any, name: str) -> ml_collections.ConfigDict:
  """The protocol of candidate `name`: the config's, with its overrides.

  Raises:
    errors.ConfigError: for an unknown candidate, an override of a field
      outside `configs.tune.TUNABLE`, or an invalid value.
  """
  configs.check_choice("candidates", name, tuple(tune_config.CANDIDATES))
  overrides = dict(tune_config.CANDIDATES[name])
  for field in overrides:
    configs.check_choice(f"CANDIDATES[{name!r}] field", field,
                         tune_config.TUNABLE)
  protocol = settings.protocol(config, **overrides)
  settings.check_protocol(protocol)
  return protocol


def plan(config: Any, workdir: str) -> str:
  """Checks a tuning config as `tune` does; says what it would do.

  The dry run of `python -m benchmarks.tune` (nothing is written).

  Returns:
    One line: the candidates and the models per candidate.

  Raises:
    errors.ConfigError: for invalid settings or candidates.
  """
  config = settings.resolve(config)
  settings.check(config)
  for name in config.candidates:
    candidate_protocol(config, name)
  per_candidate = (len(config.functions) * len(config.sizes) *
                   len(report.METHODS) * config.seeds)
  return (f"would score {len(config.candidates)} candidate protocols "
          f"({', '.join(config.candidates)}) on validation data, "
          f"{per_candidate} models each (shared models trained once), and "
          f"write tuning.csv and tuning.md to {workdir}.")


def tune(config: Any, workdir: str, *, if_different: str = "refuse",
         show_progress: Optional[bool] = None) -> experiment.Outcome:
  """Scores candidate protocols on validation data (`configs/tune.py`).

  Each candidate is a grid-search trial (`sobolev.experiment.tuning`,
  trials in `trials.csv`, keyed by the candidate's protocol and the
  functions, sizes, seeds and score method); its score is the mean over
  functions, sizes and seeds of log10 validation MSE of `score_method`.
  Writes `tuning.csv` (one `TuneRow` per model) and `tuning.md` (per
  candidate, size and method; the best candidate).

  Args:
    config: the tuning config.
    workdir: the output directory.
    if_different: see `experiment.train_and_evaluate`.
    show_progress: see `experiment.train_and_evaluate`.

  Returns:
    The outcome (rows are `TuneRow`s).

  Raises:
    errors.ConfigError: for invalid settings or candidates (before work).
    errors.WorkdirMismatchError: see `if_different`.
    errors.DivergenceError: if a model diverges.
  """
  config = settings.resolve(config)
  settings.check(config)
  by_name = {name: candidate_protocol(config, name)
             for name in config.candidates}
  with workdirs.opened(workdir, settings.recorded(config),
                       ignore=settings.TUNE_EXTENT,
                       if_different=if_different) as workdir, \
      provenance.recorded(workdir, config,
                          statuses={errors.DivergenceError: "diverged"}):
    return _tune(config, workdir, by_name, show_progress)


def _tune(config: Any, workdir: str, by_name: Mapping[str, Any],
          show_progress: Optional[bool]) -> experiment.Outcome:
  store = runs.RunStore(workdir)
  seeds = [settings.TUNING_SEED + i for i in range(config.seeds)]
  run_list = [trainer.Run(f, size, method, seed) for size in config.sizes
              for method in report.METHODS for f in config.functions
              for seed in seeds]
  evaluation = {"set": "validation", "size": config.validation_size}

  def requests_of(name):
    return units.unit_requests(run_list, by_name[name], evaluation)

  names_by_protocol = {}
  for name in config.candidates:
    trial = {f: by_name[name][f] for f in tune_config.TUNABLE}
    names_by_protocol[configs.settings_hash(trial)] = name

  def evaluate(candidate):
    name = names_by_protocol[configs.settings_hash(candidate)]
    print(f"candidate {name}: {_describe_overrides(name)}", file=sys.stderr)
    done = units.train_units(requests_of(name), store, workdir,
                             tb_with_key=True, show_progress=show_progress)
    return _score(requests_of(name), done, config.score_method)

  grid = [{f: by_name[name][f] for f in tune_config.TUNABLE}
          for name in config.candidates]
  fixed = {"functions": list(config.functions), "sizes": list(config.sizes),
           "seeds": seeds, "score_method": config.score_method,
           "validation_size": config.validation_size,
           "hidden_sizes": list(config.hidden_sizes),
           "jit_compile": config.jit_compile, "version": settings.UNIT_VERSION}
  if config.protocol != protocols.DEFAULT:
    fixed["protocol"] = config.protocol
    if config.protocol == "differential_ml":
      fixed["dml_lambda"] = config.dml_lambda
  best, trials = tuning.grid_search(
      grid, evaluate, store_path=os.path.join(workdir, "trials.csv"),
      fixed=fixed)
  best_name = names_by_protocol[configs.settings_hash(best)]
  rows = []
  for name in config.candidates:
    requests = requests_of(name)
    done = units.train_units(requests, store, workdir, tb_with_key=True,
                             show_progress=show_progress)
    for request in requests:
      result = done[request.key]
      r = request.run
      rows.append(TuneRow(candidate=name, function=r.function, size=r.size,
                          method=r.method, seed=r.seed,
                          val_mse=result["mse"],
                          val_grad_mse=result["grad_mse"],
                          train_seconds=result["train_seconds"]))
  outputs = [os.path.join(workdir, "tuning.csv"),
             os.path.join(workdir, "tuning.md")]
  results.write(outputs[0], rows)
  scores = {names_by_protocol[configs.settings_hash(
      {f: t[f] for f in tune_config.TUNABLE})]: t["score"] for t in trials}
  files.atomic_write_text(outputs[1], tuning_markdown(
      rows, config.candidates, scores, best_name, config.score_method))
  return experiment.Outcome(workdir=workdir, rows=rows, outputs=outputs)


def _describe_overrides(name: str) -> str:
  overrides = tune_config.CANDIDATES[name]
  return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "base"


def _score(requests: Sequence[units.UnitRequest],
           done: Mapping[str, Mapping], method: str) -> float:
  vals = [report.log10(done[r.key]["mse"]) for r in requests
          if r.run.method == method]
  return float(np.mean(vals))


def tuning_markdown(rows: Sequence[TuneRow], candidates: Sequence[str],
                    scores: Mapping[str, float], best: str,
                    score_method: str) -> str:
  """Per candidate, size and method: mean log10 validation MSE.

  Args:
    rows: the models' validation numbers.
    candidates: candidate names in display order.
    scores: each candidate's score.
    best: the best candidate.
    score_method: the method the score is taken over.

  Returns:
    Markdown text.
  """
  present = sorted({r.function for r in rows}, key=report.function_key)
  lines = [
      f"Score: mean log10 validation MSE of `{score_method}` models over "
      "functions, sizes and seeds (lower is better). Best: "
      f"**{best}** ({scores[best]:.3f}).", "",
      "| candidate | changes from base | score |", "|---|---|---|"]
  for name in candidates:
    lines.append(f"| {name} | {_describe_overrides(name)} | "
                 f"{scores[name]:.3f} |")
  lines += ["", "| candidate | size | method | mean log10 val MSE | mean "
            "log10 val grad MSE | " + " | ".join(present) + " |",
            "|" + "---|" * (5 + len(present))]
  sizes = sorted({r.size for r in rows})
  for size in sizes:
    for name in candidates:
      for method in report.METHODS:
        sel = [r for r in rows if r.candidate == name and r.size == size and
               r.method == method]
        if not sel:
          continue
        per_fn = []
        for fn in present:
          vals = [math.log10(r.val_mse) for r in sel if r.function == fn]
          per_fn.append(f"{np.mean(vals):.2f}" if vals else "-")
        mse = np.mean([math.log10(r.val_mse) for r in sel])
        gmse = np.mean([math.log10(r.val_grad_mse) for r in sel])
        lines.append(f"| {name} | {size} | {method} | {mse:.2f} | "
                     f"{gmse:.2f} | " + " | ".join(per_fn) + " |")
  return "\n".join(lines) + "\n"
