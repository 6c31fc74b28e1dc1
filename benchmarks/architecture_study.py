r"""Runs the model-class study (issue 22): which networks gain most.

    python -m benchmarks.architecture_study \
        --config=benchmarks/configs/architecture.py \
        --workdir=./results/study_architecture
    python -m benchmarks.architecture_study \
        --config=benchmarks/configs/architecture.py \
        --workdir=./results/study_architecture --report_only  # while it runs

Screening on validation data, then a final comparison on the test sets
(`benchmarks.architecture_runner`); resumable. Writes `screening.csv`,
`runs.csv`, `gaps.csv`, `study.md` and figures into the workdir.
`--worker=I/N --stage=screen|final` is what the study starts for each of
its `workers` processes; it is not for direct use.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags

from benchmarks import architecture_runner
from sobolev.experiment import studies
# pylint: enable=g-import-not-at-top,g-bad-import-order

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "architecture.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  studies.define_flags(_DEFAULT_CONFIG, "./results/study_architecture",
                       what="models", stages=architecture_runner.STAGES)


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  share = studies.worker_share()
  if share is not None:
    architecture_runner.work_on(FLAGS.workdir, FLAGS.stage, *share)
    return
  if cli.dry_run():
    cli.say_dry_run(architecture_runner.plan(FLAGS.config, FLAGS.workdir,
                                             report_only=FLAGS.report_only))
    return
  outcome = architecture_runner.run(FLAGS.config, FLAGS.workdir,
                                    if_different=cli.if_different(),
                                    report_only=FLAGS.report_only)
  studies.show(outcome, "models")


if __name__ == "__main__":
  cli.run(main, define_flags)
