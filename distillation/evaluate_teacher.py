r"""Evaluates a teacher on full games (no life-loss resets).

Usage:
  python -m distillation.evaluate_teacher --game=Pong --episodes=10

Prints one line per game and, last, `mean_return=<float> std_return=<float>`
(sample std, ddof=1).
The teacher is loaded from `distillation/teachers/<game>/` unless
`--teacher_dir` is given. Actions are sampled from the policy (as A3C is
evaluated) unless `--greedy`.
"""

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from distillation import atari_env
# pylint: enable=g-import-not-at-top,wrong-import-position

_GAME = None
_EPISODES = None
_TEACHER_DIR = None
_SEED = None
_GREEDY = None
_TF_THREADS = None
_RECORD = None


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the CLIs share flag names
  (`--game`, `--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  global _GAME, _EPISODES, _TEACHER_DIR, _SEED, _GREEDY, _TF_THREADS, _RECORD
  _GAME = flags.DEFINE_string("game", "Pong",
                              f"One of {sorted(atari_env.GAMES)}.")
  _EPISODES = flags.DEFINE_integer("episodes", 10, "Number of games.")
  _TEACHER_DIR = flags.DEFINE_string(
      "teacher_dir", None, "Teacher directory (default: the committed one).")
  _SEED = flags.DEFINE_integer("seed", 12345, "Seed of envs and sampling.")
  _GREEDY = flags.DEFINE_boolean("greedy", False, "Take argmax actions.")
  _TF_THREADS = flags.DEFINE_integer("tf_threads", 1, "TF intra-op threads.")
  _RECORD = flags.DEFINE_boolean(
      "record", False, "Store the score in the teacher's teacher.json "
      "(eval_mean_return, eval_std_return, eval_episodes, eval_seed).")
  cli.define_dry_run_flag()


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  try:
    atari_env.check_game(_GAME.value)
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  if _EPISODES.value < 1:
    raise errors.ConfigError(f"`--episodes` must be >= 1, got "
                             f"{_EPISODES.value}.")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from distillation import evaluation  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  # A dry run plays nothing, so it leaves the thread count alone (TensorFlow
  # refuses a change once it runs, e.g. in a process that ran other dry runs).
  if not cli.dry_run():
    tf.config.threading.set_intra_op_parallelism_threads(_TF_THREADS.value)
  from sobolev.experiment import stats  # pylint: disable=g-import-not-at-top
  try:
    net, meta = teachers.load(_GAME.value, _TEACHER_DIR.value)
  except ValueError as e:
    raise errors.ConfigError(f"`--teacher_dir`: {e}") from None
  if cli.dry_run():
    cli.say_dry_run(
        f"would play {_EPISODES.value} full games of {_GAME.value} with the "
        f"teacher in {_TEACHER_DIR.value or teachers.default_dir(_GAME.value)}"
        f" ({meta.get('frames')} frames; "
        f"{'greedy' if _GREEDY.value else 'sampled'} actions, seed "
        f"{_SEED.value})" + (" and record the score in its teacher.json."
                             if _RECORD.value else "."))
    return
  print(f"Teacher: {meta.get('game')} trained {meta.get('frames')} frames.",
        flush=True)
  returns = evaluation.evaluate(
      lambda obs: net(obs)[0], _GAME.value, _EPISODES.value, seed=_SEED.value,
      greedy=_GREEDY.value,
      progress=lambda i, r: print(f"episode={i} return={r}", flush=True))
  if _RECORD.value:
    mean, std = stats.mean_std(returns)
    teachers.update_meta(
        _TEACHER_DIR.value or teachers.default_dir(_GAME.value),
        eval_mean_return=mean, eval_std_return=std,
        eval_std_kind="sample (ddof=1)", eval_episodes=len(returns),
        eval_seed=_SEED.value, eval_greedy=_GREEDY.value)
  print(evaluation.summarize(returns), flush=True)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
