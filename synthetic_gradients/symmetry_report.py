r"""Proposition 4 on trained models: how far is each SG module from a gradient field?

    python -m synthetic_gradients.symmetry_report \
        --workdir=results/sg_fashion_mnist

For every finished SG run of the workdir's settings in `--workdir` (its
`config.json`, written by `synthetic_gradients.run`, so the run's
`--config` flags need not be repeated; `--config.<field>` overrides given
here apply on top, and `--config` is used only for a workdir without a
`config.json`), the
final weights are restored and, on the first `--num_examples` test images,
each SG module's synthetic gradient `SG(h_k, y)` at its split `h_k` is
checked with `symmetry.projected_asymmetry` (`||J - J^T||_F / ||J||_F` from
`--num_vectors` Gaussian probes; 0 for a gradient field). Two references are
measured on the same images: the asymmetry of the *true* gradient
`dL/dh_k` of the run's own network above the split (a gradient field, so
its value shows the estimator's float32 floor), and the cosine between the
SG and that true gradient.

Writes `symmetry.csv` (one row per run and module) and `symmetry.md`
(mean +- sample std over seeds per method and module) into the workdir.
"""

import dataclasses
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

from sobolev.experiment import cli

cli.quiet()  # Before anything imports TensorFlow.

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
import numpy as np
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "configs", "default.py")


@dataclasses.dataclass
class SymmetryRow:
  """Proposition 4 numbers of one SG module of one trained run."""
  dataset: str
  num_modules: int
  method: str
  seed: int
  module: int  # 0 is the bottom split.
  split_shape: str  # One example's `h_k`, e.g. '14x14x16'.
  asymmetry_mean: float  # Mean over the examples.
  asymmetry_median: float
  # Mean over examples of the estimated ||J||_F; 0 means a constant SG (its
  # asymmetry of 0 is then trivial, not evidence of a gradient field).
  jacobian_norm: float
  true_gradient_asymmetry: float  # Mean; the estimator's floor.
  cosine: float  # SG vs true gradient, over the flattened batch.
  num_examples: int
  num_vectors: int
  # The run's training budget and tuning protocol (`experiment.Row`); 0 and
  # 'backprop' in files written before the fields existed.
  epochs: int = 0
  tuning: str = "backprop"


def _true_gradient_fn(parts: List[Any]) -> Callable:
  """`(h_k, y) -> dL/dh_k` through `parts` (inference mode), a gradient field."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def fn(h, y):
    with tf.GradientTape() as tape:
      tape.watch(h)
      out = h
      for part in parts:
        out = part(out, False)
      loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=y, logits=out))
    return tape.gradient(loss, h)
  return fn


def module_rows(model: Any, images: Any, labels: Any, *, num_vectors: int,
                seed: int) -> List[Dict[str, Any]]:
  """Proposition 4 numbers of every SG module of a trained split model.

  Args:
    model: a `decoupled.SplitModel` with SG modules (weights restored).
    images: `[B, H, W, C]` float32 images (preprocessed as in `data`).
    labels: `[B]` int32 labels.
    num_vectors: probes per module (`symmetry.projected_asymmetry`).
    seed: probe seed.

  Returns:
    One dict per module (bottom first) with the `SymmetryRow` fields
    `module`, `split_shape`, `asymmetry_mean`, `asymmetry_median`,
    `jacobian_norm`, `true_gradient_asymmetry` and `cosine`.

  Raises:
    ValueError: if the model has no SG modules.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import decoupled  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import symmetry  # pylint: disable=g-import-not-at-top
  if not model.sg_modules:
    raise ValueError(f"Method {model.method!r} has no SG modules.")
  cosines = decoupled.sg_alignment(model, images, labels)
  out = []
  h = images
  for k, module in enumerate(model.sg_modules):
    h = model.parts[k](h, False)
    h_k = tf.stop_gradient(h)
    asym, norm = symmetry.projected_asymmetry(
        module.synthetic_gradient, h_k, labels, num_vectors=num_vectors,
        seed=seed, with_norm=True)
    asym = asym.numpy()
    true = symmetry.projected_asymmetry(
        _true_gradient_fn(model.parts[k + 1:]), h_k, labels,
        num_vectors=num_vectors, seed=seed).numpy()
    out.append({"module": k,
                "split_shape": "x".join(str(d) for d in h_k.shape[1:]),
                "asymmetry_mean": float(np.mean(asym)),
                "asymmetry_median": float(np.median(asym)),
                "jacobian_norm": float(np.mean(norm.numpy())),
                "true_gradient_asymmetry": float(np.mean(true)),
                "cosine": float(cosines[k])})
  return out


def _finished_sg_units(config: Any, workdir: str, num_examples: int,
                       num_vectors: int) -> List[Any]:
  """The finished SG units `report` measures, after checking its arguments.

  Raises:
    errors.ConfigError: for `num_examples` or `num_vectors` < 1, a bad
      setting, or a workdir with no finished SG run of these settings.
  """
  from sobolev.experiment import errors  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import decoupled  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import experiment  # pylint: disable=g-import-not-at-top
  if int(num_examples) < 1:
    raise errors.ConfigError(
        f"`num_examples` must be >= 1, got {num_examples}.")
  if int(num_vectors) < 1:
    raise errors.ConfigError(f"`num_vectors` must be >= 1, got {num_vectors}.")
  experiment.check(config)
  units = [u for u in experiment.finished_runs(workdir, config)
           if u.settings["method"] in decoupled.SG_METHODS]
  if not units:
    raise errors.ConfigError(
        f"No finished SG run of these settings in {workdir!r}: run "
        "`python -m synthetic_gradients.run` with them first.")
  return units


def plan(config: Any, workdir: str, *, num_examples: int = 256,
         num_vectors: int = 8) -> str:
  """Checks what `report` checks first; says what it would measure.

  The dry run of `python -m synthetic_gradients.symmetry_report`: the
  arguments, the settings, the finished SG runs in `workdir` and the test
  data (`data.check_available`). Nothing is written.

  Returns:
    One line: the runs measured and where the tables go.

  Raises:
    errors.ConfigError: see `_finished_sg_units`.
    errors.UserError: if the dataset is not there.
  """
  from synthetic_gradients import data  # pylint: disable=g-import-not-at-top
  units = _finished_sg_units(config, workdir, num_examples, num_vectors)
  data.check_available(config.dataset, data_dir=config.data_dir,
                       download=config.download)
  return (f"would measure the Jacobian asymmetry of the modules of "
          f"{len(units)} finished SG runs in {workdir} ({num_examples} test "
          f"images, {num_vectors} probes per module) and write symmetry.csv "
          "and symmetry.md there.")


def report(config: Any, workdir: str, *, num_examples: int = 256,
           num_vectors: int = 8, seed: int = 0,
           log: Optional[Callable[[str], None]] = print) -> List[SymmetryRow]:
  """Measures every finished SG run of `config` in `workdir`; writes tables.

  Args:
    config: the configuration the runs were made with.
    workdir: the run's workdir (`results.csv` and `runs/` inside).
    num_examples: test images used (the first ones of the test split).
    num_vectors: probes per module.
    seed: probe seed.
    log: printer of progress lines (None: quiet).

  Returns:
    The rows written to `symmetry.csv`.

  Raises:
    errors.ConfigError: (a `ValueError`) for `num_examples` or
      `num_vectors` < 1, or a workdir with no finished SG run of these
      settings.
  """
  from sobolev.experiment import locks  # pylint: disable=g-import-not-at-top
  units = _finished_sg_units(config, workdir, num_examples, num_vectors)
  locks.hold(workdir)  # It writes symmetry.csv/.md there: one writer.
  try:
    return _report(config, workdir, units, num_examples, num_vectors, seed,
                   log)
  finally:
    locks.release(workdir)


def _report(config: Any, workdir: str, units: List[Any],
            num_examples: int, num_vectors: int, seed: int,
            log: Optional[Callable[[str], None]]) -> List[SymmetryRow]:
  """`report` once the arguments are checked and the workdir locked."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import checkpoints  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import files  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import results  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import runs  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import data  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import decoupled  # pylint: disable=g-import-not-at-top
  from synthetic_gradients import experiment  # pylint: disable=g-import-not-at-top
  order = {m: i for i, m in enumerate(decoupled.METHODS)}
  units.sort(key=lambda u: (order[u.settings["method"]],
                            u.settings["seed"]))
  batch = next(iter(data.load(
      config.dataset, "test", int(num_examples), data_dir=config.data_dir,
      image_size=config.image_size, max_examples=int(num_examples),
      validation_size=config.validation_size)))
  images, labels = batch["image"], tf.cast(batch["label"], tf.int32)
  ds_info = data.info(config.dataset, config.image_size)
  store_root = runs.RunStore(workdir).root
  rows = []
  for unit in units:
    method, run_seed = unit.settings["method"], unit.settings["seed"]
    model = experiment.build_model(config, method, ds_info.num_classes)
    model.build(tf.zeros((2,) + tuple(ds_info.image_shape)))
    path = os.path.join(store_root, unit.key, "model", "weights")
    checkpoints.read(
        tf.train.Checkpoint(model=model), path,
        remedy=f"delete {os.path.dirname(os.path.dirname(path))} to train "
        "that run again").assert_consumed()
    for r in module_rows(model, images, labels, num_vectors=num_vectors,
                         seed=seed):
      rows.append(SymmetryRow(
          dataset=config.dataset, num_modules=int(config.num_modules),
          method=method, seed=int(run_seed), num_examples=int(images.shape[0]),
          num_vectors=int(num_vectors), epochs=int(config.epochs),
          tuning=experiment.tuning(config), **r))
      if log is not None:
        log(f"{method} seed {run_seed} module {r['module']} "
            f"({r['split_shape']}): asymmetry {r['asymmetry_mean']:.3g} "
            f"(|J| {r['jacobian_norm']:.2g}) "
            f"(true gradient {r['true_gradient_asymmetry']:.2g}), "
            f"cosine {r['cosine']:.3f}")
  results.write(os.path.join(workdir, "symmetry.csv"), rows)
  files.atomic_write_text(os.path.join(workdir, "symmetry.md"),
                          markdown_table(rows))
  return rows


def markdown_table(rows: List[SymmetryRow]) -> str:
  """Mean +- sample std over seeds, one line per method and module."""
  from sobolev.experiment import stats  # pylint: disable=g-import-not-at-top
  lines = ["| method | module (split) | seeds | asymmetry ‖J−Jᵀ‖/‖J‖ | "
           "‖J‖_F | true-gradient asymmetry | cosine(SG, true grad) |",
           "|---|---|---|---|---|---|---|"]
  keys = []
  for r in rows:
    if (r.method, r.module) not in keys:
      keys.append((r.method, r.module))

  def cell(values, fmt):
    mean, std = stats.mean_std(values)
    return (f"{mean:{fmt}}" if len(values) == 1 else
            f"{mean:{fmt}} +- {std:{fmt}}")

  for method, module in keys:
    sel = [r for r in rows if r.method == method and r.module == module]
    lines.append(
        f"| {method} | {module} ({sel[0].split_shape}) | {len(sel)} | "
        f"{cell([r.asymmetry_mean for r in sel], '.3g')} | "
        f"{cell([r.jacobian_norm for r in sel], '.2g')} | "
        f"{cell([r.true_gradient_asymmetry for r in sel], '.2g')} | "
        f"{cell([r.cosine for r in sel], '.3f')} |")
  first = rows[0]
  lines.append("")
  budget = f", {first.epochs} epochs" if first.epochs else ""
  if first.tuning == "per_method":
    budget += ", per-method lr"
  lines.append(f"{first.dataset}, {first.num_modules} SG modules{budget}; "
               f"{first.num_examples} test images, {first.num_vectors} "
               "Gaussian probes per module (`symmetry.projected_asymmetry`). "
               "Asymmetry 0 with ‖J‖_F > 0 means a gradient field "
               "(Proposition 4); ‖J‖_F = 0 means the SG does not depend on "
               "h at all (a constant, trivially symmetric).")
  return "\n".join(lines) + "\n"


def workdir_config(workdir: str, flag_config: Any,
                   argv: Sequence[str]) -> Any:
  """The config of the runs in `workdir`, with the command line's overrides.

  The workdir's `config.json` (written by `synthetic_gradients.run`) is the
  base, so that its overrides need not be repeated; each `--config.<field>`
  given in `argv` is taken from `flag_config` on top. Without a
  `config.json`, `flag_config` (the `--config` preset and overrides).

  Args:
    workdir: the runs' workdir.
    flag_config: the parsed `--config` flag.
    argv: the command line.

  Returns:
    The config (a `ConfigDict`).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import files  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import workdirs  # pylint: disable=g-import-not-at-top
  recorded = files.read_json(os.path.join(workdir, workdirs.CONFIG_FILE))
  if not isinstance(recorded, dict):
    return flag_config
  config = ml_collections.ConfigDict(recorded)
  for arg in argv:
    match = re.match(r"^--?(?:no)?config\.([\w.]+)(?:=|$)", arg)
    if not match:
      continue
    *parents, leaf = match.group(1).split(".")
    source, target = flag_config, config
    for name in parents:
      source, target = source[name], target[name]
    with target.ignore_type():
      target[leaf] = source[leaf]
  return config


def define_flags() -> None:
  """Defines the flags (only when run as a program)."""
  cli.define_config_flag(
      DEFAULT_CONFIG, "The preset the runs were made with; ignored when the "
      "workdir has a config.json (written by synthetic_gradients.run), whose "
      "settings are used with any --config.<field> overrides on top.",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "The runs' workdir.", required=True)
  flags.DEFINE_integer("num_examples", 256, "Test images used.")
  flags.DEFINE_integer("num_vectors", 8, "Probe vectors per module.")
  flags.DEFINE_integer("seed", 0, "Probe seed.")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  config = workdir_config(FLAGS.workdir, FLAGS.config, sys.argv)
  if cli.dry_run():
    cli.say_dry_run(plan(config, FLAGS.workdir,
                         num_examples=FLAGS.num_examples,
                         num_vectors=FLAGS.num_vectors))
    return
  rows = report(config, FLAGS.workdir, num_examples=FLAGS.num_examples,
                num_vectors=FLAGS.num_vectors, seed=FLAGS.seed)
  print(f"{len(rows)} modules measured; {FLAGS.workdir}/symmetry.md")


if __name__ == "__main__":
  cli.run(main, define_flags)
