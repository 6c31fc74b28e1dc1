"""Figures 2 and 3 of the paper (matplotlib, Agg backend)."""

from typing import Dict, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from benchmarks import functions
from benchmarks import report

_COLORS = {"regular": "tab:orange", "sobolev": "tab:blue"}


def figure2(rows: Sequence[report.Row], path: str) -> None:
  """Log10 test MSE per function, regular vs Sobolev, one panel per size.

  Bars are the mean over seeds of log10 test MSE; error bars the sample std
  (ddof=1).
  """
  names = sorted({r.function for r in rows}, key=report.function_key)
  sizes = sorted({r.size for r in rows})
  fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4),
                           squeeze=False, sharey=True)
  xs = np.arange(len(names))
  for ax, size in zip(axes[0], sizes):
    for k, method in enumerate(report.METHODS):
      stats = [report.log_stats(rows, n, size, method) for n in names]
      ax.bar(xs + (k - 0.5) * 0.4, [s[0] for s in stats], 0.4,
             yerr=[s[1] for s in stats], color=_COLORS[method],
             label=method.capitalize(), capsize=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([report.title(n) for n in names], rotation=45,
                       ha="right")
    ax.set_title(f"{size} training points")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(axis="y", alpha=0.3)
  axes[0][0].set_ylabel("log10 test MSE")
  axes[0][0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def figure3(grid: Dict[str, np.ndarray], name: str, size: int,
            path: str) -> None:
  """True surface, regular fit and Sobolev fit, with gradient fields below.

  Args:
    grid: `'x'` `[G, G, 2]` grid points and, for `k` in `('true',
      'regular', 'sobolev')`, `'<k>_v'` values `[G, G]` and `'<k>_g'`
      gradients `[G, G, 2]`.
    name: benchmark name.
    size: training-set size (for the titles).
    path: output PNG.

  Raises:
    ValueError: if `name` is not a 2-D function.
  """
  bench = functions.get(name)
  if bench.dim != 2:
    raise ValueError(f"Figure 3 is a 2-D plot; {name!r} has D = {bench.dim}.")
  title = bench.title
  panels = [("true", f"{title} (true)"),
            ("regular", f"Regular, {size} points"),
            ("sobolev", f"Sobolev, {size} points")]
  x, y = grid["x"][..., 0], grid["x"][..., 1]
  zmin, zmax = grid["true_v"].min(), grid["true_v"].max()
  fig = plt.figure(figsize=(15, 9))
  step = max(1, x.shape[0] // 20)
  # One arrow scale for all panels (the true field's longest arrow spans
  # about one grid cell), so the fields are comparable.
  spacing = abs(x[0, step] - x[0, 0]) if x.shape[1] > step else 1.0
  longest = np.max(np.linalg.norm(grid["true_g"][::step, ::step], axis=-1))
  arrow_scale = max(longest, 1e-12) / (1.2 * spacing)
  for col, (k, label) in enumerate(panels):
    ax = fig.add_subplot(2, 3, col + 1, projection="3d")
    ax.plot_surface(x, y, grid[f"{k}_v"], cmap="viridis", vmin=zmin,
                    vmax=zmax, linewidth=0, antialiased=True)
    ax.set_title(label)
    ax.set_zlim(min(zmin, grid[f"{k}_v"].min()),
                max(zmax, grid[f"{k}_v"].max()))
    ax2 = fig.add_subplot(2, 3, col + 4)
    ax2.contourf(x, y, grid[f"{k}_v"], levels=20, cmap="viridis", vmin=zmin,
                 vmax=zmax)
    g = grid[f"{k}_g"]
    ax2.quiver(x[::step, ::step], y[::step, ::step], g[::step, ::step, 0],
               g[::step, ::step, 1], color="w", angles="xy",
               scale_units="xy", scale=arrow_scale, width=0.004)
    if k != "true" and "train_x" in grid:
      ax2.scatter(grid["train_x"][:, 0], grid["train_x"][:, 1], c="r", s=12,
                  label="training points")
      ax2.legend(loc="lower right", fontsize=7)
    ax2.set_title(f"gradient field: {label}")
    ax2.set_aspect("equal")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
