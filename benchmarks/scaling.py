"""Input and target scaling of the protocols, with the chain rule on gradients.

Inputs are mapped affinely, `u = (x - c) / h` (per coordinate), and values
`v = (y - mean) / std`. The gradient targets are those of `v` as a function
of `u` (chain rule): `dv/du = dy/dx * h / std`. The inverse maps bring model
predictions back to the original units for evaluation. What `c`, `h`, `mean`
and `std` are depends on the protocol (`benchmarks.protocols`):

* 'ours': `c`, `h` the domain's centre and half-widths (u in [-1, 1]^D);
  `mean`, `std` the training values' mean and std;
* 'raw_l2': the same input map, `mean = 0`, `std = 1` (raw values);
* 'differential_ml': `c`, `h` the training inputs' per-coordinate mean and
  std; `mean`, `std` the training values' mean and std.

A zero standard deviation is replaced by 1.
"""

import dataclasses

import numpy as np

from benchmarks import data
from benchmarks import functions
from benchmarks import protocols


@dataclasses.dataclass(frozen=True)
class Scaler:
  """Affine maps between original and model units for one benchmark.

  Attributes:
    center: `[D]` input offset c.
    half_width: `[D]` input scale h.
    mean: value offset.
    std: value scale (1 if the training values' std is 0).
  """
  center: np.ndarray
  half_width: np.ndarray
  mean: float
  std: float

  @classmethod
  def fit(cls, name: str, train: data.DataSet,
          protocol: str = protocols.DEFAULT) -> "Scaler":
    """The scaler of benchmark `name` fitted on a training set.

    Args:
      name: benchmark name.
      train: its training set.
      protocol: one of `protocols.NAMES`.

    Raises:
      ValueError: for an unknown name or protocol.
    """
    bench = functions.get(name)
    protocols.check(protocol)
    if protocol == "raw_l2":
      return cls(center=bench.center, half_width=bench.half_width, mean=0.0,
                 std=1.0)
    std = float(np.std(train.y))
    mean, std = float(np.mean(train.y)), std if std > 0 else 1.0
    if protocol == "differential_ml":
      x_std = np.std(train.x, axis=0)
      return cls(center=np.mean(train.x, axis=0),
                 half_width=np.where(x_std > 0, x_std, 1.0), mean=mean,
                 std=std)
    return cls(center=bench.center, half_width=bench.half_width, mean=mean,
               std=std)

  def inputs(self, x: np.ndarray) -> np.ndarray:
    """`[N, D]` original inputs -> `[N, D]` model inputs."""
    return (x - self.center) / self.half_width

  def targets(self, y: np.ndarray, dy: np.ndarray):
    """Original `(y [N], dy [N, D])` -> model `(v [N], dv/du [N, D])`."""
    return ((y - self.mean) / self.std, dy * self.half_width / self.std)

  def outputs(self, v: np.ndarray, dv: np.ndarray):
    """Model `(v [N], dv/du [N, D])` -> original `(y [N], dy/dx [N, D])`."""
    return (v * self.std + self.mean, dv * self.std / self.half_width)
