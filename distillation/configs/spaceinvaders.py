"""Figure 4 on SpaceInvaders, as published (docs/distillation_spaceinvaders_*).

    python -m distillation.run \
        --config=distillation/configs/spaceinvaders.py \
        --workdir=results/fig4_SpaceInvaders
"""

import ml_collections

from distillation.configs import default


def get_config() -> ml_collections.ConfigDict:
  """The published SpaceInvaders run: 3 seeds, tuned on the 1% split, 6 trials."""
  config = default.get_config()
  config.game = "SpaceInvaders"
  config.seeds = 3
  config.tune = True
  config.tune_steps = 1000
  config.tune_regular_lrs = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
  config.tune_sobolev_grid = ((3e-4, 0.1), (1e-3, 0.01), (1e-3, 0.1),
                              (1e-3, 1.0), (3e-3, 0.1), (3e-3, 1.0))
  return config
