"""Random directions for stochastic Sobolev training."""

from typing import Optional, Sequence

import tensorflow as tf


def unit_sphere(shape: Sequence[int],
                dim: int,
                dtype: tf.DType = tf.float32,
                rng: Optional[tf.random.Generator] = None,
                seed: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Samples vectors uniformly on the unit sphere `S^{dim-1}`.

  Normalised standard Gaussians are uniform on the sphere. For `dim == 1` the
  sphere is `{-1, +1}`.

  Args:
    shape: leading shape of the sample (e.g. `[num_projections, batch]`).
    dim: dimension of the ambient space.
    dtype: floating dtype of the result.
    rng: a `tf.random.Generator` to draw from (stateful sampling).
    seed: a shape `[2]` integer seed for stateless sampling. Exactly one of
      `rng` and `seed` may be given; with neither, the global generator is
      used.

  Returns:
    A tensor of shape `[*shape, dim]` whose last axis has unit norm.

  Raises:
    ValueError: if `dim < 1` or both `rng` and `seed` are given.
  """
  if isinstance(dim, int) and dim < 1:
    raise ValueError(f"`dim` must be >= 1, got {dim}.")
  if rng is not None and seed is not None:
    raise ValueError("Give at most one of `rng` and `seed`.")
  full_shape = tf.concat([tf.cast(shape, tf.int32), [dim]], axis=0)
  if seed is not None:
    g = tf.random.stateless_normal(full_shape, seed=seed, dtype=dtype)
  elif rng is not None:
    g = rng.normal(full_shape, dtype=dtype)
  else:
    g = tf.random.get_global_generator().normal(full_shape, dtype=dtype)
  return g * tf.math.rsqrt(tf.reduce_sum(tf.square(g), axis=-1, keepdims=True))
