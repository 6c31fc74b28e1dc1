"""The dimension sweep with SiLU and a 4x budget (issue 22, item 3).

    python -m benchmarks.study --config=benchmarks/configs/dimension_silu.py \
        --workdir=./results/study_dimension_silu

`configs/dimension.py` found Sobolev's D-dimensional gradient fit stalling
at D = 8 and 16 (ReLU 2x256, 4,000 Adam steps). This preset asks whether a
smooth activation and a longer budget bring the advantage back: the same
functions, sizes, seeds, network shape, learning rate (3e-3, both methods)
and protocol, with only the activation changed to SiLU (the best Adam
activation of the model-class study's validation screening) and a second
budget of 16,000 steps, at D = 8 and 16.
"""

import ml_collections

from benchmarks.configs import dimension


def get_config() -> ml_collections.ConfigDict:
  config = dimension.get_config()
  config.activation = "silu"
  config.dims = (8, 16)
  config.budgets = (4000, 16000)
  return config
