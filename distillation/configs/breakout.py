"""Figure 4 on Breakout, as published (docs/distillation_breakout_*).

    python -m distillation.run \
        --config=distillation/configs/breakout.py \
        --workdir=results/fig4_Breakout
"""

import ml_collections

from distillation.configs import default


def get_config() -> ml_collections.ConfigDict:
  """The published Breakout run: 3 seeds, tuned on the 1% split, 6 trials.

  `--config.tune_per_fraction=True` gives the per-fraction variant
  (docs/distillation_breakout_perfraction_*).
  """
  return default.published("Breakout", seeds=3)
