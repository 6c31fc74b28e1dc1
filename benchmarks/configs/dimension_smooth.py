"""The dimension sweep with the model-class study's class (issue 22, item 3).

    python -m benchmarks.study --config=benchmarks/configs/dimension_smooth.py \
        --workdir=./results/study_dimension_smooth

`configs/dimension.py` found Sobolev's D-dimensional gradient fit stalling
at D = 8 and 16 (ReLU 2x256, 4,000 Adam steps; training gradient error
10^-0.75 to 10^1.55). This preset reruns the same functions (Rosenbrock and
Styblinski-Tang at D = 2, 4, 8, 16), sizes (100 and 1,000 points), seeds
(5) and protocol with the class `python -m benchmarks.architecture_study`
chose for both methods on validation data (`silu-2x64-lbfgs`: SiLU hidden
layers of 64 and 64 units, full-batch L-BFGS; see configs/smooth.py), at two
budgets: 500 L-BFGS iterations (the study's) and 2,000 (4x longer). L-BFGS
is full batch, so the 1,000-point sets are not mini-batched here.
"""

import ml_collections

from benchmarks.configs import dimension


def get_config() -> ml_collections.ConfigDict:
  config = dimension.get_config()
  config.activation = "silu"
  config.hidden_sizes = (64, 64)
  config.optimizer = "lbfgs"
  config.budgets = (500, 2000)  # L-BFGS iterations at most.
  return config
