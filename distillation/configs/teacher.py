"""A2C (synchronous A3C) teacher training: the settings of the committed
teachers.

    python -m distillation.train_teacher --workdir=results/teacher_Pong \
        --config.game=Pong
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  """A2C hyper-parameters (the A2C/A3C Atari settings)."""
  config = ml_collections.ConfigDict()
  config.game = "Pong"
  config.seed = 0
  config.num_envs = 16
  config.n_steps = 5
  config.total_frames = 20_000_000
  config.learning_rate = 7e-4
  config.rmsprop_decay = 0.99
  # Sonnet's RMSProp divides by sqrt(ms + epsilon); 1e-10 there matches the
  # A2C implementations' sqrt(ms) + 1e-5 (see distillation/README.md, "The
  # optimiser bug").
  config.rmsprop_epsilon = 1e-10
  config.gamma = 0.99
  config.entropy_coef = 0.01
  config.value_coef = 0.5
  config.max_grad_norm = 0.5
  config.channels = (16, 32, 32)
  config.hidden = 256
  # Teacher directory to warm-start a new workdir from (its train_state.*
  # if present); ignored when the workdir has a checkpoint.
  config.init_from = config_dict.placeholder(str)
  # Bookkeeping and machine (do not change the training).
  config.checkpoint_every_s = 600.0
  config.log_every_s = 30.0
  config.env_threads = 1
  config.tf_threads = 1
  return config
