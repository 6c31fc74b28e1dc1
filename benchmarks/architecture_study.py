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

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags

from benchmarks import architecture_runner
from sobolev.experiment import errors
# pylint: enable=g-import-not-at-top,g-bad-import-order

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "architecture.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "The study's config file.")
  cli.define_workdir_flags(default="./results/study_architecture")
  flags.DEFINE_bool("report_only", False,
                    "Train nothing; report the finished models.")
  flags.DEFINE_string("worker", None, "Internal: I/N, train share I of N.")
  flags.DEFINE_enum("stage", "screen", architecture_runner.STAGES,
                    "Internal: the stage a --worker trains.")


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.worker:
    try:
      index, count = (int(n) for n in FLAGS.worker.split("/"))
    except ValueError:
      raise errors.UserError(f"`--worker` must be I/N, got "
                             f"{FLAGS.worker!r}.") from None
    architecture_runner.work_on(FLAGS.workdir, FLAGS.stage, index, count)
    return
  if cli.dry_run():
    cli.say_dry_run(architecture_runner.plan(FLAGS.config, FLAGS.workdir,
                                             report_only=FLAGS.report_only))
    return
  outcome = architecture_runner.run(FLAGS.config, FLAGS.workdir,
                                    if_different=cli.if_different(),
                                    report_only=FLAGS.report_only)
  with open(os.path.join(outcome.workdir, "study.md"),
            encoding="utf-8") as f:
    print(f.read())
  print(f"{len(outcome.rows)} models. Wrote " +
        ", ".join(os.path.relpath(p) for p in outcome.outputs))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
