r"""Figure 4: regular vs Sobolev policy distillation of an Atari teacher.

Usage:
  python -m distillation.run --workdir=results/distill_breakout \
      --config.game=Breakout --config.train_fractions=0.01,0.05,0.1 \
      --config.seeds=3 --config.steps=2000
  python -m distillation.run --config=distillation/configs/breakout.py \
      --workdir=results/fig4_Breakout          # the published run

Writes results.csv (columns game,train_fraction,method,seed,step,
test_action_error,test_kl), results.md, figure4.png, TensorBoard events in
tb/ and provenance.json into --workdir. Re-running the same command reuses
the rollouts and skips finished students; other settings in the same
workdir are refused unless --fresh or --separate is given.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "configs", "default.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(CONFIG_FILE, "Experiment settings (configs/*.py).")
  cli.define_workdir_flags()


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)  # No TensorFlow INFO lines.
  from distillation import settings  # pylint: disable=g-import-not-at-top
  config = FLAGS.config
  settings.check(config)  # Before TensorFlow starts.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  if cli.dry_run():
    cli.say_dry_run(experiment.plan(config, FLAGS.workdir, checked=True))
    return
  tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
  experiment.train_and_evaluate(config, FLAGS.workdir,
                                if_different=cli.if_different(), checked=True)


if __name__ == "__main__":
  cli.run(main, define_flags)
