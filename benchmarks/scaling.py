"""Input and target scaling of the protocol, with the chain rule on gradients.

Inputs are mapped affinely from the domain to [-1, 1]^2: `u = (x - c) / h`.
Values are standardised with the training set's statistics:
`v = (y - mean) / std`. The gradient targets are those of `v` as a function
of `u` (chain rule): `dv/du = dy/dx * h / std`. The inverse maps bring model
predictions back to the original units for evaluation.
"""

import dataclasses

import numpy as np

from benchmarks import data
from benchmarks import functions


@dataclasses.dataclass(frozen=True)
class Scaler:
  """Affine maps between original and model units for one benchmark.

  Attributes:
    center: `[2]` domain centre c.
    half_width: `[2]` domain half-widths h.
    mean: training-value mean.
    std: training-value standard deviation (1 if it is 0).
  """
  center: np.ndarray
  half_width: np.ndarray
  mean: float
  std: float

  @classmethod
  def fit(cls, name: str, train: data.DataSet) -> "Scaler":
    """The scaler of benchmark `name` fitted on a training set."""
    bench = functions.get(name)
    std = float(np.std(train.y))
    return cls(center=bench.center, half_width=bench.half_width,
               mean=float(np.mean(train.y)), std=std if std > 0 else 1.0)

  def inputs(self, x: np.ndarray) -> np.ndarray:
    """`[N, 2]` original inputs -> `[N, 2]` model inputs in [-1, 1]^2."""
    return (x - self.center) / self.half_width

  def targets(self, y: np.ndarray, dy: np.ndarray):
    """Original `(y [N], dy [N, 2])` -> model `(v [N], dv/du [N, 2])`."""
    return ((y - self.mean) / self.std, dy * self.half_width / self.std)

  def outputs(self, v: np.ndarray, dv: np.ndarray):
    """Model `(v [N], dv/du [N, 2])` -> original `(y [N], dy/dx [N, 2])`."""
    return (v * self.std + self.mean, dv * self.std / self.half_width)
