"""Seeded data sets for the benchmarks: uniform samples with value/gradient targets.

Every set is drawn uniformly from the function's domain with a numpy
generator seeded by a `SeedSequence` of (purpose, function index
(`functions.Benchmark.index`), size, seed), so that sets are reproducible
and independent of which other runs share a sweep:
  * train: `size` points per (function, size, seed);
  * validation: a separate set per (function, seed) used only for tuning the
    protocol (`benchmarks.tune`);
  * test: ONE fixed set of `TEST_SIZE` points per function, shared by all
    sizes, seeds and methods.
"""

import dataclasses

import numpy as np

from benchmarks import functions

TEST_SIZE = 10000
_PURPOSES = {"train": 0, "validation": 1, "test": 2}
TEST_SEED = 2017


@dataclasses.dataclass(frozen=True)
class DataSet:
  """Points and targets in the function's original units.

  Attributes:
    x: `[N, D]` float64 inputs.
    y: `[N]` float64 values.
    dy: `[N, D]` float64 gradients.
  """
  x: np.ndarray
  y: np.ndarray
  dy: np.ndarray

  def __len__(self) -> int:
    return self.x.shape[0]


def _check_size(size: int, name: str = "size") -> None:
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
    raise TypeError(f"`{name}` must be an int, got {type(size).__name__}.")
  if size <= 0:
    raise ValueError(f"`{name}` must be > 0, got {size}.")


def sample_inputs(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
  """Draws `size` points uniformly from the domain of benchmark `name`.

  Args:
    name: benchmark name.
    size: number of points (> 0).
    rng: numpy generator.

  Returns:
    `[size, D]` float64 points in `[low, high)` (D the function's dimension).

  Raises:
    ValueError: for an unknown name or a size <= 0.
  """
  bench = functions.get(name)
  _check_size(size)
  low = np.asarray(bench.low, np.float64)
  high = np.asarray(bench.high, np.float64)
  return low + (high - low) * rng.random((size, bench.dim))


def _seeded(name: str, purpose: str, size: int, seed: int) -> DataSet:
  index = functions.get(name).index
  rng = np.random.default_rng(
      np.random.SeedSequence([_PURPOSES[purpose], index, size, seed]))
  x = sample_inputs(name, size, rng)
  y, dy = functions.value_and_gradient(name, x)
  return DataSet(x=x, y=y, dy=dy)


def train_set(name: str, size: int, seed: int) -> DataSet:
  """The training set of `size` points for (function, seed)."""
  _check_size(size)
  return _seeded(name, "train", size, seed)


def validation_set(name: str, seed: int, size: int = 2000) -> DataSet:
  """A held-out validation set for tuning (disjoint draw from train/test)."""
  _check_size(size)
  return _seeded(name, "validation", size, seed)


def test_set(name: str, size: int = TEST_SIZE) -> DataSet:
  """The fixed test set of benchmark `name` (same for every run)."""
  _check_size(size)
  return _seeded(name, "test", size, TEST_SEED)
