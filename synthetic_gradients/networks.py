"""Classifiers split into parts for synthetic-gradient (SG) training.

A split network is a list of `Part` modules `f_1, ..., f_K`; the input of part
`k + 1` is the output `h_k` of part `k` and the last part returns logits. The
`K - 1` split points `h_1, ..., h_{K-1}` are where SG modules sit.

Two families (see `synthetic_gradients/README.md` for the rationale):

* `ConvNet` (CIFAR-10, digits): a VGG-style network of four stages. Stages 1-3
  are `[conv3x3 -> BN -> ReLU] x 2 -> max-pool 2x2`; stage 4 is
  `[conv3x3 -> BN -> ReLU] x 2 -> global average pool -> linear`. Splitting
  at the three resolution changes gives 4 parts of equal depth (2 convs each)
  and 3 SG modules, the paper's CIFAR-10 setting. With widths
  (128, 256, 512, 512) this is a standard ~93-94% CIFAR-10 backprop baseline.
* `ResNet-50` (ImageNet): v1.5 layout (stride on the 3x3 convolution of the
  bottleneck), stem `conv7x7/2 -> BN -> ReLU -> maxpool3x3/2`, stages of
  (3, 4, 6, 3) bottleneck blocks with (64, 128, 256, 512) x 4 output
  channels, global average pool and a linear layer. Split into 2 parts (1 SG
  module after stage 2, the middle of the network: 28x28x512 at 224px) or 4
  parts (3 SG modules after stages 1, 2 and 3).

Every part records `stage_specs`: `(channels, downsamples)` per stage, which
the critic modules use to build "a small version of the rest of the model".
"""

from typing import List, Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

StageSpec = Tuple[int, bool]  # (output channels, halves the resolution)


def _batch_norm(name: str) -> snt.BatchNorm:
  return snt.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9,
                       name=name)


class Part(snt.Module):
  """One part of a split network: a sequence of stages (and maybe a head)."""

  def __init__(self, stage_specs: Sequence[StageSpec], is_top: bool,
               name: Optional[str] = None):
    super().__init__(name=name)
    self.stage_specs = tuple(stage_specs)
    self.is_top = is_top

  def __call__(self, h: tf.Tensor, is_training: bool) -> tf.Tensor:
    raise NotImplementedError


class ConvStage(snt.Module):
  """`[conv3x3 -> BN -> ReLU] x num_convs`, then an optional 2x2 max-pool."""

  def __init__(self, channels: int, num_convs: int, pool: bool,
               name: Optional[str] = None):
    super().__init__(name=name)
    self._convs = [snt.Conv2D(channels, 3, with_bias=False, name=f"conv_{i}")
                   for i in range(num_convs)]
    self._bns = [_batch_norm(f"bn_{i}") for i in range(num_convs)]
    self._pool = pool

  def __call__(self, h: tf.Tensor, is_training: bool) -> tf.Tensor:
    for conv, bn in zip(self._convs, self._bns):
      h = tf.nn.relu(bn(conv(h), is_training=is_training))
    if self._pool:
      h = tf.nn.max_pool2d(h, 2, 2, "SAME")
    return h


class ConvNetPart(Part):
  """Consecutive VGG stages; the top part adds global pooling and a linear."""

  def __init__(self, stages: Sequence[Tuple[int, int, bool]], is_top: bool,
               num_classes: int, name: Optional[str] = None):
    super().__init__([(c, p) for c, _, p in stages], is_top, name=name)
    self._stages = [ConvStage(c, n, p, name=f"stage_{i}")
                    for i, (c, n, p) in enumerate(stages)]
    self._head = snt.Linear(num_classes, name="logits") if is_top else None

  def __call__(self, h: tf.Tensor, is_training: bool) -> tf.Tensor:
    for stage in self._stages:
      h = stage(h, is_training)
    if self._head is not None:
      h = self._head(tf.reduce_mean(h, axis=[1, 2]))
    return h


def conv_net_parts(widths: Sequence[int] = (128, 256, 512, 512),
                   num_parts: int = 4, num_classes: int = 10,
                   convs_per_stage: int = 2) -> List[Part]:
  """The VGG-style classifier of `len(widths)` stages split into parts.

  Args:
    widths: output channels of each stage; every stage but the last halves
      the resolution.
    num_parts: number of parts (`num_parts - 1` SG modules); the stages are
      distributed as evenly as possible, lower parts first.
    num_classes: number of logits.
    convs_per_stage: convolutions per stage.

  Returns:
    The list of parts, the last one returning `[B, num_classes]` logits.

  Raises:
    ValueError: for `num_parts` outside `[1, len(widths)]` or bad widths.
  """
  widths = list(widths)
  if not widths or any(int(w) < 1 for w in widths):
    raise ValueError(f"`widths` must be positive ints, got {widths}.")
  if not 1 <= num_parts <= len(widths):
    raise ValueError(f"`num_parts` must be in [1, {len(widths)}] for "
                     f"{len(widths)} stages, got {num_parts}.")
  stages = [(int(w), convs_per_stage, i < len(widths) - 1)
            for i, w in enumerate(widths)]
  groups = _even_groups(stages, num_parts)
  return [ConvNetPart(g, is_top=(k == num_parts - 1), num_classes=num_classes,
                      name=f"part_{k}") for k, g in enumerate(groups)]


def _even_groups(items: list, num_groups: int) -> List[list]:
  """Splits `items` into `num_groups` contiguous groups, sizes differ by <= 1."""
  base, extra = divmod(len(items), num_groups)
  out, start = [], 0
  for g in range(num_groups):
    size = base + (1 if g < extra else 0)
    out.append(items[start:start + size])
    start += size
  return out


# ResNet-50 (v1.5).


class Bottleneck(snt.Module):
  """ResNet v1.5 bottleneck: 1x1 -> 3x3 (strided) -> 1x1, with projection."""

  def __init__(self, channels: int, stride: int, project: bool,
               name: Optional[str] = None):
    super().__init__(name=name)
    inner = channels // 4
    self._stride = stride
    self._conv1 = snt.Conv2D(inner, 1, with_bias=False, name="conv_1")
    self._bn1 = _batch_norm("bn_1")
    self._conv2 = snt.Conv2D(inner, 3, stride=stride, with_bias=False,
                             name="conv_2")
    self._bn2 = _batch_norm("bn_2")
    self._conv3 = snt.Conv2D(channels, 1, with_bias=False, name="conv_3")
    # Zero-initialised last BN scale ("zero-gamma"), standard for ResNet-50.
    self._bn3 = snt.BatchNorm(create_scale=True, create_offset=True,
                              decay_rate=0.9, scale_init=snt.initializers.Zeros(),
                              name="bn_3")
    self._proj = None
    if project:
      self._proj = snt.Conv2D(channels, 1, stride=stride, with_bias=False,
                              name="proj")
      self._proj_bn = _batch_norm("proj_bn")

  def __call__(self, h: tf.Tensor, is_training: bool) -> tf.Tensor:
    shortcut = h
    if self._proj is not None:
      shortcut = self._proj_bn(self._proj(h), is_training=is_training)
    out = tf.nn.relu(self._bn1(self._conv1(h), is_training=is_training))
    out = tf.nn.relu(self._bn2(self._conv2(out), is_training=is_training))
    out = self._bn3(self._conv3(out), is_training=is_training)
    return tf.nn.relu(out + shortcut)


RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET50_CHANNELS = (256, 512, 1024, 2048)


class ResNetPart(Part):
  """A contiguous group of ResNet stages (plus stem and/or head)."""

  def __init__(self, stage_ids: Sequence[int], has_stem: bool, is_top: bool,
               num_classes: int, blocks: Sequence[int],
               channels: Sequence[int], name: Optional[str] = None):
    specs = [(channels[s], s > 0) for s in stage_ids]
    super().__init__(specs, is_top, name=name)
    self._stem = None
    if has_stem:
      self._stem = snt.Conv2D(channels[0] // 4, 7, stride=2, with_bias=False,
                              name="stem_conv")
      self._stem_bn = _batch_norm("stem_bn")
    self._stages = []
    for s in stage_ids:
      stage = []
      for b in range(blocks[s]):
        stride = 2 if (b == 0 and s > 0) else 1
        stage.append(Bottleneck(channels[s], stride, project=(b == 0),
                                name=f"stage_{s}_block_{b}"))
      self._stages.append(stage)
    self._head = snt.Linear(num_classes, name="logits") if is_top else None

  def __call__(self, h: tf.Tensor, is_training: bool) -> tf.Tensor:
    if self._stem is not None:
      h = tf.nn.relu(self._stem_bn(self._stem(h), is_training=is_training))
      h = tf.nn.max_pool2d(h, 3, 2, "SAME")
    for stage in self._stages:
      for block in stage:
        h = block(h, is_training)
    if self._head is not None:
      h = self._head(tf.reduce_mean(h, axis=[1, 2]))
    return h


def resnet50_parts(num_parts: int = 2, num_classes: int = 1000,
                   width_divisor: int = 1,
                   blocks: Sequence[int] = RESNET50_BLOCKS) -> List[Part]:
  """ResNet-50 v1.5 split into 1, 2 or 4 parts.

  Args:
    num_parts: 1 (no split), 2 (split after stage 2) or 4 (after stages 1, 2
      and 3).
    num_classes: number of logits.
    width_divisor: divides every channel count (1 = ResNet-50; larger values
      give narrow copies for tests).
    blocks: bottleneck blocks per stage (ResNet-50: (3, 4, 6, 3)).

  Returns:
    The list of parts.

  Raises:
    ValueError: for an unsupported `num_parts` or `width_divisor`.
  """
  if num_parts not in (1, 2, 4):
    raise ValueError(f"`num_parts` must be 1, 2 or 4 for ResNet-50, got "
                     f"{num_parts}.")
  if int(width_divisor) < 1 or 256 % int(width_divisor):
    raise ValueError(f"`width_divisor` must divide 256, got {width_divisor}.")
  channels = [c // int(width_divisor) for c in RESNET50_CHANNELS]
  groups = {1: [[0, 1, 2, 3]], 2: [[0, 1], [2, 3]],
            4: [[0], [1], [2], [3]]}[num_parts]
  return [ResNetPart(g, has_stem=(k == 0), is_top=(k == num_parts - 1),
                     num_classes=num_classes, blocks=blocks, channels=channels,
                     name=f"part_{k}") for k, g in enumerate(groups)]
