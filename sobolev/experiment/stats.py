"""One statistics convention for every results table.

Spreads are the **sample** standard deviation (ddof=1, the unbiased variance
estimate; 0 for a single value), written `mean +- std` with the number of
seeds. Intervals are two-sided 95% Student-t intervals of the mean (the
quantile from `scipy.stats.t`), or percentile bootstrap intervals
(`scipy.stats.bootstrap`, seeded) for statistics other than the mean.
"""

import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from scipy import stats as scipy_stats


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
  return float(scipy_stats.t.ppf(0.975, df))


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
  """Percentile bootstrap interval `(statistic, low, high)` (scipy, seeded).

  Args:
    values: the sample.
    statistic: of a 1-D array (applied to each resample).
    samples: the number of resamples.
    level: the confidence level.
    seed: the resampling seed.

  Returns:
    `(statistic(values), low, high)`; one value gives `(v, v, v)`.

  Raises:
    ValueError: for no values, a level outside (0, 1) or a bad `samples`.
  """
  v = _values(values)
  if not 0 < level < 1:
    raise ValueError(f"`level` must be in (0, 1), got {level}.")
  if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
    raise ValueError(f"`samples` must be an integer >= 1, got {samples!r}.")
  if v.size < 2:  # Every resample is the one value.
    value = float(statistic(v))
    return value, value, value
  # Resamples `default_rng(seed).integers(0, n, (samples, n))`, one per row;
  # the interval is the linear-interpolated `(1 -+ level) / 2` quantiles.
  result = scipy_stats.bootstrap(
      (v,), statistic, n_resamples=samples, vectorized=False,
      confidence_level=level, method="percentile",
      rng=np.random.default_rng(seed))
  interval = result.confidence_interval
  return (float(statistic(v)), float(interval.low), float(interval.high))


def paired_intervals(differences: Sequence[float], *, samples: int = 10_000
                     ) -> Tuple[float, float, float, float, float]:
  """Mean of paired differences with its 95% t and bootstrap intervals.

  Returns `(mean, t_low, t_high, boot_low, boot_high)` of one difference per
  pair (e.g. per seed), with `samples` bootstrap resamples; the intervals
  are NaN for a single difference.
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
