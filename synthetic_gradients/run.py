r"""Command line entry point for the synthetic-gradients experiment (Table 1).

  python -m synthetic_gradients.run --dataset=digits \
      --methods=noprop,direct,vfbn,critic,sobolev,backprop --seeds=3 \
      --epochs=30 --workdir=results/sg_digits

Flags left unset take the dataset's preset (`synthetic_gradients.config`).
Writes `results.csv`, `results.md` and `curves.png` in `--workdir`; rerunning
skips finished runs.
"""

from typing import Any, Mapping

from absl import app
from absl import flags

from synthetic_gradients import config as config_lib
from synthetic_gradients import data
from synthetic_gradients import decoupled

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the experiment CLIs share
  flag names (`--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  flags.DEFINE_enum("dataset", "digits", list(data.DATASETS), "Dataset.")
  flags.DEFINE_list("methods", list(decoupled.METHODS),
                    f"Comma-separated methods among {decoupled.METHODS}.")
  flags.DEFINE_integer("seeds", 3, "Number of seeds per method.")
  flags.DEFINE_integer("first_seed", 0, "First seed.")
  flags.DEFINE_integer("epochs", None, "Training epochs (preset if unset).")
  flags.DEFINE_string("workdir", None, "Output directory.")
  flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory.")
  flags.DEFINE_boolean("download", False, "Let tfds download the dataset.")
  flags.DEFINE_integer("batch_size", None, "Global batch size.")
  flags.DEFINE_integer("num_modules", None,
                       "SG modules (= parts - 1); ResNet-50: 1 or 3.")
  flags.DEFINE_list("widths", None, "Conv net stage widths.")
  flags.DEFINE_integer("image_size", None, "Preprocessed image side.")
  flags.DEFINE_integer("resnet_width_divisor", None,
                       "Divides ResNet-50 channels (tests only).")
  flags.DEFINE_string("optimizer", None, "adam or momentum.")
  flags.DEFINE_float("learning_rate", None, "Base learning rate.")
  flags.DEFINE_string("schedule", None, "cosine or constant.")
  flags.DEFINE_float("weight_decay", None, "L2 on main-network kernels.")
  flags.DEFINE_list("sobolev_weights", None,
                    "w0,w1: value and gradient weights of the sobolev method.")
  flags.DEFINE_string("value_target", None, "bootstrap or true_loss.")
  flags.DEFINE_float("critic_width_multiplier", None,
                     "Critic conv width relative to the main stages above.")
  flags.DEFINE_string("strategy", None, "none, replicator or multi_worker.")
  flags.DEFINE_integer("max_train_examples", None, "Truncate the train set.")
  flags.DEFINE_integer("max_test_examples", None, "Truncate the test set.")
  flags.DEFINE_integer("checkpoint_every", None,
                       "Epochs between checkpoints (0: none).")


_OVERRIDES = ("epochs", "data_dir", "batch_size", "image_size",
              "resnet_width_divisor", "optimizer", "learning_rate", "schedule",
              "weight_decay", "value_target", "critic_width_multiplier",
              "strategy", "max_train_examples", "max_test_examples",
              "checkpoint_every")


def config_from_flags(values: Mapping[str, Any]) -> config_lib.Config:
  """Builds and validates a config from flag values (a name -> value map).

  Raises:
    ValueError: for any invalid value, naming the flag.
  """
  cfg = config_lib.preset(values["dataset"])
  methods = tuple(m.strip() for m in values["methods"] or [] if m.strip())
  cfg.methods = methods
  cfg.seeds = values["seeds"]
  cfg.first_seed = values.get("first_seed", 0) or 0
  cfg.download = bool(values.get("download", False))
  for name in _OVERRIDES:
    if values.get(name) is not None:
      setattr(cfg, name, values[name])
  if values.get("num_modules") is not None:
    cfg.num_parts = int(values["num_modules"]) + 1
  if values.get("widths") is not None:
    try:
      cfg.widths = tuple(int(w) for w in values["widths"])
    except ValueError as e:
      raise ValueError(f"--widths must be integers, got "
                       f"{values['widths']}.") from e
  if values.get("sobolev_weights") is not None:
    try:
      cfg.sobolev_weights = tuple(float(w) for w in values["sobolev_weights"])
    except ValueError as e:
      raise ValueError(f"--sobolev_weights must be two numbers, got "
                       f"{values['sobolev_weights']}.") from e
  return config_lib.validate(cfg)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required.")
  try:
    cfg = config_from_flags(FLAGS.flag_values_dict())
  except (ValueError, TypeError) as e:
    raise app.UsageError(str(e)) from e
  # Imported here so that `--help` and flag errors do not initialise TF.
  from synthetic_gradients import experiment  # pylint: disable=g-import-not-at-top
  rows = experiment.train_and_evaluate(cfg, FLAGS.workdir)
  print(f"{len(rows)} runs in {FLAGS.workdir}/results.csv")


if __name__ == "__main__":
  define_flags()
  app.run(main)
