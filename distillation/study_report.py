"""The distillation study's report: results, paired gaps, tables, figures.

For every (game, fraction) and Sobolev arm, the *gap* of seed s is
`test KL(sobolev arm, s) - test KL(regular, s)` (negative: the Sobolev
student is closer to the teacher), paired with the regular student of the
same seed and the same kind of settings (tuned with tuned, published with
published): both share the split, initial weights and minibatches. Gaps are
given at the early-stopped step (lowest validation KL) and at the end, with
the mean over seeds, a two-sided 95% Student-t interval
(`sobolev.experiment.stats.mean_interval`) and a 95% percentile bootstrap
interval over seeds (`stats.bootstrap_interval`, seeded); the same for the
test action-prediction error.

Outputs (`write`, into the workdir): `distillation_study_results.csv` (one
`ResultRow` per game, fraction, arm and seed), `distillation_study_gaps.csv`
(`GapRow`s), `distillation_study_curves.csv` (every evaluation of every
final student), `distillation_study_explained.csv` (`ExplainedRow`s: how
much of the spread in test KL across students the input-gradient error
accounts for), `teacher_gradients.csv`, `study.md`, and the figures
`kl_vs_steps_<game>.png` (train and test KL vs steps per fraction, mean and
95% t band over seeds), `terms_<game>.png` (the two training terms of the
Sobolev arms, the gradient term weighted) and `paired_gaps.png` (the
early-stopped and final gap per fraction with t intervals).
"""

import collections
import dataclasses
import math
import os
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from distillation import study_training
from sobolev.experiment import files
from sobolev.experiment import results
from sobolev.experiment import stats

METRICS = ("test_kl", "test_action_error")


@dataclasses.dataclass(frozen=True)
class StepTime:
  """Seconds per training step of an arm (`step_times.csv`)."""
  game: str
  num_actions: int
  arm: str
  seconds_per_step: float


@dataclasses.dataclass(frozen=True)
class ResultRow:
  """One final student (a row of `distillation_study_results.csv`).

  `*_early` values are at `early_step`, the evaluation with the lowest
  validation KL; `*_final` at `steps`. `train_kl` is measured on a fixed
  sample of the training states; `train_kl_term` / `train_sobolev_term` are
  the optimised terms (unweighted) averaged over the last interval;
  `probe_gradient_error` is `E_v ||J_t^T v - J_s^T v||` on fixed training
  states and directions.
  """
  game: str
  train_fraction: float
  arm: str
  method: str
  variant: str
  published: bool
  seed: int
  learning_rate: float
  sobolev_weight: float
  steps: int
  early_step: int
  test_kl_early: float
  test_action_error_early: float
  validation_kl_early: float
  test_kl_final: float
  test_action_error_final: float
  validation_kl_final: float
  train_kl_final: float
  train_kl_term_final: float
  train_sobolev_term_final: float
  probe_gradient_error_final: float
  seconds_per_step: float
  unit: str


@dataclasses.dataclass(frozen=True)
class GapRow:
  """Paired gap `arm - baseline` over seeds (`distillation_study_gaps.csv`)."""
  game: str
  train_fraction: float
  arm: str
  baseline: str
  metric: str
  at: str
  seeds: int
  mean_arm: float
  mean_baseline: float
  mean_gap: float
  t_low: float
  t_high: float
  bootstrap_low: float
  bootstrap_high: float


def result_rows(finished: Sequence[Tuple[Any, str, Dict]]) -> List[ResultRow]:
  """One row per finished final student `(unit, key, result)`."""
  out = []
  for unit, key, result in finished:
    history = result["history"]
    early = study_training.early_stopping(history)
    last = history[-1]
    out.append(ResultRow(
        game=unit.game, train_fraction=unit.fraction, arm=unit.arm.name,
        method=unit.arm.method, variant=unit.arm.variant or "-",
        published=unit.arm.published, seed=unit.seed,
        learning_rate=unit.learning_rate,
        sobolev_weight=unit.sobolev_weight, steps=unit.steps,
        early_step=int(early["step"]), test_kl_early=early["test_kl"],
        test_action_error_early=early["test_action_error"],
        validation_kl_early=early["validation_kl"],
        test_kl_final=last["test_kl"],
        test_action_error_final=last["test_action_error"],
        validation_kl_final=last["validation_kl"],
        train_kl_final=last["train_kl"],
        train_kl_term_final=last.get("train_kl_term", math.nan),
        train_sobolev_term_final=last.get("train_sobolev_term", math.nan),
        probe_gradient_error_final=last.get("probe_gradient_error",
                                            math.nan),
        seconds_per_step=(last["train_seconds"] / last["timed_steps"]
                          if last.get("timed_steps") else math.nan),
        unit=key))
  return out


def _baseline(arm: str) -> str:
  return "regular (published)" if arm.endswith("(published)") else "regular"


def same_students(rows: Sequence[ResultRow]) -> Dict[Tuple[str, float, str],
                                                      str]:
  """`(game, fraction, arm) -> arm`: the arm (first by name) whose students
  are exactly this arm's. A published arm whose settings are also the tuned
  ones shares their students (`study_runner`); it is named, not counted or
  drawn twice."""
  units = collections.defaultdict(set)
  for r in rows:
    units[(r.game, r.train_fraction, r.arm)].add(r.unit)
  out, first = {}, {}
  for key in sorted(units):
    ident = (key[0], key[1], frozenset(units[key]))
    if ident in first:
      out[key] = first[ident]
    else:
      first[ident] = key[2]
  return out


def gaps(rows: Sequence[ResultRow], bootstrap_samples: int = 10_000
        ) -> List[GapRow]:
  """Paired gaps of every Sobolev arm against its regular baseline."""
  by = collections.defaultdict(dict)
  for r in rows:
    by[(r.game, r.train_fraction, r.arm)][r.seed] = r
  same = same_students(rows)
  out = []
  for (game, fraction, arm), seeds in sorted(by.items()):
    if arm.startswith("regular") or (
        (game, fraction, arm) in same and
        (game, fraction, _baseline(arm)) in same):
      continue  # (Both sides shared: the same gap as the tuned arms'.)
    base = by.get((game, fraction, _baseline(arm)), {})
    common = sorted(set(seeds) & set(base))
    if not common:
      continue
    for metric in METRICS:
      for at in ("early", "final"):
        field = f"{metric}_{at}"
        a = np.array([getattr(seeds[s], field) for s in common])
        b = np.array([getattr(base[s], field) for s in common])
        mean, t_low, t_high = stats.mean_interval(a - b)
        _, b_low, b_high = stats.bootstrap_interval(
            a - b, samples=bootstrap_samples)
        out.append(GapRow(game, fraction, arm, _baseline(arm), metric, at,
                          len(common), float(a.mean()), float(b.mean()),
                          mean, t_low, t_high, b_low, b_high))
  return out


@dataclasses.dataclass(frozen=True)
class ExplainedRow:
  """How much of the test KL the input-gradient error explains, across the
  final students of one (game, fraction) and arms (`distillation_study_
  explained.csv`): the rank correlation and the share of the variance of
  log test KL that a line in log gradient error explains (R^2)."""
  game: str
  train_fraction: float
  arms: str  # 'all', or one arm's name.
  students: int
  spearman_rho: float
  spearman_p: float
  r_squared: float  # Of log10(test KL) on log10(gradient error).
  slope: float  # d log10(test KL) / d log10(gradient error).


def explained(rows: Sequence[ResultRow]) -> List[ExplainedRow]:
  """Test KL (final) against the probe's gradient error (final), per (game,
  fraction): over all final students, then per arm. The gradient error is
  what the Sobolev term drives down, so the R^2 bounds how much of the
  students' spread in KL error it can account for. Groups of fewer than 3
  students, or with non-positive or non-finite values, are skipped."""
  from scipy import stats as scipy_stats  # pylint: disable=g-import-not-at-top
  same = same_students(rows)
  groups = collections.defaultdict(dict)  # Each student once per group.
  for r in rows:
    groups[(r.game, r.train_fraction, "all")][r.unit] = r
    if (r.game, r.train_fraction, r.arm) not in same:
      groups[(r.game, r.train_fraction, r.arm)][r.unit] = r
  out = []
  for (game, fraction, arms), by_unit in sorted(groups.items()):
    rs = list(by_unit.values())
    x = np.array([r.probe_gradient_error_final for r in rs], dtype=float)
    y = np.array([r.test_kl_final for r in rs], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = np.log10(x[ok]), np.log10(y[ok])
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
      continue
    rho, p = scipy_stats.spearmanr(x, y)
    fit = scipy_stats.linregress(x, y)
    out.append(ExplainedRow(game, fraction, arms, int(len(x)), float(rho),
                            float(p), float(fit.rvalue ** 2),
                            float(fit.slope)))
  return out


def _explained_lines(items: Sequence[ExplainedRow]) -> List[str]:
  lines = ["", "## How much of the test KL the gradient error explains", "",
           "Across final students (final step): Spearman rank correlation of "
           "test KL with the probe's input-gradient error, and R^2 of "
           "log10 test KL on log10 gradient error.", "",
           "| game | fraction | students of | n | Spearman rho | p | R^2 | "
           "slope |", "|---" * 8 + "|"]
  for e in items:
    lines.append(f"| {e.game} | {e.train_fraction:g} | {e.arms} | "
                 f"{e.students} | {e.spearman_rho:+.2f} | {e.spearman_p:.2g} "
                 f"| {e.r_squared:.2f} | {e.slope:+.2f} |")
  return lines


def _interval(values: Sequence[float]) -> str:
  mean, low, high = stats.mean_interval(values)
  if math.isnan(low):
    return f"{mean:.3f}"
  return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def markdown(rows: Sequence[ResultRow], gap_rows: Sequence[GapRow],
             trials: Sequence[Any], diagnostics: Sequence[Any],
             times: Sequence[StepTime], cost: str) -> str:
  """`study.md`: results, gaps, tuning, diagnostics and step times."""
  lines = ["# Distillation study (issue 20)", "", cost, "",
           "## Test metrics", "",
           "Mean over seeds [95% t interval]; 'early': at the step of lowest "
           "validation KL.", "",
           "| game | fraction | arm | lr | lambda | seeds | early step | "
           "test KL (early) | test KL (final) | action error (early) | "
           "train KL (final) | s/step |", "|---" * 12 + "|"]
  groups = collections.defaultdict(list)
  for r in rows:
    groups[(r.game, r.train_fraction, r.arm)].append(r)
  same = same_students(rows)
  for (game, fraction, arm), rs in sorted(groups.items()):
    if (game, fraction, arm) in same:
      arm = f"{arm}: the {same[(game, fraction, arm)]} students"
    lines.append(
        f"| {game} | {fraction:g} | {arm} | {rs[0].learning_rate:g} | "
        f"{rs[0].sobolev_weight:g} | {len(rs)} | "
        f"{np.mean([r.early_step for r in rs]):.0f} | "
        f"{_interval([r.test_kl_early for r in rs])} | "
        f"{_interval([r.test_kl_final for r in rs])} | "
        f"{_interval([r.test_action_error_early for r in rs])} | "
        f"{np.mean([r.train_kl_final for r in rs]):.3f} | "
        f"{np.mean([r.seconds_per_step for r in rs]):.3f} |")
  lines += ["", "## Paired gaps (Sobolev arm minus regular, same seeds)", "",
            "Negative: the Sobolev arm is closer to the teacher.", "",
            "| game | fraction | arm | metric | at | seeds | gap | 95% t | "
            "95% bootstrap |", "|---" * 9 + "|"]
  for g in gap_rows:
    lines.append(
        f"| {g.game} | {g.train_fraction:g} | {g.arm} | {g.metric} | {g.at} "
        f"| {g.seeds} | {g.mean_gap:+.4f} | [{g.t_low:+.4f}, {g.t_high:+.4f}]"
        f" | [{g.bootstrap_low:+.4f}, {g.bootstrap_high:+.4f}] |")
  lines += ["", "## Tuning (validation games; chosen in bold)", "",
            "| game | fraction | arm | lr | lambda | best validation KL | "
            "at step |", "|---" * 7 + "|"]
  for t in trials:
    # A trial without a result (still to run) has best_step -1.
    score = (f"{t.best_validation_kl:.4f}" if t.best_step >= 0 else
             "not run yet")
    step = t.best_step if t.best_step >= 0 else "-"
    lines.append(f"| {t.game} | {t.train_fraction:g} | {t.arm} | "
                 f"{t.learning_rate:g} | {t.sobolev_weight:g} | "
                 f"{f'**{score}**' if t.chosen else score} | {step} |")
  lines += _explained_lines(explained(rows))
  if diagnostics:
    lines += ["", "## The teacher's input gradients", "",
              "| game | A | states | mean norm of J_t^T v | sd over v | cv over v"
              " | cv over states | Frobenius norm of J_t / sqrt(A) | teacher "
              "entropy |",
              "|---" * 9 + "|"]
    for d in diagnostics:
      lines.append(f"| {d.game} | {d.num_actions} | {d.states} | "
                   f"{d.mean_norm:.4g} | {d.mean_sd_over_v:.4g} | "
                   f"{d.mean_cv_over_v:.3f} | {d.cv_over_states:.3f} | "
                   f"{d.exact_rms:.4g} | {d.teacher_entropy:.3f} |")
  if times:
    lines += ["", "## Time per training step (measured, one thread)", "",
              "| game | A | arm | ms/step | ratio to regular |",
              "|---" * 5 + "|"]
    base = {t.game: t.seconds_per_step for t in times if t.arm == "regular"}
    for t in times:
      lines.append(f"| {t.game} | {t.num_actions} | {t.arm} | "
                   f"{1e3 * t.seconds_per_step:.1f} | "
                   f"{t.seconds_per_step / base.get(t.game, math.nan):.2f}x |")
  return "\n".join(lines) + "\n"


def _band(ax, steps, values, label, color, style="-"):
  values = np.asarray(values)
  mean = values.mean(axis=0)
  ax.plot(steps, mean, style, color=color, label=label)
  if values.shape[0] > 1:
    half = np.array([stats.mean_interval(values[:, i])[2] - mean[i]
                     for i in range(values.shape[1])])
    ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2)


def _curves(finished, same: Mapping[Tuple[str, float, str], str]) -> Dict:
  """(game, fraction, arm) -> list of histories (seeds); an arm that shares
  another's students (`same`, from `same_students`) is left out."""
  out = collections.defaultdict(list)
  for unit, _, result in finished:
    key = (unit.game, unit.fraction, unit.arm.name)
    if key not in same:
      out[key].append(result["history"])
  return out


def plot_kl(finished, same: Mapping[Tuple[str, float, str], str], game: str,
            path: str) -> None:
  """Train (dashed) and test (solid) KL vs steps, one panel per fraction
  (`same`: as for `_curves`)."""
  curves = {k: v for k, v in _curves(finished, same).items() if k[0] == game}
  fractions = sorted({k[1] for k in curves})
  arms = sorted({k[2] for k in curves})
  colors = dict(zip(arms, plt.cm.tab10.colors))
  fig, axes = plt.subplots(1, len(fractions), squeeze=False,
                           figsize=(5 * len(fractions), 4))
  for ax, fraction in zip(axes[0], fractions):
    for arm in arms:
      histories = curves.get((game, fraction, arm))
      if not histories:
        continue
      n = min(len(h) for h in histories)
      steps = [h["step"] for h in histories[0][:n]]
      for key, style, suffix in (("test_kl", "-", "test"),
                                 ("train_kl", "--", "train")):
        _band(ax, steps, [[row[key] for row in h[:n]] for h in histories],
              f"{arm} ({suffix})", colors[arm], style)
    ax.set_title(f"{game}, train fraction {fraction:g}")
    ax.set_xlabel("step")
    ax.set_ylabel("KL(student || teacher)")
    ax.set_ylim(bottom=0)
  axes[0][-1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_terms(finished, same: Mapping[Tuple[str, float, str], str],
               game: str, path: str) -> None:
  """The Sobolev arms' training terms: KL and lambda x gradient term
  (`same`: as for `_curves`)."""
  curves = {k: v for k, v in _curves(finished, same).items()
            if k[0] == game and not k[2].startswith("regular")}
  weights = {(u.game, u.fraction, u.arm.name): u.sobolev_weight
             for u, _, _ in finished}
  fractions = sorted({k[1] for k in curves})
  arms = sorted({k[2] for k in curves})
  colors = dict(zip(arms, plt.cm.tab10.colors))
  fig, axes = plt.subplots(1, max(len(fractions), 1), squeeze=False,
                           figsize=(5 * max(len(fractions), 1), 4))
  for ax, fraction in zip(axes[0], fractions):
    for arm in arms:
      histories = [h[1:] for h in curves.get((game, fraction, arm), [])]
      if not histories:
        continue
      n = min(len(h) for h in histories)
      steps = [h["step"] for h in histories[0][:n]]
      w = weights[(game, fraction, arm)]
      _band(ax, steps, [[r["train_kl_term"] for r in h[:n]]
                        for h in histories], f"{arm}: KL term", colors[arm])
      _band(ax, steps, [[w * r.get("train_sobolev_term", math.nan)
                         for r in h[:n]] for h in histories],
            f"{arm}: lambda x gradient term", colors[arm], "--")
    ax.set_yscale("log")
    ax.set_title(f"{game}, train fraction {fraction:g}")
    ax.set_xlabel("step")
    ax.set_ylabel("training term (mean over interval)")
  if fractions:
    axes[0][-1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_gaps(gap_rows: Sequence[GapRow], path: str) -> None:
  """Test-KL gap per fraction with 95% t intervals, one panel per game."""
  kl = [g for g in gap_rows if g.metric == "test_kl"]
  games = sorted({g.game for g in kl})
  fig, axes = plt.subplots(1, max(len(games), 1), squeeze=False,
                           figsize=(6 * max(len(games), 1), 4))
  for ax, game in zip(axes[0], games):
    series = sorted({(g.arm, g.at) for g in kl if g.game == game})
    # One slot per fraction of the game: an arm run at some fractions only
    # (a variant screened at 5%) sits at its own fractions.
    slots = {f: i for i, f in enumerate(sorted(
        {g.train_fraction for g in kl if g.game == game}))}
    for i, (arm, at) in enumerate(series):
      pts = sorted((g.train_fraction, g) for g in kl
                   if (g.game, g.arm, g.at) == (game, arm, at))
      x = (np.array([slots[f] for f, _ in pts], dtype=float) +
           0.08 * (i - len(series) / 2))
      y = np.array([g.mean_gap for _, g in pts])
      low = np.array([g.t_low for _, g in pts])
      high = np.array([g.t_high for _, g in pts])
      err = np.nan_to_num(np.stack([y - low, high - y]))
      ax.errorbar(x, y, yerr=err, fmt="o" if at == "early" else "s",
                  capsize=3, label=f"{arm} ({at})")
    ax.set_xticks(np.arange(len(slots)))
    ax.set_xticklabels([f"{f:g}" for f in slots])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title(f"{game}: test KL, Sobolev minus regular (95% t)")
    ax.set_xlabel("train fraction")
    ax.set_ylabel("paired gap")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write(workdir: str, finished, trials, diagnostics, times,
          bootstrap_samples: int, cost: str) -> List[str]:
  """Writes every output of the module docstring; returns their paths."""
  rows = result_rows(finished)
  gap_rows = gaps(rows, bootstrap_samples)
  paths = {name: os.path.join(workdir, name) for name in (
      "distillation_study_results.csv", "distillation_study_gaps.csv",
      "distillation_study_curves.csv", "distillation_study_explained.csv",
      "teacher_gradients.csv", "study.md", "paired_gaps.png")}
  results.write(paths["distillation_study_results.csv"], rows)
  results.write(paths["distillation_study_gaps.csv"], gap_rows)
  results.write(paths["distillation_study_explained.csv"], explained(rows))
  curve_rows = []
  for unit, _, result in finished:
    for h in result["history"]:
      curve_rows.append({"game": unit.game, "train_fraction": unit.fraction,
                         "arm": unit.arm.name, "seed": unit.seed, **h})
  fields = sorted({k for r in curve_rows for k in r} -
                  {"game", "train_fraction", "arm", "seed", "step"})
  files.write_csv(paths["distillation_study_curves.csv"], curve_rows,
                  fields=["game", "train_fraction", "arm", "seed", "step"] +
                  fields)
  results.write(paths["teacher_gradients.csv"], list(diagnostics))
  files.atomic_write_text(paths["study.md"], markdown(
      rows, gap_rows, trials, diagnostics, times, cost))
  outputs = list(paths.values())
  plot_gaps(gap_rows, paths["paired_gaps.png"])
  same = same_students(rows)
  for game in sorted({u.game for u, _, _ in finished}):
    for name, plot in (("kl_vs_steps", plot_kl), ("terms", plot_terms)):
      path = os.path.join(workdir, f"{name}_{game}.png")
      plot(finished, same, game, path)
      outputs.append(path)
  return outputs
