"""The step-time benchmark (`python -m benchmarks.speed`).

    python -m benchmarks.speed --workdir=./results/speed
    python -m benchmarks.speed --workdir=/tmp/speed \
        --config.cases=mlp_order1 --config.repeats=3

Every field can be overridden as `--config.<field>=<value>`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """What `benchmarks.speed` measures and for how long.

  Fields:
    cases: some of 'mlp_order1', 'mlp_order2', 'multi_output'.
    repeats: timed blocks per variant.
    calls: compiled calls per timed block.
    steps_per_call: optimisation steps per compiled call.
    warmup_calls: untimed calls before timing.
    compile_modes: compilers to try per variant ('graph', 'xla'); the faster
      on a pilot block is reported.
    mlp_batches: batch sizes of the `mlp_order1` case.
    mlp_order1_variants: the `mlp_order1` steps: some of 'regular',
      'sobolev' and 'sobolev_fused' (`SobolevLoss(jacobian_mode='fused')`,
      opt-in in the library: parameter gradients differ by float rounding).
    multi_output_dims: output dimensions O of the `multi_output` case.
    seed: seed of the inputs, teachers and models.
  """
  config = ml_collections.ConfigDict()
  config.cases = ("mlp_order1", "mlp_order2", "multi_output")
  config.repeats = 7
  config.calls = 10
  config.steps_per_call = 10
  config.warmup_calls = 3
  config.compile_modes = ("graph", "xla")
  config.mlp_batches = (100, 1000)
  config.mlp_order1_variants = ("regular", "sobolev")
  config.multi_output_dims = (1, 6, 18, 100)
  config.seed = 0
  # Also time the hand-written JAX step of `mlp_order1` (needs the `bench`
  # extra; skipped with one line without it).
  config.jax_baseline = True
  return config
