"""results.csv, results.md and figure4.png of the distillation experiment."""

import collections
import os
from typing import Dict, List, Optional

import numpy as np

from sobolev.experiment import files
from sobolev.experiment import stats

RESULT_FIELDS = ["game", "train_fraction", "method", "seed", "step",
                 "test_action_error", "test_kl"]
METHOD_STYLE = {"regular": ("tab:blue", "regular distillation"),
                "sobolev": ("tab:red", "Sobolev distillation")}


def _curves(rows: List[Dict]) -> Dict:
  """{(fraction, method): {seed: (steps, errors, kls)}}."""
  out = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in rows:
    key = (float(r["train_fraction"]), r["method"])
    out[key][int(r["seed"])].append(
        (int(r["step"]), float(r["test_action_error"]), float(r["test_kl"])))
  return {k: {s: tuple(np.array(x) for x in zip(*sorted(v)))
              for s, v in d.items()} for k, d in out.items()}


def markdown_table(rows: List[Dict], game: str,
                   teacher_note: Optional[str] = None) -> str:
  """Final (last step) and best-over-training test metrics, mean +- std."""
  curves = _curves(rows)
  lines = [f"# Policy distillation on {game}", ""]
  if teacher_note:
    lines += [teacher_note, ""]
  lines += [
      "Test metrics on held-out games (mean +- std over seeds; std is the "
      "sample std, ddof=1). `final` is the last evaluation, `min` the best "
      "evaluation over training (per seed, then averaged).", "",
      "| train fraction | method | seeds | steps | final action error | "
      "final KL(student‖teacher) | min action error | min KL |",
      "|---|---|---|---|---|---|---|---|"]
  for (fraction, method) in sorted(curves):
    seeds = curves[(fraction, method)]
    finals_e = [v[1][-1] for v in seeds.values()]
    finals_k = [v[2][-1] for v in seeds.values()]
    mins_e = [v[1].min() for v in seeds.values()]
    mins_k = [v[2].min() for v in seeds.values()]
    steps = max(int(v[0][-1]) for v in seeds.values())
    fmt = lambda x: "{:.4g} ± {:.2g}".format(*stats.mean_std(x))
    lines.append(f"| {fraction:g} | {method} | {len(seeds)} | {steps} | "
                 f"{fmt(finals_e)} | {fmt(finals_k)} | {fmt(mins_e)} | "
                 f"{fmt(mins_k)} |")
  return "\n".join(lines) + "\n"


def plot_figure4(rows: List[Dict], path: str, title: str) -> None:
  """Test action error and test KL vs steps, one column per fraction.

  Lines are means over seeds, bands +- one sample std (ddof=1, as in the
  tables); y-axes start at 0 (linear).
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  curves = _curves(rows)
  fractions = sorted({f for f, _ in curves})
  fig, axes = plt.subplots(2, len(fractions), squeeze=False,
                           figsize=(3.6 * len(fractions) + 0.6, 6.2))
  for col, fraction in enumerate(fractions):
    for method, (color, label) in METHOD_STYLE.items():
      seeds = curves.get((fraction, method))
      if not seeds:
        continue
      steps = next(iter(seeds.values()))[0]
      for row, idx in ((0, 1), (1, 2)):
        ys = np.stack([v[idx] for v in seeds.values()
                       if len(v[idx]) == len(steps)])
        mean = ys.mean(0)
        std = ys.std(0, ddof=1) if len(ys) > 1 else np.zeros_like(mean)
        ax = axes[row, col]
        ax.plot(steps, mean, color=color, label=f"{label} (n={len(ys)})")
        ax.fill_between(steps, mean - std, mean + std, color=color,
                        alpha=0.2, linewidth=0)
    axes[0, col].set_title(f"{fraction:g} of the states for training")
    axes[0, col].set_ylim(bottom=0)
    axes[1, col].set_ylim(bottom=0)
    axes[1, col].set_xlabel("training step")
  axes[0, 0].set_ylabel("test action prediction error")
  axes[1, 0].set_ylabel("test KL(student ‖ teacher)")
  axes[0, 0].legend(fontsize=8)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=110)
  plt.close(fig)
  os.replace(tmp, path)


def plot_teacher_curves(logs: Dict[str, str], path: str,
                        marks: Optional[Dict[str, float]] = None,
                        mark_label: str = "") -> None:
  """Episode returns vs emulator frames of teacher training runs.

  Args:
    logs: game -> path of an `episodes.csv` / `train_log.csv`.
    path: output PNG.
    marks: optional game -> frame count to mark with a vertical line (e.g.
      where a training setting changed).
    mark_label: legend label of the marks.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(logs), squeeze=False,
                           figsize=(4.2 * len(logs), 3.4))
  for ax, (game, log) in zip(axes[0], logs.items()):
    rows = files.read_csv(log)
    frames = np.array([float(r["frames"]) for r in rows])
    returns = np.array([float(r["episode_return"]) for r in rows])
    ax.plot(frames, returns, ".", alpha=0.25, markersize=3,
            label="one game")
    if returns.size >= 20:
      window = np.convolve(returns, np.ones(20) / 20, mode="valid")
      ax.plot(frames[19:], window, color="black",
              label="mean of last 20 games")
    if marks and game in marks:
      ax.axvline(marks[game], color="tab:red", linestyle="--",
                 label=mark_label or None)
    ax.set_title(f"{game} (A2C)")
    ax.set_xlabel("emulator frames")
    ax.set_ylabel("game score (all lives, unclipped)")
    ax.legend(fontsize=8)
  fig.tight_layout()
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, path)
