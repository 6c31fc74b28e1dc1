"""The benchmarks experiment: Figures 2 and 3 of the paper, and protocol tuning.

`train_and_evaluate(config, workdir)` runs (or resumes) a sweep
(`configs/default.py`): for every function, training-set size and seed, a
regular and a Sobolev MLP, tested on each function's fixed test set.
`tune(config, workdir)` scores candidate protocols on validation data
(`configs/tune.py`).

Every trained model is a *unit* of `sobolev.experiment.runs.RunStore`, kept
in `<workdir>/runs/<hash of its settings>/`: its settings (function, size,
method, seed and every protocol setting that changes its numbers),
`result.json` (its numbers, written last: test errors, the final training
loss terms, the scaling and loss weights), `model/` (its final weights, a
`tf.train.Checkpoint` of a plain `snt.nets.MLP`) and `curves.csv` (training
loss terms). A finished unit is reused only for identical settings;
`results.csv`/`results.md` and the figures are rebuilt from the units of the
current sweep. TensorBoard curves go to `<workdir>/tb/<function>/<size>pts_
<method>_seed<seed>` (loss terms during training, test metrics at the end),
and `provenance.json` records every invocation.

Models of one (size, method, input dimension) are trained together as one
batched computation (`benchmarks.trainer`); a model's numbers do not depend
on which other models share its group (its seeds are its own; tested).

Functions of any input dimension work (`benchmarks.functions`); Figure 3 is
a 2-D plot and needs a 2-D `figure3_function`. The protocol
(`config.protocol`, `benchmarks.protocols`) is part of every unit's key
except for the default 'ours', which keeps the keys of earlier versions (so
existing workdirs resume); likewise `config.json` records `protocol` and
`dml_lambda` only where they matter (not 'ours'; `dml_lambda` only for
'differential_ml').
"""

import collections
import dataclasses
import math
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import ml_collections
import numpy as np
import sonnet as snt
import tensorflow as tf

from benchmarks import data
from benchmarks import functions
from benchmarks import plots
from benchmarks import protocols
from benchmarks import report
from benchmarks import scaling
from benchmarks import stacked_mlp
from benchmarks import trainer
from benchmarks.configs import tune as tune_config
from sobolev import derivatives
from sobolev.experiment import checkpoints
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import metrics
from sobolev.experiment import progress
from sobolev.experiment import provenance
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import tuning
from sobolev.experiment import workdirs

# Which models a sweep covers and how it is displayed: may change between
# invocations into one workdir (units are keyed by their own settings).
SWEEP_EXTENT = ("functions", "sizes", "seeds", "figure3_function",
                "steps_per_call", "stall_patience")
# Tuning: which candidates, sizes, seeds and functions are tried.
TUNE_EXTENT = SWEEP_EXTENT + ("candidates",)
# Settings that change a model's numbers.
PROTOCOL_FIELDS = ("steps", "learning_rate", "final_lr_fraction",
                   "batch_size", "grad_weight", "normalize_grad_weight",
                   "hidden_sizes", "jit_compile", "protocol", "dml_lambda",
                   "activation", "optimizer")
# Protocol fields that do not affect regular models.
SOBOLEV_ONLY = ("grad_weight", "normalize_grad_weight", "dml_lambda")
# Fields used by one protocol's Sobolev models only.
_USED_BY = {"grad_weight": "ours", "normalize_grad_weight": "ours",
            "dml_lambda": "differential_ml"}
# Defaults of the fields added after results were published: a config
# without them means these values.
_NEW_FIELD_DEFAULTS = {"protocol": protocols.DEFAULT, "dml_lambda": 1.0,
                       "activation": stacked_mlp.DEFAULT_ACTIVATION,
                       "optimizer": trainer.DEFAULT_OPTIMIZER}
# Fields left out of a unit's settings (and of `config.json`) when they hold
# their default: the keys of units made before the field existed.
_OMITTED_AT_DEFAULT = ("protocol", "activation", "optimizer")
# Fields that full-batch L-BFGS does not use (no learning rate, no batches).
_ADAM_ONLY = ("learning_rate", "final_lr_fraction", "batch_size")
# Version of a unit's definition: 2 = per-model mini-batch seeds (issue 13).
UNIT_VERSION = 2
# First tuning seed (the sweep uses seeds 0, 1, ...).
TUNING_SEED = 100
# Cost model of the progress bar's ETA: per-step overhead in units of one
# example's cost, and the cost of a Sobolev step relative to a regular one.
_STEP_OVERHEAD = 200
_SOBOLEV_COST = 1.6
_LBFGS_COST = 8.0


@dataclasses.dataclass
class Outcome:
  """What a sweep (or tuning run) produced.

  Attributes:
    workdir: the directory written (the workdir, or its `sets/<hash>` for
      `if_different='separate'`).
    rows: the result rows of the sweep's models.
    outputs: paths of the files written (CSV, Markdown, figures).
  """
  workdir: str
  rows: List[Any]
  outputs: List[str]


# ----------------------------------------------------------------- settings


def resolve(config: Any) -> ml_collections.ConfigDict:
  """A copy of `config` with `functions` (and `candidates`) split on commas.

  `--config.functions=booth,beale` arrives as the 1-tuple `('booth,beale',)`
  (ml-collections parses only Python literals into tuples).

  Raises:
    TypeError: if `config` is not a `ConfigDict` or mapping.
    errors.ConfigError: if those fields hold something other than names.
  """
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise TypeError(f"`config` must be a ConfigDict or a mapping, got "
                    f"{type(config).__name__}.")
  config = ml_collections.ConfigDict(dict(config))
  for field in ("functions", "candidates"):
    if field in config:
      config[field] = configs.split_names(field, config[field])
  for field, value in _NEW_FIELD_DEFAULTS.items():
    if field not in config:
      config[field] = value
  return config


def recorded(config: Any) -> Dict[str, Any]:
  """The config as recorded in `config.json`: fields of other protocols out.

  `protocol` is left out when it is 'ours' and `dml_lambda` unless the
  protocol is 'differential_ml', so workdirs made before these fields
  existed resume and changing an unused field is not a different setting.
  """
  out = configs.to_dict(config)
  for field in _OMITTED_AT_DEFAULT:
    if field in out and out[field] == _NEW_FIELD_DEFAULTS[field]:
      del out[field]
  if out.get("protocol") != "differential_ml":
    out.pop("dml_lambda", None)
  return out


def check_functions(field: str, names: Sequence[str]) -> None:
  """Checks benchmark names (any registered or `<family>_<D>d` name).

  Raises:
    errors.ConfigError: naming the field, for an empty list, an unknown
      name (listing the valid ones) or a duplicate.
  """
  if not names:
    raise errors.ConfigError(f"`{field}` must name at least one benchmark.")
  for name in names:
    try:
      functions.get(name)
    except ValueError:
      families = " or ".join(f"{f}_<D>d" for f in functions.FAMILIES)
      raise errors.ConfigError(
          f"`{field}` must be one of {functions.known_names()}, {families} "
          f"(D >= 3) or a function registered with "
          f"benchmarks.functions.register, got {name!r}.") from None
  if len(set(names)) != len(names):
    raise errors.ConfigError(f"`{field}` has duplicates: {tuple(names)}.")


def check(config: Any, tune: bool = False) -> None:
  """Checks a (resolved) sweep or tuning config before any work.

  Raises:
    errors.ConfigError: naming the field, for a non-finite number, an
      unknown function or candidate, a size <= 0, a duplicate, ...
  """
  configs.check_finite(config)
  check_functions("functions", config.functions)
  if not config.sizes:
    raise errors.ConfigError("`sizes` must hold at least one size.")
  for size in config.sizes:
    configs.check_int("sizes", size, 1)
  if len(set(config.sizes)) != len(config.sizes):
    raise errors.ConfigError(f"`sizes` has duplicates: {tuple(config.sizes)}.")
  for field in ("seeds", "steps", "batch_size", "steps_per_call"):
    configs.check_int(field, config[field], 1)
  configs.check_int("stall_patience",
                    config.get("stall_patience", 0), 0)
  check_protocol(config)
  if tune:
    configs.check_int("validation_size", config.validation_size, 1)
    configs.check_choice("score_method", config.score_method, report.METHODS)
    if not config.candidates:
      raise errors.ConfigError("`candidates` must name at least one.")
    for name in config.candidates:
      configs.check_choice("candidates", name,
                           tuple(tune_config.CANDIDATES))
    if len(set(config.candidates)) != len(config.candidates):
      raise errors.ConfigError(
          f"`candidates` has duplicates: {tuple(config.candidates)}.")
  else:
    configs.check_int("test_size", config.test_size, 1)
    check_functions("figure3_function", (config.figure3_function,))
    dim = functions.get(config.figure3_function).dim
    if dim != 2:
      raise errors.ConfigError(
          f"`figure3_function` must be a 2-D function (Figure 3 is a 2-D "
          f"surface and contour plot), got {config.figure3_function!r} "
          f"with D = {dim}.")


def check_protocol(protocol: Any) -> None:
  """Checks the protocol fields (`PROTOCOL_FIELDS`).

  Raises:
    errors.ConfigError: naming the field.
  """
  configs.check_int("steps", protocol.steps, 1)
  configs.check_int("batch_size", protocol.batch_size, 1)
  configs.check_number("learning_rate", protocol.learning_rate, 0,
                       low_inclusive=False)
  configs.check_number("final_lr_fraction", protocol.final_lr_fraction, 0, 1,
                       low_inclusive=False)
  configs.check_number("grad_weight", protocol.grad_weight, 0)
  for field in ("normalize_grad_weight", "jit_compile"):
    if not isinstance(protocol[field], bool):
      raise errors.ConfigError(
          f"`{field}` must be True or False, got {protocol[field]!r}.")
  if not protocol.hidden_sizes:
    raise errors.ConfigError("`hidden_sizes` must hold at least one width.")
  for width in protocol.hidden_sizes:
    configs.check_int("hidden_sizes", width, 1)
  configs.check_choice("protocol", protocol.protocol, protocols.NAMES)
  configs.check_number("dml_lambda", protocol.dml_lambda, 0)
  configs.check_choice(
      "activation", protocol.get("activation", stacked_mlp.DEFAULT_ACTIVATION),
      tuple(stacked_mlp.ACTIVATIONS))
  configs.check_choice(
      "optimizer", protocol.get("optimizer", trainer.DEFAULT_OPTIMIZER),
      trainer.OPTIMIZERS)


def unit_settings(run: trainer.Run, protocol: Any,
                  evaluation: Mapping[str, Any]) -> Dict[str, Any]:
  """Every setting that affects a model's numbers (its unit's key).

  Args:
    run: function, size, method, seed.
    protocol: the protocol fields (`PROTOCOL_FIELDS`).
    evaluation: `{'set': 'test' | 'validation', 'size': points}`.

  Returns:
    A JSON-safe dict. Regular models leave out the Sobolev-only fields, so
    protocols that differ only there share their regular models; Sobolev
    models leave out the fields of other protocols (`grad_weight` and
    `normalize_grad_weight` belong to 'ours', `dml_lambda` to
    'differential_ml'). `protocol` is left out when it is 'ours' (the keys
    of units made before it existed). Functions other than the paper's
    seven and the `<family>_<D>d` ones (user-registered) add their
    dimension and domain. `activation` and `optimizer` are left out at
    their defaults ('relu', 'adam'); L-BFGS models leave out the fields it
    does not use (`learning_rate`, `final_lr_fraction`, `batch_size`).
  """
  settings = {"function": run.function, "size": run.size,
              "method": run.method, "seed": run.seed,
              "version": UNIT_VERSION, "evaluation": dict(evaluation)}
  if not functions.is_builtin(run.function):
    bench = functions.get(run.function)
    settings["function_domain"] = {"low": list(bench.low),
                                   "high": list(bench.high)}
  name = protocol.get("protocol", protocols.DEFAULT)
  lbfgs = protocol.get("optimizer", trainer.DEFAULT_OPTIMIZER) == "lbfgs"
  for field in PROTOCOL_FIELDS:
    if run.method == "regular" and field in SOBOLEV_ONLY:
      continue
    if field in _USED_BY and _USED_BY[field] != name:
      continue
    if lbfgs and field in _ADAM_ONLY:
      continue
    value = protocol.get(field, _NEW_FIELD_DEFAULTS.get(field))
    if field in _OMITTED_AT_DEFAULT and value == _NEW_FIELD_DEFAULTS[field]:
      continue
    settings[field] = list(value) if isinstance(value, tuple) else value
  return configs.to_dict(settings)


def _protocol(config: Any, **overrides) -> ml_collections.ConfigDict:
  fields = {f: config[f] for f in PROTOCOL_FIELDS}
  fields.update(overrides)
  fields["steps_per_call"] = config.steps_per_call
  fields["stall_patience"] = config.get("stall_patience",
                                        trainer.DEFAULT_STALL_PATIENCE)
  return ml_collections.ConfigDict(fields)


def tb_name(run: trainer.Run, key: Optional[str] = None) -> str:
  """A unit's TensorBoard run name, e.g. 'booth/20pts_sobolev_seed0'."""
  name = f"{run.function}/{run.size}pts_{run.method}_seed{run.seed}"
  return f"{name}_{key[:8]}" if key else name


# ------------------------------------------------------------------- units


@dataclasses.dataclass(frozen=True)
class UnitRequest:
  """A model wanted: its run, protocol, evaluation set, settings and key."""
  run: trainer.Run
  protocol: Any
  evaluation: Dict[str, Any]
  settings: Dict[str, Any]
  key: str


def unit_requests(run_list: Sequence[trainer.Run], protocol: Any,
                  evaluation: Mapping[str, Any]) -> List[UnitRequest]:
  """The units of `run_list` under one protocol and evaluation set.

  Args:
    run_list: the runs.
    protocol: the protocol fields (`PROTOCOL_FIELDS`, `steps_per_call`).
    evaluation: `{'set': 'test' | 'validation', 'size': points}`.

  Returns:
    One `UnitRequest` per run (settings by `unit_settings`, key by
    `runs.RunStore.key`), for `train_units`.
  """
  out = []
  for run in run_list:
    settings = unit_settings(run, protocol, evaluation)
    out.append(UnitRequest(run, protocol, dict(evaluation), settings,
                           runs.RunStore.key(settings)))
  return out


def _eval_set(request: UnitRequest) -> data.DataSet:
  ev = request.evaluation
  if ev["set"] == "test":
    return data.test_set(request.run.function, ev["size"])
  return data.validation_set(request.run.function, request.run.seed,
                             ev["size"])


def group_key(request: UnitRequest) -> str:
  """The batched group a unit trains in: its settings but function and
  seed, and its input dimension (a hash)."""
  shared = {k: v for k, v in request.settings.items()
            if k not in ("function", "seed", "function_domain")}
  shared["dim"] = functions.get(request.run.function).dim
  return configs.settings_hash(shared)


def work(requests: Sequence[UnitRequest]) -> float:
  """Estimated cost of training a group, in regular model-steps at batch 100.

  Per-step overhead dominates at these batch sizes (21 regular models take
  about as long at 20 as at 100 points per step), plus a per-example part.
  """
  first = requests[0]
  batch = min(first.run.size, first.protocol.batch_size)
  cost = _SOBOLEV_COST if first.run.method == "sobolev" else 1.0
  if first.protocol.get("optimizer") == "lbfgs":
    # About 4 loss evaluations per iteration, and TFP's loop overhead.
    cost *= _LBFGS_COST
  return (len(requests) * first.protocol.steps * cost *
          (_STEP_OVERHEAD + batch) / (_STEP_OVERHEAD + 100))


def train_units(requests: Sequence[UnitRequest], store: runs.RunStore,
                workdir: str, *, tb_with_key: bool = False,
                show_progress: Optional[bool] = None
               ) -> Dict[str, Dict[str, Any]]:
  """Trains the units not finished yet; returns every unit's result.

  Units are grouped by everything but function and seed and each group is
  trained as one batched computation. A unit is saved (weights, then
  result) as soon as its group is evaluated, so a killed run loses at most
  the group in training.

  Args:
    requests: the units wanted (duplicates allowed).
    store: the workdir's run store.
    workdir: for TensorBoard events (`<workdir>/tb`).
    tb_with_key: add the unit key to TensorBoard run names (tuning, where
      one workdir holds several protocols).
    show_progress: draw a progress bar (None: when stderr is a terminal).

  Returns:
    `{key: result dict}` for every requested unit.

  Raises:
    errors.DivergenceError: if a model diverges (nothing of its group is
      saved).
  """
  unique = collections.OrderedDict((r.key, r) for r in requests)
  done = {}
  groups = collections.OrderedDict()
  for key, request in unique.items():
    result = store.result(request.settings)
    if result is not None:
      done[key] = result
      continue
    groups.setdefault(group_key(request), []).append(request)
  if not groups:
    return done
  groups = list(groups.values())
  total = sum(work(g) for g in groups)
  interactive = sys.stderr.isatty() if show_progress is None else show_progress
  begin = time.time()
  finished = 0.0
  with progress.Progress(total=total, desc="benchmarks",
                         unit="model-steps",
                         disable=not interactive) as bar:
    for number, group in enumerate(groups, 1):
      run0 = group[0].run
      note = f"group {number}/{len(groups)}: {run0.size} pts {run0.method}"
      bar.set_description(note)
      gwork = work(group)
      steps = group[0].protocol.steps
      writers = []
      for request in group:
        unit_dir = store.unit_dir(request.settings)
        tb_dir = os.path.join(workdir, "tb", tb_name(
            request.run, request.key if tb_with_key else None))
        # A unit without a result was interrupted: start its curves again.
        shutil.rmtree(tb_dir, ignore_errors=True)
        curves = os.path.join(unit_dir, "curves.csv")
        if os.path.exists(curves):
          os.remove(curves)
        writers.append(metrics.MetricWriter(curves, tb_dir))
      state = {"steps": 0}

      def on_chunk(step, terms, writers=writers, gwork=gwork, steps=steps):
        for i, writer in enumerate(writers):
          writer.write({"step": step,
                        **{f"train/{k}": float(v[i]) for k, v in
                           terms.items()}})
        bar.update(gwork * (step - state["steps"]) / steps)
        state["steps"] = step

      try:
        trained = trainer.train_group([r.run for r in group],
                                      group[0].protocol, on_chunk=on_chunk)
        scores = trainer.evaluate(trained, [_eval_set(r) for r in group])
        fits = trainer.evaluate(trained, [data.train_set(
            r.run.function, r.run.size, r.run.seed) for r in group])
        for i, (request, (mse, gmse)) in enumerate(zip(group, scores)):
          result = _save_unit(store, request, trained, i, mse, gmse,
                              fits[i])
          writers[i].write({"step": steps, f"{request.evaluation['set']}/mse":
                            mse, f"{request.evaluation['set']}/grad_mse": gmse,
                            f"{request.evaluation['set']}/log10_mse":
                            math.log10(max(mse, 1e-30))})
          done[request.key] = result
      finally:
        for writer in writers:
          writer.close()
      finished += gwork
      elapsed = time.time() - begin
      eta = elapsed / finished * (total - finished)
      if not interactive:
        print(f"[{number}/{len(groups)}] {_describe_group(group[0])}: "
              f"{len(group)} models in {trained.seconds:.0f} s; elapsed "
              f"{elapsed / 60:.1f} min, ETA {eta / 60:.1f} min", file=sys.stderr,
              flush=True)
  for key, request in unique.items():
    if key not in done:
      done[key] = store.result(request.settings)
  return done


def _describe_group(request: UnitRequest) -> str:
  """'20 points sobolev, 4000 steps' (+ D and the protocol if not 2/ours)."""
  run, protocol = request.run, request.protocol
  text = f"{run.size} points {run.method}, {protocol.steps} steps"
  dim = functions.get(run.function).dim
  if dim != 2:
    text += f", D={dim}"
  name = protocol.get("protocol", protocols.DEFAULT)
  if name != protocols.DEFAULT:
    text += f", {name}"
  return text


def _save_unit(store: runs.RunStore, request: UnitRequest,
               trained: trainer.TrainedGroup, index: int, mse: float,
               gmse: float, fit: Tuple[float, float]) -> Dict[str, Any]:
  """Saves a unit's weights, then its result (which marks it finished).

  `fit` is the model's `(mse, grad_mse)` on its own training set, in the
  function's units (`train_set_mse`, `train_set_grad_mse`); `train_loss`,
  `train_value_mse`, `train_grad_mse` are its final training loss terms in
  model units (`trainer.TrainedGroup.final_terms`).
  """
  metrics.finite_or_raise({"mse": mse, "grad_mse": gmse},
                          where=trainer.describe(request.run))
  unit_dir = store.unit_dir(request.settings)
  mlp = trained.mlp(index)
  tf.train.Checkpoint(model=mlp).write(os.path.join(unit_dir, "model",
                                                    "weights"))
  sc = trained.scalers[index]
  terms = trained.final_terms
  result = {
      "mse": mse, "grad_mse": gmse,
      "train_seconds": trained.seconds / len(trained.runs),
      "grad_weight": float(trained.grad_weights[index]),
      "value_weight": trained.value_weight,
      "input_weights": trained.input_weights[index].tolist(),
      "train_loss": float(terms["loss"][index]),
      "train_value_mse": float(terms["value_mse"][index]),
      "train_grad_mse": float(terms["grad_mse"][index]),
      "train_set_mse": float(fit[0]), "train_set_grad_mse": float(fit[1]),
      "scaler": {"center": sc.center.tolist(),
                 "half_width": sc.half_width.tolist(),
                 "mean": sc.mean, "std": sc.std},
  }
  status = trained.optimizer_status
  if status:
    result["lbfgs"] = {"converged": bool(status["converged"][index]),
                       "failed": bool(status["failed"][index]),
                       "group_iterations": status["iterations"],
                       "group_evaluations": status["evaluations"]}
  metrics.finite_result_or_raise(result, trainer.describe(request.run))
  store.save(request.settings, result)
  return result


def load_model(unit_dir: str) -> Tuple[snt.nets.MLP, scaling.Scaler]:
  """A finished unit's trained MLP and its scaler.

  Args:
    unit_dir: `<workdir>/runs/<key>`.

  Returns:
    `(mlp, scaler)`: `mlp` maps `scaler.inputs(x)` `[N, D]` to scaled
    values `[N, 1]`; `scaler.outputs` maps back to the function's units.

  Raises:
    ValueError: if the directory holds no finished unit.
  """
  settings = files.read_json(os.path.join(unit_dir, runs.SETTINGS_FILE))
  result = files.read_json(os.path.join(unit_dir, runs.RESULT_FILE))
  if settings is None or result is None:
    raise ValueError(f"{unit_dir} holds no finished unit.")
  mlp = snt.nets.MLP(list(settings["hidden_sizes"]) + [1],
                     activation=stacked_mlp.activation_fn(settings.get(
                         "activation", stacked_mlp.DEFAULT_ACTIVATION)),
                     name="mlp")
  mlp(tf.zeros([1, len(result["scaler"]["center"])]))
  checkpoints.read(
      tf.train.Checkpoint(model=mlp), os.path.join(unit_dir, "model",
                                                   "weights"),
      remedy=f"delete {unit_dir} to train that unit again").assert_consumed()
  sc = result["scaler"]
  scaler = scaling.Scaler(center=np.asarray(sc["center"]),
                          half_width=np.asarray(sc["half_width"]),
                          mean=float(sc["mean"]), std=float(sc["std"]))
  return mlp, scaler


def predict(unit_dir: str, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Values `[N]` and gradients `[N, D]` of a saved model at `x [N, D]`."""
  mlp, scaler = load_model(unit_dir)
  v, dv = derivatives.value_and_gradient(
      mlp, tf.constant(scaler.inputs(x), tf.float32))
  return scaler.outputs(v.numpy()[:, 0].astype(np.float64),
                        dv.numpy().astype(np.float64))


# ------------------------------------------------------------------- sweep


def sweep_runs(config: Any) -> List[trainer.Run]:
  """The runs of a sweep: sizes, then methods, then functions and seeds."""
  return [trainer.Run(f, size, method, seed) for size in config.sizes
          for method in report.METHODS for f in config.functions
          for seed in range(config.seeds)]


def figure3_size(config: Any) -> int:
  """Figure 3 uses 20 points if swept, else the smallest size."""
  return 20 if 20 in config.sizes else min(config.sizes)


def _grid(name: str, n: int = 41) -> np.ndarray:
  bench = functions.get(name)
  if bench.dim != 2:
    raise ValueError(f"Figure 3 needs a 2-D function; {name!r} has D = "
                     f"{bench.dim}.")
  gx = np.linspace(bench.low[0], bench.high[0], n)
  gy = np.linspace(bench.low[1], bench.high[1], n)
  return np.stack(np.meshgrid(gx, gy, indexing="xy"), axis=-1)


def _figure3(config: Any, workdir: str, store: runs.RunStore,
             protocol: Any, evaluation: Mapping[str, Any]) -> Optional[str]:
  name, size = config.figure3_function, figure3_size(config)
  if name not in config.functions:
    return None
  pts = _grid(name)
  v, g = functions.value_and_gradient(name, pts.reshape(-1, 2))
  grid = {"x": pts, "true_v": v.reshape(pts.shape[:2]),
          "true_g": g.reshape(pts.shape),
          "train_x": data.train_set(name, size, 0).x}
  for method in report.METHODS:
    settings = unit_settings(trainer.Run(name, size, method, 0), protocol,
                             evaluation)
    mv, mg = predict(store.unit_dir(settings, create=False),
                     pts.reshape(-1, 2))
    grid[f"{method}_v"] = mv.reshape(pts.shape[:2])
    grid[f"{method}_g"] = mg.reshape(pts.shape)
  out = os.path.join(workdir, "figure3.png")
  plots.figure3(grid, name, size, out)
  return out


def plan(config: Any, workdir: str) -> str:
  """Checks a sweep as `train_and_evaluate` does; says what it would do.

  The dry run of `python -m benchmarks.run` (nothing is written; the
  functions are analytic, so there are no data to check).

  Returns:
    One line: the models the sweep trains and where.

  Raises:
    errors.ConfigError: for invalid settings.
  """
  config = resolve(config)
  check(config)
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
  config = resolve(config)
  check(config)
  with workdirs.opened(workdir, recorded(config), ignore=SWEEP_EXTENT,
                       if_different=if_different) as workdir, \
      provenance.recorded(workdir, config, statuses={
          errors.DivergenceError: "diverged",
          KeyboardInterrupt: "interrupted"}):
    return _sweep(config, workdir, show_progress)


def _sweep(config: Any, workdir: str,
           show_progress: Optional[bool]) -> Outcome:
  store = runs.RunStore(workdir)
  protocol = _protocol(config)
  evaluation = {"set": "test", "size": config.test_size}
  requests = unit_requests(sweep_runs(config), protocol, evaluation)
  done = train_units(requests, store, workdir, show_progress=show_progress)
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
  figure3 = _figure3(config, workdir, store, protocol, evaluation)
  if figure3 is None:
    print(f"figure3.png not drawn: it needs {config.figure3_function} in "
          "`functions`.", file=sys.stderr)
  else:
    outputs.append(figure3)
  return Outcome(workdir=workdir, rows=rows, outputs=outputs)


# ------------------------------------------------------------------ tuning


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
  protocol = _protocol(config, **overrides)
  check_protocol(protocol)
  return protocol


def plan_tune(config: Any, workdir: str) -> str:
  """Checks a tuning config as `tune` does; says what it would do.

  The dry run of `python -m benchmarks.tune` (nothing is written).

  Returns:
    One line: the candidates and the models per candidate.

  Raises:
    errors.ConfigError: for invalid settings or candidates.
  """
  config = resolve(config)
  check(config, tune=True)
  for name in config.candidates:
    candidate_protocol(config, name)
  per_candidate = (len(config.functions) * len(config.sizes) *
                   len(report.METHODS) * config.seeds)
  return (f"would score {len(config.candidates)} candidate protocols "
          f"({', '.join(config.candidates)}) on validation data, "
          f"{per_candidate} models each (shared models trained once), and "
          f"write tuning.csv and tuning.md to {workdir}.")


def tune(config: Any, workdir: str, *, if_different: str = "refuse",
         show_progress: Optional[bool] = None) -> Outcome:
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
    if_different: see `train_and_evaluate`.
    show_progress: see `train_and_evaluate`.

  Returns:
    The outcome (rows are `TuneRow`s).

  Raises:
    errors.ConfigError: for invalid settings or candidates (before work).
    errors.WorkdirMismatchError: see `if_different`.
    errors.DivergenceError: if a model diverges.
  """
  config = resolve(config)
  check(config, tune=True)
  by_name = {name: candidate_protocol(config, name)
             for name in config.candidates}
  with workdirs.opened(workdir, recorded(config), ignore=TUNE_EXTENT,
                       if_different=if_different) as workdir, \
      provenance.recorded(workdir, config,
                          statuses={errors.DivergenceError: "diverged"}):
    return _tune(config, workdir, by_name, show_progress)


def _tune(config: Any, workdir: str, by_name: Mapping[str, Any],
          show_progress: Optional[bool]) -> Outcome:
  store = runs.RunStore(workdir)
  seeds = [TUNING_SEED + i for i in range(config.seeds)]
  run_list = [trainer.Run(f, size, method, seed) for size in config.sizes
              for method in report.METHODS for f in config.functions
              for seed in seeds]
  evaluation = {"set": "validation", "size": config.validation_size}

  def requests_of(name):
    return unit_requests(run_list, by_name[name], evaluation)

  names_by_protocol = {}
  for name in config.candidates:
    trial = {f: by_name[name][f] for f in tune_config.TUNABLE}
    names_by_protocol[configs.settings_hash(trial)] = name

  def evaluate(candidate):
    name = names_by_protocol[configs.settings_hash(candidate)]
    print(f"candidate {name}: {_describe_overrides(name)}", file=sys.stderr)
    done = train_units(requests_of(name), store, workdir, tb_with_key=True,
                       show_progress=show_progress)
    return _score(requests_of(name), done, config.score_method)

  grid = [{f: by_name[name][f] for f in tune_config.TUNABLE}
          for name in config.candidates]
  fixed = {"functions": list(config.functions), "sizes": list(config.sizes),
           "seeds": seeds, "score_method": config.score_method,
           "validation_size": config.validation_size,
           "hidden_sizes": list(config.hidden_sizes),
           "jit_compile": config.jit_compile, "version": UNIT_VERSION}
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
    done = train_units(requests, store, workdir, tb_with_key=True,
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
  return Outcome(workdir=workdir, rows=rows, outputs=outputs)


def _describe_overrides(name: str) -> str:
  overrides = tune_config.CANDIDATES[name]
  return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "base"


def _score(requests: Sequence[UnitRequest], done: Mapping[str, Mapping],
           method: str) -> float:
  vals = [math.log10(max(done[r.key]["mse"], 1e-30)) for r in requests
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
