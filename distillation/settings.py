"""Checks of the Figure 4 settings (`configs/default.py`), before any work.

Light on purpose (no TensorFlow): the command line checks the settings
before the experiment's modules start TensorFlow, so a bad setting is one
line on the terminal.
"""

from typing import Any, List, Sequence, Tuple

from distillation import atari_env
from sobolev.experiment import configs
from sobolev.experiment import errors


def check_finite_and_game(config: Any) -> None:
  """Every number of `config` finite, and `config.game` a known game.

  Shared by the Figure 4 and the teacher-training checks.

  Raises:
    errors.ConfigError: naming the field.
  """
  configs.check_finite(config)
  try:
    atari_env.check_game(config.game)
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None


def check(config: Any) -> None:
  """Checks every setting before any work starts.

  Args:
    config: the Figure 4 `ConfigDict` (`configs/default.py`).

  Raises:
    errors.ConfigError: naming the first bad field.
  """
  check_finite_and_game(config)
  fractions = config.train_fractions
  if isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
    fractions = (fractions,)
  if (isinstance(fractions, (str, bytes)) or
      not isinstance(fractions, Sequence) or not fractions):
    raise errors.ConfigError("`train_fractions` must be a non-empty sequence "
                             f"of numbers in (0, 1), got {fractions!r}.")
  for name in ("seeds", "steps", "eval_every", "batch_size",
               "num_projections", "num_states", "collect_envs",
               "max_eval_states", "tf_threads"):
    configs.check_int(name, config[name], low=1)
  configs.check_int("collect_seed", config.collect_seed, low=0)
  configs.check_int("stall_patience", config.get("stall_patience", 3), low=0)
  if config.tune_steps is not None:
    configs.check_int("tune_steps", config.tune_steps, low=1)
  configs.check_number("validation_fraction", config.validation_fraction,
                       0.0, 1.0, high_inclusive=False)
  for name in ("tune", "tune_per_fraction", "export_students"):
    if not isinstance(config[name], bool):
      raise errors.ConfigError(f"`{name}` must be True or False, got "
                               f"{config[name]!r}.")
  if config.tune_fraction is not None and config.tune_per_fraction:
    raise errors.ConfigError("Give `tune_fraction` or `tune_per_fraction`, "
                             "not both.")
  named = [("train_fractions", f) for f in fractions]
  if config.tune_fraction is not None:
    named.append(("tune_fraction", config.tune_fraction))
  for name, f in named:
    configs.check_number(name, f, 0.0, 1.0, low_inclusive=False,
                         high_inclusive=False)
    if f + config.validation_fraction >= 1.0:
      raise errors.ConfigError(
          f"`{name}` {f} + validation_fraction {config.validation_fraction} "
          "must be < 1.")
  if config.tune and config.validation_fraction <= 0.0:
    raise errors.ConfigError("`tune` needs `validation_fraction` > 0.")
  for name in ("learning_rate_regular", "learning_rate_sobolev"):
    configs.check_number(name, config[name], 0.0, low_inclusive=False)
  configs.check_number("sobolev_weight", config.sobolev_weight, 0.0)
  for name in ("teacher_dir", "rollouts_dir"):
    if config[name] is not None and (not isinstance(config[name], str) or
                                     not config[name]):
      raise errors.ConfigError(f"`{name}` must be a non-empty path or None, "
                               f"got {config[name]!r}.")
  if config.tune:
    regular, sob = tuning_grids(config)
    if not regular or not sob:
      raise errors.ConfigError("`tune_regular_lrs` and `tune_sobolev_grid` "
                               "must be non-empty when tuning.")
    if len(regular) != len(sob):
      raise errors.ConfigError(
          f"Tuning budgets differ: `tune_regular_lrs` has {len(regular)} "
          f"trials, `tune_sobolev_grid` {len(sob)}; give both methods the "
          "same number.")


def tuning_grids(config: Any) -> Tuple[List[Tuple[float, float]],
                                       List[Tuple[float, float]]]:
  """The tuning grids as `(lr, lambda)` lists (lambda 0 for regular).

  Raises:
    errors.ConfigError: for malformed entries (naming the field).
  """
  lrs = config.tune_regular_lrs
  if isinstance(lrs, (int, float)) and not isinstance(lrs, bool):
    lrs = (lrs,)
  regular = []
  for lr in lrs:
    configs.check_number("tune_regular_lrs", lr, 0.0, low_inclusive=False)
    regular.append((float(lr), 0.0))
  pairs = config.tune_sobolev_grid
  if (isinstance(pairs, Sequence) and len(pairs) == 2 and
      all(isinstance(p, (int, float)) for p in pairs)):
    pairs = (tuple(pairs),)  # One pair given on the command line.
  sob = []
  for pair in pairs:
    if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or
        len(pair) != 2):
      raise errors.ConfigError(
          "`tune_sobolev_grid` entries must be (learning rate, lambda) "
          f"pairs, got {pair!r}.")
    configs.check_number("tune_sobolev_grid learning rate", pair[0], 0.0,
                         low_inclusive=False)
    configs.check_number("tune_sobolev_grid lambda", pair[1], 0.0)
    sob.append((float(pair[0]), float(pair[1])))
  return regular, sob


def fractions(config: Any) -> Tuple[float, ...]:
  f = config.train_fractions
  if isinstance(f, (int, float)):
    return (float(f),)
  return tuple(float(x) for x in f)
