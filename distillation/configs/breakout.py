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
  config = default.get_config()
  config.game = "Breakout"
  config.seeds = 3
  config.tune = True
  config.tune_steps = 1000
  config.tune_regular_lrs = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
  config.tune_sobolev_grid = ((3e-4, 0.1), (1e-3, 0.01), (1e-3, 0.1),
                              (1e-3, 1.0), (3e-3, 0.1), (3e-3, 1.0))
  return config
