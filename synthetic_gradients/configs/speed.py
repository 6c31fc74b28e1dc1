"""Step time of every Table 1 method (`synthetic_gradients.speed`).

    python -m synthetic_gradients.speed --workdir=results/sg_speed
"""

import ml_collections

from synthetic_gradients.configs import fashion_mnist


def get_config() -> ml_collections.ConfigDict:
  """The Fashion-MNIST Table 1 network and batch; the timing protocol.

  Fields: `model` (a Table 1 preset's fields: dataset, widths,
  num_modules, batch_size, ...; `--config.model.num_modules=1`), and
  `methods`, `repeats` (timed blocks per method, interleaved), `calls`
  (steps per block), `warmup_calls`, `seed`, `tf_threads`.
  """
  config = ml_collections.ConfigDict()
  config.model = fashion_mnist.get_config()
  config.methods = "backprop,noprop,direct,vfbn,critic,sobolev"
  config.repeats = 7
  config.calls = 20
  config.warmup_calls = 3
  config.seed = 0
  config.tf_threads = 1
  return config
