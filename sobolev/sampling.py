"""Random directions for stochastic Sobolev training."""

from typing import Optional, Sequence, Union

import numpy as np
import tensorflow as tf

Seed = Union[int, Sequence[int], tf.Tensor]


def check_seed(seed, name: str = "seed") -> Optional[int]:
  """`seed` (None or a Python/NumPy int, not bool) as an int or None.

  Raises:
    TypeError: naming `name`, for anything else.
  """
  if seed is None:
    return None
  if isinstance(seed, (bool, np.bool_)) or not isinstance(
      seed, (int, np.integer)):
    raise TypeError(f"`{name}` must be an int or None, got {seed!r} "
                    f"({type(seed).__name__}).")
  return int(seed)


def stateless_seed(seed: Seed, name: str = "seed") -> tf.Tensor:
  """An int `s` (meaning `[s, 0]`) or a shape-`[2]` integer seed (sequence,
  array or tensor) as an int64 `[2]` stateless seed.

  Raises:
    TypeError: for a non-integer seed (e.g. a string, a float or a bool).
    ValueError: for an integer seed of the wrong shape.
  """
  if (isinstance(seed, (int, np.integer)) and
      not isinstance(seed, (bool, np.bool_))):  # Bools fail below.
    return tf.constant([int(seed), 0], tf.int64)
  if tf.is_tensor(seed):
    if not seed.dtype.is_integer:
      raise TypeError(f"`{name}` must have an integer dtype, got "
                      f"{seed.dtype.name}.")
    if seed.shape.rank is not None and seed.shape != [2]:
      raise ValueError(f"`{name}` must be an int or have shape [2], got "
                       f"shape {seed.shape}.")
    return tf.cast(seed, tf.int64)
  array = np.asarray(seed)
  if array.dtype.kind not in "iu":
    raise TypeError(f"`{name}` must be an int or a shape [2] integer seed, "
                    f"got {seed!r}.")
  if array.shape != (2,):
    raise ValueError(f"`{name}` must be an int or have shape [2], got shape "
                     f"{list(array.shape)}.")
  return tf.constant(array, tf.int64)


def unit_sphere(shape: Sequence[int],
                dim: int,
                dtype: tf.DType = tf.float32,
                rng: Optional[tf.random.Generator] = None,
                seed: Optional[Seed] = None) -> tf.Tensor:
  """Samples vectors uniformly on the unit sphere `S^{dim-1}` (for `dim == 1`,
  `{-1, +1}`) as normalised standard Gaussians.

  Args:
    shape: leading shape of the sample (e.g. `[num_projections, batch]`).
    dim: dimension of the ambient space.
    dtype: floating dtype of the result.
    rng: a `tf.random.Generator` to draw from (stateful sampling).
    seed: a seed for stateless sampling (see `stateless_seed`). At most one
      of `rng` and `seed`; with neither, the global generator is used.

  Returns:
    A tensor of shape `[*shape, dim]` whose last axis has unit norm.

  Raises:
    ValueError: if `dim < 1`, both `rng` and `seed` are given, or `seed` has
      the wrong shape.
    TypeError: for a seed that is not an integer, an `rng` that is not a
      `tf.random.Generator`, or a non-floating `dtype`.
  """
  if isinstance(dim, (bool, np.bool_)):
    raise TypeError(f"`dim` must be an int, got {dim!r}.")
  if isinstance(dim, (int, np.integer)) and dim < 1:
    raise ValueError(f"`dim` must be >= 1, got {dim}.")
  if rng is not None and seed is not None:
    raise ValueError("Give at most one of `rng` and `seed`.")
  if rng is not None and not isinstance(rng, tf.random.Generator):
    raise TypeError(f"`rng` must be a tf.random.Generator, got {type(rng)}.")
  dtype = tf.as_dtype(dtype)
  if not dtype.is_floating:
    raise TypeError(f"`dtype` must be floating, got {dtype.name}.")
  full_shape = tf.concat([tf.cast(shape, tf.int32),
                          tf.reshape(tf.cast(dim, tf.int32), [1])], axis=0)
  if seed is not None:
    g = tf.random.stateless_normal(full_shape, seed=stateless_seed(seed),
                                   dtype=dtype)
  elif rng is not None:
    g = rng.normal(full_shape, dtype=dtype)
  else:
    g = tf.random.get_global_generator().normal(full_shape, dtype=dtype)
  return g * tf.math.rsqrt(tf.reduce_sum(tf.square(g), axis=-1, keepdims=True))
