"""Figure 4 on Pong, as published (docs/distillation_pong_*).

    python -m distillation.run \
        --config=distillation/configs/pong.py \
        --workdir=results/fig4_Pong
"""

import ml_collections

from distillation.configs import default


def get_config() -> ml_collections.ConfigDict:
  """The published Pong run: 5 seeds, tuned on the 1% split, 6 trials."""
  return default.published("Pong", seeds=5)
