r"""Figure 4: regular vs Sobolev policy distillation of an Atari teacher.

Usage:
  python -m distillation.run --game=Breakout --train_fractions=0.01,0.05,0.1 \
      --seeds=3 --steps=2000 --workdir=results/distill_breakout

Writes results.csv (columns game,train_fraction,method,seed,step,
test_action_error,test_kl), results.md and figure4.png into --workdir.
Re-running the same command reuses the rollouts and skips finished runs.
"""

from absl import app
from absl import flags

from distillation import atari_env
from distillation import rollouts

_GAME = None
_FRACTIONS = None
_SEEDS = None
_STEPS = None
_EVAL_EVERY = None
_BATCH = None
_LR_REG = None
_LR_SOB = None
_LAMBDA = None
_NUM_STATES = None
_COLLECT_SEED = None
_VAL = None
_MAX_EVAL = None
_TUNE = None
_TUNE_STEPS = None
_TUNE_FRACTION = None
_TUNE_PER_FRACTION = None
_REG_GRID = None
_SOB_GRID = None
_TEACHER_DIR = None
_ROLLOUTS_DIR = None
_WORKDIR = None
_TF_THREADS = None


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the CLIs share flag names
  (`--game`, `--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  global _GAME, _FRACTIONS, _SEEDS, _STEPS, _EVAL_EVERY, _BATCH, _LR_REG
  global _LR_SOB, _LAMBDA, _NUM_STATES, _COLLECT_SEED, _VAL, _MAX_EVAL, _TUNE
  global _TUNE_STEPS, _TUNE_FRACTION, _TUNE_PER_FRACTION, _REG_GRID
  global _SOB_GRID, _TEACHER_DIR, _ROLLOUTS_DIR
  global _WORKDIR, _TF_THREADS
  _GAME = flags.DEFINE_string("game", "Pong",
                              f"One of {sorted(atari_env.GAMES)}.")
  _FRACTIONS = flags.DEFINE_list("train_fractions", ["0.01", "0.05", "0.1"],
                                 "Fractions of the states used for training.")
  _SEEDS = flags.DEFINE_integer("seeds", 3, "Number of seeds (0..N-1).")
  _STEPS = flags.DEFINE_integer("steps", 2000, "Training steps per student.")
  _EVAL_EVERY = flags.DEFINE_integer("eval_every", 100,
                                     "Steps between test evaluations.")
  _BATCH = flags.DEFINE_integer("batch_size", 32, "Minibatch size.")
  _LR_REG = flags.DEFINE_float("learning_rate_regular", 1e-3,
                               "Adam learning rate, regular distillation.")
  _LR_SOB = flags.DEFINE_float("learning_rate_sobolev", 1e-3,
                               "Adam learning rate, Sobolev distillation.")
  _LAMBDA = flags.DEFINE_float("sobolev_weight", 1.0,
                               "lambda of the Sobolev term.")
  _NUM_STATES = flags.DEFINE_integer("num_states", 100_000,
                                     "States to record from the teacher.")
  _COLLECT_SEED = flags.DEFINE_integer("collect_seed", 0,
                                       "Seed of the rollouts and the split.")
  _VAL = flags.DEFINE_float("validation_fraction", 0.1,
                            "Fraction of states in validation games.")
  _MAX_EVAL = flags.DEFINE_integer("max_eval_states", 5000,
                                   "Held-out states used per evaluation.")
  _TUNE = flags.DEFINE_boolean(
      "tune", False, "Tune lr (and lambda) of both methods on validation "
      "games with the same number of trials first.")
  _TUNE_FRACTION = flags.DEFINE_float(
      "tune_fraction", None, "Training fraction whose split tuning uses "
      "(default: the smallest of --train_fractions).")
  _TUNE_PER_FRACTION = flags.DEFINE_boolean(
      "tune_per_fraction", False, "Tune separately on every training "
      "fraction's split (len(--train_fractions) times the tuning cost).")
  _TUNE_STEPS = flags.DEFINE_integer("tune_steps", None,
                                     "Steps per tuning trial (default --steps).")
  _REG_GRID = flags.DEFINE_list(
      "tune_regular_lrs", ["1e-4", "2e-4", "5e-4", "1e-3", "2e-3", "5e-3"],
      "Learning rates tried for regular distillation.")
  _SOB_GRID = flags.DEFINE_list(
      "tune_sobolev_grid",
      ["5e-4:0.01", "5e-4:0.1", "5e-4:1", "2e-3:0.01", "2e-3:0.1", "2e-3:1"],
      "lr:lambda pairs tried for Sobolev distillation (as many as "
      "--tune_regular_lrs: the same budget).")
  _TEACHER_DIR = flags.DEFINE_string("teacher_dir", None,
                                     "Teacher directory (default: committed).")
  _ROLLOUTS_DIR = flags.DEFINE_string("rollouts_dir", None,
                                      "Rollout directory (default: workdir).")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
  _TF_THREADS = flags.DEFINE_integer("tf_threads", 1, "TF intra-op threads.")
  flags.mark_flag_as_required("workdir")


def parse_fractions(values) -> tuple:
  """Parses and checks --train_fractions; raises ValueError if bad."""
  return tuple(rollouts.check_fraction(v, "train_fractions") for v in values)


def parse_grids(regular_lrs, sobolev_pairs) -> tuple:
  """Parses the tuning grids into `((lr, 0.0), ...), ((lr, lambda), ...)`."""
  try:
    regular = tuple((float(lr), 0.0) for lr in regular_lrs)
    sob = tuple((float(p.split(":")[0]), float(p.split(":")[1]))
                for p in sobolev_pairs)
  except (ValueError, IndexError):
    raise ValueError("--tune_regular_lrs must be numbers and "
                     "--tune_sobolev_grid lr:lambda pairs, got "
                     f"{regular_lrs} and {sobolev_pairs}.") from None
  return regular, sob


def main(argv):
  del argv
  atari_env.check_game(_GAME.value)
  fractions = parse_fractions(_FRACTIONS.value)
  regular_grid, sobolev_grid = parse_grids(_REG_GRID.value, _SOB_GRID.value)
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(_TF_THREADS.value)
  config = experiment.RunConfig(
      game=_GAME.value, train_fractions=fractions, seeds=_SEEDS.value,
      steps=_STEPS.value, eval_every=_EVAL_EVERY.value,
      batch_size=_BATCH.value, learning_rate_regular=_LR_REG.value,
      learning_rate_sobolev=_LR_SOB.value, sobolev_weight=_LAMBDA.value,
      num_states=_NUM_STATES.value, collect_seed=_COLLECT_SEED.value,
      validation_fraction=_VAL.value, max_eval_states=_MAX_EVAL.value,
      tune=_TUNE.value, tune_steps=_TUNE_STEPS.value,
      tune_fraction=_TUNE_FRACTION.value,
      tune_per_fraction=_TUNE_PER_FRACTION.value,
      teacher_dir=_TEACHER_DIR.value, rollouts_dir=_ROLLOUTS_DIR.value,
      regular_grid=regular_grid, sobolev_grid=sobolev_grid)
  experiment.train_and_evaluate(config, _WORKDIR.value)


if __name__ == "__main__":
  define_flags()
  app.run(main)
