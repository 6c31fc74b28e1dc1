"""Protocol tuning on VALIDATION data (`python -m benchmarks.tune`).

    python -m benchmarks.tune --workdir=./results/tuning \
        --config.candidates=naive,base,nw0.3

Trains regular and Sobolev models with candidate protocols on training sets
drawn with tuning seeds (100, 101, ...; the sweep uses 0, 1, ...) and scores
them on the validation draws of `benchmarks.data` (never the test set). A
candidate is the `base` protocol below with the fields of `CANDIDATES[name]`
replaced. Every field can be overridden as `--config.<field>=<value>`.
"""

import ml_collections

from benchmarks.configs import default

# Candidate protocols: field overrides of the base protocol (the fields of
# `TUNABLE` only). PROTOCOL.md records what each gave.
CANDIDATES = {
    # Unit weight, no normalisation, constant learning rate.
    "naive": dict(learning_rate=1e-3, final_lr_fraction=1.0, steps=5000,
                  normalize_grad_weight=False, grad_weight=1.0),
    "base": dict(),
    "raw_w1": dict(normalize_grad_weight=False, grad_weight=1.0),
    "raw_w0.01": dict(normalize_grad_weight=False, grad_weight=0.01),
    "nw0.3": dict(grad_weight=0.3),
    "nw3": dict(grad_weight=3.0),
    "nw0.1": dict(grad_weight=0.1),
    "nw0.3_lr1e-2": dict(grad_weight=0.3, learning_rate=1e-2),
    "nw0.3_steps4000": dict(grad_weight=0.3, steps=4000),
    "lr1e-3": dict(learning_rate=1e-3),
    "lr1e-2": dict(learning_rate=1e-2),
    "steps3000": dict(steps=3000),
    "steps4000": dict(steps=4000),
    "final0.1": dict(final_lr_fraction=0.1),
}
# The protocol fields a candidate may set.
TUNABLE = ("steps", "learning_rate", "final_lr_fraction", "batch_size",
           "grad_weight", "normalize_grad_weight")


def get_config() -> ml_collections.ConfigDict:
  """The tuning run: the default sweep's fields plus the tuning ones.

  Fields (besides those of `default.get_config()`, whose protocol fields
  are the `base` candidate here; `test_size` and `figure3_function` are not
  used):
    candidates: names of `CANDIDATES` to try.
    sizes: training-set sizes tuned at.
    seeds: number of tuning seeds (100 .. 100 + seeds - 1).
    validation_size: points per validation set.
    score_method: the method whose mean log10 validation MSE (over
      functions, sizes and seeds) ranks the candidates.
  """
  config = default.get_config()
  del config.test_size
  del config.figure3_function
  # The base protocol ("base" candidate).
  config.steps = 5000
  config.grad_weight = 1.0
  config.sizes = (20, 100)
  config.seeds = 1
  config.candidates = ("naive", "base")
  config.validation_size = 2000
  config.score_method = "sobolev"
  return config
