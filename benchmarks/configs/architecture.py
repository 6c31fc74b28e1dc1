"""The model-class study (issue 22): activation x architecture x optimiser.

    python -m benchmarks.architecture_study \
        --config=benchmarks/configs/architecture.py \
        --workdir=./results/study_architecture

Two stages, every model trained with the default protocol ('ours') apart
from its model class and learning rate:

1. Screening, on VALIDATION draws only (tuning seeds 100, 101, 102): every
   class (activation x architecture x optimiser) and both methods, all
   seven functions at 20 and 100 points. Adam classes try every rate of
   `tune_learning_rates`; each (class, method, size) keeps its best rate by
   the mean log10 validation MSE over functions and seeds (equal effort for
   both methods). L-BFGS (no learning rate) runs on the smooth activations
   and `lbfgs_architectures` only, for at most `lbfgs_steps` iterations.
2. Final, on the TEST sets with `seeds` seeds: for each size, the best
   class of each method (chosen on validation), the one class best for
   both methods and sizes together (`shared`), and `reference` (the
   published ReLU 2x256 Adam class), each with both methods at their tuned
   rates.

The screening is about 4,000 models; `workers` processes train disjoint
groups side by side (one intra-op thread each).
"""

import ml_collections

from benchmarks.configs import default


def get_config() -> ml_collections.ConfigDict:
  """The study's preset.

  Fields (besides the protocol fields of `default.get_config()`, minus the
  swept `activation`, `hidden_sizes`, `optimizer` and `learning_rate`):
    functions, sizes: what every stage covers.
    seeds: final-stage seeds (0 .. seeds - 1, test sets).
    screen_seeds: screening seeds (100 .., validation sets).
    activations: hidden activations screened with Adam.
    architectures: hidden layers as 'LxW' (L layers of width W).
    optimizers: 'adam' and/or 'lbfgs'.
    tune_learning_rates: Adam learning rates tried per (class, method,
      size).
    lbfgs_activations, lbfgs_architectures: the classes L-BFGS screens.
    lbfgs_steps: L-BFGS iterations at most (Adam uses `steps`).
    reference: a class also run in the final stage ('act-LxW-optimizer').
    validation_size: points per validation set.
    bootstrap_samples: resamples of the bootstrap intervals.
    workers: training processes side by side (1: in this process).
  """
  config = default.get_config()
  for field in ("activation", "hidden_sizes", "optimizer", "learning_rate",
                "figure3_function"):
    del config[field]
  config.sizes = (20, 100)
  config.seeds = 10
  config.screen_seeds = 3
  config.activations = ("relu", "tanh", "softplus", "silu", "gelu")
  config.architectures = ("2x64", "2x256", "3x128")
  config.optimizers = ("adam", "lbfgs")
  config.tune_learning_rates = (3e-3, 1e-2, 3e-2)
  config.lbfgs_activations = ("tanh", "softplus", "silu", "gelu")
  config.lbfgs_architectures = ("2x64",)
  config.lbfgs_steps = 500
  config.reference = "relu-2x256-adam"
  config.validation_size = 2000
  config.bootstrap_samples = 10000
  config.workers = 2
  return config
