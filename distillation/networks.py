"""Teacher and student policy networks for Atari (Sonnet 2).

Inputs are stacked frames `[B, 84, 84, 4]`: uint8 (scaled to [0, 1] here) or
float already in [0, 1]. Sobolev distillation differentiates `log_policy`
with respect to the float input in [0, 1], image-shaped `[B, 84, 84, 4]`
(the core `sobolev.SobolevLoss` takes inputs of any shape).

Teacher (the paper's "3 convolutional + 2 fully connected layers"), default:
  conv 16 x 8x8 stride 4, ReLU  -> [20, 20, 16]
  conv 32 x 4x4 stride 2, ReLU  -> [9, 9, 32]
  conv 32 x 3x3 stride 1, ReLU  -> [7, 7, 32]
  fully connected 256, ReLU
  fully connected heads: policy logits [A] and value [1]
(~0.43M parameters, ~1.7 MB in float32: the A3C paper's torso plus a third
conv layer). It trains ~3x faster on CPU than the Nature-DQN torso, which is
available as `TeacherNet(channels=(32, 64, 64), hidden=512)` (~1.69M
parameters, ~6.5 MB).

Student (the paper's "2 convolutional + 1 smaller fully connected layer"):
  conv 16 x 8x8 stride 4, ReLU  -> [20, 20, 16]
  conv 32 x 4x4 stride 2, ReLU  -> [9, 9, 32]
  fully connected 128, ReLU
  linear policy logits [A]
(~0.35M parameters: the A3C paper's torso with a hidden layer half as wide,
one conv layer fewer than the teacher.)

The first conv layer of both is a `sobolev.strided_conv.Conv2D`: an
`snt.Conv2D` (same variables, checkpoints and results) whose input gradient,
needed by Sobolev distillation, avoids TensorFlow's slow strided
`Conv2DBackpropInput` on CPU.
"""

from typing import Sequence, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import strided_conv


def preprocess(states: tf.Tensor) -> tf.Tensor:
  """uint8 frames -> float32 in [0, 1]; float frames pass through.

  Args:
    states: `[B, 84, 84, 4]` uint8 or float.

  Returns:
    `[B, 84, 84, 4]` float32.
  """
  states = tf.convert_to_tensor(states)
  if states.dtype == tf.uint8:
    return tf.cast(states, tf.float32) / 255.0
  return tf.cast(states, tf.float32)


def _check_sizes(num_actions: int, channels: Sequence[int],
                 num_conv: int) -> None:
  """Raises ValueError for a non-positive action count or wrong conv count."""
  if int(num_actions) < 1:
    raise ValueError(f"`num_actions` must be >= 1, got {num_actions}.")
  if len(channels) != num_conv:
    raise ValueError(
        f"`channels` must have {num_conv} entries, got {channels}.")


class TeacherNet(snt.Module):
  """Actor-critic network: 3 conv + 2 fully connected layers (see module doc)."""

  def __init__(self,
               num_actions: int,
               channels: Sequence[int] = (16, 32, 32),
               hidden: int = 256,
               name: str = "teacher"):
    """Builds the network.

    Args:
      num_actions: size of the action set A.
      channels: output channels of the three conv layers.
      hidden: width of the first fully connected layer.
      name: module name.

    Raises:
      ValueError: for a non-positive `num_actions` or malformed sizes.
    """
    super().__init__(name=name)
    _check_sizes(num_actions, channels, num_conv=3)
    self.num_actions = int(num_actions)
    self.channels = tuple(int(c) for c in channels)
    self.hidden = int(hidden)
    c1, c2, c3 = self.channels
    # Orthogonal initialisation as in the OpenAI baselines A2C: gain sqrt(2)
    # for the ReLU torso, 0.01 for the policy head (near-uniform initial
    # policy), 1 for the value head. Sonnet's default (truncated normal,
    # stddev 1/sqrt(fan_in)) shrinks the activations layer after layer and
    # left the first teachers' critic nearly state-independent.
    relu_init = snt.initializers.Orthogonal(gain=float(np.sqrt(2.0)))
    zeros = snt.initializers.Zeros()
    # conv1 (8x8, stride 4) uses the fast input gradient of
    # sobolev.strided_conv (same variables and results as snt.Conv2D):
    # Sobolev distillation differentiates the teacher with respect to its
    # input. For conv2 (stride 2) it measured no faster.
    conv = lambda c, k, s, n, cls=snt.Conv2D: cls(
        c, k, stride=s, padding="VALID", w_init=relu_init, b_init=zeros,
        name=n)
    self._torso = snt.Sequential([
        conv(c1, 8, 4, "conv1", strided_conv.Conv2D), tf.nn.relu,
        conv(c2, 4, 2, "conv2"), tf.nn.relu,
        conv(c3, 3, 1, "conv3"), tf.nn.relu,
        snt.Flatten(),
        snt.Linear(self.hidden, w_init=relu_init, b_init=zeros, name="fc"),
        tf.nn.relu,
    ])
    self._policy = snt.Linear(
        self.num_actions, w_init=snt.initializers.Orthogonal(gain=0.01),
        b_init=zeros, name="policy")
    self._value = snt.Linear(1, w_init=snt.initializers.Orthogonal(gain=1.0),
                             b_init=zeros, name="value")

  def __call__(self, states: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Policy logits and state values.

    Args:
      states: `[B, 84, 84, 4]` uint8 or float in [0, 1].

    Returns:
      `(logits [B, A], values [B])`.
    """
    h = self._torso(preprocess(states))
    return self._policy(h), tf.squeeze(self._value(h), axis=-1)

  def log_policy(self, states: tf.Tensor) -> tf.Tensor:
    """log pi(.|s), `[B, A]`."""
    return tf.nn.log_softmax(self(states)[0])


class StudentNet(snt.Module):
  """Policy network: 2 conv + 1 smaller fully connected layer + logits."""

  def __init__(self,
               num_actions: int,
               channels: Sequence[int] = (16, 32),
               hidden: int = 128,
               name: str = "student"):
    """Builds the network.

    Args:
      num_actions: size of the action set A.
      channels: output channels of the two conv layers.
      hidden: width of the fully connected layer.
      name: module name.

    Raises:
      ValueError: for a non-positive `num_actions` or malformed sizes.
    """
    super().__init__(name=name)
    _check_sizes(num_actions, channels, num_conv=2)
    self.num_actions = int(num_actions)
    c1, c2 = (int(c) for c in channels)
    self._net = snt.Sequential([
        strided_conv.Conv2D(c1, 8, stride=4, padding="VALID", name="conv1"),
        tf.nn.relu,
        snt.Conv2D(c2, 4, stride=2, padding="VALID", name="conv2"), tf.nn.relu,
        snt.Flatten(),
        snt.Linear(int(hidden), name="fc"), tf.nn.relu,
        snt.Linear(self.num_actions, name="logits"),
    ])

  def __call__(self, states: tf.Tensor) -> tf.Tensor:
    """Policy logits `[B, A]` of states `[B, 84, 84, 4]`."""
    return self._net(preprocess(states))

  def log_policy(self, states: tf.Tensor) -> tf.Tensor:
    """log pi(.|s), `[B, A]`."""
    return tf.nn.log_softmax(self(states))


def num_parameters(module: snt.Module) -> int:
  """Number of scalar parameters of a built module."""
  return int(sum(v.shape.num_elements() for v in module.variables))
