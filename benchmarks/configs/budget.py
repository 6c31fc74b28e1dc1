"""The budget study (issue 15, item 1): does training longer widen the gap?

    python -m benchmarks.study --config=benchmarks/configs/budget.py \
        --workdir=./results/study_budget

All seven functions at 20 and 100 points, both methods, 10 seeds, the
default protocol ('ours', learning rate 3e-3 with cosine decay) at 4,000 and
16,000 Adam steps (each budget is its own model with its own cosine
schedule). Add 64,000 (`--config.budgets=4000,16000,64000`; the 4k and 16k
models are reused) where the training curves say 16k has not converged.
"""

import ml_collections

from benchmarks.configs import study


def get_config() -> ml_collections.ConfigDict:
  config = study.get_config()
  config.sizes = (20, 100)
  config.seeds = 10
  config.budgets = (4000, 16000)
  return config
