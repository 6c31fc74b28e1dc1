"""Benchmark models as units of a `sobolev.experiment.runs.RunStore`.

Every trained model is a *unit*, kept in `<workdir>/runs/<hash of its
settings>/` (`settings.unit_settings`): `settings.json`, `result.json` (its
numbers, written last: evaluation errors, the final training loss terms,
the scaling and loss weights), `model/` (its final weights,
`benchmarks.models`) and `curves.csv` (training loss terms). A finished
unit is reused only for identical settings. TensorBoard curves go to
`<workdir>/tb/<function>/<size>pts_<method>_seed<seed>` (loss terms during
training, evaluation metrics at the end).

`train_units` trains the units not finished yet, grouped by everything but
function and seed; each group is one batched computation
(`benchmarks.trainer`), and a model's numbers do not depend on which other
models share its group (its seeds are its own; tested).
"""

import collections
import dataclasses
import os
import shutil
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from benchmarks import data
from benchmarks import functions
from benchmarks import models
from benchmarks import protocols
from benchmarks import report
from benchmarks import settings as settings_lib
from benchmarks import trainer
from sobolev.experiment import configs
from sobolev.experiment import metrics
from sobolev.experiment import progress
from sobolev.experiment import runs

# Cost model of the progress bar's ETA: per-step overhead in units of one
# example's cost, and the cost of a Sobolev step relative to a regular one.
_STEP_OVERHEAD = 200
_SOBOLEV_COST = 1.6
_LBFGS_COST = 8.0


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
    protocol: the protocol fields (`settings.protocol`).
    evaluation: `{'set': 'test' | 'validation', 'size': points}`.

  Returns:
    One `UnitRequest` per run (settings by `settings.unit_settings`, key by
    `runs.RunStore.key`), for `train_units`.
  """
  out = []
  for run in run_list:
    settings = settings_lib.unit_settings(run, protocol, evaluation)
    out.append(UnitRequest(run, protocol, dict(evaluation), settings,
                           runs.RunStore.key(settings)))
  return out


def tb_name(run: trainer.Run, key: Optional[str] = None) -> str:
  """A unit's TensorBoard run name, e.g. 'booth/20pts_sobolev_seed0'."""
  name = f"{run.function}/{run.size}pts_{run.method}_seed{run.seed}"
  return f"{name}_{key[:8]}" if key else name


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
    show_progress: draw a progress bar (None: when stderr is a terminal;
      otherwise one line per trained group).

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
    else:
      groups.setdefault(group_key(request), []).append(request)
  if groups:
    _train_groups(list(groups.values()), store, workdir, tb_with_key,
                  show_progress, done)
  for key, request in unique.items():
    if key not in done:
      done[key] = store.result(request.settings)
  return done


def _train_groups(groups: Sequence[Sequence[UnitRequest]],
                  store: runs.RunStore, workdir: str, tb_with_key: bool,
                  show_progress: Optional[bool],
                  done: Dict[str, Dict[str, Any]]) -> None:
  """Trains groups one by one into `done`, with a progress bar (or, when
  not interactive, one line per group)."""
  total = sum(work(g) for g in groups)
  interactive = sys.stderr.isatty() if show_progress is None else show_progress
  begin = time.time()
  finished = 0.0
  with progress.Progress(total=total, desc="benchmarks",
                         unit="model-steps",
                         disable=not interactive) as bar:
    for number, group in enumerate(groups, 1):
      run0 = group[0].run
      bar.set_description(
          f"group {number}/{len(groups)}: {run0.size} pts {run0.method}")
      gwork, steps = work(group), group[0].protocol.steps
      results, seconds = _train_group(
          group, store, workdir, tb_with_key,
          on_steps=lambda n, gwork=gwork, steps=steps: bar.update(
              gwork * n / steps))
      done.update(results)
      finished += gwork
      elapsed = time.time() - begin
      eta = elapsed / finished * (total - finished)
      if not interactive:
        print(f"[{number}/{len(groups)}] {_describe_group(group[0])}: "
              f"{len(group)} models in {seconds:.0f} s; elapsed "
              f"{elapsed / 60:.1f} min, ETA {eta / 60:.1f} min",
              file=sys.stderr, flush=True)


def _writer(store: runs.RunStore, workdir: str, request: UnitRequest,
            tb_with_key: bool) -> metrics.MetricWriter:
  """A unit's curves (`curves.csv`, TensorBoard), started afresh (a unit
  without a result was interrupted)."""
  unit_dir = store.unit_dir(request.settings)
  tb_dir = os.path.join(workdir, "tb", tb_name(
      request.run, request.key if tb_with_key else None))
  shutil.rmtree(tb_dir, ignore_errors=True)
  curves = os.path.join(unit_dir, "curves.csv")
  if os.path.exists(curves):
    os.remove(curves)
  return metrics.MetricWriter(curves, tb_dir)


def _train_group(group: Sequence[UnitRequest], store: runs.RunStore,
                 workdir: str, tb_with_key: bool,
                 on_steps: Callable[[int], None]
                ) -> Tuple[Dict[str, Dict[str, Any]], float]:
  """Trains, evaluates and saves one group.

  Returns:
    `({key: result}, seconds of training)`.
  """
  writers = [_writer(store, workdir, r, tb_with_key) for r in group]
  state = {"steps": 0}

  def on_chunk(step, terms):
    for i, writer in enumerate(writers):
      writer.write({"step": step,
                    **{f"train/{k}": float(v[i]) for k, v in terms.items()}})
    on_steps(step - state["steps"])
    state["steps"] = step

  try:
    trained = trainer.train_group([r.run for r in group], group[0].protocol,
                                  on_chunk=on_chunk)
    scores = trainer.evaluate(trained, [_eval_set(r) for r in group])
    fits = trainer.evaluate(trained, [data.train_set(
        r.run.function, r.run.size, r.run.seed) for r in group])
    results = {}
    for i, (request, (mse, gmse)) in enumerate(zip(group, scores)):
      results[request.key] = _save_unit(store, request, trained, i, mse,
                                        gmse, fits[i])
      name = request.evaluation["set"]
      writers[i].write({"step": request.protocol.steps,
                        f"{name}/mse": mse, f"{name}/grad_mse": gmse,
                        f"{name}/log10_mse": report.log10(mse)})
    return results, trained.seconds
  finally:
    for writer in writers:
      writer.close()


def _eval_set(request: UnitRequest) -> data.DataSet:
  ev = request.evaluation
  if ev["set"] == "test":
    return data.test_set(request.run.function, ev["size"])
  return data.validation_set(request.run.function, request.run.seed,
                             ev["size"])


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
  models.save(store.unit_dir(request.settings), trained.mlp(index))
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
      "scaler": models.scaler_record(trained.scalers[index]),
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
