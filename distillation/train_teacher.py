r"""Trains an A2C (synchronous A3C) Atari teacher; resumable.

Usage:
  python -m distillation.train_teacher --workdir=results/teacher_Pong \
      --config.game=Pong

Settings: `distillation/configs/teacher.py` (every field as
`--config.<field>=<value>`). Re-running the same command resumes from the
newest intact checkpoint; other settings in the same workdir are refused
unless --fresh or --separate is given (`total_frames`, the logging and
checkpoint intervals and thread counts may change). To continue a committed
teacher in a fresh checkout (no checkpoint in the workdir), add
`--config.init_from=distillation/teachers/<game>`. The latest network is
exported to `<workdir>/export/` (a teacher directory: copy it to
`distillation/teachers/<game>/` to make it the default teacher).
TensorBoard: `tensorboard --logdir=<workdir>/tb`.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "configs", "teacher.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(CONFIG_FILE, "Teacher settings (configs/teacher.py).")
  cli.define_workdir_flags()


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)  # No TensorFlow INFO lines.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from distillation import teacher_training  # pylint: disable=g-import-not-at-top
  config = FLAGS.config
  teacher_training.check(config)
  if cli.dry_run():
    cli.say_dry_run(teacher_training.plan(config, FLAGS.workdir, checked=True))
    return
  tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  summary = teacher_training.train(config, FLAGS.workdir,
                                   if_different=cli.if_different(),
                                   checked=True)
  print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
  cli.run(main, define_flags)
