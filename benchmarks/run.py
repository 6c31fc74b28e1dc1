r"""Runs the benchmarks experiment (the paper's Figures 2 and 3).

    python -m benchmarks.run --workdir=./results/benchmarks   # default sweep
    python -m benchmarks.run --workdir=/tmp/bench \
        --config.functions=booth,styblinski_tang --config.sizes=20 \
        --config.seeds=1 --config.steps=200

The sweep is `configs/default.py` (`--config=<file>` for another; every field
can be overridden as `--config.<field>=<value>`). Resumable: finished models
are reused when their settings are identical; a workdir holding results of
other protocol settings is refused unless `--fresh` (move them aside) or
`--separate` (keep them; write to `<workdir>/sets/<hash>`). See
`benchmarks.experiment` for the outputs.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags

from benchmarks import experiment
from benchmarks import report
# pylint: enable=g-import-not-at-top,g-bad-import-order

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "default.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program: the CLIs
  share flag names, so importing the module must not define them)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "The sweep's config file.")
  cli.define_workdir_flags(default="./results/benchmarks")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if cli.dry_run():
    cli.say_dry_run(experiment.plan(FLAGS.config, FLAGS.workdir))
    return
  outcome = experiment.train_and_evaluate(
      FLAGS.config, FLAGS.workdir, if_different=cli.if_different())
  print(report.markdown(outcome.rows))
  print(f"Wrote {len(outcome.rows)} runs: " +
        ", ".join(os.path.relpath(p) for p in outcome.outputs))


if __name__ == "__main__":
  cli.run(main, define_flags)
