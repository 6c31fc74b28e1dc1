"""The Figure 4 experiment: regular vs Sobolev policy distillation.

`train_and_evaluate(config, workdir)` (config: `configs/default.py`):
  1. checks every setting, loads the teacher (default
     `distillation/teachers/<game>/`) and opens the workdir: a workdir made
     with other settings (or another teacher) is refused, unless
     `if_different` is 'fresh' or 'separate' (`--fresh`, `--separate`);
  2. collects `num_states` teacher states into
     `<workdir>/rollouts/<key>/`, keyed by the teacher's weights digest and
     the collection settings (reused only for exactly those);
  3. for every training fraction splits the games into train / validation /
     test (`rollouts.split_by_episodes`; the same split for all seeds and
     both methods);
  4. optionally tunes each method on the validation games (same number of
     trials for both), once on one split (`tune_fraction`, default the
     smallest fraction) or, with `tune_per_fraction`, on every fraction's
     split; trials are kept in `tuning.csv`, keyed by all their settings
     (split, trial length, teacher, ...);
  5. trains regular and Sobolev students for every fraction and seed (same
     initial weights and minibatches for both methods at a given seed),
     evaluating on held-out test games every `eval_every` steps; each
     finished student is a unit `runs/<key>/` (key: a hash of every setting
     behind its numbers, teacher digest included) holding `settings.json`,
     `curve.csv`, its weights `model/` (a `tf.train.Checkpoint`), optionally
     `saved_model/`, and, written last, `result.json`;
  6. writes `results.csv`, `results.md` and `figure4.png`; TensorBoard
     curves go to `<workdir>/tb`, the invocation to `provenance.json`.

Re-running the same settings skips finished students; an interrupted
student restarts from step 0 and, being deterministic, gives the numbers of
an uninterrupted run. A loss or metric that becomes NaN/inf, or a student
whose parameters (or training loss) stay bit-identical for `stall_patience`
evaluations in a row, stops the run with `DivergenceError`; no result is
written for it.
"""

import dataclasses
import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from distillation import atari_env
from distillation import distill
from distillation import reporting
from distillation import rollouts
from distillation import settings
from distillation import teachers
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
from sobolev.experiment import tuning
from sobolev.experiment import workdirs

# Config fields that may change between invocations of one workdir: finished
# students are keyed by their own settings (seed included), and these do not
# change any number.
WORKDIR_IGNORE = ("seeds", "tf_threads", "export_students",
                  "stall_patience")
# `stall_patience` of configs saved before the field existed.
DEFAULT_STALL_PATIENCE = 3
# The student network (`distill.StudentConfig` defaults).
STUDENT_SIZES = {"channels": [16, 32], "hidden": 128}


@dataclasses.dataclass
class Row:
  """One row of `results.csv` (read back with `results.read(path, Row)`)."""
  game: str
  train_fraction: float
  method: str
  seed: int
  step: int
  test_action_error: float
  test_kl: float


tuning_grids = settings.tuning_grids
_fractions = settings.fractions


def _subsample(idx: np.ndarray, limit: int, seed: int) -> np.ndarray:
  if idx.size <= limit:
    return idx
  return np.sort(np.random.default_rng(seed).choice(idx, limit,
                                                    replace=False))


def rollout_settings(config: Any, teacher_digest: str) -> Dict[str, Any]:
  """Everything the recorded states depend on (the rollout unit's key)."""
  return {"kind": "rollouts", "game": config.game, "teacher": teacher_digest,
          "num_states": config.num_states, "seed": config.collect_seed,
          "num_envs": config.collect_envs}


def _rollouts_source(config: Any, root: str, teacher_digest: str
                    ) -> Tuple[str, Optional[Dict]]:
  """`(directory, meta)` of this teacher's rollouts (meta None: to collect).

  Raises:
    errors.ConfigError: if `rollouts_dir` holds rollouts of other settings.
  """
  settings = rollout_settings(config, teacher_digest)
  if config.rollouts_dir:
    directory = config.rollouts_dir
    meta = rollouts.read_meta(directory)
    if meta is not None:
      differences = configs.diff(meta.get("settings", {}), settings)
      if differences:
        raise errors.ConfigError(
            f"`rollouts_dir` {directory} holds rollouts of other settings "
            f"({'; '.join(differences)}); give another directory.")
    return directory, meta
  store = runs.RunStore(root, "rollouts")
  directory = store.unit_dir(settings, create=False)
  if store.result(settings) is None:
    return directory, None
  return directory, rollouts.read_meta(directory)


def get_rollouts(config: Any, root: str, teacher, teacher_meta: Dict,
                 teacher_digest: str) -> Tuple[Dict[str, np.ndarray], Dict,
                                               str]:
  """Loads the rollouts of this teacher and settings, collecting if needed.

  Args:
    config: the experiment config.
    root: the top workdir (rollouts are shared by its run sets).
    teacher: the teacher network.
    teacher_meta: its `teacher.json`.
    teacher_digest: `teachers.digest(teacher)`.

  Returns:
    `(data, meta, key)`: the arrays, `meta.json` and the rollouts' key.

  Raises:
    errors.ConfigError: if `rollouts_dir` holds rollouts of other settings
      (another teacher, size, seed, ...).
  """
  settings = rollout_settings(config, teacher_digest)
  key = runs.RunStore.key(settings)
  store = runs.RunStore(root, "rollouts")
  directory, meta = _rollouts_source(config, root, teacher_digest)
  if meta is None:
    with progress.Progress(total=config.num_states,
                           desc=f"{config.game} rollouts",
                           unit="state") as bar:
      done = [0]

      def advance(n):
        bar.update(n - done[0])
        done[0] = n

      meta = rollouts.collect(
          teacher.log_policy, config.game, directory, config.num_states,
          seed=config.collect_seed, num_envs=config.collect_envs,
          extra_meta={"settings": settings, "teacher": {
              k: teacher_meta.get(k) for k in
              ("frames", "mean_return_last20", "eval_mean_return",
               "eval_std_return")}},
          progress=advance,
          # A unit without its result.json is recollected (as always).
          overwrite=not config.rollouts_dir)
    if not config.rollouts_dir:
      store.save(settings, {"num_states": meta["num_states"],
                            "num_actions": meta["num_actions"],
                            "shards": meta["shards"]})
  return rollouts.load(directory), meta, key


class _Context:
  """What every unit of one invocation shares."""

  def __init__(self, config, workdir, teacher, teacher_digest, data,
               num_actions, rollouts_key, bar):
    self.config = config
    self.workdir = workdir
    self.teacher = teacher
    self.teacher_digest = teacher_digest
    self.data = data
    self.num_actions = num_actions
    self.rollouts_key = rollouts_key
    self.bar = bar

  def settings(self, fraction: float, method: str, seed: int, lr: float,
               weight: float, steps: int, eval_set: str) -> Dict[str, Any]:
    """Every setting behind one student's numbers."""
    c = self.config
    return {"kind": "student", "game": c.game, "teacher": self.teacher_digest,
            "rollouts": self.rollouts_key,
            "validation_fraction": c.validation_fraction,
            "train_fraction": fraction, "eval_set": eval_set,
            "max_eval_states": c.max_eval_states, "method": method,
            "learning_rate": lr,
            "sobolev_weight": weight if method == "sobolev" else 0.0,
            "num_projections": c.num_projections,
            "batch_size": c.batch_size, "steps": steps,
            "eval_every": c.eval_every, "seed": seed,
            "student": dict(STUDENT_SIZES)}

  def split(self, fraction: float):
    try:
      return rollouts.split_by_episodes(
          self.data["episode_ids"], fraction,
          self.config.validation_fraction, seed=self.config.collect_seed)
    except ValueError as e:  # E.g. no episode left for the test set.
      raise errors.ConfigError(
          f"{str(e).rstrip('.')} (--config.num_states="
          f"{self.config.num_states}, --config.train_fractions, "
          "--config.validation_fraction).") from e

  def train(self, settings: Dict[str, Any], train_idx, eval_idx,
            on_record=None):
    c = distill.StudentConfig(
        method=settings["method"], learning_rate=settings["learning_rate"],
        sobolev_weight=settings["sobolev_weight"],
        batch_size=settings["batch_size"], steps=settings["steps"],
        eval_every=settings["eval_every"], seed=settings["seed"],
        num_projections=settings["num_projections"],
        hidden=STUDENT_SIZES["hidden"],
        channels=tuple(STUDENT_SIZES["channels"]),
        stall_patience=self.config.get("stall_patience",
                                       DEFAULT_STALL_PATIENCE))
    last = [0]

    def record(row):
      self.bar.update(row["step"] - last[0], kl=row["test_kl"])
      last[0] = row["step"]
      if on_record is not None:
        on_record(row)

    d = self.data
    return distill.train_student(
        c, self.teacher, d["states"][train_idx], d["log_probs"][train_idx],
        d["states"][eval_idx], d["log_probs"][eval_idx], self.num_actions,
        on_record=record, return_model=True)


def _tune(ctx: _Context, fraction: float) -> Dict[str, Tuple[float, float]]:
  """Grid search per method on validation games; returns the best settings.

  Returns:
    `{"regular": (lr, 0.0), "sobolev": (lr, lambda)}`.
  """
  config = ctx.config
  train, val, _ = ctx.split(fraction)
  val = _subsample(val, config.max_eval_states, config.collect_seed)
  steps = config.tune_steps or config.steps
  regular, sob = tuning_grids(config)
  best = {}
  for method, grid in (("regular", regular), ("sobolev", sob)):
    fixed = ctx.settings(fraction, method, 0, 0.0, 0.0, steps, "validation")
    del fixed["learning_rate"], fixed["sobolev_weight"]

    def evaluate(candidate, method=method, fixed=fixed):
      settings = dict(fixed, learning_rate=candidate["learning_rate"],
                      sobolev_weight=candidate["sobolev_weight"])
      ctx.bar.set_description(
          f"{config.game} tuning {method} lr={candidate['learning_rate']:g}"
          f" lambda={candidate['sobolev_weight']:g} (fraction {fraction:g})")
      history, _ = ctx.train(settings, train, val)
      return history[-1]["test_kl"]

    candidates = [{"learning_rate": lr, "sobolev_weight": w}
                  for lr, w in grid]
    chosen, trials = tuning.grid_search(
        candidates, evaluate,
        store_path=os.path.join(ctx.workdir, "tuning.csv"), fixed=fixed)
    for t in trials:
      if t["reused"]:
        ctx.bar.update(steps)
    best[method] = (chosen["learning_rate"], chosen["sobolev_weight"])
    score = min(t["score"] for t in trials if t["learning_rate"] ==
                chosen["learning_rate"] and t["sobolev_weight"] ==
                chosen["sobolev_weight"])
    print(f"Tuned {method} on fraction {fraction:g}: lr={best[method][0]:g} "
          f"lambda={best[method][1]:g} (validation KL {score:.4g})",
          flush=True)
  return best


def _student(ctx: _Context, fraction: float, method: str, seed: int,
             lr: float, weight: float, train_idx, test_idx,
             store: runs.RunStore) -> List[Dict[str, Any]]:
  """One student: its stored history, or trained, saved and recorded now."""
  config = ctx.config
  settings = ctx.settings(fraction, method, seed, lr, weight, config.steps,
                          "test")
  done = store.result(settings)
  if done is not None:
    ctx.bar.update(config.steps)
    return done["history"]
  unit = store.unit_dir(settings)
  tb_dir = os.path.join(ctx.workdir, "tb", f"frac{fraction:g}", method,
                        f"seed{seed}")
  for stale in (os.path.join(unit, "curve.csv"), os.path.join(unit, "model"),
                os.path.join(unit, "saved_model"), tb_dir):
    # Leftovers of an interrupted attempt (the student restarts at step 0).
    if os.path.isdir(stale):
      shutil.rmtree(stale)
    elif os.path.exists(stale):
      os.remove(stale)
  ctx.bar.set_description(f"{config.game} {method} fraction {fraction:g} "
                          f"seed {seed}")
  writer = metrics.MetricWriter(os.path.join(unit, "curve.csv"), tb_dir,
                                where=f"{method} student, seed {seed}")
  try:
    def on_record(row):
      writer.write({"step": row["step"],
                    "test/action_error": row["test_action_error"],
                    "test/kl": row["test_kl"],
                    **{f"train/{k[len('train_'):]}": v for k, v in row.items()
                       if k.startswith("train_")}})

    history, student = ctx.train(settings, train_idx, test_idx, on_record)
  finally:
    writer.close()
  save_student(student, unit)
  if config.export_students:
    export_student(student, os.path.join(unit, "saved_model"))
  result = metrics.finite_result_or_raise(
      {"history": history, "num_actions": ctx.num_actions,
       "final": history[-1]}, f"{method} student, seed {seed}")
  store.save(settings, result)
  return history


def save_student(net: tf.Module, unit: str) -> str:
  """Writes `net`'s weights to `<unit>/model/student` (atomic directory).

  The object graph is `tf.train.Checkpoint(student=<StudentNet>)`, keys
  `student/_net/...`: the layout of every student saved so far (students
  were never saved through a wrapper module), so `load_student` reads them
  all.

  Args:
    net: the trained `StudentNet` (what `distill.train_student` returns).
    unit: the student's unit directory.

  Returns:
    The checkpoint prefix.
  """
  tmp = os.path.join(unit, ".model.tmp")
  if os.path.isdir(tmp):
    shutil.rmtree(tmp)
  tf.train.Checkpoint(student=net).write(os.path.join(tmp, "student"))
  final = os.path.join(unit, "model")
  if os.path.isdir(final):
    shutil.rmtree(final)
  os.replace(tmp, final)
  return os.path.join(final, "student")


def load_student(unit: str) -> tf.Module:
  """Rebuilds a finished student (`StudentNet`) from its unit directory.

  Raises:
    ValueError: if `unit` holds no finished student.
  """
  from distillation import networks  # pylint: disable=g-import-not-at-top
  finished = runs.read_unit(unit)
  if finished is None or finished.settings.get("kind") != "student":
    raise ValueError(f"{unit!r} holds no finished student (no "
                     f"{runs.RESULT_FILE}).")
  sizes = finished.settings["student"]
  net = networks.StudentNet(int(finished.result["num_actions"]),
                            channels=tuple(sizes["channels"]),
                            hidden=int(sizes["hidden"]))
  net(tf.zeros([1, *atari_env.FRAME_SHAPE], tf.uint8))
  checkpoints.read(
      tf.train.Checkpoint(student=net), os.path.join(unit, "model",
                                                     "student"),
      remedy=f"delete {unit} to train that student again"
  ).assert_existing_objects_matched()
  return net


def export_student(net: tf.Module, path: str) -> str:
  """A SavedModel of a student: uint8 `[None, 84, 84, 4]` -> log-probs."""
  return saved_models.export(
      net, [tf.TensorSpec([None, *atari_env.FRAME_SHAPE], tf.uint8,
                          name="states")], path, fn=net.log_policy,
      output_name="log_probs")


def load_teacher(config: Any):
  """`(net, meta, digest)` of the config's teacher.

  Raises:
    errors.ConfigError: if there is no such teacher.
  """
  try:
    net, meta = teachers.load(config.game, config.teacher_dir)
  except ValueError as e:
    raise errors.ConfigError(f"`teacher_dir`: {e}") from None
  return net, meta, teachers.digest(net)


def plan(config: Any, workdir: str, *, checked: bool = False) -> str:
  """Checks what `train_and_evaluate` checks first; says what it would do.

  The dry run of `python -m distillation.run`: the settings, the teacher
  (loaded) and `rollouts_dir` (if given, its rollouts must be of these
  settings). Nothing is written.

  Args:
    config: the `ConfigDict` (`configs/default.py`).
    workdir: the output directory.
    checked: `settings.check(config)` already ran (the command line runs it
      before TensorFlow starts); else it runs here.

  Returns:
    One line: the rollouts used or collected, the students and the tuning.

  Raises:
    errors.ConfigError: for an invalid setting, a missing teacher or
      rollouts of other settings.
  """
  if not checked:
    settings.check(config)
  _, teacher_meta, digest = load_teacher(config)
  directory, meta = _rollouts_source(config, workdir, digest)
  source = (f"reuse the {meta['num_states']} states in {directory}"
            if meta is not None else
            f"collect {config.num_states} teacher states into {directory}")
  fractions = _fractions(config)
  regular, sob = tuning_grids(config) if config.tune else ([], [])
  tuning = (f"; after {len(regular)} + {len(sob)} tuning trials"
            if config.tune else "")
  return (f"would {source} with the {config.game} teacher "
          f"({teacher_meta.get('frames')} frames, digest {digest}), then "
          f"train {len(fractions) * config.seeds * len(distill.METHODS)} "
          f"students ({len(fractions)} fractions x {config.seeds} seeds x "
          f"{len(distill.METHODS)} methods, {config.steps} steps{tuning}) "
          f"into {workdir} (finished students are reused).")


def train_and_evaluate(config: Any, workdir: str,
                       if_different: str = "refuse", *,
                       checked: bool = False) -> List[Dict]:
  """Runs the experiment (see the module docstring).

  Args:
    config: the `ConfigDict` (`configs/default.py`).
    workdir: output directory.
    if_different: what to do when `workdir` holds results of other settings:
      'refuse' (raise), 'fresh' (move them aside) or 'separate' (write to
      `workdir/sets/<hash>`).
    checked: `settings.check(config)` already ran (the command line runs it
      before TensorFlow starts); else it runs here.

  Returns:
    The rows of `results.csv` (dicts).

  Raises:
    errors.ConfigError: for an invalid setting or a missing teacher.
    errors.WorkdirMismatchError: if the workdir holds other settings' results
      and `if_different` is 'refuse'.
    errors.DivergenceError: if a student's training diverges.
  """
  if not checked:
    settings.check(config)
  teacher, teacher_meta, digest = load_teacher(config)
  root = workdir
  recorded = dict(configs.to_dict(config), teacher_identity={
      "digest": digest, "frames": teacher_meta.get("frames")})
  with workdirs.opened(workdir, recorded, ignore=WORKDIR_IGNORE,
                       if_different=if_different) as workdir, \
      provenance.recorded(workdir, recorded):
    return _run(config, root, workdir, teacher, teacher_meta, digest)


def _run(config, root, workdir, teacher, teacher_meta, digest) -> List[Dict]:
  data, meta, rollouts_key = get_rollouts(config, root, teacher, teacher_meta,
                                          digest)
  num_actions = int(meta["num_actions"])
  fractions = _fractions(config)
  regular, sob = tuning_grids(config) if config.tune else ([], [])
  tune_steps = config.tune_steps or config.steps
  tune_splits = ((len(fractions) if config.tune_per_fraction else 1)
                 if config.tune else 0)
  total = (tune_splits * (len(regular) + len(sob)) * tune_steps +
           len(fractions) * config.seeds * len(distill.METHODS) *
           config.steps)
  store = runs.RunStore(workdir, "runs")
  with progress.Progress(total=total, desc=f"{config.game} distillation",
                         unit="step") as bar:
    ctx = _Context(config, workdir, teacher, digest, data, num_actions,
                   rollouts_key, bar)
    fixed = {"regular": (config.learning_rate_regular, 0.0),
             "sobolev": (config.learning_rate_sobolev,
                         config.sobolev_weight)}
    tune_on = config.tune_fraction or min(fractions)
    settings = {f: fixed for f in fractions}
    if config.tune and config.tune_per_fraction:
      settings = {f: _tune(ctx, f) for f in fractions}
    elif config.tune:
      tuned = _tune(ctx, tune_on)
      settings = {f: tuned for f in fractions}
    rows = []
    for fraction in fractions:
      train, _, test = ctx.split(fraction)
      test = _subsample(test, config.max_eval_states, config.collect_seed + 1)
      for seed in range(config.seeds):
        for method in distill.METHODS:
          lr, weight = settings[fraction][method]
          history = _student(ctx, fraction, method, seed, lr, weight, train,
                             test, store)
          for h in history:
            rows.append({"game": config.game, "train_fraction": fraction,
                         "method": method, "seed": seed,
                         "step": int(h["step"]),
                         "test_action_error": float(h["test_action_error"]),
                         "test_kl": float(h["test_kl"])})
  results.write(os.path.join(workdir, "results.csv"),
                [Row(**r) for r in rows])

  def describe(s):
    return (f"regular lr={s['regular'][0]:g}; Sobolev lr={s['sobolev'][0]:g},"
            f" lambda={s['sobolev'][1]:g}")

  if config.tune_per_fraction and config.tune:
    described = "; ".join(f"fraction {f:g}: {describe(s)}"
                          for f, s in settings.items())
    described += " (each tuned on its fraction's validation games)"
  else:
    described = describe(settings[fractions[0]])
    if config.tune:
      described += f" (tuned on validation games, fraction {tune_on:g})"
  note = (f"Teacher: {config.game}, trained {teacher_meta.get('frames')} "
          f"frames (weights digest {digest}); evaluation score "
          f"{teacher_meta.get('eval_mean_return', 'not recorded')}. "
          f"Settings: {described}.")
  files.atomic_write_text(os.path.join(workdir, "results.md"),
                          reporting.markdown_table(rows, config.game, note))
  score = teacher_meta.get("eval_mean_return")
  title = (f"{config.game} policy distillation (teacher: "
           f"{teacher_meta.get('frames')} frames"
           f"{'' if score is None else f', score {score:.1f}'})")
  reporting.plot_figure4(rows, os.path.join(workdir, "figure4.png"), title)
  print(f"Wrote results.csv, results.md and figure4.png to {workdir}",
        flush=True)
  return rows
