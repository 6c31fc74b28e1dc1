"""Step time of the Atari distillation student (`distillation.speed`).

    python -m distillation.speed --workdir=results/distill_speed
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Batch 32, 6 actions, the paper's networks; timing protocol."""
  config = ml_collections.ConfigDict()
  config.batch_size = 32
  config.num_actions = 6
  config.repeats = 7  # Timed blocks per variant (interleaved).
  config.calls = 10  # Compiled calls per block.
  config.steps_per_call = 10  # Optimisation steps per compiled call.
  config.warmup_calls = 3
  config.compile_modes = ("graph", "xla")  # The faster is reported.
  config.profile = True  # Also time the parts of the Sobolev step.
  config.seed = 0
  config.tf_threads = 1
  return config
