r"""Evaluates a teacher on full games (no life-loss resets).

Usage:
  python -m distillation.evaluate_teacher --game=Pong --episodes=10

Prints one line per game and, last, `mean_return=<float> std_return=<float>`
(sample std, ddof=1).
The teacher is loaded from `distillation/teachers/<game>/` unless
`--teacher_dir` is given. Actions are sampled from the policy (as A3C is
evaluated) unless `--greedy`.
"""

from typing import Sequence

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from distillation import atari_env
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the CLIs share flag names
  (`--game`, `--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  flags.DEFINE_string("game", "Pong",
                      f"One of {sorted(atari_env.GAMES)}.")
  flags.DEFINE_integer("episodes", 10, "Number of games.")
  flags.DEFINE_string(
      "teacher_dir", None, "Teacher directory (default: the committed one).")
  flags.DEFINE_integer("seed", 12345, "Seed of envs and sampling.")
  flags.DEFINE_boolean("greedy", False, "Take argmax actions.")
  flags.DEFINE_integer("tf_threads", 1, "TF intra-op threads.")
  flags.DEFINE_boolean(
      "record", False, "Store the score in the teacher's teacher.json "
      "(eval_mean_return, eval_std_return, eval_episodes, eval_seed).")
  cli.define_dry_run_flag()


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)
  try:
    atari_env.check_game(FLAGS.game)
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  if FLAGS.episodes < 1:
    raise errors.ConfigError(f"`--episodes` must be >= 1, got "
                             f"{FLAGS.episodes}.")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from distillation import evaluation  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  # A dry run plays nothing, so it leaves the thread count alone (TensorFlow
  # refuses a change once it runs, e.g. in a process that ran other dry runs).
  if not cli.dry_run():
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.tf_threads)
  from sobolev.experiment import stats  # pylint: disable=g-import-not-at-top
  try:
    net, meta = teachers.load(FLAGS.game, FLAGS.teacher_dir)
  except ValueError as e:
    raise errors.ConfigError(f"`--teacher_dir`: {e}") from None
  if cli.dry_run():
    cli.say_dry_run(
        f"would play {FLAGS.episodes} full games of {FLAGS.game} with the "
        f"teacher in {FLAGS.teacher_dir or teachers.default_dir(FLAGS.game)}"
        f" ({meta.get('frames')} frames; "
        f"{'greedy' if FLAGS.greedy else 'sampled'} actions, seed "
        f"{FLAGS.seed})" + (" and record the score in its teacher.json."
                             if FLAGS.record else "."))
    return
  print(f"Teacher: {meta.get('game')} trained {meta.get('frames')} frames.",
        flush=True)
  returns = evaluation.evaluate(
      lambda obs: net(obs)[0], FLAGS.game, FLAGS.episodes, seed=FLAGS.seed,
      greedy=FLAGS.greedy,
      progress=lambda i, r: print(f"episode={i} return={r}", flush=True))
  if FLAGS.record:
    mean, std = stats.mean_std(returns)
    teachers.update_meta(
        FLAGS.teacher_dir or teachers.default_dir(FLAGS.game),
        eval_mean_return=mean, eval_std_return=std,
        eval_std_kind="sample (ddof=1)", eval_episodes=len(returns),
        eval_seed=FLAGS.seed, eval_greedy=FLAGS.greedy)
  print(evaluation.summarize(returns), flush=True)


if __name__ == "__main__":
  cli.run(main, define_flags)
