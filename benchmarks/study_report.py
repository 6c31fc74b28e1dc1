"""The study report: log10 test-MSE gaps with 95% intervals, tables, figures.

For every (function, training-set size, step budget, protocol) of a study
the *gap* of seed s is `log10 MSE_regular(s) - log10 MSE_sobolev(s)` (the
two models of a seed share data, initial weights and batches; positive: the
Sobolev model is better, 1 = ten times lower test MSE). The report gives the
mean gap over seeds with a two-sided 95% Student-t interval
(`sobolev.experiment.stats.mean_interval`) and a 95% percentile bootstrap
interval over seeds (`stats.bootstrap_interval`, seeded), the same for the
test gradient MSE, each method's mean log10 test MSE, and the final
*training* loss terms (log10 value MSE and gradient MSE in model units, mean
over seeds), which say whether a model still underfits its training set.

Outputs (`write`): `study.csv` (one `StudyRow` per model), `gaps.csv` (one
`GapRow` per setting), `study.md`, and PNG figures: `gap_vs_budget.png`
(several budgets), `gap_vs_dim.png` (several dimensions of a family),
`gap_by_protocol.png` (several protocols) and `curves_<protocol>_<steps>
steps_<size>pts.png` (training curves of both methods, mean over seeds).
"""

import collections
import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from benchmarks import functions
from benchmarks import report
from sobolev.experiment import files
from sobolev.experiment import results
from sobolev.experiment import stats

_COLORS = {"regular": "tab:orange", "sobolev": "tab:blue"}


@dataclasses.dataclass(frozen=True)
class StudyRow:
  """One trained model of a study (a row of `study.csv`).

  Attributes:
    function: benchmark name.
    dim: its input dimension D.
    size: training-set size.
    method: 'regular' or 'sobolev'.
    seed: the run's seed.
    steps: Adam steps (the budget).
    protocol: the protocol (`benchmarks.protocols`).
    learning_rate: the initial learning rate it was trained with.
    test_mse: mean squared value error on the test set (original units).
    test_grad_mse: mean squared norm of the test gradient error.
    train_loss: the final training loss (model units).
    train_value_mse: its value term, unweighted (model units).
    train_grad_mse: its gradient term, unweighted (model units; measured
      for regular models too).
    train_set_mse: value MSE on its training set in the function's units
      (comparable across protocols).
    train_set_grad_mse: gradient MSE on its training set, function's units.
    train_seconds: the group's training time over its number of models.
    unit: the unit's key (`<workdir>/runs/<unit>/curves.csv`).
  """
  function: str
  dim: int
  size: int
  method: str
  seed: int
  steps: int
  protocol: str
  learning_rate: float
  test_mse: float
  test_grad_mse: float
  train_loss: float
  train_value_mse: float
  train_grad_mse: float
  train_set_mse: float
  train_set_grad_mse: float
  train_seconds: float
  unit: str


@dataclasses.dataclass(frozen=True)
class GapRow:
  """The gap of one (function, size, steps, protocol) (a row of `gaps.csv`).

  Gaps are `log10 regular - log10 sobolev` per seed (positive: Sobolev
  better); intervals are 95% (t: Student-t of the mean; boot: percentile
  bootstrap over seeds); NaN where there is a single seed.
  """
  function: str
  family: str
  dim: int
  size: int
  steps: int
  protocol: str
  seeds: int
  regular_log10_mse: float
  sobolev_log10_mse: float
  gap: float
  gap_t_low: float
  gap_t_high: float
  gap_boot_low: float
  gap_boot_high: float
  grad_gap: float
  grad_gap_t_low: float
  grad_gap_t_high: float
  regular_train_log10_value_mse: float
  sobolev_train_log10_value_mse: float
  sobolev_train_log10_grad_mse: float


def _setting(row: StudyRow) -> Tuple[str, int, int, str]:
  return (row.function, row.size, row.steps, row.protocol)


def gaps(rows: Sequence[StudyRow], samples: int = 10000) -> List[GapRow]:
  """The gap rows of a study, paired by seed.

  Args:
    rows: the study's models.
    samples: bootstrap resamples.

  Returns:
    One `GapRow` per (function, size, steps, protocol) that has both
    methods for at least one seed, in display order.
  """
  by_setting = collections.defaultdict(dict)
  for row in rows:
    by_setting[_setting(row)][(row.method, row.seed)] = row
  out = []
  for (function, size, steps, protocol), models in by_setting.items():
    seeds = sorted({s for m, s in models if m == "regular"} &
                   {s for m, s in models if m == "sobolev"})
    if not seeds:
      continue
    reg = [models[("regular", s)] for s in seeds]
    sob = [models[("sobolev", s)] for s in seeds]
    gap = [report.log10(r.test_mse) - report.log10(s.test_mse)
           for r, s in zip(reg, sob)]
    ggap = [report.log10(r.test_grad_mse) - report.log10(s.test_grad_mse)
            for r, s in zip(reg, sob)]
    mean, t_low, t_high, b_low, b_high = stats.paired_intervals(
        gap, samples=samples)
    gmean, g_low, g_high = stats.mean_interval(ggap)
    family, dim = _family_and_dim(function, reg[0].dim)
    mean_log = lambda rs, field: float(np.mean(
        [report.log10(getattr(r, field)) for r in rs]))
    out.append(GapRow(
        function=function, family=family, dim=dim, size=size, steps=steps,
        protocol=protocol, seeds=len(seeds),
        regular_log10_mse=mean_log(reg, "test_mse"),
        sobolev_log10_mse=mean_log(sob, "test_mse"), gap=mean,
        gap_t_low=t_low, gap_t_high=t_high, gap_boot_low=b_low,
        gap_boot_high=b_high, grad_gap=gmean, grad_gap_t_low=g_low,
        grad_gap_t_high=g_high,
        regular_train_log10_value_mse=mean_log(reg, "train_value_mse"),
        sobolev_train_log10_value_mse=mean_log(sob, "train_value_mse"),
        sobolev_train_log10_grad_mse=mean_log(sob, "train_grad_mse")))
  out.sort(key=lambda g: (g.protocol, g.steps, g.size,
                          report.function_key(g.function)))
  return out


def _family_and_dim(function: str, dim: int) -> Tuple[str, int]:
  try:
    return functions.family_and_dim(function)
  except ValueError:  # A user function not registered in this process.
    return function, dim


def _interval(low: float, high: float) -> str:
  if math.isnan(low):
    return "-"
  return f"[{low:+.2f}, {high:+.2f}]"


def markdown(gap_rows: Sequence[GapRow],
             tuning_lines: Sequence[str] = ()) -> str:
  """The study's tables and its plain answers, as Markdown.

  Args:
    gap_rows: from `gaps`.
    tuning_lines: optional Markdown lines on the tuned learning rates.

  Returns:
    Markdown text.
  """
  lines = [
      "## log10 test-MSE gap (regular minus Sobolev; > 0: Sobolev better, "
      "1 = 10x)", "",
      "Per seed `log10 MSE_regular - log10 MSE_sobolev` (same data, "
      "initialisation and batches); mean over seeds with a 95% Student-t "
      "interval and a 95% percentile bootstrap interval over seeds. "
      "`train` columns: final training loss terms (log10, model units, mean "
      "over seeds).", "",
      "| function | D | size | steps | protocol | seeds | regular log10 MSE "
      "| Sobolev log10 MSE | gap | 95% t | 95% bootstrap | grad gap "
      "[95% t] | train value: regular | train value: Sobolev | train grad: "
      "Sobolev |", "|---" * 15 + "|"]
  for g in gap_rows:
    lines.append(
        f"| {report.title(g.function)} | {g.dim} | {g.size} | {g.steps} | "
        f"{g.protocol} | {g.seeds} | {g.regular_log10_mse:.2f} | "
        f"{g.sobolev_log10_mse:.2f} | **{g.gap:+.2f}** | "
        f"{_interval(g.gap_t_low, g.gap_t_high)} | "
        f"{_interval(g.gap_boot_low, g.gap_boot_high)} | "
        f"{g.grad_gap:+.2f} {_interval(g.grad_gap_t_low, g.grad_gap_t_high)}"
        f" | {g.regular_train_log10_value_mse:.2f} | "
        f"{g.sobolev_train_log10_value_mse:.2f} | "
        f"{g.sobolev_train_log10_grad_mse:.2f} |")
  lines += ["", "## Answers, read off the table", ""]
  lines += answers(gap_rows)
  if tuning_lines:
    lines += ["", "## Learning rates (tuned on validation data)", "",
              *tuning_lines]
  return "\n".join(lines) + "\n"


def answers(gap_rows: Sequence[GapRow]) -> List[str]:
  """Per (protocol, steps, size): where the gap is > 0, >= 1 and >= 2.

  A gap counts as shown only if its 95% t interval lies above the
  threshold (with a single seed: never).
  """
  out = []
  keys = sorted({(g.protocol, g.steps, g.size) for g in gap_rows})
  for protocol, steps, size in keys:
    sel = [g for g in gap_rows if (g.protocol, g.steps, g.size) ==
           (protocol, steps, size)]

    def above(threshold, sel=sel):
      return [g.function for g in sel
              if not math.isnan(g.gap_t_low) and g.gap_t_low > threshold]

    better, ten, hundred = above(0.0), above(1.0), above(2.0)
    worse = [g.function for g in sel
             if not math.isnan(g.gap_t_high) and g.gap_t_high < 0.0]
    out.append(
        f"- {protocol}, {steps} steps, {size} points: Sobolev better (95% "
        f"interval above 0) on {len(better)}/{len(sel)} "
        f"({', '.join(better) or 'none'}); >= 10x on {len(ten)} "
        f"({', '.join(ten) or 'none'}); >= 100x on {len(hundred)} "
        f"({', '.join(hundred) or 'none'}); regular better on {len(worse)} "
        f"({', '.join(worse) or 'none'}).")
  return out


# ------------------------------------------------------------------ figures


def _errorbar(ax, xs, sel, label, **kwargs):
  ys = np.array([g.gap for g in sel])
  low = np.array([g.gap_t_low for g in sel])
  high = np.array([g.gap_t_high for g in sel])
  err = np.where(np.isnan(low), 0.0, ys - low), np.where(np.isnan(high), 0.0,
                                                          high - ys)
  ax.errorbar(xs, ys, yerr=np.stack(err), label=label, capsize=3, marker="o",
              **kwargs)


def _finish(fig, axes, path, ylabel="log10 gap (regular - Sobolev)"):
  for ax in axes:
    ax.axhline(0, color="k", lw=0.6)
    ax.axhline(1, color="grey", lw=0.6, ls=":")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(ylabel)
  axes[-1].legend(fontsize=7, loc="best")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def gap_vs_budget(gap_rows: Sequence[GapRow], path: str) -> None:
  """Gap against the step budget, one panel per (protocol, size), a line
  per function, 95% t intervals as error bars."""
  panels = sorted({(g.protocol, g.size) for g in gap_rows})
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4),
                           squeeze=False)
  for ax, (protocol, size) in zip(axes[0], panels):
    names = sorted({g.function for g in gap_rows
                    if (g.protocol, g.size) == (protocol, size)},
                   key=report.function_key)
    for name in names:
      sel = sorted([g for g in gap_rows if (g.protocol, g.size, g.function)
                    == (protocol, size, name)], key=lambda g: g.steps)
      _errorbar(ax, [g.steps for g in sel], sel, report.title(name))
    ax.set_xscale("log")
    budgets = sorted({g.steps for g in gap_rows})
    ax.set_xticks(budgets)
    ax.set_xticklabels([f"{b:,}" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("Adam steps")
    ax.set_title(f"{size} points, {protocol}")
  _finish(fig, list(axes[0]), path)


def gap_vs_dim(gap_rows: Sequence[GapRow], path: str) -> None:
  """Gap against the input dimension, one panel per (family, protocol,
  steps), a line per training-set size."""
  panels = sorted({(g.family, g.protocol, g.steps) for g in gap_rows})
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4),
                           squeeze=False)
  for ax, (family, protocol, steps) in zip(axes[0], panels):
    for size in sorted({g.size for g in gap_rows}):
      sel = sorted([g for g in gap_rows if (g.family, g.protocol, g.steps,
                                            g.size) ==
                    (family, protocol, steps, size)], key=lambda g: g.dim)
      if sel:
        _errorbar(ax, [g.dim for g in sel], sel, f"{size} points")
    ax.set_xscale("log", base=2)
    dims = sorted({g.dim for g in gap_rows})
    ax.set_xticks(dims)
    ax.set_xticklabels([str(d) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("input dimension D")
    ax.set_title(f"{family}, {protocol}, {steps} steps")
  _finish(fig, list(axes[0]), path)


def gap_by_protocol(gap_rows: Sequence[GapRow], path: str) -> None:
  """Gap per function, a bar per protocol, one panel per (steps, size)."""
  panels = sorted({(g.steps, g.size) for g in gap_rows})
  names = sorted({g.function for g in gap_rows}, key=report.function_key)
  protocol_names = sorted({g.protocol for g in gap_rows})
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4),
                           squeeze=False)
  width = 0.8 / len(protocol_names)
  for ax, (steps, size) in zip(axes[0], panels):
    for k, protocol in enumerate(protocol_names):
      xs, sel = [], []
      for i, name in enumerate(names):
        match = [g for g in gap_rows if (g.steps, g.size, g.function,
                                         g.protocol) ==
                 (steps, size, name, protocol)]
        if match:
          xs.append(i + (k - (len(protocol_names) - 1) / 2) * width)
          sel.append(match[0])
      if not sel:
        continue
      ys = np.array([g.gap for g in sel])
      low = np.nan_to_num(ys - np.array([g.gap_t_low for g in sel]))
      high = np.nan_to_num(np.array([g.gap_t_high for g in sel]) - ys)
      ax.bar(xs, ys, width, yerr=np.stack([low, high]), capsize=2,
             label=protocol)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([report.title(n) for n in names], rotation=45,
                       ha="right")
    ax.set_title(f"{size} points, {steps} steps")
  _finish(fig, list(axes[0]), path)


def read_curves(path: str) -> Optional[Dict[str, np.ndarray]]:
  """A unit's `curves.csv` as arrays `step`, `value_mse`, `grad_mse`,
  `loss` (None if missing or empty)."""
  if not os.path.exists(path):
    return None
  out = collections.defaultdict(list)
  for row in files.read_csv(path):
    if not row.get("train/value_mse"):
      continue
    out["step"].append(float(row["step"]))
    for key in ("value_mse", "grad_mse", "loss"):
      out[key].append(float(row[f"train/{key}"]))
  if not out:
    return None
  return {k: np.asarray(v) for k, v in out.items()}


def curves(rows: Sequence[StudyRow], runs_dir: str, path: str) -> None:
  """Training curves of both methods, one panel per function.

  Solid: log10 training value MSE; dashed: log10 training gradient MSE
  (model units); each the mean over seeds of log10 (seeds with a missing
  `curves.csv` are left out).

  Args:
    rows: the models of ONE (protocol, steps, size).
    runs_dir: `<workdir>/runs`.
    path: the PNG.
  """
  names = sorted({r.function for r in rows}, key=report.function_key)
  cols = min(4, len(names))
  nrows = int(math.ceil(len(names) / cols))
  fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows),
                           squeeze=False)
  flat = axes.reshape(-1)
  for ax, name in zip(flat, names):
    for method in ("regular", "sobolev"):
      loaded = [read_curves(os.path.join(runs_dir, r.unit, "curves.csv"))
                for r in rows if r.function == name and r.method == method]
      loaded = [c for c in loaded if c is not None]
      if not loaded:
        continue
      length = min(len(c["step"]) for c in loaded)
      steps = loaded[0]["step"][:length]
      for key, style in (("value_mse", "-"), ("grad_mse", "--")):
        logs = np.mean([np.log10(np.maximum(c[key][:length], 1e-30))
                        for c in loaded], axis=0)
        ax.plot(steps, logs, style, color=_COLORS[method],
                label=f"{method} {key.replace('_mse', '')}")
    ax.set_title(report.title(name), fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.grid(alpha=0.3)
  for ax in flat[len(names):]:
    ax.axis("off")
  flat[0].set_ylabel("log10 training MSE (model units)")
  flat[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def write(workdir: str, rows: Sequence[StudyRow], samples: int = 10000,
          tuning_lines: Sequence[str] = (),
          out_dir: Optional[str] = None) -> List[str]:
  """Writes the study's CSVs, Markdown and figures into `workdir`.

  Args:
    workdir: the study's workdir (its `runs/` holds the curves).
    rows: the study's models.
    samples: bootstrap resamples.
    tuning_lines: Markdown lines on tuned learning rates.
    out_dir: where to write them instead of `workdir` (created).

  Returns:
    The paths written.
  """
  runs_dir = os.path.join(workdir, "runs")
  workdir = out_dir or workdir
  os.makedirs(workdir, exist_ok=True)
  rows = sorted(rows, key=lambda r: (r.protocol, r.steps, r.size,
                                     report.function_key(r.function),
                                     r.method, r.seed))
  gap_rows = gaps(rows, samples)
  out = [os.path.join(workdir, n) for n in ("study.csv", "gaps.csv",
                                            "study.md")]
  results.write(out[0], rows)
  results.write(out[1], gap_rows)
  files.atomic_write_text(out[2], markdown(gap_rows, tuning_lines))
  if not gap_rows:
    return out
  if len({g.steps for g in gap_rows}) > 1:
    out.append(os.path.join(workdir, "gap_vs_budget.png"))
    gap_vs_budget(gap_rows, out[-1])
  families = collections.Counter((g.family, g.size, g.protocol, g.steps)
                                 for g in gap_rows)
  if any(n > 1 for n in families.values()) and len(
      {g.dim for g in gap_rows}) > 1:
    out.append(os.path.join(workdir, "gap_vs_dim.png"))
    gap_vs_dim([g for g in gap_rows if families[(g.family, g.size,
                                                 g.protocol, g.steps)] > 1],
               out[-1])
  if len({g.protocol for g in gap_rows}) > 1:
    out.append(os.path.join(workdir, "gap_by_protocol.png"))
    gap_by_protocol(gap_rows, out[-1])
  for protocol, steps, size in sorted({(r.protocol, r.steps, r.size)
                                       for r in rows}):
    sel = [r for r in rows if (r.protocol, r.steps, r.size) ==
           (protocol, steps, size)]
    out.append(os.path.join(
        workdir, f"curves_{protocol}_{steps}steps_{size}pts.png"))
    curves(sel, runs_dir, out[-1])
  return out
