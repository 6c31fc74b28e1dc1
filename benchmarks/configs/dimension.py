"""The dimension sweep (issue 15, item 3): the gap against input dimension.

    python -m benchmarks.study --config=benchmarks/configs/dimension.py \
        --workdir=./results/study_dimension

Rosenbrock and Styblinski-Tang at D = 2, 4, 8, 16 (D = 2 is the paper's 2-D
function; `rosenbrock_<D>d` otherwise), 100 and 1,000 training points (full
batch at 100, mini-batches of 100 at 1,000), both methods, 5 seeds, the
default protocol at 4,000 steps.
"""

import ml_collections

from benchmarks.configs import study


def get_config() -> ml_collections.ConfigDict:
  config = study.get_config()
  config.functions = ()
  config.dim_families = ("rosenbrock", "styblinski_tang")
  config.dims = (2, 4, 8, 16)
  config.sizes = (100, 1000)
  config.seeds = 5
  config.budgets = (4000,)
  return config
