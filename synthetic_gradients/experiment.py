"""Table 1 experiment: train every method for every seed, write the results.

`train_and_evaluate(config, workdir)` checks the settings, opens the workdir
for them (`sobolev.experiment.workdirs`: a workdir of other settings is
refused unless asked to start fresh or keep a separate run set), records
provenance, and runs `methods x seeds`. Each run (one method, one seed) is a
unit of `sobolev.experiment.runs.RunStore` keyed by every setting that
affects its numbers; its directory `runs/<key>/` holds

* `settings.json`, `result.json` (written last: the run is finished),
* `checkpoints/` (every `checkpoint_every` epochs: model, SG modules,
  optimiser state, learning rate, epoch and history; resumed from the newest
  intact one),
* `model/` (the final weights, `tf.train.Checkpoint(model=...)`),
* `saved_model/` (the final network, `images -> logits`, loadable with plain
  `tf.saved_model.load`),
* `metrics.csv` (per-epoch losses and test accuracy, also TensorBoard
  scalars under `<workdir>/tb/<method>_seed<seed>/`).

After every run `results.csv` (typed rows, `Row`), `results.md` (Table 1
layout) and `curves.png` are rewritten from the finished units.

Resuming gives exactly the numbers of an uninterrupted run: the checkpoint
holds all state, and the data order of epoch `e` is a function of the seed
and `e` only. The training set is shuffled by `tf.data` with the run's seed
and reshuffled every epoch; the shuffle seeds of an iteration are drawn when
its iterator is created, so epoch `e`'s order is the one of the `(e + 1)`-th
iterator of the dataset, and a resumed run creates (and drops) `e` iterators
before its first epoch. This is the order the uninterrupted run uses, so the
numbers of runs made before checkpointing existed are unchanged too.
"""

import contextlib
import copy
import dataclasses
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

import sobolev
from sobolev.experiment import checkpoints
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import metrics
from sobolev.experiment import progress
from sobolev.experiment import provenance
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import saved_models
from sobolev.experiment import schedules
from sobolev.experiment import workdirs
from synthetic_gradients import data
from synthetic_gradients import decoupled
from synthetic_gradients import distribute
from synthetic_gradients import networks
from synthetic_gradients import reporting

ARCHS = ("convnet", "resnet50")
OPTIMIZERS = ("adam", "momentum")
SCHEDULES = ("cosine", "constant")
STRATEGIES = ("none", "replicator", "multi_worker")
EVAL_SPLITS = ("test", "validation")

# Fields that may change between invocations of one workdir: which runs a
# sweep holds, and infrastructure that does not change any run's numbers.
# A run's key hashes every other field, its method and its seed.
SWEEP_FIELDS = ("methods", "seeds", "first_seed")
# Not in a run's key: they change no number of a run that finishes
# (`stall_patience` only stops runs that have stopped moving).
INFRA_FIELDS = ("data_dir", "download", "checkpoint_every",
                "export_saved_model", "stall_patience")
# `stall_patience` of configs saved before the field existed.
DEFAULT_STALL_PATIENCE = 3

Log = Callable[[str], None]


@dataclasses.dataclass
class Row:
  """One line of `results.csv`: a finished run (accuracies in [0, 1])."""
  dataset: str
  method: str
  seed: int
  test_accuracy: float
  test_top5: float
  train_ce: float
  epochs: int
  num_modules: int
  wall_s: float
  sg_cosine: Optional[float] = None  # Mean over modules; SG methods only.
  key: str = ""  # The run's directory under `runs/`.
  # The split the `test_*` accuracies were measured on ('test' or
  # 'validation', the held-out training examples used for tuning).
  eval_split: str = "test"
  # 'backprop': the paper's protocol (one learning rate, tuned for
  # backprop); 'per_method': each method's own tuned rate (`tuning(config)`).
  tuning: str = "backprop"
  learning_rate: Optional[float] = None  # This method's peak rate.


def methods(config: Any) -> Tuple[str, ...]:
  """The methods of `config.methods` (a comma-separated string)."""
  value = config.methods
  if isinstance(value, (list, tuple)):
    items = [str(m) for v in value for m in str(v).split(",")]
  else:
    items = str(value).split(",")
  return tuple(m.strip() for m in items if m.strip())


def method_learning_rates(config: Any) -> Dict[str, float]:
  """The per-method learning rates of a per-method-tuned preset.

  `config.method_learning_rates` is `'direct=1e-3,vfbn=2e-3'`: a method not
  named uses `config.learning_rate`. Presets without the field (the paper's
  protocol: one rate, tuned for backprop) give `{}`.

  Raises:
    errors.ConfigError: for an item that is not `method=rate`, an unknown
      or repeated method, or a rate that is not a finite number > 0.
  """
  text = config.get("method_learning_rates", None)
  if text is None:
    return {}
  out = {}
  for item in str(text).split(","):
    if not item.strip():
      continue
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep:
      raise errors.ConfigError("`method_learning_rates` items must be "
                               f"method=rate, got {item!r}.")
    configs.check_choice("method_learning_rates", name, decoupled.METHODS)
    if name in out:
      raise errors.ConfigError(f"`method_learning_rates` names {name!r} "
                               "twice.")
    try:
      rate = float(value)
    except ValueError:
      raise errors.ConfigError(f"`method_learning_rates`: {name}'s rate must "
                               f"be a number, got {value!r}.") from None
    configs.check_number(f"method_learning_rates[{name}]", rate, 0,
                         low_inclusive=False)
    out[name] = rate
  return out


def tuning(config: Any) -> str:
  """'per_method' for a preset with `method_learning_rates`, else
  'backprop' (the paper's protocol)."""
  return "per_method" if "method_learning_rates" in config else "backprop"


def for_method(config: Any, method: str) -> Any:
  """The config `method` is trained with: `config` itself, or for a
  per-method-tuned preset a copy whose `learning_rate` is the method's rate
  and without `method_learning_rates`, so that a run's settings (and key)
  are those of a plain preset with that learning rate."""
  if "method_learning_rates" not in config:
    return config
  rate = method_learning_rates(config).get(method, config.learning_rate)
  out = copy.deepcopy(config)
  with out.unlocked():
    del out["method_learning_rates"]
    out.learning_rate = float(rate)
  return out


def seeds(config: Any) -> range:
  return range(config.first_seed, config.first_seed + config.seeds)


def num_parts(config: Any) -> int:
  return int(config.num_modules) + 1


def check(config: Any) -> None:
  """Checks every setting before any work starts.

  Raises:
    errors.ConfigError: naming the first bad field (a `ValueError`).
  """
  configs.check_finite(config)
  configs.check_choice("dataset", config.dataset, data.DATASETS)
  ms = methods(config)
  if not ms:
    raise errors.ConfigError("`methods` must name at least one method, got "
                             f"{config.methods!r}.")
  for m in ms:
    configs.check_choice("methods", m, decoupled.METHODS)
  if len(set(ms)) != len(ms):
    raise errors.ConfigError(f"`methods` has duplicates: {config.methods!r}.")
  configs.check_int("seeds", config.seeds, 1)
  configs.check_int("first_seed", config.first_seed, 0)
  configs.check_int("epochs", config.epochs, 1)
  configs.check_int("batch_size", config.batch_size, 1)
  _check_architecture(config)
  sg = [m for m in ms if m in decoupled.SG_METHODS]
  if sg and config.num_modules < 1:
    raise errors.ConfigError(f"methods {sg} need `num_modules` >= 1, got 0.")
  weights = tuple(config.sobolev_weights)
  if len(weights) != 2:
    raise errors.ConfigError("`sobolev_weights` must be two numbers >= 0, "
                             f"got {weights}.")
  for i, w in enumerate(weights):
    configs.check_number(f"sobolev_weights[{i}]", w, 0)
  configs.check_choice("value_target", config.value_target,
                       decoupled.VALUE_TARGETS)
  configs.check_number("critic_width_multiplier",
                       config.critic_width_multiplier, 0, low_inclusive=False)
  configs.check_number("direct_hidden_multiplier",
                       config.direct_hidden_multiplier, 0,
                       low_inclusive=False)
  configs.check_choice("optimizer", config.optimizer, OPTIMIZERS)
  configs.check_number("learning_rate", config.learning_rate, 0,
                       low_inclusive=False)
  method_learning_rates(config)
  configs.check_choice("schedule", config.schedule, SCHEDULES)
  configs.check_number("weight_decay", config.weight_decay, 0)
  configs.check_choice("strategy", config.strategy, STRATEGIES)
  for name in ("max_train_examples", "max_test_examples"):
    if getattr(config, name) is not None:
      configs.check_int(name, getattr(config, name), 1)
  if config.image_size is not None:
    configs.check_int("image_size", config.image_size, 8)
  configs.check_int("validation_size", config.validation_size, 0)
  configs.check_choice("eval_split", config.eval_split, EVAL_SPLITS)
  if config.eval_split == "validation" and config.validation_size == 0:
    raise errors.ConfigError("`eval_split` 'validation' needs "
                             "`validation_size` >= 1 (held-out training "
                             "examples), got 0.")
  configs.check_choice("augment", config.augment, (None, True, False))
  if config.augment and config.dataset == "digits":
    raise errors.ConfigError("`augment` is not available for digits.")
  configs.check_int("checkpoint_every", config.checkpoint_every, 0)
  configs.check_int("stall_patience", config.get(
      "stall_patience", DEFAULT_STALL_PATIENCE), 0)
  configs.check_choice("export_saved_model", config.export_saved_model,
                       (True, False))
  configs.check_choice("download", config.download, (True, False))


def _check_architecture(config: Any) -> None:
  """`check` of the network fields (`arch`, `num_modules`, widths, blocks)."""
  configs.check_choice("arch", config.arch, ARCHS)
  configs.check_int("num_modules", config.num_modules, 0)
  widths = tuple(config.widths)
  if config.arch == "convnet":
    if not widths:
      raise errors.ConfigError("`widths` must not be empty.")
    for i, w in enumerate(widths):
      configs.check_int(f"widths[{i}]", w, 1)
    configs.check_int("num_modules", config.num_modules, 0,
                      len(widths) - 1)
  else:
    configs.check_choice("num_modules", config.num_modules, (0, 1, 3))
    if len(tuple(config.resnet_blocks)) != 4:
      raise errors.ConfigError("`resnet_blocks` must be 4 ints >= 1, got "
                               f"{tuple(config.resnet_blocks)}.")
    for i, b in enumerate(config.resnet_blocks):
      configs.check_int(f"resnet_blocks[{i}]", b, 1)
    configs.check_int("resnet_width_divisor", config.resnet_width_divisor, 1)


def unit_settings(config: Any, method: str, seed: int) -> Dict[str, Any]:
  """Every setting that affects the numbers of one run (its key's input)."""
  config = for_method(config, method)
  settings = {k: v for k, v in configs.to_dict(config).items()
              if k not in SWEEP_FIELDS + INFRA_FIELDS}
  settings.update(method=method, seed=int(seed))
  return settings


def build_model(config: Any, method: str,
                num_classes: int) -> decoupled.SplitModel:
  """The split model of `config` for `method` (variables not yet created)."""
  if config.arch == "convnet":
    parts = networks.conv_net_parts(tuple(config.widths), num_parts(config),
                                    num_classes)
  else:
    parts = networks.resnet50_parts(num_parts(config), num_classes,
                                    width_divisor=config.resnet_width_divisor,
                                    blocks=tuple(config.resnet_blocks))
  return decoupled.SplitModel(
      parts, method, num_classes,
      direct_hidden_multiplier=config.direct_hidden_multiplier,
      critic_width_multiplier=config.critic_width_multiplier)


def evaluate(forward, dataset: tf.data.Dataset) -> Dict[str, float]:
  """Top-1 and top-5 accuracy of `forward(images) -> logits` on `dataset`."""
  correct1 = correct5 = total = 0
  for batch in dataset:
    logits = forward(batch["image"]).numpy()
    labels = batch["label"].numpy()
    top5 = np.argsort(-logits, axis=1)[:, :5]
    correct1 += int((top5[:, 0] == labels).sum())
    correct5 += int((top5 == labels[:, None]).any(axis=1).sum())
    total += len(labels)
  if total == 0:
    raise ValueError("The evaluation dataset is empty.")
  return {"top1": correct1 / total, "top5": correct5 / total}


def _empty_history() -> Dict[str, list]:
  return {"epoch": [], "test_accuracy": [], "test_top5": [], "train_ce": [],
          "wall_s": []}


class Trainer:
  """Model, optimiser and compiled step of one method, reused across seeds.

  Tracing the decoupled step takes far longer than a digits epoch on a CPU,
  so one `Trainer` per method is built once and `reset(seed)` re-initialises
  it for every seed: the variables get the values of a freshly built model
  under `tf.random.set_seed(seed)` and the optimiser state is zeroed, which
  is exactly a fresh run.

  `checkpoint` holds everything a resumed run needs: the model (main network
  and SG modules), the optimiser state, the learning rate, the epoch, the
  steps per epoch and the history (JSON in a string variable).
  """

  def __init__(self, config: Any, method: str):
    self.config = config
    self.method = method
    self.ds_info = data.info(config.dataset, config.image_size)
    self.strategy = distribute.make_strategy(config.strategy)
    with self.scope():
      self.model = self._fresh_model()
      self.lr = tf.Variable(config.learning_rate, trainable=False,
                            dtype=tf.float32, name="learning_rate")
      self.optimizer = distribute.make_optimizer(config.optimizer, self.lr)
      objective = decoupled.make_objective(
          self.model, sobolev_weights=tuple(config.sobolev_weights),
          value_target=config.value_target, weight_decay=config.weight_decay)
      self.step = sobolev.training.make_train_step(
          self.model, self.optimizer, objective, strategy=self.strategy,
          variables=decoupled.train_variables(self.model))
      self.epoch = tf.Variable(0, trainable=False, dtype=tf.int64,
                               name="epoch")
      self.steps_per_epoch = tf.Variable(0, trainable=False, dtype=tf.int64,
                                         name="steps_per_epoch")
    self.history = tf.Variable("", trainable=False, dtype=tf.string,
                               name="history")
    self.forward = tf.function(lambda x: self.model(x, is_training=False))
    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer, learning_rate=self.lr,
        epoch=self.epoch, steps_per_epoch=self.steps_per_epoch,
        history=self.history)

  def scope(self):
    return (self.strategy.scope() if self.strategy is not None
            else contextlib.nullcontext())

  def _fresh_model(self) -> decoupled.SplitModel:
    model = build_model(self.config, self.method, self.ds_info.num_classes)
    model.build(tf.zeros((2,) + tuple(self.ds_info.image_shape)))
    return model

  def reset(self, seed: int) -> None:
    """Re-initialises model, optimiser state and counters for `seed`."""
    tf.random.set_seed(seed)
    np.random.seed(seed)
    with self.scope():
      fresh = self._fresh_model()
    for var, value in zip(self.model.variables, fresh.variables):
      if var.shape != value.shape:
        raise RuntimeError(f"Variable mismatch {var.name} vs {value.name}.")
      var.assign(value.read_value())
    lr_ref = self.lr.ref()
    for var in self.optimizer.variables:
      if var.ref() != lr_ref:
        var.assign(tf.zeros_like(var))
    self.lr.assign(self.config.learning_rate)
    self.epoch.assign(0)
    self.steps_per_epoch.assign(0)
    self.history.assign("")

  def get_history(self) -> Dict[str, list]:
    text = self.history.numpy().decode("utf-8")
    return json.loads(text) if text else _empty_history()

  def set_history(self, history: Dict[str, list]) -> None:
    self.history.assign(json.dumps(history))


def _epoch_means(step_metrics: List[Dict[str, float]]) -> Dict[str, float]:
  names = step_metrics[0].keys()
  return {n: float(np.mean([m[n] for m in step_metrics])) for n in names}


def _rewrite_events(tb_dir: str, csv_path: str) -> None:
  """TensorBoard events of the epochs in `csv_path` only.

  An interrupted attempt may have logged epochs after the checkpoint it is
  resumed from; the events are rewritten from the (truncated) CSV so that
  every epoch appears once.
  """
  shutil.rmtree(tb_dir, ignore_errors=True)
  rows = files.read_csv(csv_path)
  if not rows:
    return
  with metrics.MetricWriter(None, tb_dir, step_key="epoch") as replay:
    for row in rows:
      replay.write({k: (int(v) if k == "epoch" else float(v))
                    for k, v in row.items() if v != ""})


def train_one(config: Any, method: str, seed: int, run_dir: str, *,
              log: Optional[Log] = None, trainer: Optional[Trainer] = None,
              tb_dir: Optional[str] = None, desc: str = "",
              epoch_lines: bool = True) -> Dict[str, Any]:
  """Trains one method with one seed, resuming from `run_dir/checkpoints`.

  Args:
    config: a validated config.
    method: one of `decoupled.METHODS`.
    seed: the run's seed (initialisation, shuffling, augmentation).
    run_dir: the run's directory (checkpoints, `metrics.csv`).
    log: printer of the resume line and (with `epoch_lines`) one line per
      epoch; None: only the progress bar.
    trainer: a `Trainer` of this config and method to reuse (built if None).
    tb_dir: TensorBoard log directory of this run (None: no events).
    desc: the progress bar's label.
    epoch_lines: log one line per epoch.

  Returns:
    `{'result': the run's numbers (result.json), 'history': per-epoch dict
    of lists}`.

  Raises:
    errors.DivergenceError: on a non-finite loss, metric, parameter or
      result, or parameters unchanged for `stall_patience` epochs in a row
      (nothing is recorded).
    errors.CheckpointError: if checkpoints exist but none can be read.
    ValueError: if `trainer` was built for another method or config.
  """
  if trainer is None:
    trainer = Trainer(config, method)
  if trainer.method != method or trainer.config is not config:
    raise ValueError("`trainer` was built for another method or config.")
  manager, start_epoch = _start(trainer, seed, run_dir, log)
  history = trainer.get_history()
  dist_train, test_ds, steps_per_epoch = _datasets(trainer, seed,
                                                   start_epoch)
  csv_path = os.path.join(run_dir, "metrics.csv")
  metrics.MetricWriter(csv_path, step_key="epoch").truncate_after(start_epoch)
  if tb_dir is not None:
    _rewrite_events(tb_dir, csv_path)
  where, hint = f"{method} seed {seed}", _hint(config)
  writer = metrics.MetricWriter(csv_path, tb_dir, step_key="epoch",
                                where=where, hint=hint)
  stalls = _stall_detector(config, where)
  bar = progress.Progress(total=config.epochs * (steps_per_epoch or 1),
                          desc=desc or where,
                          unit="step" if steps_per_epoch else "epoch",
                          initial=start_epoch * (steps_per_epoch or 1))
  start = time.time() - (history["wall_s"][-1] if history["wall_s"] else 0.0)
  try:
    for epoch in range(start_epoch, config.epochs):
      means = _train_epoch(trainer, dist_train, epoch, steps_per_epoch, bar,
                           where)
      steps_per_epoch = int(trainer.steps_per_epoch.numpy())
      # A step's loss precedes its update: weights that became NaN in the
      # epoch's last steps show in no loss (and give a finite accuracy).
      metrics.check_parameters(trainer.model.variables,
                               f"{where}, epoch {epoch + 1}", hint=hint)
      stalls.update(epoch + 1, parameters=metrics.fingerprint(
          decoupled.train_variables(trainer.model)))
      acc = evaluate(trainer.forward, test_ds)
      wall = time.time() - start
      row = _record_epoch(trainer, history, epoch, means, acc, wall)
      writer.write(row)
      if log is not None and epoch_lines:
        log(f"  {method:8s} seed {seed} epoch {epoch + 1:3d}/{config.epochs} "
            f"train_ce {means['ce']:.4f} test_acc {acc['top1'] * 100:6.2f}% "
            f"({wall:.0f}s)")
      if manager is not None and ((epoch + 1) % config.checkpoint_every == 0
                                  or epoch + 1 == config.epochs):
        manager.save(epoch + 1)
  finally:
    bar.close()
    writer.close()
  result = _final_result(trainer, history, test_ds)
  metrics.finite_result_or_raise(result, where, hint=hint)
  return {"result": result, "history": history}


def _hint(config: Any) -> str:
  return (f"lower learning_rate ({config.learning_rate:g}) or check the "
          "inputs")


def _start(trainer: Trainer, seed: int, run_dir: str, log: Optional[Log]
          ) -> Tuple[Optional[checkpoints.Manager], int]:
  """Resets `trainer` for `seed` and restores the newest checkpoint of
  `run_dir` (if checkpointing); returns `(manager, first epoch to run)`."""
  trainer.reset(seed)
  os.makedirs(run_dir, exist_ok=True)
  if trainer.config.checkpoint_every <= 0:
    return None, int(trainer.epoch.numpy())
  manager = checkpoints.Manager(trainer.checkpoint,
                                os.path.join(run_dir, "checkpoints"))
  restored = manager.restore_or_initialize()
  start_epoch = int(trainer.epoch.numpy())
  if restored and log is not None:
    log(f"  resumed {trainer.method} seed {seed} at epoch {start_epoch} "
        f"({os.path.basename(restored)})")
  return manager, start_epoch


def _stall_detector(config: Any, where: str) -> metrics.StallDetector:
  return metrics.StallDetector(
      config.get("stall_patience", DEFAULT_STALL_PATIENCE), where,
      hint=(f"the learning rate ({config.learning_rate:g}) is likely so "
            "large that the network's units died (zero gradients) or so "
            "small that the updates round away; change learning_rate"),
      unit="epoch")


def _datasets(trainer: Trainer, seed: int, start_epoch: int):
  """The data of a run that starts at `start_epoch`.

  Returns:
    `(training set, distributed if the trainer has a strategy, shuffled
    with `seed` and positioned at `start_epoch`'s order; evaluation split;
    steps per epoch, None while unknown)`.
  """
  config = trainer.config
  train_ds = data.load(config.dataset, "train", config.batch_size,
                       data_dir=config.data_dir, image_size=config.image_size,
                       seed=seed, max_examples=config.max_train_examples,
                       download=config.download,
                       validation_size=config.validation_size,
                       augment=config.augment)
  test_ds = data.load(config.dataset, config.eval_split, config.batch_size,
                      data_dir=config.data_dir, image_size=config.image_size,
                      max_examples=config.max_test_examples,
                      download=config.download,
                      validation_size=config.validation_size)
  dist_train = (trainer.strategy.experimental_distribute_dataset(train_ds)
                if trainer.strategy is not None else train_ds)
  # Epoch e's order is that of the dataset's (e + 1)-th iterator (module
  # docstring): replay the iterator creations of the epochs already done.
  for _ in range(start_epoch):
    iter(dist_train)
  steps_per_epoch = int(trainer.steps_per_epoch.numpy()) or None
  if steps_per_epoch is None and int(train_ds.cardinality()) > 0:
    steps_per_epoch = int(train_ds.cardinality())
  return dist_train, test_ds, steps_per_epoch


def _train_epoch(trainer: Trainer, dist_train, epoch: int,
                 steps_per_epoch: Optional[int], bar: progress.Progress,
                 where: str) -> Dict[str, float]:
  """One epoch of steps (learning rate scheduled per step once the epoch
  length is known); returns the means of the step metrics.

  Raises:
    errors.DivergenceError: on a non-finite step metric.
    errors.ConfigError: if the training set is smaller than one batch.
  """
  config = trainer.config
  step_metrics = []
  for i, batch in enumerate(dist_train):
    if steps_per_epoch is not None:
      trainer.lr.assign(schedules.get(
          config.schedule, config.learning_rate,
          epoch * steps_per_epoch + i, config.epochs * steps_per_epoch))
    out = metrics.finite_or_raise(
        trainer.step(batch), f"{where}, epoch {epoch + 1}, step {i + 1}",
        hint=_hint(config))
    step_metrics.append({k: float(v) for k, v in out.items()})
    if steps_per_epoch is not None:
      bar.update(1, ce=step_metrics[-1]["ce"])
  if not step_metrics:
    raise errors.ConfigError(
        "The training set has fewer examples than one batch "
        f"(`batch_size` {config.batch_size}).")
  if steps_per_epoch is None:
    bar.update(1)
  trainer.steps_per_epoch.assign(steps_per_epoch or len(step_metrics))
  return _epoch_means(step_metrics)


def _record_epoch(trainer: Trainer, history: Dict[str, list], epoch: int,
                  means: Dict[str, float], acc: Dict[str, float],
                  wall: float) -> Dict[str, Any]:
  """Appends the epoch to `history` (and the checkpointed state); returns
  its `metrics.csv` row."""
  history["epoch"].append(epoch + 1)
  history["test_accuracy"].append(acc["top1"])
  history["test_top5"].append(acc["top5"])
  history["train_ce"].append(means["ce"])
  history["wall_s"].append(wall)
  trainer.epoch.assign(epoch + 1)
  trainer.set_history(history)
  split = trainer.config.eval_split
  row = {"epoch": epoch + 1, f"{split}/accuracy": acc["top1"],
         f"{split}/top5": acc["top5"],
         "learning_rate": float(trainer.lr.numpy()), "wall_s": wall}
  row.update({f"train/{k}": v for k, v in means.items()})
  return row


def _final_result(trainer: Trainer, history: Dict[str, list],
                  test_ds: tf.data.Dataset) -> Dict[str, Any]:
  """The run's `result.json` numbers: the last epoch's, and for SG methods
  the modules' gradient alignment on the first evaluation batch."""
  result = {"test_accuracy": history["test_accuracy"][-1],
            "test_top5": history["test_top5"][-1],
            "train_ce": history["train_ce"][-1],
            "wall_s": history["wall_s"][-1], "sg_cosine": None,
            "sg_cosine_per_module": None}
  if trainer.method in decoupled.SG_METHODS:
    batch = next(iter(test_ds))
    cosines = [float(c) for c in decoupled.sg_alignment(
        trainer.model, batch["image"], batch["label"])]
    result["sg_cosine_per_module"] = cosines
    result["sg_cosine"] = float(np.mean(cosines))
  return result


def save_model(trainer: Trainer, run_dir: str, export: bool = True) -> None:
  """Saves the final weights (`model/`) and maybe a SavedModel.

  `run_dir/model/weights` restores into `build_model(...)` with
  `tf.train.Checkpoint(model=model).read(path)`; `run_dir/saved_model` maps
  images `[B, H, W, C]` (float32, preprocessed as in `data`) to logits
  `[B, num_classes]` with plain `tf.saved_model.load`.
  """
  model_dir = os.path.join(run_dir, "model")
  tmp = model_dir + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  tf.train.Checkpoint(model=trainer.model).write(os.path.join(tmp, "weights"))
  shutil.rmtree(model_dir, ignore_errors=True)
  os.replace(tmp, model_dir)
  if export:
    shape = (None,) + tuple(trainer.ds_info.image_shape)
    saved_models.export(
        trainer.model, [tf.TensorSpec(shape, tf.float32, name="images")],
        os.path.join(run_dir, "saved_model"),
        fn=lambda x: trainer.model(x, is_training=False),
        output_name="logits")


def plan(config: Any, workdir: str) -> str:
  """Checks the settings and the data; says what `train_and_evaluate` does.

  The dry run of `python -m synthetic_gradients.run`: `check` and
  `data.check_available` (the dataset must be readable without a download
  the config does not allow). Nothing is written.

  Returns:
    One line: the runs, the dataset and where.

  Raises:
    errors.ConfigError: for a bad setting.
    errors.UserError: if the dataset is not there (the message says how to
      prepare it).
  """
  check(config)
  source = data.check_available(config.dataset, data_dir=config.data_dir,
                                download=config.download)
  todo = methods(config)
  return (f"would train {len(todo) * len(seeds(config))} runs "
          f"({', '.join(todo)} x {config.seeds} seeds, {config.num_modules} "
          f"SG modules, {config.epochs} epochs) on {source}, into {workdir} "
          "(finished runs are reused).")


# Fields that may change between invocations of one workdir (`workdirs`).
WORKDIR_IGNORE = SWEEP_FIELDS + INFRA_FIELDS


def train_and_evaluate(config: Any, workdir: str, *,
                       if_different: str = "refuse",
                       log: Optional[Log] = print) -> List[Row]:
  """Runs every (method, seed) of `config` not yet finished in `workdir`.

  Args:
    config: the experiment configuration (`configs/*.py`); checked here.
    workdir: output directory (created).
    if_different: what to do if `workdir` holds results of other settings:
      'refuse', 'fresh' or 'separate' (`workdirs.open_workdir`).
    log: printer of progress lines (None: quiet).

  Returns:
    The result rows of this config's methods and seeds.

  Raises:
    errors.ConfigError: for a bad setting (before anything is written).
    errors.WorkdirMismatchError: if the workdir holds other settings.
    errors.DivergenceError: if a run diverges (its row is not written).
  """
  check(config)
  say = log or (lambda _: None)
  with workdirs.opened(workdir, config, ignore=WORKDIR_IGNORE,
                       if_different=if_different) as opened:
    if os.path.normpath(opened) != os.path.normpath(workdir):
      say(f"These settings are kept as a separate run set in {opened}")
    with provenance.recorded(opened, config, statuses={
        errors.UserError: lambda e: f"failed: {e}"}):
      return _run_all(config, opened, say)


def results_dir(config: Any, workdir: str) -> str:
  """Where `train_and_evaluate(config, workdir, ...)` put its results:
  `workdir`, or its `sets/<hash>` (`--separate`)."""
  return workdirs.locate(workdir, config, ignore=WORKDIR_IGNORE) or workdir


def _run_all(config: Any, workdir: str, say: Log) -> List[Row]:
  store = runs.RunStore(workdir)
  todo = [(m, s) for m in methods(config) for s in seeds(config)]
  trainer = None
  for i, (method, seed) in enumerate(todo):
    settings = unit_settings(config, method, seed)
    label = f"[{i + 1}/{len(todo)}] {method} seed {seed}"
    if store.result(settings) is not None:
      say(f"{label}: done, skipped")
      continue
    if trainer is None or trainer.method != method:
      trainer = Trainer(for_method(config, method), method)
    run_dir = store.unit_dir(settings)
    tb_dir = os.path.join(workdir, "tb", f"{method}_seed{seed}")
    out = train_one(trainer.config, method, seed, run_dir, trainer=trainer,
                    tb_dir=tb_dir, desc=label, log=say, epoch_lines=False)
    save_model(trainer, run_dir, export=config.export_saved_model)
    store.save(settings, {**out["result"], "history": out["history"]})
    # `test_accuracy` is measured on `eval_split` (the validation split when
    # tuning): say which.
    say(f"{label}: {config.eval_split} accuracy "
        f"{out['result']['test_accuracy'] * 100:.2f}%"
        f" ({out['result']['wall_s']:.0f} s, {config.epochs} epochs)")
    write_summary(workdir, config)
  return write_summary(workdir, config)


def finished_runs(workdir: str, config: Any) -> List[runs.Unit]:
  """Every finished run of `config`'s settings in `workdir` (any method and
  seed), in key order."""
  return [u for u in runs.RunStore(workdir).finished()
          if u.settings.get("method") in decoupled.METHODS and
          not configs.diff(u.settings, unit_settings(
              config, u.settings["method"], u.settings.get("seed", 0)))]


def _row(config: Any, unit: runs.Unit) -> Row:
  r = unit.result
  return Row(dataset=config.dataset, method=unit.settings["method"],
             seed=int(unit.settings["seed"]),
             test_accuracy=r["test_accuracy"], test_top5=r["test_top5"],
             train_ce=r["train_ce"], epochs=int(config.epochs),
             num_modules=int(config.num_modules), wall_s=r["wall_s"],
             sg_cosine=r.get("sg_cosine"), key=unit.key,
             eval_split=config.eval_split, tuning=tuning(config),
             learning_rate=float(unit.settings["learning_rate"]))


def write_summary(workdir: str, config: Any) -> List[Row]:
  """Rewrites `results.csv`, `results.md` and `curves.png` from the finished
  runs of `config`'s settings; returns the rows of `config`'s sweep."""
  units = finished_runs(workdir, config)
  order = {m: i for i, m in enumerate(decoupled.METHODS)}
  units.sort(key=lambda u: (order[u.settings["method"]], u.settings["seed"]))
  rows = [_row(config, u) for u in units]
  if not rows:
    return []
  results.write(os.path.join(workdir, "results.csv"), rows)
  files.atomic_write_text(
      os.path.join(workdir, "results.md"),
      reporting.markdown_table(
          rows, title="Synthetic gradients (Table 1)" + (
              "" if config.eval_split == "test" else
              f": accuracy on the validation split ({config.validation_size}"
              " held-out training examples), not the test set")))
  curves = {}
  for u in units:
    curves.setdefault(u.settings["method"], []).append(
        u.result["history"]["test_accuracy"])
  reporting.plot_curves(
      curves, os.path.join(workdir, "curves.png"),
      title=f"{config.dataset}, {config.num_modules} SG modules")
  wanted = {(m, s) for m in methods(config) for s in seeds(config)}
  return [r for r in rows if (r.method, r.seed) in wanted]
