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

from typing import Optional, Sequence

import numpy as np
import sonnet as snt
import tensorflow as tf


class StackedMLP(snt.Module):
  """M independent ReLU MLPs with stacked weights."""

  def __init__(self,
               num_models: int,
               input_size: int,
               output_sizes: Sequence[int],
               seeds: Optional[Sequence[int]] = None,
               name: Optional[str] = None):
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

    Raises:
      ValueError: for non-positive sizes or a wrong number of seeds.
    """
    super().__init__(name=name)
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
  def output_size(self) -> int:
    return self._output_sizes[-1]

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Evaluates all models.

    Args:
      x: `[M * N, D]`, model-major, or `[M, N, D]`.

    Returns:
      `[M * N, O]` (or `[M, N, O]` for a rank-3 input).
    """
    flat = x.shape.rank == 2
    h = tf.reshape(x, [self._num_models, -1, self._input_size]) if flat else x
    last = len(self._output_sizes) - 1
    for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
      h = tf.matmul(h, w) + b[:, None, :]
      if layer < last:
        h = tf.nn.relu(h)
    return tf.reshape(h, [-1, self.output_size]) if flat else h

  def assign_from_mlps(self, mlps: Sequence[snt.nets.MLP]) -> None:
    """Copies the weights of M built `snt.nets.MLP`s into the stack (tests).

    Uses `snt.nets.MLP._layers` (Sonnet 2 has no public accessor).
    """
    if len(mlps) != self._num_models:
      raise ValueError(f"Need {self._num_models} MLPs, got {len(mlps)}.")
    for layer in range(len(self._output_sizes)):
      self.weights[layer].assign(tf.stack([m._layers[layer].w for m in mlps]))
      self.biases[layer].assign(tf.stack([m._layers[layer].b for m in mlps]))
