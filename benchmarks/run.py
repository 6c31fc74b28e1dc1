r"""Runs the benchmarks experiment (the paper's Figures 2 and 3).

  python -m benchmarks.run                       # full default sweep
  python -m benchmarks.run --functions=booth,styblinski_tang --sizes=20 \
      --seeds=1 --steps=200 --workdir=/tmp/bench

Trains, for every function, training-set size and seed, a regular (values
only) and a Sobolev (values + gradients) 2x256 ReLU MLP, and writes into
`--workdir`: `results.csv`, `results.md`, `figure2.png`, `figure3.png`
(and `config.json`, `figure3_*.npz`). Models of one (size, method) are
trained together as one batched computation (`benchmarks.trainer`).

Resumable: finished runs are read back from `results.csv` and skipped; every
file is written atomically, so a sweep killed at any moment loses at most the
group being trained.
"""

import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags
import numpy as np

from benchmarks import config as config_lib
from benchmarks import data
from benchmarks import functions
from benchmarks import plots
from benchmarks import progress as progress_lib
from benchmarks import report
from benchmarks import trainer

_DEFAULT = config_lib.Config()
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the experiment CLIs share
  flag names (`--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  flags.DEFINE_list(
      "functions", list(functions.NAMES),
      f"Comma-separated benchmark names: {','.join(functions.NAMES)}.")
  flags.DEFINE_list("sizes", [str(s) for s in _DEFAULT.sizes],
                    "Comma-separated training-set sizes (> 0).")
  flags.DEFINE_integer("seeds", _DEFAULT.seeds,
                       "Number of seeds (0 .. seeds-1).")
  flags.DEFINE_integer("steps", _DEFAULT.steps, "Adam steps per model.")
  flags.DEFINE_string("workdir", "./results/benchmarks", "Output directory.")


# Protocol fields that must match to resume into an existing workdir.
_PROTOCOL_FIELDS = ("steps", "learning_rate", "final_lr_fraction",
                    "batch_size", "grad_weight", "normalize_grad_weight",
                    "hidden_sizes", "test_size")
_SOBOLEV_COST = 1.6  # Estimated cost of a Sobolev step relative to regular.
_STEP_OVERHEAD = 200  # Per-step cost in units of one example's cost.


def parse_config(functions_list: Sequence[str], sizes: Sequence[str],
                 seeds: int, steps: int) -> config_lib.Config:
  """Builds a config from flag values.

  Raises:
    ValueError: naming the flag, for an unknown function, a size that is
      not a positive integer, or seeds/steps <= 0.
  """
  names = [n.strip() for n in functions_list if n.strip()]
  for n in names:
    if n not in functions.BENCHMARKS:
      raise ValueError(f"--functions: unknown function {n!r}; valid names: "
                       f"{','.join(functions.NAMES)}.")
  parsed = []
  for s in sizes:
    try:
      value = int(str(s).strip())
    except ValueError:
      raise ValueError(f"--sizes: {s!r} is not an integer.") from None
    if value <= 0:
      raise ValueError(f"--sizes: sizes must be > 0, got {value}.")
    parsed.append(value)
  if seeds <= 0:
    raise ValueError(f"--seeds must be > 0, got {seeds}.")
  if steps <= 0:
    raise ValueError(f"--steps must be > 0, got {steps}.")
  return dataclasses.replace(_DEFAULT, functions=tuple(names),
                             sizes=tuple(parsed), seeds=seeds, steps=steps)


def _check_workdir_protocol(config: config_lib.Config, workdir: str) -> None:
  path = os.path.join(workdir, "config.json")
  current = {f: getattr(config, f) for f in _PROTOCOL_FIELDS}
  current["hidden_sizes"] = list(current["hidden_sizes"])
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    diff = {k: (saved.get(k), v) for k, v in current.items()
            if saved.get(k) != v}
    if diff:
      raise ValueError(
          f"{workdir} holds results of a different protocol ({diff}, saved vs "
          "requested); use another --workdir to avoid mixing them.")
  else:
    report.write_text(path, json.dumps(current, indent=2) + "\n")


def figure3_size(config: config_lib.Config) -> int:
  """Figure 3 uses 20 points if swept, else the smallest size."""
  return 20 if 20 in config.sizes else min(config.sizes)


def _grid(name: str, n: int = 41) -> np.ndarray:
  bench = functions.get(name)
  gx = np.linspace(bench.low[0], bench.high[0], n)
  gy = np.linspace(bench.low[1], bench.high[1], n)
  return np.stack(np.meshgrid(gx, gy, indexing="xy"), axis=-1)


def _save_npz(path: str, **arrays) -> None:
  tmp = f"{path}.tmp{os.getpid()}.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def _make_figure3(config: config_lib.Config, workdir: str) -> Optional[str]:
  name, size = config.figure3_function, figure3_size(config)
  paths = {m: os.path.join(workdir, f"figure3_{m}.npz")
           for m in config_lib.METHODS}
  if name not in config.functions or not all(
      os.path.exists(p) for p in paths.values()):
    return None
  pts = _grid(name)
  v, g = functions.value_and_gradient(name, pts.reshape(-1, 2))
  grid = {"x": pts, "true_v": v.reshape(pts.shape[:2]),
          "true_g": g.reshape(pts.shape),
          "train_x": data.train_set(name, size, 0).x}
  for method, p in paths.items():
    with np.load(p) as f:
      grid[f"{method}_v"] = f["v"]
      grid[f"{method}_g"] = f["g"]
  out = os.path.join(workdir, "figure3.png")
  plots.figure3(grid, name, size, out)
  return out


def train_and_evaluate(config: config_lib.Config, workdir: str,
                       show_progress: bool = True) -> List[Dict]:
  """Runs (or resumes) a sweep and writes all outputs into `workdir`.

  Args:
    config: the sweep.
    workdir: output directory (created if needed).
    show_progress: draw the progress bar on stderr.

  Returns:
    All result rows of the sweep's runs (as in `results.csv`).

  Raises:
    ValueError: for an invalid config or a workdir holding another
      protocol's results.
  """
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  _check_workdir_protocol(config, workdir)
  csv_path = os.path.join(workdir, "results.csv")
  rows = report.read_csv(csv_path)
  done = {report.key(r) for r in rows}
  fig3_size = figure3_size(config)

  groups = []
  for size in config.sizes:
    for method in config_lib.METHODS:
      runs = [trainer.Run(f, size, method, s) for f in config.functions
              for s in range(config.seeds)]
      todo = [r for r in runs if (r.function, r.size, r.method, r.seed)
              not in done]
      if todo:
        groups.append(todo)

  def work(group):
    # Estimated cost: per-step overhead dominates at these batch sizes
    # (measured: 21 regular models take about as long at 20 as at 100
    # points per step), plus a per-example part.
    batch = min(group[0].size, config.batch_size)
    cost = _SOBOLEV_COST if group[0].method == "sobolev" else 1.0
    return len(group) * config.steps * (_STEP_OVERHEAD + batch) * cost

  total_runs = len(config.functions) * len(config.sizes) * config.seeds * 2
  bar = progress_lib.Progress(total_runs, sum(work(g) for g in groups),
                              stream=None if show_progress else open(
                                  os.devnull, "w"))
  runs_done = total_runs - sum(len(g) for g in groups)
  work_done = 0.0
  bar.update(runs_done, work_done, "starting")
  tests = {}
  for group in groups:
    size, method = group[0].size, group[0].method
    note = f"size {size} {method} ({len(group)} models)"
    gwork = work(group)
    bar.update(runs_done, work_done, note)
    trained = trainer.train_group(
        group, config, on_progress=lambda s, gw=gwork, n=note: bar.update(
            runs_done, work_done + gw * s / config.steps, n))
    for r in group:
      if r.function not in tests:
        tests[r.function] = data.test_set(r.function, config.test_size)
    results = trainer.evaluate(trained, [tests[r.function] for r in group])
    for i, r in enumerate(group):
      if (r.function == config.figure3_function and r.size == fig3_size and
          r.seed == 0):
        pts = _grid(r.function)
        v, g = trained.predict(i, pts.reshape(-1, 2))
        _save_npz(os.path.join(workdir, f"figure3_{method}.npz"),
                  v=v.reshape(pts.shape[:2]), g=g.reshape(pts.shape))
    for r, (mse, gmse) in zip(group, results):
      rows.append(dict(function=r.function, size=r.size, method=r.method,
                       seed=r.seed, test_mse=mse, test_grad_mse=gmse,
                       train_seconds=trained.seconds / len(group)))
    report.write_csv(csv_path, rows)
    runs_done += len(group)
    work_done += gwork
    bar.update(runs_done, work_done, f"done: {note}")
  bar.close()

  wanted = {(f, s, m, k) for f in config.functions for s in config.sizes
            for m in config_lib.METHODS for k in range(config.seeds)}
  sweep = [r for r in rows if report.key(r) in wanted]
  report.write_text(os.path.join(workdir, "results.md"),
                    report.markdown(sweep))
  plots.figure2(sweep, os.path.join(workdir, "figure2.png"))
  if _make_figure3(config, workdir) is None:
    print(f"figure3.png skipped: it needs {config.figure3_function} at "
          f"{fig3_size} points in the sweep.", file=sys.stderr)
  return sweep


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    config = parse_config(FLAGS.functions, FLAGS.sizes, FLAGS.seeds,
                          FLAGS.steps)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  workdir = FLAGS.workdir
  rows = train_and_evaluate(config, workdir)
  print(report.markdown(rows))
  print(f"Wrote {len(rows)} runs to {os.path.join(workdir, 'results.csv')}, "
        "results.md, figure2.png, figure3.png")


if __name__ == "__main__":
  define_flags()
  app.run(main)
