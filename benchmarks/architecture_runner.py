"""Runs (or resumes) the model-class study (issue 22): screening, then final.

A *class* is an activation, hidden layers and an optimiser
(`ModelClass`, named like 'silu-2x256-adam'). The study
(`configs/architecture.py`):

1. screens every class on VALIDATION draws (seeds 100, ...): each Adam
   class at every rate of `tune_learning_rates`, L-BFGS classes once;
   per (class, method, size) the rate with the lowest mean log10
   validation MSE over functions and seeds is kept (`ScreenRecord`s in
   `screening.csv`);
2. picks, per size, each method's best class, the class best for both
   methods and sizes together (`shared`) and the `reference` class, and
   trains each with both methods on the TEST sets (`seeds` seeds).

Every model is a unit of the workdir's `runs/` store (`benchmarks.units`),
keyed by its own settings, so a killed study resumes losing at most the
groups in training. With `workers` > 1 the groups of a stage are split
(balanced by estimated cost) among that many worker processes
(`python -m benchmarks.architecture_study --worker=I/N --stage=...`, one
intra-op thread each), which train into the same store; this process holds
the workdir and waits for them.
"""

import dataclasses
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import ml_collections
import numpy as np

from benchmarks import architecture_report
from benchmarks import experiment
from benchmarks import report
from benchmarks import settings
from benchmarks import stacked_mlp
from benchmarks import trainer
from benchmarks import units
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import studies
from sobolev.experiment import workers as workers_lib

# Which models the study covers and how it is reported: may change between
# invocations into one workdir (units are keyed by their own settings).
STUDY_EXTENT = ("functions", "sizes", "seeds", "screen_seeds", "activations",
                "architectures", "optimizers", "tune_learning_rates",
                "lbfgs_activations", "lbfgs_architectures", "reference",
                "steps_per_call", "bootstrap_samples", "workers",
                "stall_patience")
_NAME_FIELDS = ("functions", "activations", "architectures", "optimizers",
                "lbfgs_activations", "lbfgs_architectures")
STAGES = ("screen", "final")


@dataclasses.dataclass(frozen=True, order=True)
class ModelClass:
  """An activation, hidden layer widths and an optimiser."""
  activation: str
  hidden_sizes: Tuple[int, ...]
  optimizer: str

  @property
  def name(self) -> str:
    """'silu-2x256-adam' (or 'tanh-64x32-adam' for unequal widths)."""
    return f"{self.activation}-{architecture_name(self.hidden_sizes)}-" \
           f"{self.optimizer}"


def architecture_name(hidden_sizes: Sequence[int]) -> str:
  """(256, 256) -> '2x256'; unequal widths -> '64x32x16' (each width)."""
  if len(set(hidden_sizes)) == 1:
    return f"{len(hidden_sizes)}x{hidden_sizes[0]}"
  return "w" + "x".join(str(w) for w in hidden_sizes)


def parse_architecture(text: str) -> Tuple[int, ...]:
  """'2x256' -> (256, 256); 'w64x32' -> (64, 32).

  Raises:
    errors.ConfigError: for anything else.
  """
  try:
    if text.startswith("w"):
      sizes = tuple(int(w) for w in text[1:].split("x"))
    else:
      layers, width = text.split("x")
      sizes = (int(width),) * int(layers)
  except ValueError:
    sizes = ()
  if not sizes or any(w < 1 for w in sizes):
    raise errors.ConfigError(
        f"`architectures` entries must look like '2x256' (layers x width) "
        f"or 'w64x32' (each width), got {text!r}.")
  return sizes


def parse_class(text: str) -> ModelClass:
  """'relu-2x256-adam' -> `ModelClass`.

  Raises:
    errors.ConfigError: naming `reference` for a malformed name.
  """
  parts = str(text).split("-")
  if len(parts) != 3:
    raise errors.ConfigError(f"`reference` must look like 'relu-2x256-adam' "
                             f"(activation-architecture-optimizer), got "
                             f"{text!r}.")
  configs.check_choice("reference", parts[0], tuple(stacked_mlp.ACTIVATIONS))
  configs.check_choice("reference", parts[2], trainer.OPTIMIZERS)
  return ModelClass(parts[0], parse_architecture(parts[1]), parts[2])


def resolve(config: Any) -> ml_collections.ConfigDict:
  """A copy of `config` with its name lists split on commas
  (`settings.resolve`; no field defaults)."""
  return settings.resolve(config, _NAME_FIELDS, defaults={})


def classes(config: Any) -> List[ModelClass]:
  """Every screened class: Adam over activations x architectures, L-BFGS
  over `lbfgs_activations` x `lbfgs_architectures`."""
  out = []
  if "adam" in config.optimizers:
    out += [ModelClass(a, parse_architecture(h), "adam")
            for h in config.architectures for a in config.activations]
  if "lbfgs" in config.optimizers:
    out += [ModelClass(a, parse_architecture(h), "lbfgs")
            for h in config.lbfgs_architectures
            for a in config.lbfgs_activations]
  return out


def rates(config: Any, model_class: ModelClass) -> List[float]:
  """The learning rates a class is screened at (NaN: L-BFGS, none)."""
  if model_class.optimizer == "lbfgs":
    return [math.nan]
  return [float(r) for r in config.tune_learning_rates]


def protocol_of(config: Any, model_class: ModelClass,
                learning_rate: float) -> ml_collections.ConfigDict:
  """The trainer protocol (`settings.protocol`) of a class."""
  lbfgs = model_class.optimizer == "lbfgs"
  return settings.protocol(
      config, activation=model_class.activation,
      hidden_sizes=model_class.hidden_sizes, optimizer=model_class.optimizer,
      # L-BFGS has none (left out of its units' keys).
      learning_rate=1.0 if lbfgs else float(learning_rate),
      steps=int(config.lbfgs_steps if lbfgs else config.steps))


def check(config: Any) -> None:
  """Checks a (resolved) study config before any work.

  Raises:
    errors.ConfigError: naming the field.
  """
  configs.check_finite(config)
  settings.check_functions("functions", config.functions)
  settings.check_distinct("sizes", config.sizes)
  for size in config.sizes:
    configs.check_int("sizes", size, 1)
  for field in ("seeds", "screen_seeds", "steps", "lbfgs_steps",
                "steps_per_call", "test_size", "validation_size",
                "bootstrap_samples", "workers"):
    configs.check_int(field, config[field], 1)
  settings.check_distinct("optimizers", config.optimizers, trainer.OPTIMIZERS)
  acts = tuple(stacked_mlp.ACTIVATIONS)
  if "adam" in config.optimizers:
    settings.check_distinct("activations", config.activations, acts)
    settings.check_distinct("architectures", config.architectures)
    settings.check_distinct("tune_learning_rates", config.tune_learning_rates)
    for lr in config.tune_learning_rates:
      configs.check_number("tune_learning_rates", lr, 0, low_inclusive=False)
  if "lbfgs" in config.optimizers:
    settings.check_distinct("lbfgs_activations", config.lbfgs_activations, acts)
    settings.check_distinct("lbfgs_architectures", config.lbfgs_architectures)
  reference = parse_class(config.reference)
  if reference not in classes(config):
    raise errors.ConfigError(
        f"`reference` {config.reference!r} is not one of the screened "
        f"classes: {[c.name for c in classes(config)]}.")
  for model_class in classes(config):
    for lr in rates(config, model_class):
      settings.check_protocol(protocol_of(config, model_class, lr))


# --------------------------------------------------------------- requests


@dataclasses.dataclass(frozen=True)
class Wanted:
  """A unit the study wants, with the class and rate behind it."""
  stage: str
  model_class: ModelClass
  learning_rate: float
  request: units.UnitRequest


def _wanted(config, stage, model_class, lr, method, size, seeds, evaluation):
  reqs = units.unit_requests(
      [trainer.Run(f, size, method, s) for f in config.functions
       for s in seeds], protocol_of(config, model_class, lr), evaluation)
  return [Wanted(stage, model_class, lr, r) for r in reqs]


def screen_requests(config: Any) -> List[Wanted]:
  """Every screening unit (validation sets, seeds 100 ..)."""
  seeds = [settings.TUNING_SEED + i for i in range(config.screen_seeds)]
  evaluation = {"set": "validation", "size": config.validation_size}
  out = []
  for model_class in classes(config):
    for lr in rates(config, model_class):
      for method in report.METHODS:
        for size in config.sizes:
          out += _wanted(config, "screen", model_class, lr, method, size,
                         seeds, evaluation)
  return out


@dataclasses.dataclass(frozen=True)
class ScreenRecord:
  """One (class, rate, method, size) of the screening (`screening.csv`).

  Attributes:
    model_class: the class name.
    activation, hidden_sizes, optimizer: the class ('256x256' widths).
    method: 'regular' or 'sobolev'.
    size: training points.
    learning_rate: the Adam rate (NaN for L-BFGS).
    score: mean log10 validation MSE over functions and screening seeds
      (NaN while units are missing).
    models: finished units behind the score.
    chosen: the class's best rate for this (method, size).
    seconds_per_model: mean training time of its models.
  """
  model_class: str
  activation: str
  hidden_sizes: str
  optimizer: str
  method: str
  size: int
  learning_rate: float
  score: float
  models: int
  chosen: bool
  seconds_per_model: float


def screen_records(config: Any, wanted: Sequence[Wanted],
                   done: Dict[str, Dict[str, Any]]) -> List[ScreenRecord]:
  """The screening scores, best rate per (class, method, size) marked."""
  cells = {}
  for w in wanted:
    key = (w.model_class, w.request.run.method, w.request.run.size,
           w.learning_rate)
    cells.setdefault(key, []).append(done.get(w.request.key))
  expected = len(config.functions) * config.screen_seeds
  records = []
  for (cls, method, size, lr), res in cells.items():
    finished = [r for r in res if r is not None]
    complete = len(finished) == expected
    score = (float(np.mean([report.log10(r["mse"]) for r in finished]))
             if complete else math.nan)
    seconds = (float(np.mean([r["train_seconds"] for r in finished]))
               if finished else math.nan)
    records.append(ScreenRecord(
        model_class=cls.name, activation=cls.activation,
        hidden_sizes="x".join(str(w) for w in cls.hidden_sizes),
        optimizer=cls.optimizer, method=method, size=size, learning_rate=lr,
        score=score, models=len(finished), chosen=False,
        seconds_per_model=seconds))
  best = {}
  for i, r in enumerate(records):
    key = (r.model_class, r.method, r.size)
    if math.isfinite(r.score) and (key not in best or
                                   r.score < records[best[key]].score):
      best[key] = i
  chosen = set(best.values())
  return [dataclasses.replace(r, chosen=i in chosen)
          for i, r in enumerate(records)]


@dataclasses.dataclass
class Choices:
  """What the screening chose (all on validation data).

  Attributes:
    rates: `{(class name, method, size): learning rate}` (tuned).
    scores: `{(class name, method, size): score at that rate}`.
    best: `{(method, size): class name}`, each method's best class.
    shared: the class with the lowest mean score over methods and sizes.
    reference: the reference class's name.
  """
  rates: Dict[Tuple[str, str, int], float]
  scores: Dict[Tuple[str, str, int], float]
  best: Dict[Tuple[str, int], str]
  shared: str
  reference: str


def choose(config: Any, records: Sequence[ScreenRecord]) -> Choices:
  """Picks rates and classes from complete screening records.

  Raises:
    errors.UserError: if the screening is incomplete.
  """
  chosen = [r for r in records if r.chosen]
  rates_ = {(r.model_class, r.method, r.size): r.learning_rate
            for r in chosen}
  scores = {(r.model_class, r.method, r.size): r.score for r in chosen}
  names = [c.name for c in classes(config)]
  cells = [(n, m, s) for n in names for m in report.METHODS
           for s in config.sizes]
  missing = [c for c in cells if c not in scores]
  if missing:
    raise errors.UserError(
        f"The screening is incomplete ({len(missing)} of {len(cells)} "
        f"(class, method, size) cells have no score); run the study "
        f"without --report_only first.")
  best = {(m, s): min(names, key=lambda n, m=m, s=s: scores[(n, m, s)])
          for m in report.METHODS for s in config.sizes}
  shared = min(names, key=lambda n: np.mean(
      [scores[(n, m, s)] for m in report.METHODS for s in config.sizes]))
  return Choices(rates=rates_, scores=scores, best=best, shared=shared,
                 reference=parse_class(config.reference).name)


def final_classes(config: Any, choices: Choices, size: int) -> List[str]:
  """The classes of the final stage at one size (each with both methods)."""
  names = [choices.best[("regular", size)], choices.best[("sobolev", size)],
           choices.shared, choices.reference]
  return list(dict.fromkeys(names))


def final_requests(config: Any, choices: Choices) -> List[Wanted]:
  """Every final unit (test sets, seeds 0 ..)."""
  by_name = {c.name: c for c in classes(config)}
  evaluation = {"set": "test", "size": config.test_size}
  seeds = list(range(config.seeds))
  out = []
  for size in config.sizes:
    for name in final_classes(config, choices, size):
      for method in report.METHODS:
        lr = choices.rates[(name, method, size)]
        out += _wanted(config, "final", by_name[name], lr, method, size,
                       seeds, evaluation)
  return out


# ---------------------------------------------------------------- training


def partition(wanted: Sequence[Wanted], workers: int) -> List[List[Wanted]]:
  """Splits units into `workers` lists of whole groups, balanced by cost
  (`workers.balance`: largest group first to the least-loaded worker)."""
  groups = {}
  for w in wanted:
    groups.setdefault(units.group_key(w.request), []).append(w)
  parts = workers_lib.balance(
      list(groups.values()), workers,
      cost=lambda group: units.work([w.request for w in group]),
      order=lambda group: units.group_key(group[0].request))
  return [[w for group in part for w in group] for part in parts]


def _missing(wanted: Sequence[Wanted], store: runs.RunStore) -> List[Wanted]:
  return [w for w in wanted if store.result(w.request.settings) is None]


def _train(config: Any, stage: str, wanted: Sequence[Wanted],
           store: runs.RunStore, workdir: str,
           show_progress: Optional[bool]) -> None:
  """Trains the missing units of a stage, here or in worker processes."""
  todo = _missing(wanted, store)
  if not todo:
    return
  if config.workers == 1:
    units.train_units([w.request for w in todo], store, workdir,
                      tb_with_key=True, show_progress=show_progress)
    return
  workers_lib.start("benchmarks.architecture_study", workdir, stage,
                    config.workers, what="models",
                    env={"TF_NUM_INTRAOP_THREADS": "1",
                         "TF_NUM_INTEROP_THREADS": "1"})


def work_on(workdir: str, stage: str, index: int, count: int,
            show_progress: Optional[bool] = None) -> int:
  """A worker: trains its share of a stage's missing units.

  Reads the study's settings from `<workdir>/config.json` (written by the
  process that started it, which holds the workdir).

  Returns:
    The number of units it trained.

  Raises:
    errors.UserError: for a bad stage or worker index, or a workdir with
      no study.
  """
  workers_lib.check(stage, STAGES, index, count)
  recorded = workers_lib.recorded_config(workdir)
  config = resolve(recorded)
  store = runs.RunStore(workdir)
  if stage == "screen":
    wanted = screen_requests(config)
  else:
    screen = screen_requests(config)
    done = {w.request.key: store.result(w.request.settings) for w in screen}
    wanted = final_requests(config, choose(
        config, screen_records(config, screen, done)))
  mine = partition(_missing(wanted, store), count)[index]
  if mine:
    units.train_units([w.request for w in mine], store, workdir,
                      tb_with_key=True, show_progress=show_progress)
  return len(mine)


# ------------------------------------------------------------------- study


def plan(config: Any, workdir: str, report_only: bool = False) -> str:
  """Checks the study as `run` does; says what it would do (a dry run).

  Raises:
    errors.ConfigError: for invalid settings.
  """
  config = resolve(config)
  check(config)
  if report_only:
    return f"would report the finished models of the study in {workdir}."
  screen = screen_requests(config)
  return (f"would screen {len(classes(config))} model classes on validation "
          f"data ({len(screen)} models), then train the chosen classes with "
          f"{config.seeds} seeds on the test sets, in {config.workers} "
          f"worker process(es), writing study.md, screening.csv, runs.csv, "
          f"gaps.csv and the figures to {workdir} (finished models are "
          f"reused).")


def run(config: Any, workdir: str, *, if_different: str = "refuse",
        show_progress: Optional[bool] = None,
        report_only: bool = False) -> experiment.Outcome:
  """Runs (or resumes) the study and writes its report.

  Args:
    config: the study (`configs/architecture.py` fields).
    workdir: the output directory.
    if_different: see `experiment.train_and_evaluate`.
    show_progress: see `experiment.train_and_evaluate`.
    report_only: train nothing; report what is finished (the final stage
      only once the screening is complete) into `<workdir>/report_only/`,
      taking no lock and writing nothing else (e.g. beside the running
      study).

  Returns:
    The outcome (rows are `architecture_report.ArchRow`s).

  Raises:
    errors.ConfigError: for invalid settings (before any work).
    errors.WorkdirMismatchError: see `if_different`.
    errors.DivergenceError: if a model diverges.
  """
  config = resolve(config)
  check(config)
  with studies.session(workdir, config, ignore=STUDY_EXTENT,
                       if_different=if_different, report_only=report_only,
                       recorded_config=configs.to_dict(config)) as directory:
    return _study(config, directory, show_progress, report_only)


def _study(config, workdir, show_progress, report_only):
  store = runs.RunStore(workdir)
  screen = screen_requests(config)
  if not report_only:
    _train(config, "screen", screen, store, workdir, show_progress)
  done = {w.request.key: store.result(w.request.settings) for w in screen}
  records = screen_records(config, screen, done)
  out_dir = studies.report_dir(workdir, report_only)
  os.makedirs(out_dir, exist_ok=True)
  results.write(os.path.join(out_dir, "screening.csv"), records)
  final, choices = [], None
  if all(math.isfinite(r.score) for r in records):
    choices = choose(config, records)
    final = final_requests(config, choices)
    if not report_only:
      _train(config, "final", final, store, workdir, show_progress)
  wanted = list(screen) + list(final)
  done = {w.request.key: store.result(w.request.settings) for w in wanted}
  rows = architecture_report.rows(wanted, done)
  outputs = architecture_report.write(
      out_dir, rows, records, choices, config.sizes,
      samples=config.bootstrap_samples)
  return experiment.Outcome(workdir=out_dir, rows=rows,
                            outputs=[os.path.join(out_dir, "screening.csv")] +
                            outputs)
