r"""Step time of every Table 1 method, relative to backprop.

    python -m synthetic_gradients.speed --workdir=results/sg_speed

builds, in one process, each method's real training step (the
`synthetic_gradients.experiment.Trainer` of the Fashion-MNIST preset: the
same network, SG modules, objective and optimiser as `synthetic_gradients.run`)
and times it on one fixed random batch of the preset's shape (the step's
cost does not depend on the pixel values): after `warmup_calls` untimed
steps, `repeats` blocks of `calls` steps per method, blocks interleaved
round-robin across methods (`sobolev.experiment.timing`), microseconds per
step as the median and minimum over blocks. Writes `speed.csv`
(`method,num_modules,batch,median_us,min_us,ratio`), `speed.md` and
`provenance.json` into the workdir. Run it with nothing else on the machine.
"""

import dataclasses
import os
import platform
from typing import Any, List, Sequence

from sobolev.experiment import cli

if __name__ == "__main__":
  cli.quiet()  # Before TensorFlow is imported (not when imported).

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
import numpy as np
import tensorflow as tf

from synthetic_gradients import data
from synthetic_gradients import decoupled
from synthetic_gradients import experiment
from sobolev.experiment import configs
from sobolev.experiment import progress
from sobolev.experiment import tables
from sobolev.experiment import timing
# pylint: enable=g-import-not-at-top,wrong-import-position


@dataclasses.dataclass
class Row:
  """One row of `speed.csv`: a method's time per training step."""
  method: str
  num_modules: int
  batch: int
  median_us: float
  min_us: float
  ratio: float  # median_us / backprop's median_us (NaN without backprop).


def methods(config: Any) -> List[str]:
  """The methods to time, backprop first if present."""
  names = list(configs.split_names("methods", config.methods))
  return sorted(names, key=lambda m: m != "backprop")


def check(config: Any) -> None:
  """Raises `errors.ConfigError` naming the first bad setting."""
  configs.check_finite(config)
  for name in ("repeats", "calls", "tf_threads"):
    configs.check_int(name, config[name], low=1)
  configs.check_int("warmup_calls", config.warmup_calls, low=0)
  configs.check_int("seed", config.seed, low=0)
  for method in methods(config):
    configs.check_choice("methods", method, decoupled.METHODS)
  experiment.check(config.model)


def _batch(model_config: Any, seed: int):
  info = data.info(model_config.dataset, model_config.image_size)
  rng = np.random.default_rng(seed)
  b = model_config.batch_size
  return {"image": tf.constant(rng.uniform(0, 1, (b, *info.image_shape)),
                               tf.float32),
          "label": tf.constant(rng.integers(0, info.num_classes, b),
                               tf.int64)}


def measure(config: Any) -> List[Row]:
  """Times every method (module docstring); returns the rows.

  `config` is checked (`check`) by the caller.
  """
  model_config = config.model
  batch = _batch(model_config, config.seed)
  names = methods(config)
  timers = []
  for method in names:
    trainer = experiment.Trainer(model_config, method)
    trainer.reset(config.seed)
    timers.append(timing.block_timer(
        lambda t=trainer: t.step(batch), warmup_calls=config.warmup_calls,
        calls=config.calls))
  with progress.Progress(total=config.repeats * len(timers),
                         desc="SG step time", unit="block") as bar:
    times = timing.interleave(timers, config.repeats,
                              on_block=lambda: bar.update(1))
  base = None
  rows = []
  for method, t in zip(names, times):
    s = timing.summary(t)
    if method == "backprop":
      base = s["median_us"]
    rows.append(Row(method, int(model_config.num_modules),
                    int(model_config.batch_size), s["median_us"],
                    s["min_us"], s["median_us"] / base if base else
                    float("nan")))
  return rows


def markdown(rows: List[Row], config: Any) -> str:
  """`speed.md`: the table and how it was measured."""
  lines = [
      "# Synthetic-gradient training step time (microseconds per step)", "",
      f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
      f"TensorFlow {tf.__version__}, {config.tf_threads} intra-op thread(s). "
      f"{config.model.dataset}, widths {tuple(config.model.widths)}, batch "
      f"{config.model.batch_size}; {config.repeats} timed blocks of "
      f"{config.calls} steps per method, interleaved across methods.", "",
      "| method | SG modules | batch | median_us | min_us | vs backprop |",
      "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r.method} | {r.num_modules} | {r.batch} | "
                 f"{r.median_us:.0f} | {r.min_us:.0f} | {r.ratio:.2f}x |")
  return "\n".join(lines) + "\n"


def run(config: Any, workdir: str, if_different: str = "refuse", *,
        checked: bool = False) -> List[Row]:
  """Measures and writes `speed.csv`, `speed.md` and `provenance.json`
  (`checked`: `check(config)` already ran, as the command line does)."""
  if not checked:
    check(config)
  return tables.measure_into(workdir, config, measure, markdown,
                             if_different=if_different)


_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "speed.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "Timing settings.")
  cli.define_workdir_flags(default="./results/sg_speed")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  config = FLAGS.config
  check(config)
  if cli.dry_run():
    cli.say_dry_run(f"would time {', '.join(methods(config))} "
                    f"({config.repeats} blocks of {config.calls} steps "
                    f"each) and write speed.csv and speed.md to "
                    f"{FLAGS.workdir}.")
    return
  tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
  run(config, FLAGS.workdir, if_different=cli.if_different(), checked=True)


if __name__ == "__main__":
  cli.run(main, define_flags)
