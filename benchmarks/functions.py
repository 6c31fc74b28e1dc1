"""Benchmark functions: the paper's seven 2-D ones (Section 4.1) and more.

Each function is written in TensorFlow (any float dtype) and maps `[N, D]` to
`[N]`, where D is the benchmark's input dimension (`Benchmark.dim`); target
gradients come from autodiff (`value_and_gradient`). Domains are those of
`shared/REPRODUCTION.md`.

Registry. `get(name)` knows three kinds of names:
  * the paper's seven 2-D functions (`NAMES`; their definitions, domains and
    seeds are those of the published results and never change);
  * D-dimensional Rosenbrock and Styblinski-Tang for D >= 3, named
    `rosenbrock_<D>d` and `styblinski_tang_<D>d` (`with_dim(family, D)`;
    D = 2 is the plain 2-D name), built on first use;
  * functions registered by the user with `register(Benchmark(...))`, e.g.
    in a config file passed as `--config=<file>` to `benchmarks.run` or
    `benchmarks.study` (the file is imported before the flags are read).

A benchmark's *index* (`Benchmark.index`) seeds its data and its models'
initialisation: 0-6 for the paper's seven (as before), and for every other
name a stable number derived from the name alone (`name_index`), so that the
numbers of a run depend only on its own name and seed, not on the order in
which functions were registered.

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
import hashlib
import re
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

Fn = Callable[[tf.Tensor], tf.Tensor]

# Indices of user and D-dimensional functions start here (the paper's seven
# use 0-6) and stay below _FIRST_INDEX + _INDEX_RANGE, so that model seeds
# `1000 * (index + 1) + seed` stay below 2**24 (see `benchmarks.trainer`).
_FIRST_INDEX = 100
_INDEX_RANGE = 9000


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A benchmark function and its domain.

  Attributes:
    name: registry name (flag value): lower-case letters, digits and '_'.
    title: display name.
    fn: `[N, D] -> [N]` TensorFlow function (any float dtype).
    low: lower corner of the domain, D floats.
    high: upper corner of the domain, D floats (each > its `low`).
    minimizer: a global minimiser (D floats), or None if unknown.
    minimum: the global minimum value, or None if unknown.
  """
  name: str
  title: str
  fn: Fn
  low: Tuple[float, ...]
  high: Tuple[float, ...]
  minimizer: Optional[Tuple[float, ...]] = None
  minimum: Optional[float] = None

  def __post_init__(self):
    if not isinstance(self.name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*",
                                                          self.name):
      raise ValueError(f"`name` must be lower-case letters, digits and '_' "
                       f"(starting with a letter), got {self.name!r}.")
    if not callable(self.fn):
      raise TypeError(f"`fn` must be callable, got {type(self.fn).__name__}.")
    low = np.asarray(self.low, np.float64)
    high = np.asarray(self.high, np.float64)
    if low.ndim != 1 or low.size < 1 or low.shape != high.shape:
      raise ValueError(f"`low` and `high` must be sequences of the same "
                       f"length D >= 1, got {self.low!r} and {self.high!r}.")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and
            np.all(low < high)):
      raise ValueError(f"The domain must be finite with low < high in every "
                       f"coordinate, got low={self.low!r}, high={self.high!r}.")
    if self.minimizer is not None and len(self.minimizer) != low.size:
      raise ValueError(f"`minimizer` must have {low.size} coordinates, got "
                       f"{self.minimizer!r}.")

  @property
  def dim(self) -> int:
    """The input dimension D."""
    return len(self.low)

  @property
  def index(self) -> int:
    """The number that seeds this benchmark's data and models."""
    return name_index(self.name)

  @property
  def center(self) -> np.ndarray:
    """`[D]` centre of the domain."""
    return (np.asarray(self.high, np.float64) +
            np.asarray(self.low, np.float64)) / 2

  @property
  def half_width(self) -> np.ndarray:
    """`[D]` half-widths of the domain."""
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
  """The 2-D Rosenbrock function (the published results' definition)."""
  x, y = _xy(p)
  return (1.0 - x)**2 + 100.0 * (y - x * x)**2


def rosenbrock_nd(p: tf.Tensor) -> tf.Tensor:
  """D-dimensional Rosenbrock, `sum_{i<D} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`.

  Args:
    p: `[N, D]`, D >= 2.

  Returns:
    `[N]`; the minimum 0 is at (1, ..., 1). At D = 2 it equals `rosenbrock`
    up to float rounding (the terms are added in another order).
  """
  head, tail = p[:, :-1], p[:, 1:]
  return tf.reduce_sum(100.0 * (tail - head * head)**2 + (1.0 - head)**2,
                       axis=1)


def styblinski_tang(p: tf.Tensor) -> tf.Tensor:
  """Styblinski-Tang in any dimension, `0.5 sum_i x_i^4 - 16 x_i^2 + 5 x_i`."""
  return 0.5 * tf.reduce_sum(p**4 - 16.0 * p**2 + 5.0 * p, axis=1)


# The minimiser of x^4 - 16 x^2 + 5 x (root of 4 x^3 - 32 x + 5) and the
# per-coordinate minimum of Styblinski-Tang.
ST_ARGMIN = -2.903534027771178
ST_MIN_PER_DIM = -39.16616570377142

_PAPER = [
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
              (-5.0, -5.0), (5.0, 5.0), (ST_ARGMIN, ST_ARGMIN),
              ST_MIN_PER_DIM * 2),
]

# The paper's seven 2-D benchmarks, in the order of the published results.
NAMES = tuple(b.name for b in _PAPER)
# Families defined for any input dimension (`with_dim`).
FAMILIES = ("rosenbrock", "styblinski_tang")
_PATTERN = re.compile(r"(?P<family>[a-z_]+?)_(?P<dim>[0-9]+)d")

BENCHMARKS: Dict[str, Benchmark] = {b.name: b for b in _PAPER}
_USER: Dict[str, Benchmark] = {}


def name_index(name: str) -> int:
  """The seeding index of benchmark `name` (see the module docstring).

  0-6 for the paper's seven in `NAMES` order; otherwise
  `100 + (first 8 hex digits of sha256(name)) mod 9000`.
  """
  if name in NAMES:
    return NAMES.index(name)
  digest = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16)
  return _FIRST_INDEX + digest % _INDEX_RANGE


def with_dim(family: str, dim: int) -> str:
  """The registry name of a D-dimensional family member.

  Args:
    family: one of `FAMILIES`.
    dim: D >= 2.

  Returns:
    `family` itself for D = 2 (the paper's function), else `'<family>_<D>d'`.

  Raises:
    ValueError: for an unknown family or D < 2.
  """
  if family not in FAMILIES:
    raise ValueError(f"Unknown family {family!r}; valid: {', '.join(FAMILIES)}.")
  if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
    raise ValueError(f"`dim` must be an integer >= 2, got {dim!r}.")
  return family if dim == 2 else f"{family}_{int(dim)}d"


def _make_family(family: str, dim: int) -> Benchmark:
  name = with_dim(family, dim)
  if family == "rosenbrock":
    return Benchmark(name, f"Rosenbrock {dim}-D", rosenbrock_nd,
                     (-2.0,) * dim, (2.0,) * dim, (1.0,) * dim, 0.0)
  return Benchmark(name, f"Styblinski-Tang {dim}-D", styblinski_tang,
                   (-5.0,) * dim, (5.0,) * dim, (ST_ARGMIN,) * dim,
                   ST_MIN_PER_DIM * dim)


def _family_member(name: str) -> Optional[Benchmark]:
  match = _PATTERN.fullmatch(name)
  if match is None or match["family"] not in FAMILIES:
    return None
  dim = int(match["dim"])
  if dim < 3 or match["dim"] != str(dim):
    return None
  return _make_family(match["family"], dim)


def register(benchmark: Benchmark) -> Benchmark:
  """Adds a user benchmark to the registry (for `--config.functions`).

  Units of a sweep are keyed by the function's name, dimension and domain,
  not by its code: give a changed function a new name (or a new workdir).

  Args:
    benchmark: the function; its name must be new.

  Returns:
    `benchmark`.

  Raises:
    TypeError: if `benchmark` is not a `Benchmark`.
    ValueError: if the name is taken (a built-in, a `<family>_<D>d` name or
      an earlier registration).
  """
  if not isinstance(benchmark, Benchmark):
    raise TypeError(f"`benchmark` must be a functions.Benchmark, got "
                    f"{type(benchmark).__name__}.")
  name = benchmark.name
  if name in BENCHMARKS or _family_member(name) is not None:
    raise ValueError(f"A benchmark called {name!r} exists already; choose "
                     "another name.")
  BENCHMARKS[name] = benchmark
  _USER[name] = benchmark
  return benchmark


def unregister(name: str) -> None:
  """Removes a user benchmark (tests); built-in names cannot be removed.

  Raises:
    ValueError: if `name` is not a user-registered benchmark.
  """
  if name not in _USER:
    raise ValueError(f"{name!r} is not a user-registered benchmark.")
  del _USER[name]
  del BENCHMARKS[name]


def is_builtin(name: str) -> bool:
  """Whether `name` is one of the paper's seven or a family member."""
  return name in NAMES or _family_member(name) is not None


def known_names() -> Tuple[str, ...]:
  """The paper's seven, then user-registered names (family members aside)."""
  return NAMES + tuple(_USER)


def get(name: str) -> Benchmark:
  """Returns the benchmark called `name`.

  Raises:
    ValueError: for an unknown name (the message lists the valid ones).
  """
  if isinstance(name, str):
    if name in BENCHMARKS:
      return BENCHMARKS[name]
    member = _family_member(name)
    if member is not None:
      BENCHMARKS[name] = member
      return member
  raise ValueError(
      f"Unknown benchmark function {name!r}; valid names: "
      f"{', '.join(known_names())}, or "
      f"{' / '.join(f + '_<D>d' for f in FAMILIES)} for D >= 3 "
      "(user functions: benchmarks.functions.register).")


def family_and_dim(name: str) -> Tuple[str, int]:
  """`('rosenbrock', 4)` for 'rosenbrock_4d', `(name, D)` otherwise."""
  match = _PATTERN.fullmatch(name)
  if match is not None and _family_member(name) is not None:
    return match["family"], int(match["dim"])
  return name, get(name).dim


def value_and_gradient(name: str,
                       x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Values and autodiff gradients of a benchmark, computed in float64.

  Args:
    name: benchmark name.
    x: points, `[N, D]` with D the benchmark's dimension.

  Returns:
    `(values [N], gradients [N, D])` as float64 numpy arrays.

  Raises:
    ValueError: for an unknown name, a wrong shape, or a function returning
      something other than `[N]` values.
  """
  bench = get(name)
  x = tf.convert_to_tensor(np.asarray(x, np.float64))
  if x.shape.rank != 2 or x.shape[1] != bench.dim:
    raise ValueError(f"`x` must have shape [N, {bench.dim}] for {name!r}, got "
                     f"{x.shape}.")
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = bench.fn(x)
  if y.shape.rank != 1 or y.shape[0] != x.shape[0]:
    raise ValueError(f"Benchmark {name!r} must map [N, {bench.dim}] to [N], "
                     f"got shape {y.shape} for {x.shape[0]} points.")
  g = tape.gradient(y, x)
  if g is None:
    raise ValueError(f"Benchmark {name!r} does not depend on its input.")
  return y.numpy(), g.numpy()
