"""The fields every study preset has (`python -m benchmarks.study`).

A study is a set of benchmark sweeps run into ONE workdir and reported
together: every combination of a step budget (`budgets`) and a protocol
(`protocols`), over the functions `functions` plus, for each family in
`dim_families`, its member of each dimension in `dims`
(`rosenbrock_<D>d`, ...; D = 2 is the paper's 2-D function). With
`tune_learning_rates` non-empty, each (budget, protocol, method) first gets
its own learning rate: the one of the grid with the lowest mean log10
VALIDATION MSE over functions, sizes and `tune_seeds` tuning seeds (100,
101, ...; never the test set); otherwise every model uses `learning_rate`.

Presets: `configs/budget.py`, `configs/protocols.py`,
`configs/dimension.py`. Every field can be overridden as
`--config.<field>=<value>`; see `benchmarks/README.md`.
"""

import ml_collections

from benchmarks.configs import default


def get_config() -> ml_collections.ConfigDict:
  """A small study: the default protocol at its default budget.

  Fields (besides the protocol fields of `default.get_config()`, minus
  `steps`, `protocol` and `figure3_function`):
    functions: 2-D (or registered) benchmark names.
    dim_families: families swept over `dims` (`functions.FAMILIES`).
    dims: input dimensions D >= 2 of the families.
    sizes: training-set sizes.
    seeds: seeds 0 .. seeds - 1 (test numbers).
    budgets: Adam step budgets (each one a separate model).
    protocols: names of `benchmarks.protocols.NAMES`.
    tune_learning_rates: learning-rate grid tuned per (budget, protocol,
      method) on validation data; empty: use `learning_rate`.
    tune_seeds: number of tuning seeds (100 ..).
    validation_size: points per validation set (tuning).
    bootstrap_samples: resamples of the bootstrap intervals.
  """
  config = default.get_config()
  del config.steps
  del config.protocol
  del config.figure3_function
  config.dim_families = ()
  config.dims = ()
  config.budgets = (4000,)
  config.protocols = ("ours",)
  config.tune_learning_rates = ()
  config.tune_seeds = 1
  config.validation_size = 2000
  config.bootstrap_samples = 10000
  return config
