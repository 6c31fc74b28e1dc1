r"""Protocol tuning on VALIDATION data (never the test set).

    python -m benchmarks.tune --workdir=./results/tuning \
        --config.candidates=naive,base,nw0.3

Trains regular and Sobolev models with each candidate protocol of
`configs/tune.py` on training sets drawn with tuning seeds (100, 101, ...;
the sweep uses 0, 1, ...), scores them on the validation draws of
`benchmarks.data` and ranks the candidates with
`sobolev.experiment.tuning.grid_search` (trials in `trials.csv`, reused only
for the same protocol, functions, sizes and seeds). Writes `tuning.csv` (one
row per model) and `tuning.md` (per candidate, size and method) in the
workdir. Models shared by candidates (e.g. the regular models of candidates
that differ only in the gradient weight) are trained once. PROTOCOL.md
records what was tried.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags

from benchmarks import protocol_tuning
# pylint: enable=g-import-not-at-top,g-bad-import-order

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "tune.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "The tuning config file.")
  cli.define_workdir_flags(default="./results/tuning")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if cli.dry_run():
    cli.say_dry_run(protocol_tuning.plan(FLAGS.config, FLAGS.workdir))
    return
  outcome = protocol_tuning.tune(FLAGS.config, FLAGS.workdir,
                                 if_different=cli.if_different())
  with open(outcome.outputs[1], encoding="utf-8") as f:
    print(f.read())
  print("Wrote " + ", ".join(os.path.relpath(p) for p in outcome.outputs))


if __name__ == "__main__":
  cli.run(main, define_flags)
