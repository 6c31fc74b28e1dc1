"""Runs (or resumes) a study: several sweeps into one workdir, one report.

A study config (`configs/study.py` and the presets `configs/budget.py`,
`configs/protocols.py`, `configs/dimension.py`) names functions (and
families x dimensions), sizes, seeds, step budgets and protocols. Every
model is a unit of the workdir's `runs/` store (`benchmarks.units`),
keyed by every setting behind its numbers (function, size, method, seed,
steps, learning rate, protocol and its fields, ...), so a 16k-step model
never reuses a 4k one, budgets and protocols added later train only the
new models, and a killed study resumes losing at most the group in
training. All models missing from the store are trained in batched groups
(one per size, method, dimension and protocol setting).

With `tune_learning_rates`, each (budget, protocol, method) first gets its
learning rate on VALIDATION data: every rate of the grid is tried on the
tuning seeds (100, ...) of every function and size, scored by the mean
log10 validation MSE (`sobolev.experiment.tuning.grid_search`, trials in
`trials.csv`), and the best is used for the test models. The tuning models
are units too (evaluated on the validation draw, so never confused with
test models).

`run(config, workdir)` writes `config.json`, `provenance.json`,
`tuning.csv` (with tuning), and the report (`benchmarks.study_report`).
"""

import dataclasses
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import ml_collections
import numpy as np

from benchmarks import experiment
from benchmarks import functions
from benchmarks import protocols
from benchmarks import report
from benchmarks import settings
from benchmarks import study_report
from benchmarks import trainer
from benchmarks import units
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import studies
from sobolev.experiment import tuning

# Which models a study covers and how it is reported: may change between
# invocations into one workdir (units are keyed by their own settings).
STUDY_EXTENT = ("functions", "dim_families", "dims", "sizes", "seeds",
                "budgets", "protocols", "tune_learning_rates", "tune_seeds",
                "steps_per_call", "bootstrap_samples", "stall_patience")
_NAME_FIELDS = ("functions", "dim_families", "protocols")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One sweep of a study: a step budget and a protocol."""
  steps: int
  protocol: str


@dataclasses.dataclass(frozen=True)
class TuneTrial:
  """One learning rate tried for a (budget, protocol, method) (`tuning.csv`).

  Attributes:
    steps: the budget.
    protocol: the protocol.
    method: 'regular' or 'sobolev'.
    learning_rate: the rate tried.
    score: mean log10 validation MSE over functions, sizes, tuning seeds.
    chosen: whether it is the best of the grid.
  """
  steps: int
  protocol: str
  method: str
  learning_rate: float
  score: float
  chosen: bool


def resolve(config: Any) -> ml_collections.ConfigDict:
  """A copy of `config` with its name lists split on commas
  (`settings.resolve`; no field defaults)."""
  return settings.resolve(config, _NAME_FIELDS, defaults={})


def recorded(config: Any) -> Dict[str, Any]:
  """The config as `config.json` records it: `activation` and `optimizer`
  left out at their defaults (so studies made before them resume)."""
  out = configs.to_dict(config)
  for field, default in (("activation", "relu"), ("optimizer", "adam")):
    if out.get(field) == default:
      del out[field]
  return out


def study_functions(config: Any) -> List[str]:
  """`functions`, then each family of `dim_families` at each of `dims`."""
  names = list(config.functions)
  for family in config.dim_families:
    for dim in config.dims:
      name = functions.with_dim(family, dim)
      if name not in names:
        names.append(name)
  return names


def variants(config: Any) -> List[Variant]:
  """Every (budget, protocol) of the study."""
  return [Variant(int(steps), protocol) for protocol in config.protocols
          for steps in config.budgets]


def variant_protocol(config: Any, variant: Variant,
                     learning_rate: Optional[float] = None
                    ) -> ml_collections.ConfigDict:
  """The protocol (`settings.protocol`) of one variant."""
  overrides = {"steps": variant.steps, "protocol": variant.protocol}
  if learning_rate is not None:
    overrides["learning_rate"] = float(learning_rate)
  return settings.protocol(config, **overrides)


def check(config: Any) -> None:
  """Checks a (resolved) study config before any work.

  Raises:
    errors.ConfigError: naming the field.
  """
  configs.check_finite(config)
  if config.functions:
    settings.check_functions("functions", config.functions)
  if config.dim_families or config.dims:
    settings.check_distinct("dim_families", config.dim_families,
                            functions.FAMILIES)
    settings.check_distinct("dims", config.dims)
    for dim in config.dims:
      configs.check_int("dims", dim, 2)
  if not study_functions(config):
    raise errors.ConfigError("The study has no function: set `functions` or "
                             "`dim_families` and `dims`.")
  settings.check_distinct("sizes", config.sizes)
  for size in config.sizes:
    configs.check_int("sizes", size, 1)
  settings.check_distinct("budgets", config.budgets)
  for steps in config.budgets:
    configs.check_int("budgets", steps, 1)
  settings.check_distinct("protocols", config.protocols, protocols.NAMES)
  for field in ("seeds", "steps_per_call", "test_size", "validation_size",
                "tune_seeds", "bootstrap_samples"):
    configs.check_int(field, config[field], 1)
  if config.tune_learning_rates:
    settings.check_distinct("tune_learning_rates", config.tune_learning_rates)
    for lr in config.tune_learning_rates:
      configs.check_number("tune_learning_rates", lr, 0, low_inclusive=False)
  for variant in variants(config):
    settings.check_protocol(variant_protocol(config, variant))


def _runs(names: Sequence[str], sizes: Sequence[int], method: str,
          seeds: Sequence[int]) -> List[trainer.Run]:
  return [trainer.Run(f, size, method, seed) for size in sizes
          for f in names for seed in seeds]


def _tune(config: Any, store: runs.RunStore, workdir: str,
          show_progress: Optional[bool]
         ) -> Tuple[Dict[Tuple[Variant, str], float], List[TuneTrial]]:
  """Learning rates per (variant, method), and the trials behind them."""
  if not config.tune_learning_rates:
    return ({(v, m): float(config.learning_rate) for v in variants(config)
             for m in report.METHODS}, [])
  names = study_functions(config)
  seeds = [settings.TUNING_SEED + i for i in range(config.tune_seeds)]
  evaluation = {"set": "validation", "size": config.validation_size}
  requests = {}
  for variant in variants(config):
    for method in report.METHODS:
      for lr in config.tune_learning_rates:
        requests[(variant, method, lr)] = units.unit_requests(
            _runs(names, config.sizes, method, seeds),
            variant_protocol(config, variant, lr), evaluation)
  # All tuning models at once, in batched groups.
  done = units.train_units([r for rs in requests.values() for r in rs],
                           store, workdir, tb_with_key=True,
                           show_progress=show_progress)
  chosen, trials = {}, []
  for variant in variants(config):
    for method in report.METHODS:

      def score(candidate, variant=variant, method=method):
        rs = requests[(variant, method, candidate["learning_rate"])]
        return float(np.mean([report.log10(done[r.key]["mse"]) for r in rs]))

      fixed = {"steps": variant.steps, "protocol": variant.protocol,
               "method": method, "functions": names,
               "sizes": list(config.sizes), "seeds": seeds,
               "validation_size": config.validation_size,
               "final_lr_fraction": config.final_lr_fraction,
               "batch_size": config.batch_size,
               "hidden_sizes": list(config.hidden_sizes),
               "jit_compile": config.jit_compile,
               "version": settings.UNIT_VERSION}
      if method == "sobolev" and variant.protocol == "ours":
        fixed["grad_weight"] = config.grad_weight
        fixed["normalize_grad_weight"] = config.normalize_grad_weight
      if method == "sobolev" and variant.protocol == "differential_ml":
        fixed["dml_lambda"] = config.dml_lambda
      grid = [{"learning_rate": float(lr)}
              for lr in config.tune_learning_rates]
      best, rows = tuning.grid_search(
          grid, score, store_path=os.path.join(workdir, "trials.csv"),
          fixed=fixed)
      chosen[(variant, method)] = best["learning_rate"]
      for row in rows:
        trials.append(TuneTrial(
            steps=variant.steps, protocol=variant.protocol, method=method,
            learning_rate=row["learning_rate"], score=row["score"],
            chosen=row["learning_rate"] == best["learning_rate"]))
  return chosen, trials


def tuning_markdown(trials: Sequence[TuneTrial]) -> List[str]:
  """Markdown lines: per (budget, protocol, method), each rate's score."""
  if not trials:
    return []
  rates = sorted({t.learning_rate for t in trials})
  lines = ["Score: mean log10 validation MSE over functions, sizes and "
           "tuning seeds (lower is better); the chosen rate in bold.", "",
           "| steps | protocol | method | " +
           " | ".join(f"lr {r:g}" for r in rates) + " |",
           "|---" * (3 + len(rates)) + "|"]
  keys = sorted({(t.steps, t.protocol, t.method) for t in trials})
  for steps, protocol, method in keys:
    cells = []
    for rate in rates:
      match = [t for t in trials if (t.steps, t.protocol, t.method,
                                     t.learning_rate) ==
               (steps, protocol, method, rate)]
      if not match:
        cells.append("-")
        continue
      text = f"{match[0].score:.3f}"
      cells.append(f"**{text}**" if match[0].chosen else text)
    lines.append(f"| {steps} | {protocol} | {method} | " + " | ".join(cells) +
                 " |")
  return lines


def requests_of(config: Any, rates: Dict[Tuple[Variant, str], float]):
  """The test units of the study: `[(variant, request)]`."""
  names = study_functions(config)
  seeds = list(range(config.seeds))
  evaluation = {"set": "test", "size": config.test_size}
  out = []
  for variant in variants(config):
    for method in report.METHODS:
      protocol = variant_protocol(config, variant, rates[(variant, method)])
      for request in units.unit_requests(
          _runs(names, config.sizes, method, seeds), protocol, evaluation):
        out.append((variant, request))
  return out


def _rows(pairs, done) -> List[study_report.StudyRow]:
  rows = []
  for variant, request in pairs:
    result = done.get(request.key)
    if result is None:
      continue
    run = request.run
    rows.append(study_report.StudyRow(
        function=run.function, dim=functions.get(run.function).dim,
        size=run.size, method=run.method, seed=run.seed,
        steps=variant.steps, protocol=variant.protocol,
        learning_rate=float(request.protocol.learning_rate),
        test_mse=result["mse"], test_grad_mse=result["grad_mse"],
        train_loss=result.get("train_loss", math.nan),
        train_value_mse=result.get("train_value_mse", math.nan),
        train_grad_mse=result.get("train_grad_mse", math.nan),
        train_set_mse=result.get("train_set_mse", math.nan),
        train_set_grad_mse=result.get("train_set_grad_mse", math.nan),
        train_seconds=result["train_seconds"], unit=request.key))
  return rows


def plan(config: Any, workdir: str, report_only: bool = False) -> str:
  """Checks a study as `run` does; says what it would do.

  The dry run of `python -m benchmarks.study` (nothing is written).

  Returns:
    One line: the test models of the study (and its tuning) and where.

  Raises:
    errors.ConfigError: for invalid settings.
  """
  config = resolve(config)
  check(config)
  if report_only:
    return f"would report the finished models of the study in {workdir}."
  per_variant = (len(study_functions(config)) * len(config.sizes) *
                 len(report.METHODS) * config.seeds)
  n_variants = len(variants(config))
  tuning = (f", after tuning the learning rate on validation data from "
            f"{len(config.tune_learning_rates)} candidates"
            if config.tune_learning_rates else "")
  return (f"would train {per_variant * n_variants} test models "
          f"({n_variants} budget/protocol variants x {per_variant}){tuning}, "
          f"and write study.md, study.csv, gaps.csv and the figures to "
          f"{workdir} (finished models are reused).")


def run(config: Any, workdir: str, *, if_different: str = "refuse",
        show_progress: Optional[bool] = None,
        report_only: bool = False) -> experiment.Outcome:
  """Runs (or resumes) a study and writes its report.

  Args:
    config: the study (`configs/study.py` fields).
    workdir: the output directory.
    if_different: see `experiment.train_and_evaluate`.
    show_progress: see `experiment.train_and_evaluate`.
    report_only: train nothing: report the finished units (e.g. while the
      study runs in another process; tuning must have finished). A
      report-only run is a reader: it takes no lock, leaves `config.json`
      and `provenance.json` alone and writes its report into
      `<workdir>/report_only/`, so that it never races the running study
      (whose own report, at its end, goes to the workdir itself).

  Returns:
    The outcome (rows are `study_report.StudyRow`s).

  Raises:
    errors.ConfigError: for invalid settings (before any work).
    errors.WorkdirMismatchError: see `if_different`.
    errors.DivergenceError: if a model diverges.
  """
  config = resolve(config)
  check(config)
  with studies.session(workdir, config, ignore=STUDY_EXTENT,
                       if_different=if_different, report_only=report_only,
                       recorded_config=recorded(config)) as directory:
    return _study(config, directory, show_progress, report_only)


#: Where `--report_only` writes its report, inside the workdir.
REPORT_ONLY_DIR = studies.REPORT_ONLY_DIR


def _study(config: Any, workdir: str, show_progress: Optional[bool],
           report_only: bool) -> experiment.Outcome:
  store = runs.RunStore(workdir)
  if report_only:
    trials = results.read(os.path.join(workdir, "tuning.csv"), TuneTrial)
    rates = {(v, m): float(config.learning_rate) for v in variants(config)
             for m in report.METHODS}
    for t in trials:
      if t.chosen:
        rates[(Variant(t.steps, t.protocol), t.method)] = t.learning_rate
    pairs = requests_of(config, rates)
    done = {r.key: store.result(r.settings) for _, r in pairs}
    done = {k: v for k, v in done.items() if v is not None}
  else:
    rates, trials = _tune(config, store, workdir, show_progress)
    if trials:
      results.write(os.path.join(workdir, "tuning.csv"), trials)
    pairs = requests_of(config, rates)
    done = units.train_units([r for _, r in pairs], store, workdir,
                             tb_with_key=True,
                             show_progress=show_progress)
  rows = _rows(pairs, done)
  out_dir = studies.report_dir(workdir, True) if report_only else None
  outputs = study_report.write(workdir, rows, config.bootstrap_samples,
                               tuning_markdown(trials), out_dir=out_dir)
  if trials and not report_only:
    outputs.insert(0, os.path.join(workdir, "tuning.csv"))
  return experiment.Outcome(workdir=out_dir or workdir, rows=rows,
                            outputs=outputs)
