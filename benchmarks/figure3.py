"""Figure 3 of the paper: a regular and a Sobolev model of one 2-D function
against the truth, on a grid (drawn by `benchmarks.plots.figure3`)."""

import os
from typing import Any, Mapping, Optional

import numpy as np

from benchmarks import data
from benchmarks import functions
from benchmarks import models
from benchmarks import plots
from benchmarks import report
from benchmarks import settings
from benchmarks import trainer
from sobolev.experiment import runs


def size(config: Any) -> int:
  """Figure 3 uses 20 points if swept, else the smallest size."""
  return 20 if 20 in config.sizes else min(config.sizes)


def _grid(name: str, n: int = 41) -> np.ndarray:
  bench = functions.get(name)
  if bench.dim != 2:
    raise ValueError(f"Figure 3 needs a 2-D function; {name!r} has D = "
                     f"{bench.dim}.")
  gx = np.linspace(bench.low[0], bench.high[0], n)
  gy = np.linspace(bench.low[1], bench.high[1], n)
  return np.stack(np.meshgrid(gx, gy, indexing="xy"), axis=-1)


def draw(config: Any, workdir: str, store: runs.RunStore, protocol: Any,
         evaluation: Mapping[str, Any]) -> Optional[str]:
  """Draws `<workdir>/figure3.png` from the sweep's seed-0 models.

  Args:
    config: the sweep (`figure3_function`, `functions`, `sizes`).
    workdir: where the figure goes.
    store: the sweep's finished units.
    protocol: the sweep's protocol (`settings.protocol`).
    evaluation: the sweep's evaluation set (part of the units' keys).

  Returns:
    The figure's path, or None if `figure3_function` is not swept.
  """
  name = config.figure3_function
  points = size(config)
  if name not in config.functions:
    return None
  pts = _grid(name)
  v, g = functions.value_and_gradient(name, pts.reshape(-1, 2))
  grid = {"x": pts, "true_v": v.reshape(pts.shape[:2]),
          "true_g": g.reshape(pts.shape),
          "train_x": data.train_set(name, points, 0).x}
  for method in report.METHODS:
    unit = settings.unit_settings(trainer.Run(name, points, method, 0),
                                  protocol, evaluation)
    mv, mg = models.predict(store.unit_dir(unit, create=False),
                            pts.reshape(-1, 2))
    grid[f"{method}_v"] = mv.reshape(pts.shape[:2])
    grid[f"{method}_g"] = mg.reshape(pts.shape)
  out = os.path.join(workdir, "figure3.png")
  plots.figure3(grid, name, points, out)
  return out
