"""One statistics convention for every results table.

Spreads are the **sample** standard deviation (ddof=1, the unbiased variance
estimate; 0 for a single value), written `mean +- std` with the number of
seeds. Intervals are two-sided 95% Student-t intervals of the mean, or
percentile bootstrap intervals for statistics other than the mean.
"""

import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

# t_{0.975, df} for df = 1..30 (exact to 3 decimals).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
         2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
         2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
         2.048, 2.045, 2.042)


def _values(values: Sequence[float]) -> np.ndarray:
  v = np.asarray(values, dtype=np.float64).reshape(-1)
  if v.size == 0:
    raise ValueError("`values` must not be empty.")
  return v


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
  """Mean and sample standard deviation (ddof=1; 0.0 for one value)."""
  v = _values(values)
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def t_quantile_975(df: int) -> float:
  """The 97.5% quantile of Student's t with `df` degrees of freedom."""
  if df < 1:
    raise ValueError(f"`df` must be >= 1, got {df}.")
  if df <= len(_T975):
    return _T975[df - 1]
  z = 1.959963984540054  # Cornish-Fisher expansion; error < 1e-4 for df > 30.
  return (z + (z**3 + z) / (4 * df) +
          (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2) +
          (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def mean_interval(values: Sequence[float]) -> Tuple[float, float, float]:
  """Mean and its two-sided 95% Student-t interval `(mean, low, high)`.

  A single value gives a degenerate interval `(v, nan, nan)`.
  """
  v = _values(values)
  mean = float(v.mean())
  if v.size < 2:
    return mean, math.nan, math.nan
  half = t_quantile_975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
  return mean, mean - half, mean + half


def bootstrap_interval(values: Sequence[float],
                       statistic: Callable[[np.ndarray], float] = np.mean,
                       *, samples: int = 10_000, level: float = 0.95,
                       seed: int = 0) -> Tuple[float, float, float]:
  """Percentile bootstrap interval `(statistic, low, high)`, seeded."""
  v = _values(values)
  if not 0 < level < 1:
    raise ValueError(f"`level` must be in (0, 1), got {level}.")
  if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
    raise ValueError(f"`samples` must be an integer >= 1, got {samples!r}.")
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, v.size, size=(samples, v.size))
  stats = np.array([statistic(v[i]) for i in idx])
  alpha = (1 - level) / 2
  return (float(statistic(v)), float(np.quantile(stats, alpha)),
          float(np.quantile(stats, 1 - alpha)))


def paired_intervals(differences: Sequence[float], *, samples: int = 10_000
                     ) -> Tuple[float, float, float, float, float]:
  """Mean of paired differences with its 95% t and bootstrap intervals.

  Args:
    differences: one difference per pair (e.g. per seed).
    samples: bootstrap resamples.

  Returns:
    `(mean, t_low, t_high, boot_low, boot_high)`; the intervals are NaN for
    a single difference.
  """
  mean, t_low, t_high = mean_interval(differences)
  if len(_values(differences)) > 1:
    _, b_low, b_high = bootstrap_interval(differences, samples=samples)
  else:
    b_low = b_high = math.nan
  return mean, t_low, t_high, b_low, b_high


def format_mean_std(values: Sequence[float], digits: int = 3,
                    with_n: bool = False,
                    fmt: Optional[str] = None) -> str:
  """`'mean +- std'` with `digits` significant digits (or a format spec)."""
  mean, std = mean_std(values)
  spec = fmt or f".{digits}g"
  text = f"{mean:{spec}} +- {std:{spec}}"
  if with_n:
    text += f" (n={len(_values(values))})"
  return text
