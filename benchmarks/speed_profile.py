r"""Where the time of a Sobolev step goes: a per-part profile.

    python -m benchmarks.speed_profile --workdir=./results/speed_profile

complements `benchmarks.speed` for the multi-output case, whose goal depends
on more than the derivative code:

  * `multi_output`: the `regular` step (L2 on values only) of the same MLP
    next to its `stochastic` Sobolev step, per output dimension O, so the
    growth of the network itself (its last layer is 256 x O) is separated
    from the growth of the projection overhead.

(The Atari student's per-part profile is `distillation.speed`: the
experiment packages do not import each other.)

Settings: `configs/speed_profile.py`, every field overridable as
`--config.<field>=<value>`.

Parts that are not optimisation steps run `steps_per_call` times inside one
compiled call on distinct pre-stacked inputs (so nothing is hoisted out of
the loop), like the steps. Results: `profile.csv` with columns
`case,part,batch,out_dim,median_us,min_us`, `profile.md` and
`provenance.json` in `--workdir`.
"""

import os
import platform
from typing import Any, Callable, Dict, List, Optional, Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags
import ml_collections
import sonnet as snt
import tensorflow as tf

from benchmarks import speed
from sobolev import losses
from sobolev import training
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import provenance
from sobolev.experiment import timing
from sobolev.experiment import workdirs
# pylint: enable=g-import-not-at-top,g-bad-import-order

CSV_COLUMNS = ("case", "part", "batch", "out_dim", "median_us", "min_us")
CASES = ("multi_output",)


def check(config: Any) -> ml_collections.ConfigDict:
  """Checks a `configs/speed_profile.py` config; returns it, names split.

  Raises:
    errors.ConfigError: naming the first bad field.
  """
  config = ml_collections.ConfigDict(configs.to_dict(config))
  configs.check_finite(config)
  config.cases = configs.split_names("cases", config.cases)
  if not config.cases:
    raise errors.ConfigError("`cases` must name at least one case.")
  for case in config.cases:
    if case not in CASES:
      raise errors.ConfigError(f"`cases`: unknown case {case!r}; expected "
                               f"some of {CASES}.")
  for name in ("repeats", "calls", "steps_per_call", "warmup_calls"):
    configs.check_int(name, config[name], 1)
  if not config.multi_output_dims:
    raise errors.ConfigError("`multi_output_dims` must not be empty.")
  for value in config.multi_output_dims:
    configs.check_int("multi_output_dims", value, 1)
  configs.check_int("seed", config.seed, 0)
  return config


def _warm(call: Callable[[], Dict[str, tf.Tensor]],
          config: Any) -> Callable[[], float]:
  """Warms a compiled `call` up; returns a timer of one block (us/step)."""
  return timing.block_timer(call, warmup_calls=config.warmup_calls,
                            calls=config.calls,
                            steps_per_call=config.steps_per_call)


def _step(model, objective, batch, config: Any, jit: bool = False):
  model(batch["x"])  # Creates the variables of a lazily built module.
  step = training.make_train_step(
      model, snt.optimizers.Adam(1e-4), objective, jit_compile=jit,
      steps_per_call=config.steps_per_call)
  stacked = timing.stack_batches(batch, config.steps_per_call)
  return lambda: step(stacked)


def _multi_output_rows(config: Any) -> List[Dict]:
  rows = []
  for out_dim in config.multi_output_dims:
    for part, order in (("regular", 0), ("stochastic", 1)):
      tf.random.set_seed(config.seed)
      model, loss, batch = speed.mlp_regression(
          100, speed.MULTI_OUTPUT_IN_DIM, int(out_dim), 1, "stochastic",
          tf.nn.relu, config.seed)
      if order == 0:
        objective = lambda m, b: (losses.l2(m(b["x"]), b["targets"][0]), {})
      else:
        objective = loss
      # XLA: the faster compiler for these MLPs in `benchmarks.speed`.
      rows.append({"case": "multi_output", "part": part, "batch": 100,
                   "out_dim": int(out_dim),
                   "timer": _warm(_step(model, objective, batch, config,
                                        jit=True), config)})
  return rows


def _markdown(rows: List[Dict], config: Any) -> str:
  lines = [
      "# Step-time profile (microseconds per step or per part)", "",
      f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
      f"TensorFlow {tf.__version__}; compiled with XLA (the faster for "
      "these MLPs in `benchmarks.speed`); "
      f"{config.steps_per_call} steps per compiled call, "
      f"{config.repeats} timed blocks of {config.calls} calls per part, "
      "interleaved across parts.", "",
      "| case | part | batch | out_dim | median_us | min_us | ratio |",
      "|---|---|---|---|---|---|---|"]
  base = {}
  for row in rows:
    key = (row["case"], row["out_dim"])
    base.setdefault(key, row["median_us"])
    lines.append(
        f"| {row['case']} | {row['part']} | {row['batch']} | "
        f"{row['out_dim']} | {row['median_us']:.0f} | {row['min_us']:.0f} | "
        f"{row['median_us'] / base[key]:.2f}x |")
  lines += ["", "`ratio`: over the first part of the same case and "
            "out_dim."]
  return "\n".join(lines) + "\n"


def run(config: Any, workdir: str,
        log: Optional[Callable[[str], None]] = print,
        if_different: str = "refuse") -> List[Dict]:
  """Profiles the requested cases; writes `profile.csv` and `profile.md`.

  Also records the invocation in `provenance.json` (versions, machine).

  Args:
    config: what to profile (`configs/speed_profile.py`).
    workdir: output directory (created; a workdir of other settings is
      refused, or handled as `if_different` says: `workdirs`).
    log: progress printer (None for silence).
    if_different: 'refuse', 'fresh' or 'separate'.

  Returns:
    One dict per part with the CSV columns.

  Raises:
    errors.ConfigError: for invalid settings (before any work).
  """
  config = check(config)
  with workdirs.opened(workdir, config, if_different=if_different) as (
      directory), provenance.recorded(directory, config):
    return _profile(config, directory, log)


def _profile(config: Any, workdir: str,
             log: Optional[Callable[[str], None]]) -> List[Dict]:
  rows = []
  if "multi_output" in config.cases:
    rows += _multi_output_rows(config)
  # Timed blocks interleaved round-robin across all parts (see speed.py).
  times = timing.interleave([row["timer"] for row in rows], config.repeats)
  for row, t in zip(rows, times):
    del row["timer"]
    row.update(timing.summary(t))
  files.write_csv(
      os.path.join(workdir, "profile.csv"),
      [{c: f"{row[c]:.1f}" if c.endswith("_us") else row[c]
        for c in CSV_COLUMNS} for row in rows], CSV_COLUMNS)
  markdown = _markdown(rows, config)
  files.atomic_write_text(os.path.join(workdir, "profile.md"), markdown)
  if log:
    log(markdown)
  return rows


_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "speed_profile.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when run as a program)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "What to profile.")
  cli.define_workdir_flags(default="./results/speed_profile")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if cli.dry_run():
    config = check(FLAGS.config)
    cli.say_dry_run(
        f"would time the parts of the Sobolev step ({', '.join(config.cases)}"
        f"; {config.repeats} timed blocks each) and write profile.csv and "
        f"profile.md to {FLAGS.workdir}.")
    return
  run(FLAGS.config, FLAGS.workdir, if_different=cli.if_different())


if __name__ == "__main__":
  cli.run(main, define_flags)
