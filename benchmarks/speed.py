r"""Step-time benchmark: the cost of Sobolev training against regular training.

    python -m benchmarks.speed --workdir=./results/speed

measures, in one process and after warm-up, the time of one optimisation step
(microseconds; median and min over `repeats` timed blocks) of:

  * `mlp_order1`: `regular` (L2 on values) vs `sobolev` (L2 on values and
    input gradients) on the paper's 2x256 ReLU MLP, D = 2, batch 100 and 1000
    (and, if `mlp_order1_variants` names it, `sobolev_fused`: the same loss
    with `SobolevLoss(jacobian_mode='fused')`, `sobolev.fused_mlp`);
  * `mlp_order2`: order-2 Sobolev, `exact` (full Hessians) vs `stochastic`
    (one Hessian-vector projection) on a 2x256 softplus MLP, batch 100;
  * `multi_output`: order-1 `exact` Jacobian matching vs `stochastic`
    projections for a 2x256 ReLU MLP with D = 16 inputs and O outputs,
    O in {1, 6, 18, 100}, batch 100.

(The Atari student's step is timed by `distillation.speed`: the experiment
packages do not import each other.)

Settings: `configs/speed.py`, every field overridable as `--config.<field>=`
(e.g. `--config.cases=mlp_order1 --config.repeats=3`).

Every step is the library's `sobolev.training.make_train_step` with Adam;
`steps_per_call` steps run inside one compiled call (as the experiments
train), and the time per step is the call's time divided by it. Each variant
is compiled both as a TF graph and with XLA (`jit_compile=True`) and the
faster on a pilot block is kept (the `compiled` column of `speed.md`); the
timed blocks of all variants are then interleaved round-robin, so that load
changes on a shared machine affect the compared variants alike. Results:
`speed.csv` with columns `case,variant,batch,out_dim,median_us,min_us` and
`speed.md` (and `provenance.json`: versions, machine) in `--workdir`.
"""

import dataclasses
import os
import platform
from typing import Any, Callable, Dict, List, Optional, Sequence

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import flags
import ml_collections
import numpy as np
import sonnet as snt
import tensorflow as tf

from benchmarks import jax_baseline
from sobolev import derivatives
from sobolev import sobolev_loss
from sobolev import training
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import provenance
from sobolev.experiment import timing
from sobolev.experiment import workdirs
# pylint: enable=g-import-not-at-top,g-bad-import-order

CSV_COLUMNS = ("case", "variant", "framework", "batch", "out_dim",
               "median_us", "min_us", "vs_jax")
CASES = ("mlp_order1", "mlp_order2", "multi_output")
MLP_ORDER1_VARIANTS = ("regular", "sobolev", "sobolev_fused")
# The JAX step a TF variant is compared with (`vs_jax`), where not its own.
JAX_VARIANT = {"sobolev_fused": "sobolev"}
MULTI_OUTPUT_IN_DIM = 16


def check(config: Any) -> ml_collections.ConfigDict:
  """Checks a `configs/speed.py` config; returns it with name lists split.

  Raises:
    errors.ConfigError: naming the first bad field.
  """
  config = ml_collections.ConfigDict(configs.to_dict(config))
  configs.check_finite(config)
  config.mlp_order1_variants = config.get("mlp_order1_variants",
                                          ("regular", "sobolev"))
  for field in ("cases", "compile_modes", "mlp_order1_variants"):
    config[field] = configs.split_names(field, config[field])
  if not config.mlp_order1_variants or any(
      v not in MLP_ORDER1_VARIANTS for v in config.mlp_order1_variants):
    raise errors.ConfigError(
        "`mlp_order1_variants` must be a non-empty subset of "
        f"{MLP_ORDER1_VARIANTS}, got {config.mlp_order1_variants}.")
  if not config.cases:
    raise errors.ConfigError("`cases` must name at least one case.")
  for case in config.cases:
    if case not in CASES:
      raise errors.ConfigError(f"`cases`: unknown case {case!r}; expected "
                               f"some of {CASES}.")
  for name in ("repeats", "calls", "steps_per_call", "warmup_calls"):
    configs.check_int(name, config[name], 1)
  if not config.compile_modes or any(
      m not in ("graph", "xla") for m in config.compile_modes):
    raise errors.ConfigError("`compile_modes` must be a non-empty subset of "
                             f"('graph', 'xla'), got {config.compile_modes}.")
  for name in ("mlp_batches", "multi_output_dims"):
    for value in config[name]:
      configs.check_int(name, value, 1)
  configs.check_int("seed", config.seed, 0)
  if not isinstance(config.get("jax_baseline", False), bool):
    raise errors.ConfigError("`jax_baseline` must be True or False.")
  return config


@dataclasses.dataclass
class Variant:
  """One measured step: a model, an objective and a batch builder."""
  case: str
  variant: str
  batch: int
  out_dim: int
  build: Callable[[], tuple]  # -> (model, objective, single_batch)


class _Timer:
  """A built, warmed-up step of one variant under one compiler."""

  def __init__(self, variant: Variant, config: Any, jit: bool):
    tf.random.set_seed(config.seed)
    model, objective, batch = variant.build()
    model(batch["x"])  # Creates the variables of a lazily built module.
    step = training.make_train_step(
        model, snt.optimizers.Adam(1e-4), objective, jit_compile=jit,
        steps_per_call=config.steps_per_call)
    stacked = (timing.stack_batches(batch, config.steps_per_call)
               if config.steps_per_call > 1 else batch)
    self._name = f"{variant.case}/{variant.variant}"
    self._step = step
    self._block = timing.block_timer(
        lambda: step(stacked), warmup_calls=config.warmup_calls,
        calls=config.calls, steps_per_call=config.steps_per_call)
    self._traces = step.experimental_get_tracing_count()

  def block(self) -> float:
    """Times `calls` compiled calls; returns microseconds per step."""
    us = self._block()
    if self._step.experimental_get_tracing_count() != self._traces:
      raise RuntimeError(f"{self._name} retraced.")
    return us


def time_variant(variant: Variant, config: Any,
                 jit: bool) -> Dict[str, float]:
  """Median and min time per step (us) of one variant under one compiler.

  Args:
    variant: what to time.
    config: warm-up calls, repeats, calls and steps per call.
    jit: XLA (`jit_compile=True`) or a plain TF graph.

  Returns:
    `{'median_us', 'min_us'}` per optimisation step.
  """
  timer = _Timer(variant, config, jit)
  per_step = [timer.block() for _ in range(config.repeats)]
  return {"median_us": float(np.median(per_step)),
          "min_us": float(np.min(per_step))}


def mlp_regression(batch: int, in_dim: int, out_dim: int, order: int,
                   mode: str, activation, seed: int,
                   jacobian_mode: Optional[str] = None) -> tuple:
  """A 2x256 MLP, a `SobolevLoss` and a batch with exact targets.

  Targets (values and derivatives up to `order`) come from a fixed smooth
  tanh teacher MLP; returns `(model, loss, {'x', 'targets'})`.
  `jacobian_mode` is the loss's (exact order 1 only; None: its default).
  """
  rng = np.random.RandomState(seed)
  x = tf.constant(rng.uniform(-1, 1, (batch, in_dim)), tf.float32)
  teacher = snt.nets.MLP([32, out_dim], activation=tf.nn.tanh, name="teacher")
  if order == 2:
    targets = derivatives.value_and_hessian(teacher, x)
  else:
    targets = derivatives.value_and_jacobian(teacher, x)[:order + 1]
  model = snt.nets.MLP([256, 256, out_dim], activation=activation)
  # A seed only where projections are drawn (exact mode takes none).
  kwargs = {"seed": seed} if mode == "stochastic" else {}
  if jacobian_mode is not None:
    kwargs["jacobian_mode"] = jacobian_mode
  loss = sobolev_loss.SobolevLoss(order=order, mode=mode,
                                  validate_targets=False, **kwargs)
  return model, loss, {"x": x, "targets": tuple(targets)}


def variants(config: Any) -> List[Variant]:
  """All variants of the requested cases, in report order."""
  seed = config.seed
  out = []
  if "mlp_order1" in config.cases:
    for batch in config.mlp_batches:
      for name in config.mlp_order1_variants:
        order = 0 if name == "regular" else 1
        jacobian_mode = "fused" if name == "sobolev_fused" else None
        out.append(Variant(
            "mlp_order1", name, batch, 1,
            lambda b=batch, o=order, j=jacobian_mode: mlp_regression(
                b, 2, 1, o, "exact", tf.nn.relu, seed, jacobian_mode=j)))
  if "mlp_order2" in config.cases:
    for mode in ("exact", "stochastic"):
      out.append(Variant(
          "mlp_order2", mode, 100, 1,
          lambda m=mode: mlp_regression(100, 2, 1, 2, m, tf.nn.softplus,
                                         seed)))
  if "multi_output" in config.cases:
    for out_dim in config.multi_output_dims:
      for mode in ("exact", "stochastic"):
        out.append(Variant(
            "multi_output", mode, 100, out_dim,
            lambda o=out_dim, m=mode: mlp_regression(
                100, MULTI_OUTPUT_IN_DIM, o, 1, m, tf.nn.relu, seed)))
  return out


def _markdown(rows: List[Dict], config: Any) -> str:
  lines = [
      "# Step time (microseconds per optimisation step)", "",
      f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
      f"TensorFlow {tf.__version__}. {config.steps_per_call} steps per "
      f"compiled call, {config.repeats} timed blocks of {config.calls} "
      "calls per variant, interleaved across variants.", "",
      "| case | variant | framework | batch | out_dim | median_us | min_us | "
      "compiled | ratio | vs JAX |",
      "|---|---|---|---|---|---|---|---|---|---|"]
  base = {}
  for row in rows:
    key = (row["case"], row["framework"], row["batch"], row["out_dim"])
    base.setdefault(key, row["median_us"])
    vs_jax = ("-" if np.isnan(row["vs_jax"]) else f"{row['vs_jax']:.2f}x")
    lines.append(
        f"| {row['case']} | {row['variant']} | {row['framework']} | "
        f"{row['batch']} | {row['out_dim']} | {row['median_us']:.0f} | "
        f"{row['min_us']:.0f} | {row['compiled']} | "
        f"{row['median_us'] / base[key]:.2f}x | {vs_jax} |")
  lines.append("")
  lines.append("`ratio`: median over the first variant of the same case, "
               "framework, batch and out_dim. `vs JAX`: median over the "
               "hand-written JAX step of the same case, variant and batch "
               "(`benchmarks/jax_baseline.py`; `sobolev_fused` against "
               "JAX's `sobolev`).")
  return "\n".join(lines) + "\n"


def run(config: Any, workdir: str,
        log: Optional[Callable[[str], None]] = print,
        if_different: str = "refuse") -> List[Dict]:
  """Measures every variant and writes `speed.csv` and `speed.md`.

  Also records the invocation in `provenance.json` (versions, machine).

  Args:
    config: what to measure (`configs/speed.py`).
    workdir: output directory (created; a workdir of other settings is
      refused, or handled as `if_different` says: `workdirs`).
    log: progress printer (None for silence).
    if_different: 'refuse', 'fresh' or 'separate'.

  Returns:
    One dict per variant with the CSV columns plus `compiled`.

  Raises:
    errors.ConfigError: for invalid settings (before any work).
  """
  config = check(config)
  with workdirs.opened(workdir, config, if_different=if_different) as (
      directory), provenance.recorded(directory, config):
    return _measure(config, directory, log)


def _measure(config: Any, workdir: str,
             log: Optional[Callable[[str], None]]) -> List[Dict]:
  todo = variants(config)
  # 1. Build every variant under each compiler and keep the faster on one
  # pilot block (the other is dropped).
  timers = []
  for i, variant in enumerate(todo):
    best = None
    for mode in config.compile_modes:
      timer = _Timer(variant, config, jit=(mode == "xla"))
      pilot = timer.block()
      if best is None or pilot < best[2]:
        best = (timer, mode, pilot)
    timers.append(best[:2])
    if log:
      log(f"[{i + 1}/{len(todo)}] built {variant.case}/{variant.variant} "
          f"batch={variant.batch} out_dim={variant.out_dim}: "
          f"{best[1]} (pilot {best[2]:.0f}us/step)")
  # 2. Timed blocks interleaved across variants (round-robin, starting
  # point rotating), so load changes on a shared machine hit the variants
  # being compared alike.
  blocks = [t.block for t, _ in timers]
  labels = [(v.case, v.variant, "tf", v.batch, v.out_dim, mode)
            for v, (_, mode) in zip(todo, timers)]
  for label, block in _jax_timers(config, todo, log):
    labels.append(label)
    blocks.append(block)
  per_step = timing.interleave(blocks, config.repeats)
  rows = []
  for (case, name, framework, batch, out_dim, mode), times in zip(labels,
                                                                  per_step):
    row = {"case": case, "variant": name, "framework": framework,
           "batch": batch, "out_dim": out_dim,
           "median_us": float(np.median(times)),
           "min_us": float(np.min(times)), "compiled": mode}
    rows.append(row)
    if log:
      log(f"{case:14s} {name:13s} {framework:3s} "
          f"batch={batch:<5d} out_dim={out_dim:<4d} "
          f"median={row['median_us']:9.0f}us min={row['min_us']:9.0f}us "
          f"({mode})")
  jax_us = {(r["case"], r["variant"], r["batch"], r["out_dim"]):
            r["median_us"] for r in rows if r["framework"] == "jax"}
  for row in rows:
    base = jax_us.get((row["case"], JAX_VARIANT.get(row["variant"],
                                                    row["variant"]),
                       row["batch"], row["out_dim"]))
    row["vs_jax"] = row["median_us"] / base if base else float("nan")
  files.write_csv(
      os.path.join(workdir, "speed.csv"),
      [{c: f"{row[c]:.1f}" if c.endswith("_us") else
        (f"{row[c]:.3f}" if c == "vs_jax" else row[c])
        for c in CSV_COLUMNS} for row in rows], CSV_COLUMNS)
  markdown = _markdown(rows, config)
  files.atomic_write_text(os.path.join(workdir, "speed.md"), markdown)
  if log:
    log(markdown)
  return rows


def _jax_timers(config: Any, todo: Sequence[Variant],
                log: Optional[Callable[[str], None]]):
  """`(label, block)` of the JAX reference of each `mlp_order1` variant
  (`benchmarks.jax_baseline`); none without the `bench` extra (one line
  says how to get them)."""
  wanted = [v for v in todo
            if v.case == "mlp_order1" and v.variant not in JAX_VARIANT]
  if not (config.get("jax_baseline", False) and wanted):
    return []
  if not jax_baseline.available():
    if log:
      log("JAX rows skipped: jax/optax are not installed "
          f"({jax_baseline.INSTALL_HINT}).")
    return []
  out = []
  for variant in wanted:
    tf.random.set_seed(config.seed)
    _, _, batch = variant.build()  # The TF case's batch and targets.
    order = 1 if variant.variant == "sobolev" else 0
    out.append(((variant.case, variant.variant, "jax", variant.batch,
                 variant.out_dim, "jax"),
                jax_baseline.block_timer(batch, order, config)))
  return out


_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "speed.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program: the CLIs
  share flag names, so importing the module must not define them)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "What to measure.")
  cli.define_workdir_flags(default="./results/speed")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if cli.dry_run():
    config = check(FLAGS.config)
    cli.say_dry_run(
        f"would time {len(variants(config))} step variants "
        f"({', '.join(config.cases)}; {config.repeats} timed blocks each) "
        f"and write speed.csv and speed.md to {FLAGS.workdir}.")
    return
  run(FLAGS.config, FLAGS.workdir, if_different=cli.if_different())


if __name__ == "__main__":
  cli.run(main, define_flags)
