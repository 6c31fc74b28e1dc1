"""The model-class study's report (issue 22): tables, intervals, figures.

Gaps are paired by seed: the gap of seed s is `log10 MSE_regular(s) -
log10 MSE_sobolev(s)` (positive: Sobolev better; 1 = ten times lower test
MSE). Both models of a seed share the training set; when the two methods
use different classes ("best vs best") they still share it, so pairing
removes the data draw's variance. Each mean gap comes with a two-sided 95%
Student-t interval and a 95% percentile bootstrap interval over seeds
(`sobolev.experiment.stats`).

Outputs (`write`): `runs.csv` (one `ArchRow` per model, both stages),
`screening.csv` (by the runner), `gaps.csv` (one `GapRow` per comparison,
function and size), `study.md`, `screening_gaps.png` (validation gap per
function by class, each method at its tuned rate) and `final_gaps.png`
(test gaps with intervals).
"""

import dataclasses
import math
import os
from typing import Any, Dict, List, Optional, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from benchmarks import report
from sobolev.experiment import files
from sobolev.experiment import results
from sobolev.experiment import stats


@dataclasses.dataclass(frozen=True)
class ArchRow:
  """One trained model of the study (`runs.csv`).

  Attributes:
    stage: 'screen' or 'final'.
    function, size, method, seed: the run.
    model_class: 'activation-architecture-optimizer'.
    activation, hidden_sizes ('256x256'), optimizer: the class.
    learning_rate: Adam's initial rate (NaN for L-BFGS).
    split: 'validation' (screening) or 'test' (final): the set that `mse`
      and `grad_mse` are measured on.
    mse: mean squared value error on `split`, function units.
    grad_mse: mean squared gradient-error norm on `split`.
    train_seconds: training time of the model (its share of its group).
    unit: the unit key under `runs/`.
  """
  stage: str
  function: str
  size: int
  method: str
  seed: int
  model_class: str
  activation: str
  hidden_sizes: str
  optimizer: str
  learning_rate: float
  split: str
  mse: float
  grad_mse: float
  train_seconds: float
  unit: str


@dataclasses.dataclass(frozen=True)
class GapRow:
  """A paired comparison at one (function, size) (`gaps.csv`).

  Attributes:
    comparison: 'best vs best' or 'same class'.
    regular_class, sobolev_class: the classes compared.
    function, size, seeds: the setting and the number of paired seeds.
    regular_log10_mse, sobolev_log10_mse: mean log10 test MSE.
    gap, gap_t_low, gap_t_high, gap_boot_low, gap_boot_high: mean log10 gap
      with its 95% t and bootstrap intervals.
    grad_gap, grad_gap_t_low, grad_gap_t_high: the same for the test
      gradient MSE (t interval).
  """
  comparison: str
  regular_class: str
  sobolev_class: str
  function: str
  size: int
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


def rows(wanted: Sequence[Any], done: Dict[str, Any]) -> List[ArchRow]:
  """`ArchRow`s of the finished units among `wanted` (runner `Wanted`s)."""
  out = []
  for w in wanted:
    result = done.get(w.request.key)
    if result is None:
      continue
    run, cls = w.request.run, w.model_class
    out.append(ArchRow(
        stage=w.stage, function=run.function, size=run.size,
        method=run.method, seed=run.seed, model_class=cls.name,
        activation=cls.activation,
        hidden_sizes="x".join(str(h) for h in cls.hidden_sizes),
        optimizer=cls.optimizer, learning_rate=float(w.learning_rate),
        split=w.request.evaluation["set"], mse=result["mse"],
        grad_mse=result["grad_mse"], train_seconds=result["train_seconds"],
        unit=w.request.key))
  return out


def paired_gap(comparison: str, reg: Sequence[ArchRow],
               sob: Sequence[ArchRow], samples: int) -> Optional[GapRow]:
  """The gap row of two methods' models at one (function, size)."""
  by_seed_r = {r.seed: r for r in reg}
  by_seed_s = {r.seed: r for r in sob}
  seeds = sorted(set(by_seed_r) & set(by_seed_s))
  if not seeds:
    return None
  r = [by_seed_r[s] for s in seeds]
  s_ = [by_seed_s[s] for s in seeds]
  gap = [report.log10(a.mse) - report.log10(b.mse) for a, b in zip(r, s_)]
  ggap = [report.log10(a.grad_mse) - report.log10(b.grad_mse)
          for a, b in zip(r, s_)]
  mean, t_low, t_high, b_low, b_high = stats.paired_intervals(
      gap, samples=samples)
  gmean, g_low, g_high = stats.mean_interval(ggap)
  return GapRow(
      comparison=comparison, regular_class=r[0].model_class,
      sobolev_class=s_[0].model_class, function=r[0].function,
      size=r[0].size, seeds=len(seeds),
      regular_log10_mse=float(np.mean([report.log10(a.mse) for a in r])),
      sobolev_log10_mse=float(np.mean([report.log10(b.mse) for b in s_])),
      gap=mean, gap_t_low=t_low, gap_t_high=t_high, gap_boot_low=b_low,
      gap_boot_high=b_high, grad_gap=gmean, grad_gap_t_low=g_low,
      grad_gap_t_high=g_high)


def final_gaps(arch_rows: Sequence[ArchRow], choices: Any, sizes: Sequence[int],
               samples: int) -> List[GapRow]:
  """Best-vs-best and same-class gaps of the final stage."""
  final = [r for r in arch_rows if r.stage == "final"]
  pick = lambda cls, method, f, size: [
      r for r in final if (r.model_class, r.method, r.function, r.size) ==
      (cls, method, f, size)]
  functions = sorted({r.function for r in final}, key=report.function_key)
  out = []
  for size in sizes:
    pairs = [("best vs best", choices.best[("regular", size)],
              choices.best[("sobolev", size)])]
    same = dict.fromkeys([choices.shared, choices.reference,
                          choices.best[("regular", size)],
                          choices.best[("sobolev", size)]])
    # A class that is both methods' best is already the first comparison.
    pairs += [("same class", c, c) for c in same if (c, c) != pairs[0][1:]]
    for comparison, rc, sc in pairs:
      for f in functions:
        row = paired_gap(comparison, pick(rc, "regular", f, size),
                         pick(sc, "sobolev", f, size), samples)
        if row is not None:
          out.append(row)
  return out


def _interval(low: float, high: float) -> str:
  if not (math.isfinite(low) and math.isfinite(high)):
    return "-"
  return f"[{low:+.2f}, {high:+.2f}]"


def screening_markdown(records: Sequence[Any], sizes: Sequence[int]
                      ) -> List[str]:
  """Per class: each method's tuned validation score and rate, the gap."""
  chosen = {(r.model_class, r.method, r.size): r for r in records
            if r.chosen}
  names = list(dict.fromkeys(r.model_class for r in records))
  head = "| class |"
  for size in sizes:
    head += f" {size} pts regular | {size} pts Sobolev | {size} pts gap |"
  lines = ["Mean log10 VALIDATION MSE over the functions and screening "
           "seeds, each method at its best rate (in brackets); gap = regular "
           "- Sobolev. Best per column in bold; s/model: training seconds "
           "per model (regular / Sobolev, at the chosen rates).", "",
           head + " s/model |",
           "|---" * (2 + 3 * len(sizes)) + "|"]
  best = {}
  for key, r in chosen.items():
    col = (key[1], key[2])
    if col not in best or r.score < best[col]:
      best[col] = r.score
  for name in names:
    cells, secs = [], []
    for size in sizes:
      vals = []
      for method in report.METHODS:
        r = chosen.get((name, method, size))
        if r is None:
          cells.append("-")
          vals.append(math.nan)
          continue
        lr = "" if math.isnan(r.learning_rate) else f" ({r.learning_rate:g})"
        text = f"{r.score:.2f}{lr}"
        cells.append(f"**{text}**" if r.score == best[(method, size)]
                     else text)
        vals.append(r.score)
        secs.append(r.seconds_per_model)
      cells.append(f"{vals[0] - vals[1]:+.2f}")
    sec = (f"{np.mean(secs[0::2]):.1f} / {np.mean(secs[1::2]):.1f}"
           if secs else "-")
    lines.append(f"| {name} | " + " | ".join(cells) + f" | {sec} |")
  return lines


def final_markdown(gap_rows: Sequence[GapRow]) -> List[str]:
  """One table per (comparison, classes, size)."""
  lines = []
  keys = list(dict.fromkeys((g.comparison, g.regular_class, g.sobolev_class,
                             g.size) for g in gap_rows))
  for comparison, rc, sc, size in keys:
    sel = [g for g in gap_rows if (g.comparison, g.regular_class,
                                   g.sobolev_class, g.size) ==
           (comparison, rc, sc, size)]
    title = (f"{size} points, {comparison}: regular {rc} vs Sobolev {sc}"
             if rc != sc else f"{size} points, same class: {rc}")
    lines += [f"### {title}", "",
              "| function | seeds | regular log10 MSE | Sobolev log10 MSE | "
              "gap | 95% t | 95% bootstrap | gradient gap | 95% t |",
              "|---|---|---|---|---|---|---|---|---|"]
    for g in sel:
      lines.append(
          f"| {report.title(g.function)} | {g.seeds} | "
          f"{g.regular_log10_mse:.2f} | {g.sobolev_log10_mse:.2f} | "
          f"{g.gap:+.2f} | {_interval(g.gap_t_low, g.gap_t_high)} | "
          f"{_interval(g.gap_boot_low, g.gap_boot_high)} | "
          f"{g.grad_gap:+.2f} | "
          f"{_interval(g.grad_gap_t_low, g.grad_gap_t_high)} |")
    tenx = [report.title(g.function) for g in sel if g.gap_t_low > 1]
    better = [g for g in sel if g.gap_t_low > 0]
    worse = [report.title(g.function) for g in sel if g.gap_t_high < 0]
    lines += ["", f"Sobolev better (t interval above 0) on {len(better)}/"
              f"{len(sel)}; 10x or more (interval above 1) on "
              f"{len(tenx)}/{len(sel)}" + (f" ({', '.join(tenx)})" if tenx
                                           else "") +
              f"; worse on {len(worse)}/{len(sel)}" +
              (f" ({', '.join(worse)})" if worse else "") + ".", ""]
  return lines


def screening_figure(arch_rows: Sequence[ArchRow], records: Sequence[Any],
                     sizes: Sequence[int], path: str) -> None:
  """Heat map: validation log10 gap per function (columns) by class (rows),
  each method at its tuned rate, one panel per size."""
  chosen = {(r.model_class, r.method, r.size): r.learning_rate
            for r in records if r.chosen}
  names = list(dict.fromkeys(r.model_class for r in records))
  screen = [r for r in arch_rows if r.stage == "screen"]
  functions = sorted({r.function for r in screen}, key=report.function_key)
  fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes) + 1.5,
                                                    0.32 * len(names) + 1.8),
                           squeeze=False, sharey=True)
  for ax, size in zip(axes[0], sizes):
    grid = np.full([len(names), len(functions)], np.nan)
    for i, name in enumerate(names):
      for j, f in enumerate(functions):
        per = {}
        for method in report.METHODS:
          lr = chosen.get((name, method, size))
          sel = [r for r in screen if (r.model_class, r.method, r.function,
                                       r.size) == (name, method, f, size)
                 and (r.learning_rate == lr or
                      (math.isnan(r.learning_rate) and lr is not None and
                       math.isnan(lr)))]
          per[method] = [report.log10(r.mse) for r in sel]
        if per["regular"] and per["sobolev"]:
          grid[i, j] = np.mean(per["regular"]) - np.mean(per["sobolev"])
    image = ax.imshow(grid, cmap="RdBu", vmin=-2, vmax=2, aspect="auto")
    for i in range(len(names)):
      for j in range(len(functions)):
        if np.isfinite(grid[i, j]):
          ax.text(j, i, f"{grid[i, j]:+.1f}", ha="center", va="center",
                  fontsize=6)
    ax.set_xticks(range(len(functions)))
    ax.set_xticklabels([report.title(f) for f in functions], rotation=45,
                       ha="right", fontsize=7)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)  # Shown on the first panel only.
    ax.set_title(f"{size} points (validation)", fontsize=9)
  fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8,
               label="log10 gap (regular - Sobolev)")
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)


def final_figure(gap_rows: Sequence[GapRow], sizes: Sequence[int],
                 path: str) -> None:
  """Test gaps with 95% t intervals per function, one panel per size."""
  fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4),
                           squeeze=False, sharey=True)
  for ax, size in zip(axes[0], sizes):
    sel = [g for g in gap_rows if g.size == size]
    keys = list(dict.fromkeys((g.comparison, g.regular_class,
                               g.sobolev_class) for g in sel))
    functions = sorted({g.function for g in sel}, key=report.function_key)
    width = 0.8 / max(len(keys), 1)
    for k, key in enumerate(keys):
      pts = [g for g in sel if (g.comparison, g.regular_class,
                                g.sobolev_class) == key]
      xs = [functions.index(g.function) + (k - (len(keys) - 1) / 2) * width
            for g in pts]
      ys = [g.gap for g in pts]
      err = [[g.gap - g.gap_t_low for g in pts],
             [g.gap_t_high - g.gap for g in pts]]
      label = (f"best: {key[1]} vs {key[2]}" if key[0] == "best vs best"
               else f"same: {key[1]}")
      ax.errorbar(xs, ys, yerr=err, fmt="o", ms=3, capsize=2, label=label)
    ax.axhline(0, color="k", lw=0.6)
    ax.axhline(1, color="gray", lw=0.6, ls="--")
    ax.set_xticks(range(len(functions)))
    ax.set_xticklabels([report.title(f) for f in functions], rotation=30,
                       ha="right", fontsize=8)
    ax.set_title(f"{size} points (test)", fontsize=9)
    ax.legend(fontsize=6)
  axes[0][0].set_ylabel("log10 gap (regular - Sobolev), 95% t")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write(workdir: str, arch_rows: Sequence[ArchRow],
          records: Sequence[Any], choices: Any, sizes: Sequence[int],
          samples: int = 10000) -> List[str]:
  """Writes `runs.csv`, `gaps.csv`, `study.md` and the figures.

  Returns:
    The paths written.
  """
  outputs = []
  path = os.path.join(workdir, "runs.csv")
  results.write(path, arch_rows)
  outputs.append(path)
  lines = ["# Model-class study (issue 22)", "",
           "## Screening (validation)", ""]
  lines += screening_markdown(records, sizes)
  if any(r.stage == "screen" for r in arch_rows):
    path = os.path.join(workdir, "screening_gaps.png")
    screening_figure(arch_rows, records, sizes, path)
    outputs.append(path)
  if choices is not None:
    lines += ["", "## Chosen on validation", ""]
    for size in sizes:
      lines.append(f"- {size} points: best regular class "
                   f"{choices.best[('regular', size)]}, best Sobolev class "
                   f"{choices.best[('sobolev', size)]}.")
    lines += [f"- One class for both methods and sizes: {choices.shared}; "
              f"reference: {choices.reference}.", ""]
    gap_rows = final_gaps(arch_rows, choices, sizes, samples)
    if gap_rows:
      path = os.path.join(workdir, "gaps.csv")
      results.write(path, gap_rows)
      outputs.append(path)
      lines += ["## Final (test)", ""] + final_markdown(gap_rows)
      path = os.path.join(workdir, "final_gaps.png")
      final_figure(gap_rows, sizes, path)
      outputs.append(path)
  path = os.path.join(workdir, "study.md")
  files.atomic_write_text(path, "\n".join(lines) + "\n")
  outputs.append(path)
  return outputs
