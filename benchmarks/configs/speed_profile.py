"""The step-time profile (`python -m benchmarks.speed_profile`).

    python -m benchmarks.speed_profile --workdir=./results/speed_profile

Every field can be overridden as `--config.<field>=<value>`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """What `benchmarks.speed_profile` measures and for how long.

  Fields:
    cases: 'multi_output' (the only case).
    repeats: timed blocks per part.
    calls: compiled calls per timed block.
    steps_per_call: steps (or repetitions of a part) per compiled call.
    warmup_calls: untimed calls before timing.
    multi_output_dims: output dimensions O.
    seed: seed of the inputs, teacher and model.
  """
  config = ml_collections.ConfigDict()
  config.cases = ("multi_output",)
  config.repeats = 7
  config.calls = 10
  config.steps_per_call = 10
  config.warmup_calls = 3
  config.multi_output_dims = (1, 6, 18, 100)
  config.seed = 0
  return config
