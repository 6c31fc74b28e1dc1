"""The protocol study (issue 15, item 2): three loss weightings side by side.

    python -m benchmarks.study --config=benchmarks/configs/protocols.py \
        --workdir=./results/study_protocols

'ours', 'raw_l2' (the paper's plain L2 in the functions' units) and
'differential_ml' (Huge and Savine 2020, lambda 1), all seven functions at
20 and 100 points, 10 seeds, 4,000 steps (set `--config.budgets=` to the
budget the budget study found best). Each (protocol, method) gets its own
learning rate, tuned with the same effort: the grid below, scored by the
mean log10 validation MSE over the seven functions, both sizes and one
tuning seed (100), on the validation draw only.
"""

import ml_collections

from benchmarks.configs import study


def get_config() -> ml_collections.ConfigDict:
  config = study.get_config()
  config.sizes = (20, 100)
  config.seeds = 10
  config.budgets = (4000,)
  config.protocols = ("ours", "raw_l2", "differential_ml")
  config.tune_learning_rates = (1e-3, 3e-3, 1e-2, 3e-2)
  config.tune_seeds = 1
  return config
