"""The distillation study (issue 20): budget, equal tuning, variance, terms.

    python -m distillation.study --workdir=results/distill_study
    python -m distillation.study --workdir=results/distill_study --estimate_only
    python -m distillation.study --workdir=results/distill_study --report_only

Every field can be overridden as `--config.<field>=<value>`, e.g.
`--config.games=Breakout,SpaceInvaders,Pong` or
`--config.train_fractions=0.01,0.05,0.1`. See `distillation.study_runner`.
"""

import ml_collections
from ml_collections import config_dict

# The published Figure 4 settings (tuned on the 1% split, 6 trials of 1,000
# steps; docs/distillation_<game>_tuning.csv): regular lr, Sobolev lr and
# lambda (term `stochastic_p1`).
PUBLISHED = {"Breakout": (3e-3, 3e-3, 1.0),
             "SpaceInvaders": (1e-3, 3e-3, 1.0),
             "Pong": (1e-3, 1e-3, 0.1)}


def get_config() -> ml_collections.ConfigDict:
  """The study's settings (see `distillation.study_runner`)."""
  config = ml_collections.ConfigDict()
  # Games and their teachers (None: the committed distillation/teachers/<g>;
  # else <teacher_root>/<game>).
  config.games = ("Breakout", "SpaceInvaders")
  config.teacher_root = config_dict.placeholder(str)
  # Rollouts, collected once per game (the Figure 4 settings: the same
  # states as `distillation.run`'s); workdirs whose `rollouts/` store is
  # searched first (e.g. results/fig4_Breakout), comma-separated.
  config.num_states = 100_000
  config.collect_seed = 0
  config.collect_envs = 8
  config.rollouts_from = ()
  # Splits by whole games; evaluation-set sizes (fixed random subsets).
  # 1% and 5%: the issue's ~6 CPU-h budget does not reach 10% as well (its
  # rule: keep the seeds and both games, drop Pong or the 10% fraction);
  # add it with `--config.train_fractions=0.01,0.05,0.1`.
  config.train_fractions = (0.01, 0.05)
  config.validation_fraction = 0.1
  config.test_states = 5000
  config.validation_states = 2000
  config.train_eval_states = 2000  # Training states for the train KL.
  config.probe_states = 256  # Training states for the gradient error.
  config.initial_scale_states = 1000  # For the `_initial` variants.
  # Students: Adam, batch `batch_size`, up to `steps` steps, evaluated on
  # the train sample, validation and test games every `eval_every` steps;
  # early stopping on validation KL.
  config.batch_size = 32
  config.steps = 10_000
  config.eval_every = 500
  config.seeds = 5  # Final students per arm: seeds 0..seeds-1.
  # Equal tuning per (game, fraction, method or variant) on validation
  # games: the same number of trials and steps for every arm; score: the
  # lowest validation KL over the trial (early stopping).
  config.tune_steps = 3000
  config.tune_seed = 1000  # Trials use this seed (not a final seed).
  config.regular_lrs = (3e-4, 1e-3, 3e-3, 1e-2)
  # (learning rate, lambda) pairs for every Sobolev variant; as many as
  # `regular_lrs`; lambda down to 1e-3 (the published grid stops at 1e-2).
  config.sobolev_grid = ((3e-3, 0.001), (3e-3, 0.01), (3e-3, 0.1),
                         (3e-3, 1.0))
  # Sobolev term variants (`distillation.sobolev_terms`): the first is
  # tuned at every fraction, the others at `variant_fractions` only.
  # (`stochastic_p16`, `*_per_state` and `exact_initial` are selectable
  # too; p16 costs ~15x a regular step.)
  config.variants = ("stochastic_p1", "stochastic_p4", "exact",
                     "stochastic_p1_initial")
  config.variant_fractions = (0.05,)
  # Sobolev arms with final seeds at each fraction: variant names, and
  # 'best' (the lowest tuned validation score among the variants tuned at
  # that fraction).
  config.final_variants = ("stochastic_p1", "best")
  # Also train the published (1%-tuned) settings as a comparison row.
  config.published_row = True
  # "Why Breakout": the teacher's input gradients on `diagnostic_states`
  # recorded states with `diagnostic_projections` directions each.
  config.diagnostic_states = 500
  config.diagnostic_projections = 16
  # Report and machine (do not change the numbers).
  config.bootstrap_samples = 10_000
  config.timing_steps = 200  # Steps timed per variant for the estimate.
  config.workers = 2  # Student processes side by side, one thread each.
  config.tf_threads = 1
  return config
