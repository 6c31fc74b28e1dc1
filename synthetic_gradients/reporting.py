"""The Table 1 layout of `results.md` and the curves of `curves.png`.

`results.csv` itself is written by `sobolev.experiment.results` from
`experiment.Row`s; figures are written to a temporary file and renamed.
"""

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from sobolev.experiment import stats
from synthetic_gradients import decoupled

# The paper's Table 1 (test accuracy, %): setting -> method -> (mean, std).
PAPER_TABLE1 = {
    ("cifar10", 3): {"noprop": (54.5, 1.15), "direct": (79.2, 0.01),
                     "vfbn": (88.5, 2.70), "critic": (93.2, 0.02),
                     "sobolev": (93.5, 0.01), "backprop": (94.3, None)},
    ("imagenet2012", 1): {"noprop": (54.0, 0.29), "vfbn": (57.9, None),
                          "critic": (71.7, None), "sobolev": (72.0, None),
                          "backprop": (75.0, None)},
    ("imagenet2012", 3): {"noprop": (18.7, 0.18), "vfbn": (28.3, None),
                          "critic": (65.7, None), "sobolev": (66.5, None),
                          "backprop": (75.0, None)},
}

_HEADINGS = {"direct": "Direct SG", "vfbn": "VFBN"}


def heading(method: str) -> str:
  """The Table 1 column heading of `method` (e.g. 'Direct SG')."""
  return _HEADINGS.get(method, method.capitalize())


# A Table 1 setting: (dataset, num_modules, epochs, tuning). Rows without
# `epochs` (e.g. Proposition 4 rows) have 0; without `tuning`, 'backprop'.
Setting = Tuple[str, int, int, str]


def setting(row: Any) -> Setting:
  """The setting of a result row (`experiment.Row` or alike)."""
  return (row.dataset, int(row.num_modules),
          int(getattr(row, "epochs", 0) or 0),
          getattr(row, "tuning", None) or "backprop")


def settings(rows: Sequence[Any]) -> list:
  """The settings of `rows`: by dataset, most modules first, then epochs."""
  return sorted({setting(r) for r in rows},
                key=lambda s: (s[0], -s[1], s[2], s[3]))


def setting_labels(items: Sequence[Setting]) -> Dict[Setting, str]:
  """Short labels, e.g. 'cifar10, 3 SG modules'; epochs and tuning are named
  only where `items` differ in them ('..., 20 epochs, per-method lr')."""
  many_epochs = len({s[2] for s in items}) > 1
  many_tunings = len({s[3] for s in items}) > 1
  out = {}
  for s in items:
    label = f"{s[0]}, {s[1]} SG modules"
    if many_epochs:
      label += f", {s[2]} epochs"
    if many_tunings:
      label += (", per-method lr" if s[3] == "per_method" else
                ", lr tuned for backprop")
    out[s] = label
  return out


def _mean_std(values: Sequence[float]) -> str:
  """`'mean +- std (n=k)'` in %, sample std (`stats.mean_std`, ddof=1)."""
  mean, std = stats.mean_std([v * 100.0 for v in values])
  if len(values) == 1:
    return f"{mean:.1f} (n=1)"
  return f"{mean:.1f} +- {std:.2f} (n={len(values)})"


def markdown_table(rows: Sequence[Any], title: Optional[str] = None) -> str:
  """Table 1 layout: one line per setting, one column per method.

  Args:
    rows: `experiment.Row`s (attributes `dataset`, `num_modules`, `method`,
      `test_accuracy`, `test_top5`).
    title: a heading.

  Returns:
    Markdown text.
  """
  items = sorted({setting(r) for r in rows})
  labels = setting_labels(items)
  header = "| setting | " + " | ".join(
      heading(m) for m in decoupled.METHODS) + " |"
  lines = [f"## {title}" if title else "", header,
           "|" + "---|" * (len(decoupled.METHODS) + 1)]
  papers_shown = set()
  for item in items:
    dataset, modules = item[:2]
    cells = []
    for m in decoupled.METHODS:
      sel = [r for r in rows if setting(r) == item and r.method == m]
      if not sel:
        cells.append("-")
        continue
      top1 = _mean_std([float(r.test_accuracy) for r in sel])
      top5 = [r.test_top5 for r in sel if r.test_top5 is not None]
      if dataset == "imagenet2012" and len(top5) == len(sel):
        top1 += " / " + _mean_std([float(t) for t in top5])
      cells.append(top1)
    lines.append(f"| ours: {labels[item]} | " + " | ".join(cells) + " |")
    paper = PAPER_TABLE1.get((dataset, modules))
    if paper and (dataset, modules) not in papers_shown:
      papers_shown.add((dataset, modules))
      pcells = []
      for m in decoupled.METHODS:
        if m not in paper:
          pcells.append("-")
        else:
          mean, std = paper[m]
          pcells.append(f"{mean}" + (f" +- {std}" if std is not None else ""))
      lines.append(f"| paper: {dataset}, {modules} SG modules (top-1) | " +
                   " | ".join(pcells) + " |")
  lines.append("")
  lines.append("Test accuracy in %, mean +- sample std over seeds "
               "(top-1, and top-5 for ImageNet).")
  return "\n".join(lines) + "\n"


def draw_curves(ax: Any, histories: Mapping[str, Sequence[Sequence[float]]],
                title: str = "", marker: Optional[str] = None) -> None:
  """Draws test accuracy per epoch on `ax`: mean over seeds and min-max band.

  Args:
    ax: a matplotlib axes.
    histories: method -> list (one per seed) of per-epoch test accuracies.
    title: axes title.
    marker: matplotlib marker of the mean lines (None: no markers).
  """
  for method in decoupled.METHODS:
    runs = [r for r in histories.get(method, []) if len(r)]
    if not runs:
      continue
    n = min(len(r) for r in runs)
    arr = np.asarray([r[:n] for r in runs]) * 100.0
    epochs = np.arange(1, n + 1)
    style = {"marker": marker, "markersize": 3} if marker else {}
    line, = ax.plot(epochs, arr.mean(0), label=f"{method} (n={len(runs)})",
                    **style)
    ax.fill_between(epochs, arr.min(0), arr.max(0), alpha=0.2,
                    color=line.get_color())
  ax.set_xlabel("epoch")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right", fontsize=8)


def save_figure(fig: Any, path: str, dpi: int) -> None:
  """Writes `fig` to `path` atomically (temporary file, rename); closes it."""
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig.tight_layout()
  tmp = f"{path}.tmp{os.getpid()}.png"
  fig.savefig(tmp, dpi=dpi)
  plt.close(fig)
  os.replace(tmp, path)


def plot_curves(histories: Mapping[str, Sequence[Sequence[float]]],
                path: str, title: str = "") -> None:
  """Test accuracy per epoch: mean over seeds (line) and min-max (band).

  Args:
    histories: method -> list (one per seed) of per-epoch test accuracies.
    path: output PNG path.
    title: figure title.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  draw_curves(ax, histories, title)
  save_figure(fig, path, dpi=120)
