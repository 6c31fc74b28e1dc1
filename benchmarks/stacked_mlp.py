"""M independent `snt.nets.MLP`s evaluated as one batched computation.

`StackedMLP` holds the weights of M multi-layer perceptrons stacked along a
leading model axis (`w: [M, in, out]`, `b: [M, out]`) and evaluates all of
them with batched matrix products. It has the semantics of M separate
`snt.nets.MLP(output_sizes)` modules (ReLU between layers, linear output, each
`Linear` initialised like `snt.Linear`: weights from a truncated normal with
stddev `1 / sqrt(fan_in)`, zero biases), so training the stack with the *sum*
of the M per-model losses and an element-wise optimiser (Adam) is exactly
training the M models separately.

The module maps a flat batch `[M * N, D]` (model-major: rows `m * N ... m * N
+ N - 1` belong to model m) to `[M * N, O]`; it reshapes to `[M, N, D]`
internally. Example `i`'s output depends only on example `i`'s input, so the
per-example input derivatives of `sobolev.derivatives` are those of each
model at its own inputs.
"""

from typing import Callable, Dict, Optional, Sequence

import numpy as np
import sonnet as snt
import tensorflow as tf


# The hidden-layer activations a benchmark model may use (issue 22), by name.
# 'gelu' is the exact (erf) GELU, `tf.nn.gelu(approximate=False)`.
ACTIVATIONS: Dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "softplus": tf.nn.softplus,
    "silu": tf.nn.silu,
    "gelu": tf.nn.gelu,
}
DEFAULT_ACTIVATION = "relu"


def activation_fn(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
  """The activation function called `name` (one of `ACTIVATIONS`).

  Raises:
    ValueError: naming `activation` for an unknown name.
  """
  if name not in ACTIVATIONS:
    raise ValueError(f"`activation` must be one of {tuple(ACTIVATIONS)}, got "
                     f"{name!r}.")
  return ACTIVATIONS[name]


class StackedMLP(snt.Module):
  """M independent MLPs (ReLU or another activation) with stacked weights."""

  def __init__(self,
               num_models: int,
               input_size: int,
               output_sizes: Sequence[int],
               seeds: Optional[Sequence[int]] = None,
               name: Optional[str] = None,
               activation: str = DEFAULT_ACTIVATION):
    """Builds the stack.

    Args:
      num_models: M, the number of independent networks.
      input_size: D, the input dimension.
      output_sizes: layer widths, e.g. `[256, 256, 1]` (as `snt.nets.MLP`).
      seeds: optional M ints; model m's weights are drawn from a stateless
        generator seeded by `seeds[m]` (so a model's initialisation does not
        depend on which other models share the stack). Without seeds the
        global TF generator is used.
      name: module name.
      activation: the hidden layers' activation, a name of `ACTIVATIONS`.

    Raises:
      ValueError: for non-positive sizes, a wrong number of seeds or an
        unknown activation.
    """
    super().__init__(name=name)
    self._activation_name = activation
    self._activation = activation_fn(activation)
    if num_models < 1:
      raise ValueError(f"`num_models` must be >= 1, got {num_models}.")
    if input_size < 1:
      raise ValueError(f"`input_size` must be >= 1, got {input_size}.")
    if not output_sizes or any(s < 1 for s in output_sizes):
      raise ValueError(f"`output_sizes` must be positive ints, got "
                       f"{output_sizes}.")
    if seeds is not None and len(seeds) != num_models:
      raise ValueError(f"`seeds` must have {num_models} entries, got "
                       f"{len(seeds)}.")
    self._num_models = int(num_models)
    self._input_size = int(input_size)
    self._output_sizes = tuple(int(s) for s in output_sizes)
    self.weights = []
    self.biases = []
    fan_in = self._input_size
    for layer, fan_out in enumerate(self._output_sizes):
      stddev = 1.0 / np.sqrt(fan_in)
      if seeds is None:
        w = tf.random.truncated_normal(
            [num_models, fan_in, fan_out], stddev=stddev)
      else:
        w = tf.stack([
            tf.random.stateless_truncated_normal(
                [fan_in, fan_out], seed=[int(s), layer], stddev=stddev)
            for s in seeds
        ])
      self.weights.append(tf.Variable(w, name=f"w_{layer}"))
      self.biases.append(
          tf.Variable(tf.zeros([num_models, fan_out]), name=f"b_{layer}"))
      fan_in = fan_out

  @property
  def num_models(self) -> int:
    return self._num_models

  @property
  def activation(self) -> str:
    """The name of the hidden layers' activation."""
    return self._activation_name

  @property
  def output_size(self) -> int:
    return self._output_sizes[-1]

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Evaluates all models.

    Args:
      x: `[M * N, D]`, model-major, or `[M, N, D]`.

    Returns:
      `[M * N, O]` (or `[M, N, O]` for a rank-3 input).
    """
    return self.apply(self.weights, self.biases, x)

  def apply(self, weights: Sequence[tf.Tensor], biases: Sequence[tf.Tensor],
            x: tf.Tensor) -> tf.Tensor:
    """Evaluates the stack with the given parameters instead of its own.

    Args:
      weights: per layer `[M, in, out]` (like `self.weights`).
      biases: per layer `[M, out]` (like `self.biases`).
      x: `[M * N, D]`, model-major, or `[M, N, D]`.

    Returns:
      `[M * N, O]` (or `[M, N, O]` for a rank-3 input).
    """
    flat = x.shape.rank == 2
    h = tf.reshape(x, [self._num_models, -1, self._input_size]) if flat else x
    last = len(self._output_sizes) - 1
    for layer, (w, b) in enumerate(zip(weights, biases)):
      h = tf.matmul(h, w) + b[:, None, :]
      if layer < last:
        h = self._activation(h)
    return tf.reshape(h, [-1, self.output_size]) if flat else h

  @property
  def parameters(self) -> list:
    """The variables in flattening order: every layer's weights, then its
    biases (`[w_0, b_0, w_1, b_1, ...]`)."""
    out = []
    for w, b in zip(self.weights, self.biases):
      out += [w, b]
    return out

  def assign_from_mlps(self, mlps: Sequence[snt.nets.MLP]) -> None:
    """Copies the weights of M built `snt.nets.MLP`s into the stack (tests).

    Uses `snt.nets.MLP._layers` (Sonnet 2 has no public accessor).
    """
    if len(mlps) != self._num_models:
      raise ValueError(f"Need {self._num_models} MLPs, got {len(mlps)}.")
    for layer in range(len(self._output_sizes)):
      self.weights[layer].assign(tf.stack([m._layers[layer].w for m in mlps]))
      self.biases[layer].assign(tf.stack([m._layers[layer].b for m in mlps]))
