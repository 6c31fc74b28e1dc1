r"""Command line entry point of the synthetic-gradients experiment (Table 1).

    python -m synthetic_gradients.run --workdir=results/sg_digits \
        --config.seeds=3 --config.epochs=20
    python -m synthetic_gradients.run \
        --config=synthetic_gradients/configs/cifar10.py \
        --config.data_dir=$TFDS_DIR --workdir=results/sg_cifar10

`--config` is a preset in `synthetic_gradients/configs/` (default: digits);
every field can be overridden as `--config.<field>=<value>`. Rerunning with
the same settings resumes (finished runs are kept, an interrupted one
continues from its last checkpoint); other settings in the same workdir are
refused unless `--fresh` (move the old results aside) or `--separate` (keep
them; write these settings to `<workdir>/sets/<hash>`). All the work is in
`synthetic_gradients.experiment.train_and_evaluate`.
"""

import os
from typing import Sequence

from sobolev.experiment import cli

cli.quiet()  # Before anything imports TensorFlow.

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "configs", "default.py")


def define_flags() -> None:
  """Defines `--config` and the workdir flags.

  Called only when the module runs as a program: the experiment CLIs share
  flag names, so importing this module (as the tests do) defines nothing.
  """
  cli.define_config_flag(
      DEFAULT_CONFIG, "A preset in synthetic_gradients/configs/ (fields "
      "overridable as --config.<field>=<value>).", lock_config=True)
  cli.define_workdir_flags()


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # No TensorFlow INFO lines.
  # Imported here so that `--help` and flag errors do not build anything.
  from synthetic_gradients import experiment  # pylint: disable=g-import-not-at-top
  if cli.dry_run():
    cli.say_dry_run(experiment.plan(FLAGS.config, FLAGS.workdir))
    return
  rows = experiment.train_and_evaluate(FLAGS.config, FLAGS.workdir,
                                       if_different=cli.if_different())
  where = experiment.results_dir(FLAGS.config, FLAGS.workdir)
  print(f"{len(rows)} runs; results in {where} (results.md, "
        "results.csv, curves.png; TensorBoard: tensorboard --logdir "
        f"{where}/tb)")


if __name__ == "__main__":
  cli.run(main, define_flags)
