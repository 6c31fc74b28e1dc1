r"""Runs a study of the benchmarks (issue 15): budgets, protocols, dimension.

    python -m benchmarks.study --config=benchmarks/configs/budget.py \
        --workdir=./results/study_budget
    python -m benchmarks.study --config=benchmarks/configs/protocols.py \
        --workdir=./results/study_protocols
    python -m benchmarks.study --config=benchmarks/configs/dimension.py \
        --workdir=./results/study_dimension
    python -m benchmarks.study --config=benchmarks/configs/budget.py \
        --workdir=./results/study_budget --report_only   # while it runs

Every field can be overridden as `--config.<field>=<value>` (e.g.
`--config.budgets=4000,16000,64000`). Resumable: finished models are reused
when their settings are identical (`benchmarks.study_runner`); the report
(`study.md`, `gaps.csv`, `study.csv`, figures; `benchmarks.study_report`)
is rewritten at the end, or from the finished models alone with
`--report_only`.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags

from benchmarks import study_runner
from sobolev.experiment import studies
# pylint: enable=g-import-not-at-top,g-bad-import-order

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "budget.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  studies.define_flags(_DEFAULT_CONFIG, "./results/study_budget",
                       what="models")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if cli.dry_run():
    cli.say_dry_run(study_runner.plan(FLAGS.config, FLAGS.workdir,
                                      report_only=FLAGS.report_only))
    return
  outcome = study_runner.run(FLAGS.config, FLAGS.workdir,
                             if_different=cli.if_different(),
                             report_only=FLAGS.report_only)
  studies.show(outcome, "models")


if __name__ == "__main__":
  cli.run(main, define_flags)
