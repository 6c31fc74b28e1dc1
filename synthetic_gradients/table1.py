r"""Table 1 from several finished workdirs: accuracies, orderings, time, Prop. 4.

    python -m synthetic_gradients.table1 \
        --workdirs=results/sg_fashion_mnist_3,results/sg_fashion_mnist_1 \
        --out=docs --prefix=sg_fashion_mnist

Each workdir is one `synthetic_gradients.run` setting (e.g. 3 and 1 SG
modules) or part of one (some methods or seeds); its `results.csv`, the
runs' histories (`runs/<key>/result.json`) and, if
`synthetic_gradients.symmetry_report` was run on it, `symmetry.csv` are
read. An entry ending in `.csv` is a results table written earlier (e.g.
`docs/sg_fashion_mnist_results.csv`): its rows join the tables, without
curves. Settings differ by dataset, SG modules, epochs and tuning
(`experiment.Row.tuning`), and are never pooled. Nothing is trained. Writes into `--out` (default: the first
workdir; `--out=docs` regenerates the committed `docs/` files):

* `<prefix>_results.csv`: every run (the rows of the workdirs' CSVs).
* `<prefix>_results.md`: the Table 1 layout next to the paper's rows; the
  paper's orderings checked per setting (paired by seed: the same seed gives
  every method the same data order and initial main network); training time
  per method; the Proposition 4 numbers per SG module.
* `<prefix>_curves.png`: test accuracy per epoch, one panel per setting.
"""

import dataclasses
import os
from typing import Any, Dict, List, Sequence, Tuple

from sobolev.experiment import cli

cli.quiet()  # Before anything imports TensorFlow.

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
import numpy as np

from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import results
from sobolev.experiment import runs
from sobolev.experiment import stats
from synthetic_gradients import decoupled
from synthetic_gradients import experiment
from synthetic_gradients import reporting
from synthetic_gradients import symmetry_report
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  flags.DEFINE_list("workdirs", None, "Finished workdirs.", required=True)
  flags.DEFINE_string("out", None, "Output folder (default: the first of "
                      "--workdirs; --out=docs rewrites the committed "
                      "tables).")
  flags.DEFINE_string("prefix", "sg_table1", "Output file-name prefix.")
  cli.define_dry_run_flag()

# The paper's claims, `(lower, higher, strict)`: `higher` beats `lower`.
ORDER = (("noprop", "direct", True), ("direct", "vfbn", True),
         ("vfbn", "critic", True), ("critic", "sobolev", False),
         ("sobolev", "backprop", False))

Setting = reporting.Setting  # (dataset, num_modules, epochs, tuning)


@dataclasses.dataclass
class Ordering:
  """One of the paper's orderings checked on one setting."""
  setting: str
  claim: str  # e.g. 'direct < vfbn'.
  mean_difference: float  # higher - lower, accuracy points (%).
  low: float  # 95% t interval of the paired per-seed differences.
  high: float
  seeds_holding: int  # Seeds on which higher > lower (>= for '<=').
  seeds: int
  verdict: str  # 'holds', 'reversed' or 'not resolved'.


def _read(workdir: str) -> List[experiment.Row]:
  """The rows of a workdir's `results.csv`, or of a results CSV itself (a
  committed table, e.g. `docs/sg_fashion_mnist_results.csv`)."""
  if workdir.endswith(".csv"):
    if not os.path.isfile(workdir):
      raise errors.ConfigError(f"`workdirs`: no file {workdir!r}.")
    return results.read(workdir, experiment.Row)
  path = os.path.join(workdir, "results.csv")
  if not os.path.exists(path):
    raise errors.ConfigError(
        f"`workdirs`: {workdir!r} has no results.csv: run `python -m "
        "synthetic_gradients.run` into it first.")
  return results.read(path, experiment.Row)


def _check_unique(rows: Sequence[experiment.Row]) -> None:
  seen = set()
  for r in rows:
    k = reporting.setting(r) + (r.method, int(r.seed))
    if k in seen:
      raise errors.ConfigError(f"`workdirs`: run {k} appears twice.")
    seen.add(k)


def _by_seed(rows, setting: Setting, method: str) -> Dict[int, float]:
  return {int(r.seed): 100.0 * float(r.test_accuracy) for r in rows
          if reporting.setting(r) == setting and r.method == method}


def _verdict(low: float, high: float) -> str:
  if low > 0:
    return "holds"
  if high < 0:
    return "reversed"
  return "not resolved"


def orderings(rows: Sequence[Any]) -> List[Ordering]:
  """Checks `ORDER` on every setting, paired by seed.

  A claim with fewer than 2 common seeds is skipped. Returns one `Ordering`
  per (setting, claim); `holds`/`reversed` mean the 95% t interval of the
  paired differences excludes 0.
  """
  out = []
  items = reporting.settings(rows)
  labels = reporting.setting_labels(items)
  for setting in items:
    for lower, higher, strict in ORDER:
      a, b = _by_seed(rows, setting, lower), _by_seed(rows, setting, higher)
      common = sorted(set(a) & set(b))
      if len(common) < 2:
        continue
      diffs = [b[s] - a[s] for s in common]
      mean, low, high = stats.mean_interval(diffs)
      holding = sum(d > 0 if strict else d >= 0 for d in diffs)
      out.append(Ordering(
          setting=labels[setting],
          claim=f"{lower} {'<' if strict else '<='} {higher}",
          mean_difference=mean, low=low, high=high, seeds_holding=holding,
          seeds=len(common), verdict=_verdict(low, high)))
  return out


def gap_widening(rows: Sequence[Any]) -> List[str]:
  """Lines comparing `backprop - method` between module counts (same
  dataset, epochs and tuning)."""
  lines = []
  groups = sorted({(s[0], s[2], s[3]) for s in reporting.settings(rows)})
  for dataset, epochs, tuning in groups:
    counts = sorted({s[1] for s in reporting.settings(rows)
                     if (s[0], s[2], s[3]) == (dataset, epochs, tuning)})
    if len(counts) < 2:
      continue
    for method in decoupled.METHODS[:-1]:
      gaps = []
      for n in counts:
        bp = _by_seed(rows, (dataset, n, epochs, tuning), "backprop")
        m = _by_seed(rows, (dataset, n, epochs, tuning), method)
        if bp and m:
          gaps.append((n, np.mean(list(bp.values())) -
                       np.mean(list(m.values()))))
      if len(gaps) == len(counts):
        text = ", ".join(f"{g:+.2f} points with {n} module{'s' * (n != 1)}"
                         for n, g in gaps)
        wider = gaps[-1][1] > gaps[0][1]
        lines.append(f"- {method}: backprop minus {method} = {text}: "
                     f"{'wider' if wider else 'not wider'} with "
                     f"{counts[-1]} modules.")
  return lines


def timing_table(rows: Sequence[Any]) -> str:
  """Markdown: training wall time per method (mean +- std s, x backprop)."""
  settings = reporting.settings(rows)
  labels = reporting.setting_labels(settings)
  header = "| method | " + " | ".join(labels[s] for s in settings) + " |"
  lines = [header, "|---|" + "---|" * len(settings)]
  for method in decoupled.METHODS:
    cells = []
    for setting in settings:
      t = [float(r.wall_s) for r in rows if r.method == method and
           reporting.setting(r) == setting]
      bp = [float(r.wall_s) for r in rows if r.method == "backprop" and
            reporting.setting(r) == setting]
      if not t:
        cells.append("-")
        continue
      mean, std = stats.mean_std(t)
      cell = f"{mean:.0f} s" + (f" +- {std:.0f}" if len(t) > 1 else "")
      if bp:
        cell += f" ({mean / np.mean(bp):.1f}x)"
      cells.append(cell)
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def ordering_table(items: Sequence[Ordering]) -> str:
  lines = ["| setting | paper's claim | mean difference (points) | 95% t "
           "interval | seeds where it holds | verdict |",
           "|---|---|---|---|---|---|"]
  for o in items:
    lines.append(f"| {o.setting} | {o.claim} | {o.mean_difference:+.2f} | "
                 f"[{o.low:+.2f}, {o.high:+.2f}] | {o.seeds_holding}/"
                 f"{o.seeds} | {o.verdict} |")
  return "\n".join(lines) + "\n"


def paper_rows() -> str:
  """Markdown: the paper's Table 1 rows (`reporting.PAPER_TABLE1`)."""
  lines = ["The paper's Table 1 for reference (test top-1 %, mean +- std "
           "where the paper gives one):", "",
           "| paper | " + " | ".join(reporting.heading(m)
                                    for m in decoupled.METHODS) + " |",
           "|" + "---|" * (len(decoupled.METHODS) + 1)]
  for (dataset, modules), cells in reporting.PAPER_TABLE1.items():
    out = []
    for m in decoupled.METHODS:
      if m not in cells:
        out.append("-")
        continue
      mean, std = cells[m]
      out.append(f"{mean}" + (f" +- {std}" if std is not None else ""))
    lines.append(f"| {dataset}, {modules} SG modules | " + " | ".join(out) +
                 " |")
  return "\n".join(lines) + "\n"


def plot(rows: Sequence[Any], histories: Dict[Tuple[Setting, str], Any],
         path: str) -> None:
  """Test accuracy per epoch (mean line, min-max band), a panel per setting
  with histories (`histories`: `{(setting, run key): accuracies}`); empty
  panels of every setting if no run has one (the file is always rewritten,
  so no stale figure is left beside new tables)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  every = reporting.settings(rows)
  labels = reporting.setting_labels(every)
  # Settings read from results tables only (no histories) get no panel.
  drawn = {key[0] for key in histories}
  settings = [s for s in every if s in drawn] or every
  fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4),
                           squeeze=False)
  for ax, setting in zip(axes[0], settings):
    curves = {}
    for r in rows:
      if reporting.setting(r) == setting and (setting, r.key) in histories:
        curves.setdefault(r.method, []).append(histories[(setting, r.key)])
    reporting.draw_curves(ax, curves, labels[setting],
                          marker="o")
    ax.title.set_fontsize(9)  # Labels naming epochs and tuning are long.
  reporting.save_figure(fig, path, dpi=100)


def _check_inputs(workdirs: Sequence[str], prefix: str
                  ) -> List[Tuple[str, List[experiment.Row]]]:
  """`[(workdir, its rows)]` after checking `write`'s arguments.

  Raises:
    errors.ConfigError: (a `ValueError`) see `write`.
  """
  if not workdirs:
    raise errors.ConfigError("`workdirs` must name at least one workdir.")
  if not prefix or os.sep in prefix:
    raise errors.ConfigError(f"`prefix` must be a plain file-name prefix, "
                             f"got {prefix!r}.")
  per_dir = [(w, _read(w)) for w in workdirs]
  _check_unique([r for _, dir_rows in per_dir for r in dir_rows])
  return per_dir


def plan(workdirs: Sequence[str], out: str, prefix: str) -> str:
  """Checks what `write` checks first; says what it would write.

  The dry run of `python -m synthetic_gradients.table1` (nothing is
  written).

  Raises:
    errors.ConfigError: see `write`.
  """
  per_dir = _check_inputs(workdirs, prefix)
  n = sum(len(rows) for _, rows in per_dir)
  return (f"would combine the {n} runs of {len(per_dir)} workdirs into "
          f"{os.path.join(out, prefix)}_results.md, _results.csv and "
          "_curves.png.")


def write(workdirs: Sequence[str], out: str, prefix: str) -> Dict[str, Any]:
  """Writes the combined Table 1 files (see the module docstring).

  Args:
    workdirs: finished `synthetic_gradients.run` workdirs.
    out: output folder (created).
    prefix: file-name prefix.

  Returns:
    `{'rows', 'orderings', 'symmetry'}`.

  Raises:
    ValueError: for an empty `workdirs`, a bad prefix, or a workdir without
      `results.csv`.
  """
  per_dir = _check_inputs(workdirs, prefix)
  rows = [r for _, dir_rows in per_dir for r in dir_rows]
  histories = {}
  sym = []
  for w, dir_rows in per_dir:
    if w.endswith(".csv"):
      continue  # A results table: rows only (no histories, no symmetry).
    for r in dir_rows:
      unit = runs.RunStore(w).load(r.key)
      if unit is not None:
        # By setting too: a per-method run at the backprop-tuned rate has
        # the same key as the paper-protocol run of that rate.
        histories[(reporting.setting(r), r.key)] = (
            unit.result["history"]["test_accuracy"])
    sym_path = os.path.join(w, "symmetry.csv")
    if os.path.exists(sym_path):
      sym.extend(results.read(sym_path, symmetry_report.SymmetryRow))
  os.makedirs(out, exist_ok=True)
  results.write(os.path.join(out, f"{prefix}_results.csv"), rows)
  order = orderings(rows)
  parts = [reporting.markdown_table(rows, title="Table 1"),
           paper_rows(),
           "## The paper's orderings, paired by seed\n",
           ordering_table(order)]
  widening = gap_widening(rows)
  if widening:
    parts += ["Wider gaps with more modules (paper: yes):\n",
              "\n".join(widening) + "\n"]
  epochs = ", ".join(str(e) for e in sorted({int(r.epochs) for r in rows}))
  parts += [f"## Training wall time per run ({epochs} epochs; x backprop)\n",
            timing_table(rows)]
  if sym:
    parts += ["## Proposition 4: Jacobian asymmetry of each SG module\n"]
    for setting in reporting.settings(sym):
      sel = [s for s in sym if reporting.setting(s) == setting]
      parts.append(symmetry_report.markdown_table(sel))
  files.atomic_write_text(os.path.join(out, f"{prefix}_results.md"),
                          "\n".join(parts))
  plot(rows, histories, os.path.join(out, f"{prefix}_curves.png"))
  return {"rows": rows, "orderings": order, "symmetry": sym}


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  workdirs = [w for w in FLAGS.workdirs if w]
  folder = FLAGS.out or (workdirs[0] if workdirs else ".")
  if cli.dry_run():
    cli.say_dry_run(plan(workdirs, folder, FLAGS.prefix))
    return
  out = write(workdirs, folder, FLAGS.prefix)
  print(f"{len(out['rows'])} runs; {folder}/{FLAGS.prefix}_results.md")


if __name__ == "__main__":
  cli.run(main, define_flags)
