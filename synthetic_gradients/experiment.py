"""Table 1 experiment: train every method for every seed, write the results.

`train_and_evaluate(config, workdir)` runs `config.methods x seeds`, skipping
runs already in `workdir/results.csv` (resumable at run granularity; with
`checkpoint_every > 0` an interrupted run also resumes from its last
checkpoint in `workdir/runs/<method>_seed<k>/`). After every run it rewrites
`results.csv`, `results.md` and `curves.png`.
"""

import os
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

import sobolev
from synthetic_gradients import config as config_lib
from synthetic_gradients import data
from synthetic_gradients import decoupled
from synthetic_gradients import distribute
from synthetic_gradients import networks
from synthetic_gradients import reporting


def build_model(config: config_lib.Config, method: str,
                num_classes: int) -> decoupled.SplitModel:
  """The split model of `config` for `method` (variables not yet created)."""
  if config.arch == "convnet":
    parts = networks.conv_net_parts(config.widths, config.num_parts,
                                    num_classes)
  else:
    parts = networks.resnet50_parts(config.num_parts, num_classes,
                                    width_divisor=config.resnet_width_divisor,
                                    blocks=config.resnet_blocks)
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


class Trainer:
  """Model, optimiser and compiled step of one method, reused across seeds.

  Tracing the decoupled step takes far longer than a digits epoch on a CPU,
  so one `Trainer` per method is built once and `reset(seed)` re-initialises
  it for every seed: the variables get the values of a freshly built model
  under `tf.random.set_seed(seed)` and the optimiser state is zeroed, which
  is exactly a fresh run.
  """

  def __init__(self, config: config_lib.Config, method: str):
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
    self.forward = tf.function(lambda x: self.model(x, is_training=False))

  def scope(self):
    return (self.strategy.scope() if self.strategy is not None
            else _null_scope())

  def _fresh_model(self) -> decoupled.SplitModel:
    model = build_model(self.config, self.method, self.ds_info.num_classes)
    model.build(tf.zeros((2,) + tuple(self.ds_info.image_shape)))
    return model

  def reset(self, seed: int) -> None:
    """Re-initialises model, optimiser state and epoch counter for `seed`."""
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


def train_one(config: config_lib.Config, method: str, seed: int,
              workdir: str, log=print,
              trainer: Optional[Trainer] = None) -> Dict:
  """Trains one method with one seed; returns its results row and history.

  Args:
    config: a validated config.
    method: one of `decoupled.METHODS`.
    seed: the run's seed (initialisation, shuffling, augmentation).
    workdir: experiment directory (checkpoints under `runs/`).
    log: progress printer.
    trainer: a `Trainer` of this config and method to reuse (built if None).

  Returns:
    `{'row': results row dict, 'history': per-epoch dict of lists}`.
  """
  if trainer is None:
    trainer = Trainer(config, method)
  if trainer.method != method or trainer.config is not config:
    raise ValueError("`trainer` was built for another method or config.")
  trainer.reset(seed)
  model, optimizer, lr = trainer.model, trainer.optimizer, trainer.lr
  step, forward, epoch_var = trainer.step, trainer.forward, trainer.epoch
  strategy = trainer.strategy
  train_ds = data.load(config.dataset, "train", config.batch_size,
                       data_dir=config.data_dir, image_size=config.image_size,
                       seed=seed, max_examples=config.max_train_examples,
                       download=config.download)
  test_ds = data.load(config.dataset, "test", config.batch_size,
                      data_dir=config.data_dir, image_size=config.image_size,
                      max_examples=config.max_test_examples,
                      download=config.download)
  dist_train = (strategy.experimental_distribute_dataset(train_ds)
                if strategy is not None else train_ds)

  run_dir = os.path.join(workdir, "runs", f"{method}_seed{seed}")
  history = {"epoch": [], "test_accuracy": [], "test_top5": [],
             "train_ce": [], "wall_s": []}
  manager = None
  if config.checkpoint_every > 0:
    os.makedirs(run_dir, exist_ok=True)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer,
                               epoch=epoch_var)
    manager = tf.train.CheckpointManager(ckpt, run_dir, max_to_keep=1)
    if manager.latest_checkpoint:
      ckpt.restore(manager.latest_checkpoint)
      hist_path = os.path.join(run_dir, "history.json")
      if os.path.exists(hist_path):
        import json  # pylint: disable=g-import-not-at-top
        with open(hist_path) as f:
          history = json.load(f)
      log(f"  resumed {method} seed {seed} at epoch {int(epoch_var.numpy())}")

  steps_per_epoch = int(train_ds.cardinality())
  if steps_per_epoch <= 0:
    steps_per_epoch = None  # Unknown: measured during the first epoch.
  start = time.time() - (history["wall_s"][-1] if history["wall_s"] else 0.0)
  for epoch in range(int(epoch_var.numpy()), config.epochs):
    ces = []
    for i, batch in enumerate(dist_train):
      if steps_per_epoch is not None:
        lr.assign(distribute.learning_rate_at(
            config.learning_rate, config.schedule,
            epoch * steps_per_epoch + i, config.epochs * steps_per_epoch))
      out = step(batch)
      ces.append(float(out["ce"]))
    if not ces:
      raise ValueError("The training set has fewer examples than one batch "
                       f"({config.batch_size}).")
    steps_per_epoch = steps_per_epoch or len(ces)
    acc = evaluate(forward, test_ds)
    epoch_var.assign(epoch + 1)
    history["epoch"].append(epoch + 1)
    history["test_accuracy"].append(acc["top1"])
    history["test_top5"].append(acc["top5"])
    history["train_ce"].append(float(np.mean(ces)))
    history["wall_s"].append(time.time() - start)
    log(f"  {method:8s} seed {seed} epoch {epoch + 1:3d}/{config.epochs} "
        f"train_ce {np.mean(ces):.4f} test_acc {acc['top1'] * 100:6.2f}% "
        f"({time.time() - start:.0f}s)")
    if manager is not None and ((epoch + 1) % config.checkpoint_every == 0 or
                                epoch + 1 == config.epochs):
      manager.save()
      reporting.write_json(os.path.join(run_dir, "history.json"), history)
  sg_cos = ""
  if method in decoupled.SG_METHODS:
    batch = next(iter(test_ds))
    cosines = decoupled.sg_alignment(model, batch["image"], batch["label"])
    history["sg_cosine_per_module"] = [float(c) for c in cosines]
    sg_cos = f"{np.mean(history['sg_cosine_per_module']):.4f}"
    log(f"  {method:8s} seed {seed} cosine(SG, true gradient) per module "
        f"(test batch): {np.round(history['sg_cosine_per_module'], 3)}")
  row = {"dataset": config.dataset, "method": method, "seed": seed,
         "test_accuracy": f"{history['test_accuracy'][-1]:.6f}",
         "test_top5": f"{history['test_top5'][-1]:.6f}",
         "train_ce": f"{history['train_ce'][-1]:.6f}",
         "epochs": config.epochs, "num_modules": config.num_modules,
         "wall_s": f"{history['wall_s'][-1]:.1f}", "sg_cosine": sg_cos}
  return {"row": row, "history": history}


class _null_scope:  # pylint: disable=invalid-name
  def __enter__(self):
    return self

  def __exit__(self, *args):
    return False


def train_and_evaluate(config: config_lib.Config, workdir: str,
                       log=print) -> List[Dict]:
  """Runs every (method, seed) not yet in `workdir/results.csv`.

  Args:
    config: the experiment configuration (validated here).
    workdir: output directory (created).
    log: progress printer.

  Returns:
    All result rows of this configuration's dataset and module count.

  Raises:
    ValueError: for an invalid config.
  """
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  csv_path = os.path.join(workdir, "results.csv")
  hist_path = os.path.join(workdir, "histories.json")
  rows = reporting.read_rows(csv_path)
  histories = {}
  if os.path.exists(hist_path):
    import json  # pylint: disable=g-import-not-at-top
    with open(hist_path) as f:
      histories = json.load(f)
  key = lambda m, s: f"{config.dataset}/{config.num_modules}/{m}/{s}"
  done = {key(r["method"], int(r["seed"])) for r in rows
          if int(r["num_modules"]) == config.num_modules}
  seeds = range(config.first_seed, config.first_seed + config.seeds)
  runs = [(m, s) for m in config.methods for s in seeds]
  trainer = None
  for i, (method, seed) in enumerate(runs):
    if key(method, seed) in done:
      log(f"[{i + 1}/{len(runs)}] {method} seed {seed}: done, skipped")
      continue
    log(f"[{i + 1}/{len(runs)}] {method} seed {seed} ({config.dataset}, "
        f"{config.num_modules} SG modules)")
    if trainer is None or trainer.method != method:
      trainer = Trainer(config, method)
    result = train_one(config, method, seed, workdir, log=log,
                       trainer=trainer)
    rows = [r for r in reporting.read_rows(csv_path)
            if not (r["dataset"] == config.dataset and
                    r["method"] == method and int(r["seed"]) == seed and
                    int(r["num_modules"]) == config.num_modules)]
    rows.append(result["row"])
    histories[key(method, seed)] = result["history"]["test_accuracy"]
    reporting.write_rows(csv_path, rows)
    reporting.write_json(hist_path, histories)
    write_summary(workdir, rows, histories, config)
  write_summary(workdir, rows, histories, config)
  return [r for r in rows if r["dataset"] == config.dataset and
          int(r["num_modules"]) == config.num_modules]


def write_summary(workdir: str, rows: List[Dict], histories: Dict,
                  config: config_lib.Config) -> None:
  """Writes `results.md` and `curves.png` from the rows and histories."""
  reporting.atomic_write(
      os.path.join(workdir, "results.md"),
      reporting.markdown_table(rows, title="Synthetic gradients (Table 1)"))
  prefix = f"{config.dataset}/{config.num_modules}/"
  per_method = {}
  for k, accs in histories.items():
    if k.startswith(prefix):
      per_method.setdefault(k[len(prefix):].split("/")[0], []).append(accs)
  if per_method:
    reporting.plot_curves(
        per_method, os.path.join(workdir, "curves.png"),
        title=f"{config.dataset}, {config.num_modules} SG modules")
