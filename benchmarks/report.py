"""Results I/O: the resumable CSV and the Markdown table (Figure 2 layout)."""

import csv
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from benchmarks import config as config_lib
from benchmarks import functions

COLUMNS = ("function", "size", "method", "seed", "test_mse", "test_grad_mse",
           "train_seconds")

Row = Dict[str, object]
Key = Tuple[str, int, str, int]


def key(row: Row) -> Key:
  """The identity of a run: (function, size, method, seed)."""
  return (str(row["function"]), int(row["size"]), str(row["method"]),
          int(row["seed"]))


def read_csv(path: str) -> List[Row]:
  """Reads `results.csv` (missing file: no rows), with typed fields.

  Raises:
    ValueError: if the file's header is not exactly `COLUMNS`.
  """
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    if tuple(reader.fieldnames or ()) != COLUMNS:
      raise ValueError(f"{path} has columns {reader.fieldnames}, expected "
                       f"{list(COLUMNS)}.")
    rows = []
    for r in reader:
      rows.append(dict(function=r["function"], size=int(r["size"]),
                       method=r["method"], seed=int(r["seed"]),
                       test_mse=float(r["test_mse"]),
                       test_grad_mse=float(r["test_grad_mse"]),
                       train_seconds=float(r["train_seconds"])))
  return rows


def write_text(path: str, text: str) -> None:
  """Writes a file atomically (temporary file + `os.replace`)."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w", newline="") as f:
    f.write(text)
  os.replace(tmp, path)


def write_csv(path: str, rows: Sequence[Row]) -> None:
  """Writes all rows atomically, sorted by run identity."""
  tmp = f"{path}.tmp{os.getpid()}"
  order = {n: i for i, n in enumerate(functions.NAMES)}
  rows = sorted(rows, key=lambda r: (order.get(r["function"], 99),
                                     int(r["size"]), str(r["method"]),
                                     int(r["seed"])))
  with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
      w.writerow({c: (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c])
                  for c in COLUMNS})
  os.replace(tmp, path)


def log_stats(rows: Sequence[Row], function: str, size: int, method: str,
              field: str = "test_mse") -> Tuple[float, float, int]:
  """Mean and std (over seeds) of log10 `field`, and the number of seeds."""
  vals = [np.log10(max(float(r[field]), 1e-30)) for r in rows
          if r["function"] == function and int(r["size"]) == size and
          r["method"] == method]
  if not vals:
    return float("nan"), float("nan"), 0
  return float(np.mean(vals)), float(np.std(vals)), len(vals)


def _table(rows: Sequence[Row], field: str) -> List[str]:
  names = [n for n in functions.NAMES if any(r["function"] == n
                                             for r in rows)]
  sizes = sorted({int(r["size"]) for r in rows})
  header = "| Function | " + " | ".join(
      f"{s} pts: {m}" for s in sizes for m in config_lib.METHODS) + " |"
  lines = [header, "|---|" + "---|" * (2 * len(sizes))]
  for name in names:
    cells = []
    for size in sizes:
      means = {}
      for method in config_lib.METHODS:
        mean, std, n = log_stats(rows, name, size, method, field)
        means[method] = mean
        cells.append("-" if n == 0 else f"{mean:.2f} +- {std:.2f}")
      if all(np.isfinite(v) for v in means.values()):
        better = min(means, key=means.get)
        cells[-2 + config_lib.METHODS.index(better)] = (
            f"**{cells[-2 + config_lib.METHODS.index(better)]}**")
    lines.append(f"| {functions.get(name).title} | " + " | ".join(cells) +
                 " |")
  return lines


def markdown(rows: Sequence[Row]) -> str:
  """The results table in the paper's Figure 2 layout, plus gradient errors.

  Args:
    rows: result rows.

  Returns:
    Markdown text: log10 test MSE (mean +- std over seeds) per function,
    training-set size and method (the better mean in bold), the same for
    the test gradient MSE, and the claim checks.
  """
  seeds = sorted({int(r["seed"]) for r in rows})
  lines = [
      "## Test MSE (log10, mean +- std over seeds "
      f"{', '.join(map(str, seeds))})", "",
      *_table(rows, "test_mse"), "",
      "## Test gradient MSE (log10 of mean ||D m - D f||^2, mean +- std)", "",
      *_table(rows, "test_grad_mse"), "",
      "## The paper's claims, checked on these numbers", "",
      *claims(rows)
  ]
  return "\n".join(lines) + "\n"


def claims(rows: Sequence[Row]) -> List[str]:
  """Checks the paper's Figure 2 claims per training-set size (Markdown)."""
  out = []
  names = [n for n in functions.NAMES if any(r["function"] == n
                                             for r in rows)]
  for size in sorted({int(r["size"]) for r in rows}):
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
