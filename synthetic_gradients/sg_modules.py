"""Synthetic-gradient modules: a direct SG regressor and a loss critic.

Both act on a split activation `h: [B, H, W, C]` and labels `y: [B]` (int) and
return a synthetic gradient `sg(h, y) ~ dL/dh` of the same shape as `h`, where
`L = sum_b l_b` is the sum of per-example losses (so `sg[b]` estimates
`d l_b / d h_b`, the per-example gradient; the part below divides by the batch
size to follow the mean loss).

* `DirectSG` (Jaderberg et al. 2016, the "Direct SG" column): a free-form
  network `SG(h, y)`: concat(h, one-hot(y) tiled over space) ->
  [conv3x3(hidden) -> ReLU] x num_hidden -> conv3x3(C). The output layer is
  zero-initialised, as in Jaderberg et al., so training starts like no-prop.
  Its Jacobian with respect to `h` is in general not symmetric: it is not a
  gradient field (Proposition 4).
* `LossCritic` (the "VFBN", "Critic" and "Sobolev" columns): a scalar
  `m(h, y) = CE(p(h), y)` where `p` is "a small version of the rest of the
  model": one `conv3x3 -> ReLU` per stage above the split (stride 2 where that
  stage halves the resolution; `width_multiplier` x that stage's channels),
  then global average pooling and a linear layer to the logits. The synthetic
  gradient is `dm/dh`, computed with a gradient tape, so it is a gradient field
  by construction (symmetric Jacobian). The critic has no batch
  normalisation, so `m(h_b, y_b)` depends on example `b` only and per-example
  input derivatives are exact.
"""

import math
from typing import Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf


def _check_h(h: tf.Tensor, y: tf.Tensor) -> None:
  if h.shape.rank != 4:
    raise ValueError(f"`h` must be [B, H, W, C], got shape {h.shape}.")
  if y.shape.rank != 1:
    raise ValueError(f"`y` must be [B] integer labels, got shape {y.shape}.")


class DirectSG(snt.Module):
  """Free-form synthetic gradient `SG(h, y)` (Jaderberg et al. 2016)."""

  has_value = False

  def __init__(self, channels: int, num_classes: int, hidden: int,
               num_hidden: int = 2, zero_init: bool = True,
               name: Optional[str] = None):
    """Builds the module.

    Args:
      channels: channels `C` of the split activation (the output channels).
      num_classes: number of labels (for the one-hot conditioning).
      hidden: channels of the hidden convolutions.
      num_hidden: number of hidden `conv3x3 -> ReLU` layers.
      zero_init: zero-initialise the output layer (start as no-prop).
      name: module name.
    """
    super().__init__(name=name)
    self._num_classes = num_classes
    self._hidden = [snt.Conv2D(hidden, 3, name=f"hidden_{i}")
                    for i in range(num_hidden)]
    init = snt.initializers.Zeros() if zero_init else None
    self._out = snt.Conv2D(channels, 3, w_init=init, name="out")

  def synthetic_gradient(self, h: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Returns `SG(h, y)`, same shape as `h` `[B, H, W, C]`."""
    _check_h(h, y)
    onehot = tf.one_hot(y, self._num_classes, dtype=h.dtype)
    tiled = tf.broadcast_to(onehot[:, None, None, :],
                            tf.concat([tf.shape(h)[:3],
                                       [self._num_classes]], 0))
    out = tf.concat([h, tiled], axis=-1)
    for conv in self._hidden:
      out = tf.nn.relu(conv(out))
    return self._out(out)

  def __call__(self, h: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return self.synthetic_gradient(h, y)


class LossCritic(snt.Module):
  """Loss critic `m(h, y) = CE(p(h), y)`; its synthetic gradient is `dm/dh`."""

  has_value = True

  def __init__(self, stage_specs_above: Sequence[Tuple[int, bool]],
               num_classes: int, width_multiplier: float = 0.25,
               min_width: int = 8, name: Optional[str] = None):
    """Builds the critic.

    Args:
      stage_specs_above: `(channels, downsamples)` of every stage of the main
        network above the split (from `networks.Part.stage_specs`).
      num_classes: number of logits of `p`.
      width_multiplier: width of each critic convolution relative to the
        corresponding main-network stage.
      min_width: smallest critic convolution width.
      name: module name.

    Raises:
      ValueError: for an empty `stage_specs_above` or a non-positive
        multiplier.
    """
    super().__init__(name=name)
    if not stage_specs_above:
      raise ValueError("`stage_specs_above` must list at least one stage.")
    if width_multiplier <= 0:
      raise ValueError(f"`width_multiplier` must be > 0, got "
                       f"{width_multiplier}.")
    self._num_classes = num_classes
    self._convs = [
        snt.Conv2D(max(min_width, int(math.ceil(c * width_multiplier))), 3,
                   stride=2 if down else 1, name=f"conv_{i}")
        for i, (c, down) in enumerate(stage_specs_above)]
    self._logits = snt.Linear(num_classes, name="logits")

  def logits(self, h: tf.Tensor) -> tf.Tensor:
    """`p(h)`: `[B, H, W, C] -> [B, num_classes]`."""
    out = h
    for conv in self._convs:
      out = tf.nn.relu(conv(out))
    return self._logits(tf.reduce_mean(out, axis=[1, 2]))

  def __call__(self, h: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """`m(h, y)`: per-example predicted loss `[B]`."""
    _check_h(h, y)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=self.logits(h))

  def value_and_synthetic_gradient(
      self, h: tf.Tensor, y: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Returns `(m(h, y) [B], dm/dh [B, H, W, C])`."""
    with tf.GradientTape() as tape:
      tape.watch(h)
      m = self(h, y)
    return m, tape.gradient(m, h)

  def synthetic_gradient(self, h: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Returns `dm/dh`, same shape as `h`."""
    return self.value_and_synthetic_gradient(h, y)[1]
