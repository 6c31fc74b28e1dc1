"""The seven 2-D optimisation benchmarks of the paper's Section 4.1.

Each function is written in TensorFlow (any float dtype) and maps `[N, 2]` to
`[N]`; target gradients come from autodiff (`value_and_gradient`). Domains are
those of `shared/REPRODUCTION.md`.

Non-differentiable points (measure zero, never hit exactly by uniform
sampling in practice, but handled so that autodiff never returns NaN/Inf):
  * Ackley: `sqrt(0.5 (x^2 + y^2))` is a cone at the origin. We evaluate the
    square root on a guarded argument and define the gradient at the origin
    as 0 (the minimum; 0 lies in the Clarke subdifferential there).
  * Bukin N.6: `100 sqrt(|y - 0.01 x^2|)` has an infinite derivative on the
    ridge `y = 0.01 x^2`; there we define its gradient as 0 (the value is
    a minimum along y). `0.01 |x + 10|` uses TF's `abs`, whose gradient at 0
    is 0. Near the ridge the gradient is finite but unbounded (~ 50 /
    sqrt(distance)), so Bukin's gradient targets are heavy-tailed.
"""

import dataclasses
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf

Fn = Callable[[tf.Tensor], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A benchmark function and its domain.

  Attributes:
    name: registry name (flag value).
    title: display name.
    fn: `[N, 2] -> [N]` TensorFlow function.
    low: lower corner of the domain, `(x_min, y_min)`.
    high: upper corner of the domain, `(x_max, y_max)`.
    minimizer: a global minimiser `(x, y)`.
    minimum: the global minimum value.
  """
  name: str
  title: str
  fn: Fn
  low: Tuple[float, float]
  high: Tuple[float, float]
  minimizer: Tuple[float, float]
  minimum: float

  @property
  def center(self) -> np.ndarray:
    return (np.asarray(self.high, np.float64) +
            np.asarray(self.low, np.float64)) / 2

  @property
  def half_width(self) -> np.ndarray:
    return (np.asarray(self.high, np.float64) -
            np.asarray(self.low, np.float64)) / 2


def _xy(p: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  return p[:, 0], p[:, 1]


def ackley(p: tf.Tensor) -> tf.Tensor:
  x, y = _xy(p)
  s = 0.5 * (x * x + y * y)
  positive = s > 0
  r = tf.where(positive, tf.sqrt(tf.where(positive, s, tf.ones_like(s))),
               tf.zeros_like(s))
  two_pi = tf.constant(2 * np.pi, p.dtype)
  return (-20.0 * tf.exp(-0.2 * r) -
          tf.exp(0.5 * (tf.cos(two_pi * x) + tf.cos(two_pi * y))) +
          tf.constant(np.e, p.dtype) + 20.0)


def beale(p: tf.Tensor) -> tf.Tensor:
  x, y = _xy(p)
  return ((1.5 - x + x * y)**2 + (2.25 - x + x * y**2)**2 +
          (2.625 - x + x * y**3)**2)


def booth(p: tf.Tensor) -> tf.Tensor:
  x, y = _xy(p)
  return (x + 2 * y - 7)**2 + (2 * x + y - 5)**2


def bukin(p: tf.Tensor) -> tf.Tensor:
  x, y = _xy(p)
  a = tf.abs(y - 0.01 * x * x)
  positive = a > 0
  root = tf.where(positive, tf.sqrt(tf.where(positive, a, tf.ones_like(a))),
                  tf.zeros_like(a))
  return 100.0 * root + 0.01 * tf.abs(x + 10.0)


def mccormick(p: tf.Tensor) -> tf.Tensor:
  x, y = _xy(p)
  return tf.sin(x + y) + (x - y)**2 - 1.5 * x + 2.5 * y + 1.0


def rosenbrock(p: tf.Tensor) -> tf.Tensor:
  x, y = _xy(p)
  return (1.0 - x)**2 + 100.0 * (y - x * x)**2


def styblinski_tang(p: tf.Tensor) -> tf.Tensor:
  return 0.5 * tf.reduce_sum(p**4 - 16.0 * p**2 + 5.0 * p, axis=1)


_ST_ARGMIN = -2.903534018185960

BENCHMARKS: Dict[str, Benchmark] = {
    b.name: b for b in [
        Benchmark("ackley", "Ackley", ackley, (-5.0, -5.0), (5.0, 5.0),
                  (0.0, 0.0), 0.0),
        Benchmark("beale", "Beale", beale, (-4.5, -4.5), (4.5, 4.5),
                  (3.0, 0.5), 0.0),
        Benchmark("booth", "Booth", booth, (-10.0, -10.0), (10.0, 10.0),
                  (1.0, 3.0), 0.0),
        Benchmark("bukin", "Bukin N.6", bukin, (-15.0, -3.0), (-5.0, 3.0),
                  (-10.0, 1.0), 0.0),
        Benchmark("mccormick", "McCormick", mccormick, (-1.5, -3.0),
                  (4.0, 4.0), (-0.547197553, -1.547197553),
                  -1.913222954981037),
        Benchmark("rosenbrock", "Rosenbrock", rosenbrock, (-2.0, -2.0),
                  (2.0, 2.0), (1.0, 1.0), 0.0),
        Benchmark("styblinski_tang", "Styblinski-Tang", styblinski_tang,
                  (-5.0, -5.0), (5.0, 5.0), (_ST_ARGMIN, _ST_ARGMIN),
                  -39.16616570377142 * 2),
    ]
}

NAMES = tuple(BENCHMARKS)


def get(name: str) -> Benchmark:
  """Returns the benchmark called `name`.

  Raises:
    ValueError: for an unknown name (the message lists the valid ones).
  """
  if name not in BENCHMARKS:
    raise ValueError(f"Unknown benchmark function {name!r}; valid names: "
                     f"{', '.join(NAMES)}.")
  return BENCHMARKS[name]


def value_and_gradient(name: str,
                       x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Values and autodiff gradients of a benchmark, computed in float64.

  Args:
    name: benchmark name.
    x: points, `[N, 2]`.

  Returns:
    `(values [N], gradients [N, 2])` as float64 numpy arrays.
  """
  bench = get(name)
  x = tf.convert_to_tensor(np.asarray(x, np.float64))
  if x.shape.rank != 2 or x.shape[1] != 2:
    raise ValueError(f"`x` must have shape [N, 2], got {x.shape}.")
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = bench.fn(x)
  g = tape.gradient(y, x)
  return y.numpy(), g.numpy()
