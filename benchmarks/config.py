"""The benchmark sweep's configuration and the training protocol's defaults.

The protocol (one for all functions and both methods; see PROTOCOL.md for how
it was chosen on validation data):
  * inputs mapped affinely from the domain to [-1, 1]^2;
  * values standardised with the training set's mean and std; gradient
    targets transformed by the chain rule (times half-width / std);
  * loss: sum over the stacked models of the core `SobolevLoss` (L2, order 0
    for regular, order 1 for Sobolev with gradient weight `grad_weight`
    divided by the training set's mean squared scaled gradient norm);
  * Adam, learning rate `learning_rate` with a cosine decay to
    `learning_rate * final_lr_fraction` over `steps` steps;
  * full batch when the training set has at most `batch_size` points,
    otherwise mini-batches of `batch_size` points drawn with replacement.
"""

import dataclasses
from typing import Tuple

from benchmarks import functions

METHODS = ("regular", "sobolev")


@dataclasses.dataclass(frozen=True)
class Config:
  """A benchmark sweep.

  Attributes:
    functions: benchmark names.
    sizes: training-set sizes.
    seeds: number of seeds (seeds are 0 .. seeds - 1).
    steps: Adam steps per model.
    learning_rate: initial learning rate.
    final_lr_fraction: final learning rate as a fraction of the initial one
      (cosine schedule); 1.0 is a constant learning rate.
    batch_size: mini-batch size for training sets larger than it.
    grad_weight: weight of the gradient term (Sobolev only).
    normalize_grad_weight: divide each model's gradient weight by the mean
      squared norm of its (scaled) training gradient targets, so that the two
      terms start on the same scale whatever the function.
    hidden_sizes: hidden layer widths of the MLP.
    steps_per_call: Adam steps per compiled call (Python overhead / progress
      granularity).
    test_size: points in the fixed test set.
    figure3_function: the function drawn in Figure 3.
    jit_compile: compile each chunk of steps with XLA.
  """
  functions: Tuple[str, ...] = functions.NAMES
  sizes: Tuple[int, ...] = (20, 100, 10000)
  seeds: int = 3
  steps: int = 4000
  learning_rate: float = 3e-3
  final_lr_fraction: float = 0.01
  batch_size: int = 100
  grad_weight: float = 0.3
  normalize_grad_weight: bool = True
  hidden_sizes: Tuple[int, ...] = (256, 256)
  steps_per_call: int = 250
  test_size: int = 10000
  figure3_function: str = "styblinski_tang"
  jit_compile: bool = False

  def __post_init__(self):
    validate(self)


def validate(config: Config) -> None:
  """Checks a config.

  Raises:
    ValueError: naming the offending field (unknown function, size <= 0, ...).
  """
  if not config.functions:
    raise ValueError("`functions` must name at least one benchmark.")
  for name in config.functions:
    functions.get(name)  # Raises a ValueError listing the valid names.
  if len(set(config.functions)) != len(config.functions):
    raise ValueError(f"`functions` has duplicates: {config.functions}.")
  if not config.sizes:
    raise ValueError("`sizes` must hold at least one size.")
  for size in config.sizes:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
      raise ValueError(f"`sizes` must be positive ints, got {size!r}.")
  if len(set(config.sizes)) != len(config.sizes):
    raise ValueError(f"`sizes` has duplicates: {config.sizes}.")
  for field in ("seeds", "steps", "batch_size", "steps_per_call",
                "test_size"):
    value = getattr(config, field)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"`{field}` must be a positive int, got {value!r}.")
  if not config.learning_rate > 0:
    raise ValueError(
        f"`learning_rate` must be > 0, got {config.learning_rate}.")
  if not 0 < config.final_lr_fraction <= 1:
    raise ValueError("`final_lr_fraction` must be in (0, 1], got "
                     f"{config.final_lr_fraction}.")
  if not config.grad_weight >= 0:
    raise ValueError(f"`grad_weight` must be >= 0, got {config.grad_weight}.")
  if not config.hidden_sizes or any(h <= 0 for h in config.hidden_sizes):
    raise ValueError(
        f"`hidden_sizes` must be positive ints, got {config.hidden_sizes}.")
  functions.get(config.figure3_function)
