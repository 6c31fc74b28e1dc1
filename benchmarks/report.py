"""Result rows and the Markdown table (the paper's Figure 2 layout).

`Row` is the public row type of `results.csv`: read a sweep's results with
`sobolev.experiment.results.read(path, report.Row)` (or `report.read`).
Spreads are the sample standard deviation over seeds (ddof=1,
`sobolev.experiment.stats`).
"""

import dataclasses
import math
from typing import List, Sequence, Tuple

from benchmarks import functions
from sobolev.experiment import results
from sobolev.experiment import stats

METHODS = ("regular", "sobolev")


@dataclasses.dataclass(frozen=True)
class Row:
  """One trained model's test numbers (a row of `results.csv`).

  Attributes:
    function: benchmark name.
    size: training-set size.
    method: 'regular' or 'sobolev'.
    seed: the run's seed.
    test_mse: mean squared value error on the function's test set, in the
      function's original units.
    test_grad_mse: mean squared Euclidean norm of the gradient error.
    train_seconds: wall-clock training time of the model's group divided by
      the number of models in it.
  """
  function: str
  size: int
  method: str
  seed: int
  test_mse: float
  test_grad_mse: float
  train_seconds: float

  @property
  def key(self) -> Tuple[str, int, str, int]:
    return (self.function, self.size, self.method, self.seed)


def log10(value: float) -> float:
  """log10 of an error, floored at 1e-30 (an exact fit stays finite)."""
  return math.log10(max(float(value), 1e-30))


def function_key(name: str):
  """Display order of function names (`functions.ordered`): the paper's
  seven in `functions.NAMES` order, then `<family>_<D>d` by family and D,
  then other names alphabetically."""
  if name in functions.NAMES:
    return (0, functions.NAMES.index(name), 0, name)
  try:
    family, dim = functions.family_and_dim(name)
  except ValueError:  # Not registered in this process.
    return (2, 0, 0, name)
  if family in functions.FAMILIES:
    return (1, functions.FAMILIES.index(family), dim, name)
  return (2, 0, 0, name)


def sort_key(row: Row):
  """Function order of `function_key`, then size, method and seed."""
  return (function_key(row.function), row.size,
          METHODS.index(row.method) if row.method in METHODS else 99,
          row.seed)


def title(name: str) -> str:
  """The display title of a function (its name if not registered here)."""
  try:
    return functions.get(name).title
  except ValueError:
    return name


def read(path: str) -> List[Row]:
  """Reads a `results.csv` as typed rows (a missing file: no rows)."""
  return results.read(path, Row)


def write(path: str, rows: Sequence[Row]) -> None:
  """Writes `results.csv` atomically, sorted by `sort_key`."""
  results.write(path, sorted(rows, key=sort_key))


def log_stats(rows: Sequence[Row], function: str, size: int, method: str,
              field: str = "test_mse") -> Tuple[float, float, int]:
  """Mean and sample std (ddof=1) over seeds of log10 `field`, and the count.

  Returns:
    `(mean, std, n)`; `(nan, nan, 0)` without rows, std 0 for one seed.
  """
  vals = [log10(getattr(r, field)) for r in rows
          if r.function == function and r.size == size and r.method == method]
  if not vals:
    return float("nan"), float("nan"), 0
  mean, std = stats.mean_std(vals)
  return mean, std, len(vals)


def _table(rows: Sequence[Row], field: str) -> List[str]:
  names = sorted({r.function for r in rows}, key=function_key)
  sizes = sorted({r.size for r in rows})
  header = "| Function | " + " | ".join(
      f"{s} pts: {m}" for s in sizes for m in METHODS) + " |"
  lines = [header, "|---|" + "---|" * (2 * len(sizes))]
  for name in names:
    cells = []
    for size in sizes:
      means = {}
      for method in METHODS:
        mean, std, n = log_stats(rows, name, size, method, field)
        means[method] = mean
        cells.append("-" if n == 0 else f"{mean:.2f} +- {std:.2f}")
      if all(math.isfinite(v) for v in means.values()):
        better = min(means, key=means.get)
        i = len(cells) - 2 + METHODS.index(better)
        cells[i] = f"**{cells[i]}**"
    lines.append(f"| {title(name)} | " + " | ".join(cells) +
                 " |")
  return lines


def markdown(rows: Sequence[Row]) -> str:
  """The results table in the paper's Figure 2 layout, plus gradient errors.

  Args:
    rows: result rows.

  Returns:
    Markdown text: log10 test MSE (mean +- sample std over seeds) per
    function, training-set size and method (the better mean in bold), the
    same for the test gradient MSE, and the claim checks.
  """
  seeds = sorted({r.seed for r in rows})
  lines = [
      "## Test MSE (log10, mean +- sample std (ddof=1) over seeds "
      f"{', '.join(map(str, seeds))})", "",
      *_table(rows, "test_mse"), "",
      "## Test gradient MSE (log10 of mean ||D m - D f||^2, mean +- sample "
      "std)", "",
      *_table(rows, "test_grad_mse"), "",
      "## The paper's claims, checked on these numbers", "",
      *claims(rows)
  ]
  return "\n".join(lines) + "\n"


def claims(rows: Sequence[Row]) -> List[str]:
  """Checks the paper's Figure 2 claims per training-set size (Markdown)."""
  out = []
  names = sorted({r.function for r in rows}, key=function_key)
  for size in sorted({r.size for r in rows}):
    wins, big, gwins = [], [], []
    for name in names:
      reg = log_stats(rows, name, size, "regular")[0]
      sob = log_stats(rows, name, size, "sobolev")[0]
      greg = log_stats(rows, name, size, "regular", "test_grad_mse")[0]
      gsob = log_stats(rows, name, size, "sobolev", "test_grad_mse")[0]
      if sob < reg:
        wins.append(name)
      if sob < reg - 1.0:
        big.append(name)
      if gsob < greg:
        gwins.append(name)
    n = len(names)
    out.append(
        f"- {size} points: Sobolev has the lower mean log10 test MSE on "
        f"{len(wins)}/{n} functions ({', '.join(wins) or 'none'}); >= 10x "
        f"lower on {len(big)}/{n} ({', '.join(big) or 'none'}); lower test "
        f"gradient MSE on {len(gwins)}/{n}.")
  return out
