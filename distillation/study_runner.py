"""Runs (or resumes) the distillation study of issue 20.

One command (`python -m distillation.study`, config `configs/study.py`):

1. **Rollouts**, once per game: the Figure 4 collection
   (`experiment.get_rollouts`: `num_states` states of the committed teacher,
   keyed by the teacher's weights digest and the collection settings),
   reused from this workdir or from the workdirs of `rollouts_from` (e.g. a
   Figure 4 workdir), else collected into this workdir. Every fraction's
   split is Figure 4's (`rollouts.split_by_episodes`, whole games: train,
   `validation_fraction` of the states in validation games, the rest test),
   and the test states are Figure 4's 5,000 (same subsample seed).
2. **Timing**: every arm's time per step (`speed.time_variant`, the study's
   own loop, `timing_steps` steps, per number of actions A), kept in the
   `timing/` store and `step_times.csv`; with the number of steps planned
   they give the study's cost in CPU hours, printed before training
   (`--estimate_only` stops there).
3. **Diagnostics** ("why Breakout"): the size and noise of the teacher's
   input gradients on `diagnostic_states` recorded states of each game
   (`gradient_diagnostics`), in `teacher_gradients.csv`.
4. **Tuning**, equal per arm: at every (game, fraction), regular students
   try each learning rate of `regular_lrs`, and each Sobolev variant each
   (lr, lambda) pair of `sobolev_grid` (as many trials, the same
   `tune_steps` and the seed `tune_seed`), on the fraction's own training
   states, scored by the lowest validation KL over the trial (early
   stopping). The first variant of `variants` is tuned at every fraction,
   the others at `variant_fractions`. Trials never see test games. Records:
   `tuning.csv`.
5. **Final students**: `seeds` seeds for regular and every Sobolev arm of
   `final_variants` at its tuned settings ('best': the variant with the
   lowest tuned score at that fraction), plus, with `published_row`, the
   published 1%-tuned settings (`configs.study.PUBLISHED`) for both methods.
   Each trains `steps` steps and is evaluated every `eval_every` steps on a
   fixed sample of its training states, the validation games and the test
   games; its test KL is reported at the step of lowest validation KL
   (early stopping) and at the end.
6. **Report** (`study_report`): `distillation_study_results.csv`, gaps
   with t and bootstrap intervals, `study.md`, figures.

Every student (trial or final) is a unit of `runs/`, keyed by every
setting behind its numbers, so re-running resumes (finished students are
reused; a killed one restarts from step 0 and, being deterministic, gives
the uninterrupted numbers). With `workers` > 1 each stage's missing students
are split (balanced by estimated cost) among that many processes
(`python -m distillation.study --worker=I/N --stage=...`, one TensorFlow
thread each), which train disjoint students into the one store.
"""

import dataclasses
import math
import os
import platform
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import ml_collections
import numpy as np

from distillation import distill
from distillation import experiment
from distillation import gradient_diagnostics
from distillation import rollouts
from distillation import settings as fig4_settings
from distillation import sobolev_terms
from distillation import speed
from distillation import study_report
from distillation import study_training
from distillation import teachers
from distillation.configs import study as study_config
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import metrics
from sobolev.experiment import progress
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import studies
from sobolev.experiment import workers as workers_lib

# Fields that choose which students a study covers and how it is reported:
# they may change between invocations (students are keyed by their own
# settings).
STUDY_EXTENT = ("games", "train_fractions", "seeds", "variants",
                "variant_fractions", "final_variants", "published_row",
                "rollouts_from", "diagnostic_states",
                "diagnostic_projections", "bootstrap_samples", "timing_steps",
                "workers", "tf_threads")
_NAME_FIELDS = ("games", "variants", "final_variants", "rollouts_from")
STAGES = ("tune", "final")
UNIT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Arm:
  """A method as the study compares it.

  Attributes:
    method: 'regular' or 'sobolev'.
    variant: the Sobolev term (`sobolev_terms` name); '' for regular.
    published: trained at the published (1%-tuned) settings.
  """
  method: str
  variant: str = ""
  published: bool = False

  @property
  def name(self) -> str:
    base = "regular" if self.method == "regular" else self.variant
    return base + (" (published)" if self.published else "")


@dataclasses.dataclass(frozen=True)
class Unit:
  """One student to train (a trial or a final student)."""
  stage: str
  game: str
  fraction: float
  arm: Arm
  learning_rate: float
  sobolev_weight: float
  seed: int
  steps: int


@dataclasses.dataclass(frozen=True)
class TuneRow:
  """One tuning trial (a row of `tuning.csv`)."""
  game: str
  train_fraction: float
  arm: str
  learning_rate: float
  sobolev_weight: float
  steps: int
  seed: int
  best_validation_kl: float
  best_step: int
  final_validation_kl: float
  chosen: bool
  unit: str


@dataclasses.dataclass
class Game:
  """What a game's students share (cheap; the states load lazily)."""
  name: str
  teacher: Any
  teacher_meta: Dict[str, Any]
  digest: str
  num_actions: int
  rollouts_root: str
  rollouts_key: str


# ------------------------------------------------------------------ config


def resolve(config: Any) -> ml_collections.ConfigDict:
  """A copy of `config` with its name lists split on commas."""
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  config = ml_collections.ConfigDict(dict(config))
  for field in _NAME_FIELDS:
    config[field] = configs.split_names(field, config[field])
  for field in ("train_fractions", "variant_fractions"):
    value = config[field]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      config[field] = (float(value),)
  return config


def _distinct(field: str, values: Sequence[Any], allow_empty=False) -> None:
  if not values and not allow_empty:
    raise errors.ConfigError(f"`{field}` must not be empty.")
  if len(set(values)) != len(values):
    raise errors.ConfigError(f"`{field}` has duplicates: {tuple(values)}.")


def check(config: Any) -> None:
  """Checks a resolved study config before any work.

  Raises:
    errors.ConfigError: naming the field.
  """
  configs.check_finite(config)
  _distinct("games", config.games)
  for game in config.games:
    fig4_settings.check_finite_and_game(
        ml_collections.ConfigDict({"game": game}))
  _distinct("train_fractions", config.train_fractions)
  for f in tuple(config.train_fractions) + tuple(config.variant_fractions):
    configs.check_number("train_fractions", f, 0.0, 1.0, low_inclusive=False,
                         high_inclusive=False)
    if f + config.validation_fraction >= 1.0:
      raise errors.ConfigError(f"train fraction {f} + validation_fraction "
                               f"{config.validation_fraction} must be < 1.")
  configs.check_number("validation_fraction", config.validation_fraction,
                       0.0, 1.0, low_inclusive=False, high_inclusive=False)
  for name in ("num_states", "collect_envs", "test_states",
               "validation_states", "train_eval_states", "probe_states",
               "initial_scale_states", "batch_size", "steps", "eval_every",
               "seeds", "tune_steps", "diagnostic_states",
               "diagnostic_projections", "bootstrap_samples", "timing_steps",
               "workers", "tf_threads"):
    configs.check_int(name, config[name], low=1)
  for name in ("collect_seed", "tune_seed"):
    configs.check_int(name, config[name], low=0)
  if config.tune_seed < config.seeds:
    raise errors.ConfigError(f"`tune_seed` {config.tune_seed} must not be a "
                             f"final seed (0..{config.seeds - 1}).")
  if config.timing_steps < 2:
    raise errors.ConfigError("`timing_steps` must be >= 2.")
  _distinct("regular_lrs", config.regular_lrs)
  for lr in config.regular_lrs:
    configs.check_number("regular_lrs", lr, 0.0, low_inclusive=False)
  pairs = sobolev_grid(config)
  if len(pairs) != len(config.regular_lrs):
    raise errors.ConfigError(
        f"Tuning budgets differ: `regular_lrs` has "
        f"{len(config.regular_lrs)} trials, `sobolev_grid` {len(pairs)}; "
        "give both methods the same number.")
  _distinct("variants", config.variants)
  for name in config.variants:
    try:
      sobolev_terms.parse(name)
    except ValueError as e:
      raise errors.ConfigError(f"`variants`: {e}") from None
  _distinct("variant_fractions", config.variant_fractions, allow_empty=True)
  _distinct("final_variants", config.final_variants, allow_empty=True)
  for name in config.final_variants:
    if name != "best" and name not in config.variants:
      raise errors.ConfigError(
          f"`final_variants`: {name!r} is neither 'best' nor one of "
          f"`variants` {tuple(config.variants)}.")
  if not isinstance(config.published_row, bool):
    raise errors.ConfigError("`published_row` must be True or False.")
  if config.published_row:
    for game in config.games:
      if game not in study_config.PUBLISHED:
        raise errors.ConfigError(f"No published settings for {game}; set "
                                 "`published_row=False`.")
  if config.teacher_root is not None and not config.teacher_root:
    raise errors.ConfigError("`teacher_root` must be a path or None.")


def sobolev_grid(config: Any) -> List[Tuple[float, float]]:
  """`sobolev_grid` as `(lr, lambda)` pairs.

  Raises:
    errors.ConfigError: for malformed pairs.
  """
  out = []
  for pair in config.sobolev_grid:
    if isinstance(pair, (str, bytes)) or len(pair) != 2:
      raise errors.ConfigError("`sobolev_grid` entries must be (learning "
                               f"rate, lambda) pairs, got {pair!r}.")
    configs.check_number("sobolev_grid learning rate", pair[0], 0.0,
                         low_inclusive=False)
    configs.check_number("sobolev_grid lambda", pair[1], 0.0)
    out.append((float(pair[0]), float(pair[1])))
  if len(set(out)) != len(out):
    raise errors.ConfigError(f"`sobolev_grid` has duplicates: {out}.")
  return out


# ------------------------------------------------------------------- games


def _game_config(config: Any, game: str) -> ml_collections.ConfigDict:
  """The Figure 4 fields `experiment.get_rollouts` reads, for one game."""
  teacher_dir = (None if config.teacher_root is None else
                 os.path.join(config.teacher_root, game))
  return ml_collections.ConfigDict({
      "game": game, "teacher_dir": teacher_dir,
      "num_states": config.num_states, "collect_seed": config.collect_seed,
      "collect_envs": config.collect_envs, "rollouts_dir": None})


def open_game(config: Any, workdir: str, game: str,
              collect: bool = True) -> Game:
  """Loads a game's teacher and finds (or collects) its rollouts.

  Raises:
    errors.ConfigError: for a missing teacher.
    errors.UserError: if the rollouts are missing and `collect` is False.
  """
  game_config = _game_config(config, game)
  teacher, meta, digest = experiment.load_teacher(game_config)
  rollout_settings = experiment.rollout_settings(game_config, digest)
  key = runs.RunStore.key(rollout_settings)
  root = workdir
  for other in (workdir,) + tuple(config.rollouts_from):
    if runs.RunStore(other, "rollouts").result(rollout_settings) is not None:
      root = other
      break
  else:
    if not collect:
      raise errors.UserError(f"{workdir} holds no rollouts of {game}: run "
                             "the study (not a worker) first.")
    experiment.get_rollouts(game_config, workdir, teacher, meta, digest)
  done = runs.RunStore(root, "rollouts").result(rollout_settings)
  return Game(game, teacher, meta, digest, int(done["num_actions"]), root,
              key)


def _subsample(idx: np.ndarray, limit: int, seed: int) -> np.ndarray:
  """`experiment`'s fixed random subset (sorted) of at most `limit`."""
  if idx.size <= limit:
    return idx
  return np.sort(np.random.default_rng(seed).choice(idx, limit,
                                                    replace=False))


class GameData:
  """A game's recorded states and its splits (loaded once per process)."""

  def __init__(self, config: Any, game: Game):
    directory = os.path.join(game.rollouts_root, "rollouts",
                             game.rollouts_key)
    self.data = rollouts.load(directory)
    self.config = config
    self._splits = {}

  def split(self, fraction: float) -> Dict[str, np.ndarray]:
    """Indices: train, validation, test, train_eval, probe, scale."""
    if fraction not in self._splits:
      c = self.config
      train, val, test = rollouts.split_by_episodes(
          self.data["episode_ids"], fraction, c.validation_fraction,
          seed=c.collect_seed)
      self._splits[fraction] = {
          "train": train,
          "validation": _subsample(val, c.validation_states, c.collect_seed),
          "test": _subsample(test, c.test_states, c.collect_seed + 1),
          "train_eval": _subsample(train, c.train_eval_states,
                                   c.collect_seed + 2),
          "probe": _subsample(train, c.probe_states, c.collect_seed + 3),
          "scale": _subsample(train, c.initial_scale_states,
                              c.collect_seed + 4)}
    return self._splits[fraction]

  def states(self, idx):
    return self.data["states"][idx]

  def log_probs(self, idx):
    return self.data["log_probs"][idx]


# ------------------------------------------------------------------- units


def unit_settings(config: Any, game: Game, unit: Unit) -> Dict[str, Any]:
  """Every setting behind one student's numbers (its unit key)."""
  arm = unit.arm
  sets = {"train": config.train_eval_states,
          "validation": config.validation_states}
  if unit.stage == "final":
    sets["test"] = config.test_states
  out = {"kind": "study_student", "version": UNIT_VERSION,
         "game": game.name, "teacher": game.digest,
         "rollouts": game.rollouts_key,
         "validation_fraction": config.validation_fraction,
         "train_fraction": unit.fraction, "sample_seed": config.collect_seed,
         "eval_sets": sets, "probe_states": config.probe_states,
         "method": arm.method, "learning_rate": unit.learning_rate,
         "batch_size": config.batch_size, "steps": unit.steps,
         "eval_every": config.eval_every, "seed": unit.seed,
         "student": dict(experiment.STUDENT_SIZES)}
  if arm.method == "sobolev":
    out["variant"] = arm.variant
    out["sobolev_weight"] = unit.sobolev_weight
    if sobolev_terms.parse(arm.variant).normalization == "initial":
      out["initial_scale_states"] = config.initial_scale_states
  return out


def tuned_arms(config: Any, fraction: float) -> List[Arm]:
  """The arms tuned at `fraction`: regular and the Sobolev variants."""
  arms = [Arm("regular")]
  for i, name in enumerate(config.variants):
    if i == 0 or fraction in tuple(config.variant_fractions):
      arms.append(Arm("sobolev", name))
  return arms


def tune_units(config: Any) -> List[Unit]:
  """Every tuning trial of the study."""
  out = []
  for game in config.games:
    for fraction in config.train_fractions:
      for arm in tuned_arms(config, fraction):
        grid = ([(lr, 0.0) for lr in config.regular_lrs]
                if arm.method == "regular" else sobolev_grid(config))
        for lr, weight in grid:
          out.append(Unit("tune", game, float(fraction), arm, float(lr),
                          float(weight), config.tune_seed, config.tune_steps))
  return out


def _score(result: Optional[Dict[str, Any]]) -> Tuple[float, int, float]:
  """(best validation KL, its step, final validation KL); NaN if missing."""
  if result is None:
    return math.nan, -1, math.nan
  best = study_training.early_stopping(result["history"])
  return (float(best["validation_kl"]), int(best["step"]),
          float(result["history"][-1]["validation_kl"]))


def choose(config: Any, games: Dict[str, Game], store: runs.RunStore
          ) -> Tuple[Dict[Tuple[str, float, Arm], Tuple[float, float, float]],
                     List[TuneRow]]:
  """Tuned settings per (game, fraction, arm): `(lr, lambda, score)`.

  The lowest best-validation-KL wins (the first of the grid among ties;
  missing or diverged trials rank last). Arms with no finished trial are
  left out.
  """
  chosen, rows = {}, []
  by_arm = {}
  for unit in tune_units(config):
    by_arm.setdefault((unit.game, unit.fraction, unit.arm), []).append(unit)
  for (game, fraction, arm), units in by_arm.items():
    scored = []
    for unit in units:
      settings = unit_settings(config, games[game], unit)
      best, step, final = _score(store.result(settings))
      scored.append((unit, best, step, final, runs.RunStore.key(settings)))
    finite = [s for s in scored if math.isfinite(s[1])]
    winner = min(finite, key=lambda s: s[1])[0] if finite else None
    if winner is not None:
      chosen[(game, fraction, arm)] = (
          winner.learning_rate, winner.sobolev_weight,
          min(s[1] for s in finite))
    for unit, best, step, final, key in scored:
      rows.append(TuneRow(game, fraction, arm.name, unit.learning_rate,
                          unit.sobolev_weight, unit.steps, unit.seed, best,
                          step, final, unit is winner, key))
  return chosen, rows


def final_arms(config: Any, game: str, fraction: float, chosen) -> List[
    Tuple[Arm, float, float]]:
  """`(arm, lr, lambda)` of the final students of a (game, fraction)."""
  out = []
  if (game, fraction, Arm("regular")) in chosen:
    lr, _, _ = chosen[(game, fraction, Arm("regular"))]
    out.append((Arm("regular"), lr, 0.0))
  tuned = [a for a in tuned_arms(config, fraction) if a.method == "sobolev"
           and (game, fraction, a) in chosen]
  names = []
  for name in config.final_variants:
    if name == "best" and tuned:
      name = min(tuned, key=lambda a: chosen[(game, fraction, a)][2]).variant
    if name != "best" and name not in names and (
        game, fraction, Arm("sobolev", name)) in chosen:
      names.append(name)
  for name in names:
    lr, weight, _ = chosen[(game, fraction, Arm("sobolev", name))]
    out.append((Arm("sobolev", name), lr, weight))
  if config.published_row:
    reg_lr, sob_lr, sob_weight = study_config.PUBLISHED[game]
    out.append((Arm("regular", "", True), reg_lr, 0.0))
    out.append((Arm("sobolev", sobolev_terms.DEFAULT, True), sob_lr,
                sob_weight))
  return out


def final_units(config: Any, chosen) -> List[Unit]:
  """Every final student (seeds 0..seeds-1 of every final arm)."""
  out = []
  for game in config.games:
    for fraction in config.train_fractions:
      for arm, lr, weight in final_arms(config, game, float(fraction),
                                        chosen):
        for seed in range(config.seeds):
          out.append(Unit("final", game, float(fraction), arm, float(lr),
                          float(weight), seed, config.steps))
  return out


# ------------------------------------------------------------------ timing


def _timing_settings(config: Any, game: Game, arm_key: str) -> Dict:
  return {"kind": "step_time", "arm": arm_key,
          "num_actions": game.num_actions, "teacher": game.digest,
          "batch_size": config.batch_size, "steps": config.timing_steps,
          "tf_threads": config.tf_threads, "host": platform.node()}


def _arm_key(arm: Arm) -> str:
  """Arms that cost the same per step share a timing ('_initial' variants
  cost their base term)."""
  if arm.method == "regular":
    return "regular"
  v = sobolev_terms.parse(arm.variant)
  return dataclasses.replace(
      v, normalization="none" if v.normalization == "initial" else
      v.normalization).name


def step_times(config: Any, games: Dict[str, Game], workdir: str
              ) -> Dict[Tuple[str, str], float]:
  """Seconds per step by (game, arm key); measured once, then stored."""
  store = runs.RunStore(workdir, "timing")
  keys = ["regular"] + sorted({_arm_key(Arm("sobolev", v))
                               for v in config.variants} |
                              {sobolev_terms.DEFAULT})
  out = {}
  for name, game in games.items():
    for key in keys:
      settings = _timing_settings(config, game, key)
      done = store.result(settings)
      if done is None:
        print(f"Timing {key} on {name} ({config.timing_steps} steps)...",
              flush=True)
        method = "regular" if key == "regular" else "sobolev"
        seconds = speed.time_variant(
            game.teacher, game.num_actions, method,
            sobolev_terms.DEFAULT if key == "regular" else key,
            batch_size=config.batch_size, steps=config.timing_steps)
        done = {"seconds_per_step": seconds}
        store.save(settings, done)
      out[(name, key)] = float(done["seconds_per_step"])
  return out


def eval_seconds_per_state(config: Any, game: Game, workdir: str) -> float:
  """Seconds to evaluate one state (student forward); measured once."""
  store = runs.RunStore(workdir, "timing")
  settings = dict(_timing_settings(config, game, "evaluate"),
                  kind="eval_time")
  done = store.result(settings)
  if done is None:
    import time  # pylint: disable=g-import-not-at-top
    from distillation import networks  # pylint: disable=g-import-not-at-top
    net = networks.StudentNet(game.num_actions)
    states = np.random.default_rng(0).integers(
        0, 256, (1000, 84, 84, 4), dtype=np.uint8)
    log_probs = np.zeros([1000, game.num_actions], np.float32)
    distill.evaluate(net.log_policy, states[:500], log_probs[:500])
    start = time.perf_counter()
    distill.evaluate(net.log_policy, states, log_probs)
    done = {"seconds_per_state": (time.perf_counter() - start) / 1000}
    store.save(settings, done)
  return float(done["seconds_per_state"])


def unit_cost(config: Any, unit: Unit, times, eval_times) -> float:
  """Estimated CPU seconds of one student (training + evaluations)."""
  per_step = times[(unit.game, _arm_key(unit.arm))]
  states = config.train_eval_states + config.validation_states + (
      config.test_states if unit.stage == "final" else 0)
  states += 3 * config.probe_states  # Student VJPs ~ 3 forward passes.
  evals = unit.steps // config.eval_every + 2
  return unit.steps * per_step + evals * states * eval_times[unit.game]


# ---------------------------------------------------------------- training


def _train_one(config: Any, game: Game, data: GameData, unit: Unit,
               store: runs.RunStore, bar: progress.Progress) -> None:
  """Trains, saves and records one student (leftovers of an interrupted
  attempt are removed first)."""
  settings = unit_settings(config, game, unit)
  path = store.unit_dir(settings)
  for stale in ("curve.csv", "model"):
    stale = os.path.join(path, stale)
    if os.path.isdir(stale):
      shutil.rmtree(stale)
    elif os.path.exists(stale):
      os.remove(stale)
  split = data.split(unit.fraction)
  sets = {"train": split["train_eval"], "validation": split["validation"]}
  if unit.stage == "final":
    sets["test"] = split["test"]
  eval_sets = {k: (data.states(v), data.log_probs(v)) for k, v in sets.items()}
  variant = sobolev_terms.parse(unit.arm.variant or sobolev_terms.DEFAULT)
  scale = 1.0
  if unit.arm.method == "sobolev" and variant.normalization == "initial":
    scale = sobolev_terms.initial_scale(
        game.teacher.log_policy, data.states(split["scale"]), variant,
        seed=config.collect_seed)
  probe = study_training.make_probe(
      game.teacher.log_policy, data.states(split["probe"]),
      game.num_actions, seed=config.collect_seed)
  student_config = distill.StudentConfig(
      method=unit.arm.method, learning_rate=unit.learning_rate,
      sobolev_weight=unit.sobolev_weight, batch_size=config.batch_size,
      steps=unit.steps, eval_every=config.eval_every, seed=unit.seed,
      hidden=experiment.STUDENT_SIZES["hidden"],
      channels=tuple(experiment.STUDENT_SIZES["channels"]))
  bar.set_description(f"{unit.stage} {game.name} {unit.fraction:g} "
                      f"{unit.arm.name} lr={unit.learning_rate:g} "
                      f"lambda={unit.sobolev_weight:g} seed {unit.seed}")
  last = [0]
  writer = metrics.MetricWriter(os.path.join(path, "curve.csv"))

  def on_record(row):
    bar.update(row["step"] - last[0], val_kl=row["validation_kl"])
    last[0] = row["step"]
    writer.write(row)

  try:
    history, student = study_training.train(
        student_config, variant, game.teacher, data.states(split["train"]),
        data.log_probs(split["train"]), eval_sets, game.num_actions,
        scale=scale, probe=probe, on_record=on_record)
  finally:
    writer.close()
  experiment.save_student(student, path)
  store.save(settings, {"history": history, "num_actions": game.num_actions,
                        "scale": scale,
                        "train_seconds": history[-1]["train_seconds"]})


def train_units(config: Any, games: Dict[str, Game], units: Sequence[Unit],
                store: runs.RunStore, show_progress: Optional[bool] = None
               ) -> int:
  """Trains the units missing from the store, game by game.

  Returns:
    The number of students trained.
  """
  todo = _missing(config, games, units, store)
  if not todo:
    return 0
  with progress.Progress(total=sum(u.steps for u in todo),
                         desc="distillation study", unit="step",
                         disable=None if show_progress is None
                         else not show_progress) as bar:
    for name in config.games:
      mine = [u for u in todo if u.game == name]
      if not mine:
        continue
      data = GameData(config, games[name])
      for unit in mine:
        _train_one(config, games[name], data, unit, store, bar)
      del data
  return len(todo)


def partition(config: Any, units: Sequence[Unit], workers: int, times,
              eval_times) -> List[List[Unit]]:
  """Splits units among workers, balanced by estimated cost
  (`workers.balance`: largest first to the least-loaded worker)."""
  return workers_lib.balance(
      units, workers, cost=lambda u: unit_cost(config, u, times, eval_times),
      order=repr)


def _distinct_units(config, games, units) -> List[Unit]:
  """`units` without repeats of the same settings (e.g. a published arm
  whose settings are also the tuned ones: one student serves both)."""
  seen, out = set(), []
  for u in units:
    key = runs.RunStore.key(unit_settings(config, games[u.game], u))
    if key not in seen:
      seen.add(key)
      out.append(u)
  return out


def _missing(config, games, units, store):
  return [u for u in _distinct_units(config, games, units)
          if store.result(unit_settings(config, games[u.game], u)) is None]


def _run_stage(config: Any, stage: str, games: Dict[str, Game],
               units: Sequence[Unit], store: runs.RunStore, workdir: str,
               show_progress: Optional[bool]) -> None:
  """Trains a stage's missing units, here or in worker processes."""
  todo = _missing(config, games, units, store)
  if not todo:
    return
  if config.workers == 1:
    train_units(config, games, todo, store, show_progress)
    return
  workers_lib.start("distillation.study", workdir, stage, config.workers,
                    what="students",
                    env={"TF_NUM_INTRAOP_THREADS": str(config.tf_threads),
                         "TF_NUM_INTEROP_THREADS": "1"})


def _timing_for(config, games, workdir):
  times = step_times(config, games, workdir)
  eval_times = {n: eval_seconds_per_state(config, g, workdir)
                for n, g in games.items()}
  return times, eval_times


def work_on(workdir: str, stage: str, index: int, count: int,
            show_progress: Optional[bool] = None) -> int:
  """A worker: trains its share of a stage's missing students.

  Reads the study's settings from `<workdir>/config.json` (written by the
  process that started it).

  Returns:
    The number of students it trained.

  Raises:
    errors.UserError: for a bad stage or index, or a workdir with no study.
  """
  workers_lib.check(stage, STAGES, index, count)
  recorded = workers_lib.recorded_config(workdir)
  config = resolve(recorded)
  games = {g: open_game(config, workdir, g, collect=False)
           for g in config.games}
  store = runs.RunStore(workdir)
  if stage == "tune":
    units = tune_units(config)
  else:
    units = final_units(config, choose(config, games, store)[0])
  times, eval_times = _timing_for(config, games, workdir)
  mine = partition(config, _missing(config, games, units, store), count,
                   times, eval_times)[index]
  return train_units(config, games, mine, store, show_progress)


# ------------------------------------------------------------------- study


@dataclasses.dataclass
class Outcome:
  """What `run` returns."""
  workdir: str
  rows: List[Any]
  outputs: List[str]
  estimate: Dict[str, float]


def estimate(config: Any, games: Dict[str, Game], store: runs.RunStore,
             times, eval_times) -> Dict[str, float]:
  """CPU hours of the study: planned and still to do, per stage.

  Before tuning has finished, the final stage's 'best' arms are unknown and
  are costed as the most expensive tuned variant (an upper bound).
  """
  chosen, _ = choose(config, games, store)
  tune = tune_units(config)
  final = final_units(config, chosen)
  if any((u.game, u.fraction, u.arm) not in chosen for u in tune):
    # Tuning unfinished: cost every final arm as if chosen.
    worst = max(config.variants, key=lambda v: max(
        times[(g, _arm_key(Arm("sobolev", v)))] for g in config.games))
    guess = {}
    for u in tune:
      lr, w = u.learning_rate, u.sobolev_weight
      guess.setdefault((u.game, u.fraction, u.arm), (lr, w, 0.0))
    for g in config.games:
      for f in config.train_fractions:
        guess[(g, float(f), Arm("sobolev", worst))] = (1e-3, 1.0, -1.0)
    final = final_units(config, guess)
  out = {}
  for stage, units in (("tune", tune), ("final", final)):
    units = _distinct_units(config, games, units)
    total = sum(unit_cost(config, u, times, eval_times) for u in units)
    left = sum(unit_cost(config, u, times, eval_times)
               for u in _missing(config, games, units, store))
    out[f"{stage}_students"] = len(units)
    out[f"{stage}_cpu_hours"] = total / 3600
    out[f"{stage}_cpu_hours_left"] = left / 3600
  out["cpu_hours"] = out["tune_cpu_hours"] + out["final_cpu_hours"]
  out["cpu_hours_left"] = (out["tune_cpu_hours_left"] +
                           out["final_cpu_hours_left"])
  out["wall_hours_left"] = out["cpu_hours_left"] / config.workers
  return out


def describe_estimate(est: Dict[str, float], workers: int) -> str:
  return (f"Study cost (estimated from the measured step times): tuning "
          f"{est['tune_students']:.0f} students, {est['tune_cpu_hours']:.2f} "
          f"CPU-h ({est['tune_cpu_hours_left']:.2f} left); final "
          f"{est['final_students']:.0f} students, "
          f"{est['final_cpu_hours']:.2f} CPU-h "
          f"({est['final_cpu_hours_left']:.2f} left); total "
          f"{est['cpu_hours']:.2f} CPU-h, {est['cpu_hours_left']:.2f} left, "
          f"about {est['wall_hours_left']:.2f} h of wall time with {workers} "
          "worker(s) (at the timing's machine load).")


def run(config: Any, workdir: str, *, if_different: str = "refuse",
        show_progress: Optional[bool] = None, report_only: bool = False,
        estimate_only: bool = False, checked: bool = False) -> Outcome:
  """Runs (or resumes) the study and writes its report.

  Args:
    config: the study (`configs/study.py` fields).
    workdir: the output directory.
    if_different: 'refuse', 'fresh' or 'separate' (`workdirs`).
    show_progress: show progress bars (None: when stderr is a terminal).
    report_only: train nothing; report the finished students.
    estimate_only: collect rollouts and time the arms, print the cost, and
      stop.
    checked: `check(config)` already ran on the resolved config (the
      command line runs it first); else it runs here.

  Returns:
    The outcome (rows: `study_report.ResultRow`s).

  Raises:
    errors.ConfigError: for invalid settings (before any work).
    errors.WorkdirMismatchError: see `if_different`.
    errors.DivergenceError: if a student diverges.
  """
  config = resolve(config)
  if not checked:
    check(config)
  with studies.session(workdir, config, ignore=STUDY_EXTENT,
                       if_different=if_different, report_only=report_only,
                       recorded_config=configs.to_dict(config)) as directory:
    return _study(config, directory, show_progress, report_only,
                  estimate_only and not report_only,
                  out_dir=studies.report_dir(directory, report_only))


#: Where `--report_only` writes its report, inside the workdir.
REPORT_ONLY_DIR = studies.REPORT_ONLY_DIR


def plan(config: Any, workdir: str, report_only: bool = False,
         estimate_only: bool = False) -> str:
  """Checks the study as `run` does first; says what it would do (dry run).

  Raises:
    errors.ConfigError: for invalid settings or a missing teacher.
  """
  config = resolve(config)
  check(config)
  for game in config.games:
    if not os.path.isdir(teachers.default_dir(game)):
      raise errors.ConfigError(f"No committed teacher for {game!r} in "
                               f"{teachers.default_dir(game)}.")
  if report_only:
    return (f"would report the finished students of the study in "
            f"{workdir} into {os.path.join(workdir, REPORT_ONLY_DIR)}.")
  what = ("collect rollouts, time every arm and print the cost"
          if estimate_only else
          f"run the distillation study ({', '.join(config.games)}; "
          f"fractions {tuple(config.train_fractions)}; tuning on validation "
          f"games, then {config.seeds} seeds per arm) in {config.workers} "
          "worker process(es)")
  return f"would {what} into {workdir} (finished work is reused)."


def _study(config, workdir, show_progress, report_only, estimate_only,
           out_dir):
  os.makedirs(out_dir, exist_ok=True)
  games = {g: open_game(config, workdir, g, collect=not report_only)
           for g in config.games}
  store = runs.RunStore(workdir)
  times, eval_times = _timing_for(config, games, workdir)
  results.write(os.path.join(out_dir, "step_times.csv"), [
      study_report.StepTime(g, games[g].num_actions, k, s)
      for (g, k), s in sorted(times.items())])
  est = estimate(config, games, store, times, eval_times)
  print(describe_estimate(est, config.workers), flush=True)
  files.write_json(os.path.join(out_dir, "estimate.json"), est)
  if estimate_only:
    return Outcome(out_dir, [], [os.path.join(out_dir, "estimate.json")], est)
  diagnostics = [gradient_diagnostics.for_game(
      config, games[g], workdir, compute=not report_only)
                 for g in config.games]
  diagnostics = [d for d in diagnostics if d is not None]
  if not report_only:
    _run_stage(config, "tune", games, tune_units(config), store, workdir,
               show_progress)
  chosen, trials = choose(config, games, store)
  results.write(os.path.join(out_dir, "tuning.csv"), trials)
  final = final_units(config, chosen)
  if not report_only:
    _run_stage(config, "final", games, final, store, workdir, show_progress)
  finished = []
  for unit in final:
    settings = unit_settings(config, games[unit.game], unit)
    result = store.result(settings)
    if result is not None:
      finished.append((unit, runs.RunStore.key(settings), result))
  outputs = study_report.write(
      out_dir, finished, trials, diagnostics,
      [study_report.StepTime(g, games[g].num_actions, k, s)
       for (g, k), s in sorted(times.items())],
      config.bootstrap_samples, describe_estimate(est, config.workers))
  return Outcome(out_dir, [r for r in study_report.result_rows(finished)],
                 [os.path.join(out_dir, "tuning.csv"),
                  os.path.join(out_dir, "step_times.csv")] + outputs, est)
