"""Full-batch L-BFGS for a stack of benchmark models (issue 22).

Each of the M models of a `StackedMLP` is minimised by its own L-BFGS run:
TensorFlow Probability's `tfp.optimizer.lbfgs_minimize` takes a batch of
independent problems (positions `[M, P]`, one value `[M]` and gradient
`[M, P]` per problem), keeps one curvature history and one Hager-Zhang line
search per problem, and stops each problem on its own. So, as with Adam
(element-wise), a model's trajectory is that of the model trained alone.

Why TFP's L-BFGS (and not scipy's L-BFGS-B on flattened weights): it runs
the M problems as one compiled TensorFlow loop, with no host round trip per
function evaluation, and batching is exactly what the stacked trainer needs;
scipy would run M separate problems one after the other, each evaluation a
call from Python into TensorFlow.

The stopping rule: `max_iterations` iterations in all, or the gradient's
sup-norm below `tolerance`, or a failed line search (no decrease found, e.g.
at float32 rounding level); TFP's defaults otherwise (10 correction pairs,
50 line-search iterations).
"""

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

# Gradient sup-norm at which a problem has converged (TFP's default).
TOLERANCE = 1e-8
# Curvature pairs kept per problem (TFP's default).
CORRECTION_PAIRS = 10


def _tfp_optimizer():
  """`tfp.optimizer`, imported on first use (an optional dependency)."""
  try:
    import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "The 'lbfgs' optimizer needs tensorflow-probability (and tf-keras): "
        "pip install -e \".[experiments]\"") from e
  return tfp.optimizer


def flatten(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
  """`[M, ...]` tensors -> one `[M, P]` tensor (concatenated per model)."""
  m = tf.shape(tensors[0])[0]
  return tf.concat([tf.reshape(t, [m, -1]) for t in tensors], axis=1)


def unflatten(position: tf.Tensor,
              like: Sequence[tf.Variable]) -> List[tf.Tensor]:
  """Inverse of `flatten`: `[M, P]` -> tensors shaped like `like`."""
  sizes = [int(np.prod(v.shape[1:])) for v in like]
  parts = tf.split(position, sizes, axis=1)
  return [tf.reshape(p, v.shape) for p, v in zip(parts, like)]


class StackMinimizer:
  """Runs batched L-BFGS on the M models of a stack, in resumable chunks.

  Attributes:
    results: TFP's `LBfgsOptimizerResults` after the last chunk (None
      before the first).
  """

  def __init__(self, parameters: Sequence[tf.Variable],
               per_model_loss: Callable[[Sequence[tf.Tensor]], tf.Tensor]):
    """Builds the minimiser.

    Args:
      parameters: the stack's variables, each `[M, ...]`; they are set to
        the current positions after every chunk.
      per_model_loss: `params -> [M]` losses, given tensors shaped like
        `parameters` (the loss of model m must depend on its own slice
        only).
    """
    self._parameters = list(parameters)
    self._loss = per_model_loss
    self._optimizer = _tfp_optimizer()
    self.results = None

    def value_and_gradients(position):
      with tf.GradientTape() as tape:
        tape.watch(position)
        losses = self._loss(unflatten(position, self._parameters))
        total = tf.reduce_sum(losses)
      # Model m's loss depends on row m of `position` only, so the gradient
      # of the sum is each model's own gradient.
      return losses, tape.gradient(total, position)

    @tf.function
    def first(position, max_iterations):
      return self._optimizer.lbfgs_minimize(
          value_and_gradients, initial_position=position,
          num_correction_pairs=CORRECTION_PAIRS, tolerance=TOLERANCE,
          max_iterations=max_iterations)

    @tf.function
    def resume(previous, max_iterations):
      return self._optimizer.lbfgs_minimize(
          value_and_gradients, initial_position=None,
          previous_optimizer_results=previous,
          num_correction_pairs=CORRECTION_PAIRS, tolerance=TOLERANCE,
          max_iterations=max_iterations)

    self._first, self._resume = first, resume

  @property
  def iterations(self) -> int:
    """L-BFGS iterations run so far (of the slowest problem)."""
    return 0 if self.results is None else int(self.results.num_iterations)

  @property
  def finished(self) -> bool:
    """Whether every problem has converged or failed (nothing left to do)."""
    if self.results is None:
      return False
    done = np.logical_or(self.results.converged.numpy(),
                         self.results.failed.numpy())
    return bool(np.all(done))

  def run(self, until: int) -> None:
    """Runs iterations until `until` in all (or every problem stopped)."""
    limit = tf.constant(int(until), tf.int32)
    if self.results is None:
      position = flatten([tf.convert_to_tensor(v) for v in self._parameters])
      self.results = self._first(position, limit)
    else:
      self.results = self._resume(self.results, limit)
    for variable, value in zip(self._parameters,
                               unflatten(self.results.position,
                                         self._parameters)):
      variable.assign(value)

  def status(self) -> Dict[str, np.ndarray]:
    """Per model: `converged`, `failed` (bool `[M]`), and the run's
    `iterations` and `evaluations` (int, shared)."""
    r = self.results
    m = len(self._parameters[0].numpy())
    if r is None:
      return {"converged": np.zeros([m], bool), "failed": np.zeros([m], bool),
              "iterations": 0, "evaluations": 0}
    return {"converged": r.converged.numpy(), "failed": r.failed.numpy(),
            "iterations": int(r.num_iterations),
            "evaluations": int(r.num_objective_evaluations)}


def minimize(parameters: Sequence[tf.Variable],
             per_model_loss: Callable[[Sequence[tf.Tensor]], tf.Tensor],
             max_iterations: int, chunk: Optional[int] = None,
             on_chunk: Optional[Callable[[int], None]] = None
            ) -> StackMinimizer:
  """Minimises each model's loss with L-BFGS; the variables end at the result.

  Args:
    parameters: `[M, ...]` variables (see `StackMinimizer`).
    per_model_loss: `params -> [M]`.
    max_iterations: iterations in all.
    chunk: iterations per compiled call (default: all at once); the
      optimiser's state carries over between chunks.
    on_chunk: called with the iterations done after each chunk (the
      variables then hold the current positions).

  Returns:
    The minimiser (its `status()` says which problems converged).

  Raises:
    ValueError: for `max_iterations` or `chunk` < 1.
  """
  if max_iterations < 1:
    raise ValueError(f"`max_iterations` must be >= 1, got {max_iterations}.")
  chunk = max_iterations if chunk is None else chunk
  if chunk < 1:
    raise ValueError(f"`chunk` must be >= 1, got {chunk}.")
  minimizer = StackMinimizer(parameters, per_model_loss)
  done = 0
  while done < max_iterations:
    done = min(done + chunk, max_iterations)
    minimizer.run(done)
    if on_chunk is not None:
      on_chunk(done)
    if minimizer.finished:
      break
  return minimizer
