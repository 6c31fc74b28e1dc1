r"""Runs the distillation study of issue 20 (Figure 4's size and causes).

    python -m distillation.study --workdir=results/distill_study
    python -m distillation.study --workdir=results/distill_study \
        --estimate_only          # rollouts + step times + CPU-hour estimate
    python -m distillation.study --workdir=results/distill_study \
        --report_only            # report the finished students (while it runs)

Settings: `distillation/configs/study.py`, each as `--config.<field>=...`
(e.g. `--config.games=Breakout,SpaceInvaders,Pong`,
`--config.train_fractions=0.01,0.05`, `--config.workers=1`). Resumable:
re-running the same command reuses the rollouts, timings, trials and
finished students (`distillation.study_runner`). Writes, into --workdir,
`distillation_study_results.csv`, `distillation_study_gaps.csv`,
`distillation_study_curves.csv`, `tuning.csv`, `step_times.csv`,
`teacher_gradients.csv`, `estimate.json`, `study.md` and the figures
(`distillation.study_report`).

`--worker=I/N --stage=tune|final` is what the study starts for each of its
`workers` processes; it is not for direct use.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order,wrong-import-position
from absl import flags
from absl import logging

from sobolev.experiment import studies
# pylint: enable=g-import-not-at-top,g-bad-import-order,wrong-import-position

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "study.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  studies.define_flags(_DEFAULT_CONFIG, "./results/distill_study",
                       what="students", stages=("tune", "final"))
  flags.DEFINE_bool("estimate_only", False,
                    "Collect rollouts, time every arm, print the cost in CPU "
                    "hours and stop.")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from distillation import study_runner  # pylint: disable=g-import-not-at-top
  share = studies.worker_share()
  if share is not None:
    # One thread each (the parent also sets TF_NUM_INTRAOP_THREADS).
    tf.config.threading.set_intra_op_parallelism_threads(
        int(os.environ.get("TF_NUM_INTRAOP_THREADS", "1")))
    study_runner.work_on(FLAGS.workdir, FLAGS.stage, *share)
    return
  if cli.dry_run():
    cli.say_dry_run(study_runner.plan(FLAGS.config, FLAGS.workdir,
                                      report_only=FLAGS.report_only,
                                      estimate_only=FLAGS.estimate_only))
    return
  config = study_runner.resolve(FLAGS.config)
  study_runner.check(config)  # One line for a bad setting, before any work.
  tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
  outcome = study_runner.run(config, FLAGS.workdir,
                             if_different=cli.if_different(),
                             report_only=FLAGS.report_only,
                             estimate_only=FLAGS.estimate_only,
                             checked=True)
  studies.show(outcome, "final students", report=not FLAGS.estimate_only)


if __name__ == "__main__":
  cli.run(main, define_flags)
