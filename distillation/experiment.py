"""The Figure 4 experiment: regular vs Sobolev policy distillation.

`train_and_evaluate(config, workdir)`:
  1. loads the teacher (default `distillation/teachers/<game>/`);
  2. collects `num_states` teacher states into `workdir/rollouts/` (reused if
     a complete collection with the same game, size and seed is there);
  3. for every training fraction splits the games into train / validation /
     test (`rollouts.split_by_episodes`; the same split for all seeds and
     both methods);
  4. optionally tunes each method on the validation games (same number of
     trials for both; see `RunConfig.regular_grid` / `sobolev_grid`), once
     on one split (`tune_fraction`, default the smallest fraction) or, with
     `tune_per_fraction`, separately on every fraction's split;
  5. trains regular and Sobolev students for every fraction and seed (same
     initial weights and minibatches for both methods at a given seed),
     evaluating on held-out test games every `eval_every` steps;
  6. writes `results.csv`, `results.md` and `figure4.png`.

Every finished student run is stored in `workdir/runs/` and skipped when the
command is re-run (resumable; an interrupted run restarts from step 0).
"""

import dataclasses
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from distillation import atari_env
from distillation import distill
from distillation import reporting
from distillation import rollouts
from distillation import teachers

RUN_FIELDS = ["step", "test_action_error", "test_kl", "train_loss",
              "train_sobolev_term"]
TUNING_FIELDS = ["train_fraction", "tune_steps", "method", "learning_rate",
                 "sobolev_weight", "val_action_error", "val_kl"]


@dataclasses.dataclass
class RunConfig:
  """Configuration of the distillation experiment."""
  game: str = "Pong"
  train_fractions: Tuple[float, ...] = (0.01, 0.05, 0.1)
  seeds: int = 3
  steps: int = 2000
  eval_every: int = 100
  batch_size: int = 32
  learning_rate_regular: float = 1e-3
  learning_rate_sobolev: float = 1e-3
  sobolev_weight: float = 1.0
  num_projections: int = 1
  num_states: int = 100_000
  collect_seed: int = 0
  collect_envs: int = 8
  validation_fraction: float = 0.1
  max_eval_states: int = 5000
  teacher_dir: Optional[str] = None
  rollouts_dir: Optional[str] = None
  tune: bool = False
  tune_fraction: Optional[float] = None  # Default: the smallest fraction.
  tune_per_fraction: bool = False  # Tune on every fraction's own split.
  tune_steps: Optional[int] = None  # Default: `steps`.
  # Equal budgets: 6 trials each.
  regular_grid: Tuple[Tuple[float, float], ...] = tuple(
      (lr, 0.0) for lr in (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3))
  sobolev_grid: Tuple[Tuple[float, float], ...] = tuple(
      (lr, w) for lr in (5e-4, 2e-3) for w in (0.01, 0.1, 1.0))

  def validate(self) -> None:
    """Raises ValueError (or TypeError) naming the first bad field."""
    atari_env.check_game(self.game)
    if isinstance(self.train_fractions, (str, bytes)) or not isinstance(
        self.train_fractions, Sequence) or not self.train_fractions:
      raise ValueError("`train_fractions` must be a non-empty sequence of "
                       f"numbers in (0, 1), got {self.train_fractions!r}.")
    if self.tune_fraction is not None and self.tune_per_fraction:
      raise ValueError("Give `tune_fraction` or `tune_per_fraction`, not "
                       "both.")
    named = [("train_fractions", f) for f in self.train_fractions]
    if self.tune_fraction is not None:
      named.append(("tune_fraction", self.tune_fraction))
    for name, f in named:
      rollouts.check_fraction(f, name)
      if f + self.validation_fraction >= 1.0:
        raise ValueError(f"`{name}` {f} + validation_fraction "
                         f"{self.validation_fraction} must be < 1.")
    for name in ("seeds", "steps", "eval_every", "batch_size",
                 "num_projections", "num_states", "collect_envs",
                 "max_eval_states"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
    if not 0.0 <= self.validation_fraction < 1.0:
      raise ValueError(f"`validation_fraction` must be in [0, 1), got "
                       f"{self.validation_fraction}.")
    if self.tune and self.validation_fraction <= 0.0:
      raise ValueError("`tune` needs `validation_fraction` > 0.")
    for name in ("learning_rate_regular", "learning_rate_sobolev"):
      if not getattr(self, name) > 0:
        raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)}.")
    if not self.sobolev_weight >= 0:
      raise ValueError(f"`sobolev_weight` must be >= 0, got "
                       f"{self.sobolev_weight}.")
    if self.tune:
      if not self.regular_grid or not self.sobolev_grid:
        raise ValueError("`regular_grid` and `sobolev_grid` must be "
                         "non-empty when tuning.")
      if len(self.regular_grid) != len(self.sobolev_grid):
        raise ValueError(
            f"Tuning budgets differ: `regular_grid` has "
            f"{len(self.regular_grid)} trials, `sobolev_grid` "
            f"{len(self.sobolev_grid)}; give both methods the same number.")
      for name in ("regular_grid", "sobolev_grid"):
        for lr, weight in getattr(self, name):
          if not lr > 0 or not weight >= 0:
            raise ValueError(f"`{name}` entries must be (lr > 0, lambda >= "
                             f"0), got ({lr}, {weight}).")


def _log(msg: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def get_rollouts(config: RunConfig, workdir: str, teacher,
                 teacher_meta: Dict) -> Tuple[Dict[str, np.ndarray], Dict]:
  """Loads the rollouts, collecting them first unless reusable ones exist."""
  directory = config.rollouts_dir or os.path.join(workdir, "rollouts")
  meta = rollouts.read_meta(directory)
  wanted = {"game": config.game, "num_states": config.num_states,
            "seed": config.collect_seed}
  if meta is None or any(meta.get(k) != v for k, v in wanted.items()):
    _log(f"Collecting {config.num_states} states of the {config.game} "
         f"teacher into {directory} ...")
    last = [0.0]

    def progress(n):
      if time.time() - last[0] > 60:
        last[0] = time.time()
        _log(f"  {n}/{config.num_states} states")

    meta = rollouts.collect(
        teacher.log_policy, config.game, directory, config.num_states,
        seed=config.collect_seed, num_envs=config.collect_envs,
        extra_meta={"teacher": {k: teacher_meta.get(k) for k in
                                ("frames", "mean_return_last20",
                                 "eval_mean_return", "eval_std_return")}},
        progress=progress)
  else:
    _log(f"Reusing the rollouts in {directory}.")
  return rollouts.load(directory), meta


def _subsample(idx: np.ndarray, limit: int, seed: int) -> np.ndarray:
  if idx.size <= limit:
    return idx
  return np.sort(np.random.default_rng(seed).choice(idx, limit,
                                                    replace=False))


def _student_config(config: RunConfig, method: str, seed: int,
                    learning_rate: float, weight: float,
                    steps: int) -> distill.StudentConfig:
  return distill.StudentConfig(
      method=method, learning_rate=learning_rate, sobolev_weight=weight,
      batch_size=config.batch_size, steps=steps,
      eval_every=config.eval_every, seed=seed,
      num_projections=config.num_projections)


def run_filename(fraction: float, method: str, seed: int,
                 learning_rate: float, weight: float) -> str:
  """The name of a finished student run in `workdir/runs/`.

  The settings are part of the name, so a re-run with other (e.g. re-tuned)
  settings trains new students instead of reusing runs made with old ones.

  Args:
    fraction: training fraction.
    method: `regular` or `sobolev`.
    seed: student seed.
    learning_rate: the student's learning rate.
    weight: the Sobolev weight lambda (0 for regular students).

  Returns:
    e.g. `frac0.01_sobolev_lr0.001_lambda0.1_seed2.csv`.
  """
  return (f"frac{fraction:g}_{method}_lr{learning_rate:g}_lambda{weight:g}"
          f"_seed{seed}.csv")


def _tune(config: RunConfig, workdir: str, teacher, data, num_actions: int,
          fraction: float) -> Dict[str, Tuple[float, float]]:
  """Grid search per method on validation games; returns the best settings.

  Trials are stored in `workdir/tuning.csv` with the split they were tuned on
  and their length, and reused only for the same split and length.

  Args:
    config: the run's configuration.
    workdir: output directory.
    teacher: the teacher network.
    data: the rollouts (`states`, `log_probs`, `episode_ids`).
    num_actions: size of the action space.
    fraction: the training fraction whose split the trials train on.

  Returns:
    `{"regular": (lr, 0.0), "sobolev": (lr, lambda)}`.
  """
  train, val, _ = rollouts.split_by_episodes(
      data["episode_ids"], fraction, config.validation_fraction,
      seed=config.collect_seed)
  val = _subsample(val, config.max_eval_states, config.collect_seed)
  path = os.path.join(workdir, "tuning.csv")
  done = reporting.read_csv(path) if os.path.exists(path) else []
  rows = list(done)
  steps = config.tune_steps or config.steps
  def same_split(r):
    # Rows of older tuning files lack the split and length: never matched.
    return (r.get("train_fraction") not in (None, "") and
            float(r["train_fraction"]) == fraction and
            r.get("tune_steps") not in (None, "") and
            int(r["tune_steps"]) == steps)

  for method, grid in (("regular", config.regular_grid),
                       ("sobolev", config.sobolev_grid)):
    for lr, weight in grid:
      if any(same_split(r) and r["method"] == method and
             float(r["learning_rate"]) == lr and
             float(r["sobolev_weight"]) == weight for r in rows):
        continue
      _log(f"Tuning {method}: lr={lr} lambda={weight} (fraction {fraction},"
           f" {steps} steps, validation games)")
      history = distill.train_student(
          _student_config(config, method, 0, lr, weight, steps), teacher,
          data["states"][train], data["log_probs"][train],
          data["states"][val], data["log_probs"][val], num_actions)
      rows.append({"train_fraction": fraction, "tune_steps": steps,
                   "method": method, "learning_rate": lr,
                   "sobolev_weight": weight,
                   "val_action_error": history[-1]["test_action_error"],
                   "val_kl": history[-1]["test_kl"]})
      reporting.write_csv(path, rows, TUNING_FIELDS)
  best = {}
  for method, grid in (("regular", config.regular_grid),
                       ("sobolev", config.sobolev_grid)):
    # Only this grid's trials compete (tuning.csv may hold trials of an
    # earlier grid; mixing them would break the equal-budget comparison).
    cands = [r for r in rows if same_split(r) and r["method"] == method and
             (float(r["learning_rate"]), float(r["sobolev_weight"])) in
             {(float(lr), float(w)) for lr, w in grid}]
    r = min(cands, key=lambda r: float(r["val_kl"]))
    best[method] = (float(r["learning_rate"]), float(r["sobolev_weight"]))
    _log(f"Tuned {method} on fraction {fraction}: lr={best[method][0]} "
         f"lambda={best[method][1]} (validation KL {float(r['val_kl']):.4g})")
  return best


def train_and_evaluate(config: RunConfig, workdir: str) -> List[Dict]:
  """Runs the experiment (see the module docstring).

  Args:
    config: the configuration; validated before any compute.
    workdir: output directory.

  Returns:
    The rows of `results.csv`.

  Raises:
    ValueError: for an invalid config or a missing teacher.
  """
  config.validate()
  os.makedirs(os.path.join(workdir, "runs"), exist_ok=True)
  teacher, teacher_meta = teachers.load(config.game, config.teacher_dir)
  data, meta = get_rollouts(config, workdir, teacher, teacher_meta)
  num_actions = int(meta["num_actions"])
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(dataclasses.asdict(config), f, indent=2, default=str)

  fixed = {"regular": (config.learning_rate_regular, 0.0),
           "sobolev": (config.learning_rate_sobolev, config.sobolev_weight)}
  tune_on = config.tune_fraction or min(config.train_fractions)
  settings = {f: fixed for f in config.train_fractions}
  if config.tune and config.tune_per_fraction:
    settings = {f: _tune(config, workdir, teacher, data, num_actions, f)
                for f in config.train_fractions}
  elif config.tune:
    tuned = _tune(config, workdir, teacher, data, num_actions, tune_on)
    settings = {f: tuned for f in config.train_fractions}

  rows = []
  for fraction in config.train_fractions:
    train, _, test = rollouts.split_by_episodes(
        data["episode_ids"], fraction, config.validation_fraction,
        seed=config.collect_seed)
    test = _subsample(test, config.max_eval_states, config.collect_seed + 1)
    _log(f"fraction {fraction}: {train.size} training states, "
         f"{test.size} test states")
    for seed in range(config.seeds):
      for method in distill.METHODS:
        lr, weight = settings[fraction][method]
        name = run_filename(fraction, method, seed, lr, weight)
        path = os.path.join(workdir, "runs", name)
        if os.path.exists(path):
          history = reporting.read_csv(path)
        else:
          _log(f"Training {method} student: fraction {fraction}, seed "
               f"{seed}, lr={lr}, lambda={weight}")
          history = distill.train_student(
              _student_config(config, method, seed, lr, weight,
                              config.steps), teacher,
              data["states"][train], data["log_probs"][train],
              data["states"][test], data["log_probs"][test], num_actions,
              log=_log)
          reporting.write_csv(path, history, RUN_FIELDS)
        for h in history:
          rows.append({"game": config.game, "train_fraction": fraction,
                       "method": method, "seed": seed,
                       "step": int(h["step"]),
                       "test_action_error": float(h["test_action_error"]),
                       "test_kl": float(h["test_kl"])})
  reporting.write_csv(os.path.join(workdir, "results.csv"), rows,
                      reporting.RESULT_FIELDS)
  def describe(s):
    return (f"regular lr={s['regular'][0]}; Sobolev lr={s['sobolev'][0]}, "
            f"lambda={s['sobolev'][1]}")
  if config.tune_per_fraction and config.tune:
    described = "; ".join(f"fraction {f}: {describe(s)}"
                          for f, s in settings.items())
    described += " (each tuned on its fraction's validation games)"
  else:
    described = describe(settings[config.train_fractions[0]])
    if config.tune:
      described += f" (tuned on validation games, fraction {tune_on})"
  note = (f"Teacher: {config.game}, trained {teacher_meta.get('frames')} "
          f"frames; evaluation score "
          f"{teacher_meta.get('eval_mean_return', 'not recorded')}. "
          f"Settings: {described}.")
  table = reporting.markdown_table(rows, config.game, note)
  tmp = os.path.join(workdir, "results.md.tmp")
  with open(tmp, "w") as f:
    f.write(table)
  os.replace(tmp, os.path.join(workdir, "results.md"))
  score = teacher_meta.get("eval_mean_return")
  title = (f"{config.game} policy distillation (teacher: "
           f"{teacher_meta.get('frames')} frames"
           f"{'' if score is None else f', score {score:.1f}'})")
  reporting.plot_figure4(rows, os.path.join(workdir, "figure4.png"), title)
  _log(f"Wrote results.csv, results.md and figure4.png to {workdir}")
  return rows
