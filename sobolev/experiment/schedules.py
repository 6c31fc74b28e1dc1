"""Learning-rate schedules, as plain Python or inside a TF graph."""

import math
import numbers
from typing import Any


def cosine(base: float, step: Any, total_steps: int,
           final_fraction: float = 0.0) -> Any:
  """Cosine decay from `base` to `base * final_fraction` over `total_steps`.

  `base * (f + (1 - f) * 0.5 * (1 + cos(pi * min(step / total, 1))))`.

  Args:
    base: the initial learning rate.
    step: a Python number, or a TF tensor (then a float32 tensor results).
    total_steps: steps of the whole decay (>= 1).
    final_fraction: the last learning rate as a fraction of `base`.

  Returns:
    The learning rate at `step`.

  Raises:
    ValueError: for `total_steps` < 1.
  """
  if (isinstance(total_steps, bool) or
      not isinstance(total_steps, numbers.Integral) or total_steps < 1):
    raise ValueError(f"`total_steps` must be an integer >= 1, got "
                     f"{total_steps!r}.")
  f = float(final_fraction)
  if isinstance(step, numbers.Real):  # Python and numpy numbers.
    # For f = 0, bit-identical to `base * 0.5 * (1 + cos)` (halving is exact).
    frac = min(float(step) / float(total_steps), 1.0)
    c = 0.5 * (1.0 + math.cos(math.pi * frac))
    return base * (f + (1.0 - f) * c)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  frac = tf.minimum(tf.cast(step, tf.float32) / float(total_steps), 1.0)
  c = 0.5 * (1.0 + tf.cos(math.pi * frac))
  return base * (f + (1.0 - f) * c)


def get(name: str, base: float, step: Any, total_steps: int,
        final_fraction: float = 0.0) -> Any:
  """`'constant'` (always `base`) or `'cosine'` (see `cosine`).

  Raises:
    ValueError: for another name.
  """
  if name == "constant":
    return base
  if name == "cosine":
    return cosine(base, step, total_steps, final_fraction)
  raise ValueError(f"`schedule` must be 'constant' or 'cosine', got "
                   f"{name!r}.")
