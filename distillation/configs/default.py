"""Figure 4 (regular vs Sobolev policy distillation): the default settings.

    python -m distillation.run --workdir=results/fig4_Pong \
        --config.game=Pong --config.seeds=3

Every field can be overridden as `--config.<field>=<value>`; tuples as
`--config.train_fractions=0.01,0.05` and
`--config.tune_sobolev_grid="((1e-3,0.1),(3e-3,1))"`. The per-game presets
(`configs/breakout.py`, ...) hold the published runs.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  """The default Figure 4 settings (see `distillation.experiment`)."""
  config = ml_collections.ConfigDict()
  # What is distilled.
  config.game = "Pong"
  # Teacher directory; None: the committed `distillation/teachers/<game>`.
  config.teacher_dir = config_dict.placeholder(str)
  # Rollouts: states recorded from the teacher (actions sampled, full games).
  config.num_states = 100_000
  config.collect_seed = 0  # Seeds the games, the sampling and the split.
  config.collect_envs = 8
  # None: `<workdir>/rollouts/<key>` (keyed by teacher and settings).
  config.rollouts_dir = config_dict.placeholder(str)
  # Split by whole games: training fraction, validation games, test games.
  config.train_fractions = (0.01, 0.05, 0.1)
  config.validation_fraction = 0.1
  config.max_eval_states = 5000  # Held-out states per evaluation.
  # Students (Adam, batch `batch_size`, `steps` steps, seeds 0..seeds-1).
  config.seeds = 3
  config.steps = 2000
  config.eval_every = 100
  config.batch_size = 32
  config.learning_rate_regular = 1e-3
  config.learning_rate_sobolev = 1e-3
  config.sobolev_weight = 1.0  # lambda.
  config.num_projections = 1  # Random directions v per state and step.
  # Tuning on validation games with the same number of trials per method.
  config.tune = False
  config.tune_fraction = config_dict.placeholder(float)  # None: smallest.
  config.tune_per_fraction = False  # Tune on every fraction's own split.
  config.tune_steps = config_dict.placeholder(int)  # None: `steps`.
  config.tune_regular_lrs = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3)
  # (learning rate, lambda) pairs; as many as `tune_regular_lrs`.
  config.tune_sobolev_grid = ((5e-4, 0.01), (5e-4, 0.1), (5e-4, 1.0),
                              (2e-3, 0.01), (2e-3, 0.1), (2e-3, 1.0))
  # Outputs and machine (do not change the numbers).
  config.export_students = False  # SavedModel of every student.
  config.tf_threads = 1
  # Stop a student whose parameters (or training loss) stay bit-identical
  # for this many evaluations in a row (e.g. a sobolev_weight so large that
  # every update is lost); 0: never. Healthy students change every step.
  config.stall_patience = 3
  return config


def published(game: str, seeds: int) -> ml_collections.ConfigDict:
  """The published Figure 4 run of `game` (configs/<game>.py).

  `seeds` seeds, both methods tuned on the 1% split's validation games with
  the same 6-trial budget of 1,000-step trials.
  """
  config = get_config()
  config.game = game
  config.seeds = seeds
  config.tune = True
  config.tune_steps = 1000
  config.tune_regular_lrs = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
  config.tune_sobolev_grid = ((3e-4, 0.1), (1e-3, 0.01), (1e-3, 0.1),
                              (1e-3, 1.0), (3e-3, 0.1), (3e-3, 1.0))
  return config
