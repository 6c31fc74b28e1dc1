"""Figure 4 on SpaceInvaders, as published (docs/distillation_spaceinvaders_*).

    python -m distillation.run \
        --config=distillation/configs/spaceinvaders.py \
        --workdir=results/fig4_SpaceInvaders
"""

import ml_collections

from distillation.configs import default


def get_config() -> ml_collections.ConfigDict:
  """The published SpaceInvaders run: 3 seeds, tuned on the 1% split, 6 trials."""
  return default.published("SpaceInvaders", seeds=3)
