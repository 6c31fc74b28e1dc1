"""Choosing actions from a policy's logits: the one action sampler.

An `ActionSampler` turns a policy's logits or log-probabilities `[B, A]`
(the distribution `softmax(logits)`) into actions `[B]` int32: the most
likely action, or sampled by inversion (one uniform `u` per row; the first
action whose cumulative probability exceeds `u`), deterministic given the
seed on any machine. The generator is NumPy's (the default) or a
`tf.random.Generator`, whose state a `tf.train.Checkpoint` can hold.

Example:
  sampler = policies.ActionSampler(seed=0)
  actions = sampler(policy(observations))      # [B, A] -> [B] int32
"""

from typing import Optional, Union

import numpy as np
import tensorflow as tf

from sobolev import sampling

Rng = Union[np.random.Generator, tf.random.Generator]


def _as_logits(logits) -> np.ndarray:
  """`logits` as a float64 `[B, A]` array; raises for other shapes or NaN."""
  try:
    values = np.asarray(logits, dtype=np.float64)
  except (TypeError, ValueError):
    raise TypeError(f"`logits` must be a numeric [B, A] array or tensor, got "
                    f"{type(logits).__name__}.") from None
  if values.ndim != 2 or values.shape[1] < 1:
    raise ValueError(f"`logits` must have shape [B, A] with A >= 1, got "
                     f"{values.shape}.")
  if np.isnan(values).any():
    raise ValueError("`logits` contain NaN.")
  if values.shape[0] and not np.isfinite(values.max(axis=1)).all():
    raise ValueError("Every row of `logits` needs a finite maximum (-inf "
                     "marks an impossible action; +inf or a row of -inf is "
                     "not a distribution).")
  return values


def probabilities(logits) -> np.ndarray:
  """`softmax(logits)` in float64, row by row.

  Args:
    logits: `[B, A]` logits or log-probabilities (NumPy or TensorFlow); -inf
      entries are actions of probability 0.

  Returns:
    `[B, A]` float64 probabilities, each row summing to 1.

  Raises:
    TypeError: if `logits` is not numeric.
    ValueError: for a shape other than `[B, A]`, NaN, or a row whose maximum
      is not finite.
  """
  values = _as_logits(logits)
  probs = np.exp(values - values.max(axis=1, keepdims=True))
  return probs / probs.sum(axis=1, keepdims=True)


def greedy_actions(logits) -> np.ndarray:
  """The most likely action `[B]` int32 of every row of `logits` `[B, A]`
  (the first one on ties); raises as `probabilities`."""
  return np.argmax(_as_logits(logits), axis=1).astype(np.int32)


def inverse_cdf_actions(logits, uniforms) -> np.ndarray:
  """Samples one action per row by inverting the cumulative distribution.

  Action `a` is chosen if `cdf[a-1] <= u < cdf[a]`, where `cdf` is the
  cumulative sum of `softmax(logits)`; a `u` beyond the last (rounded) sum
  gives the last action of non-zero probability.

  Args:
    logits: `[B, A]` logits or log-probabilities.
    uniforms: `[B]` (or `[B, 1]`) numbers in [0, 1).

  Returns:
    `[B]` int32 actions.

  Raises:
    TypeError, ValueError: as `probabilities`, or if `uniforms` do not have
      B entries in [0, 1).
  """
  probs = probabilities(logits)
  u = np.asarray(uniforms, np.float64)
  if u.size != probs.shape[0] or u.ndim > 2:
    raise ValueError(f"`uniforms` must have {probs.shape[0]} entries (one per "
                     f"row of `logits`), got shape {u.shape}.")
  u = u.reshape(-1, 1)
  if not ((u >= 0.0) & (u < 1.0)).all():
    raise ValueError("`uniforms` must be in [0, 1).")
  actions = (probs.cumsum(axis=1) <= u).sum(axis=1)
  # Rounding can leave the last sum just below u: take the last action of
  # non-zero probability.
  last_possible = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=1)
  return np.minimum(actions, last_possible).astype(np.int32)


class ActionSampler:
  """Chooses actions `[B]` from logits `[B, A]`, greedily or by sampling.

  Attributes:
    greedy: whether actions are the argmax (no randomness used).
    rng: the random number generator (NumPy or `tf.random.Generator`).
  """

  def __init__(self, seed: Optional[int] = 0, greedy: bool = False,
               rng: Optional[Rng] = None):
    """Creates a sampler.

    Args:
      seed: seeds `np.random.default_rng(seed)` when `rng` is not given.
      greedy: take the most likely action instead of sampling.
      rng: a `np.random.Generator` or `tf.random.Generator` to draw from
        (e.g. one stored in a checkpoint); overrides `seed`. NumPy draws
        `rng.random((B, 1))`, TensorFlow `rng.uniform([B, 1], dtype=float64)`.

    Raises:
      TypeError: for a `seed` that is not an int, a `greedy` that is not a
        bool, or an `rng` of another type.
    """
    if not isinstance(greedy, (bool, np.bool_)):
      raise TypeError(f"`greedy` must be a bool, got {greedy!r}.")
    if rng is None:
      rng = np.random.default_rng(sampling.check_seed(seed))
    elif not isinstance(rng, (np.random.Generator, tf.random.Generator)):
      raise TypeError("`rng` must be a np.random.Generator or a "
                      f"tf.random.Generator, got {type(rng).__name__}.")
    self.greedy = bool(greedy)
    self.rng = rng
    if isinstance(rng, tf.random.Generator):
      # Compiled: an eager draw costs ~0.5 ms, as much as a small network.
      self._tf_uniforms = tf.function(
          lambda n: rng.uniform([n, 1], dtype=tf.float64))

  def uniforms(self, batch_size: int) -> np.ndarray:
    """Draws `[batch_size, 1]` float64 uniforms in [0, 1) from `rng`."""
    if isinstance(self.rng, np.random.Generator):
      return self.rng.random((batch_size, 1))
    if not tf.executing_eagerly():
      raise RuntimeError("ActionSampler runs eagerly (NumPy); call it "
                         "outside tf.function.")
    return self._tf_uniforms(int(batch_size)).numpy()

  def __call__(self, logits) -> np.ndarray:
    """Actions `[B]` int32 for `logits` `[B, A]` (NumPy or eager tensor).

    A sampling call draws B uniforms from `rng`, a greedy one none; raises
    as `probabilities`.
    """
    if self.greedy:
      return greedy_actions(logits)
    values = _as_logits(logits)
    return inverse_cdf_actions(values, self.uniforms(values.shape[0]))
