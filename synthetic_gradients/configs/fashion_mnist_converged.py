r"""Table 1 on Fashion-MNIST trained to convergence (issue 21).

    python -m synthetic_gradients.run \
        --config=synthetic_gradients/configs/fashion_mnist_converged.py \
        --workdir=results/sg_fashion_mnist_converged

The Fashion-MNIST preset (`configs/fashion_mnist.py`: same network, data,
learning rate tuned for backprop, batch and schedule shape) with 20 epochs
instead of 5. Why 20 (docs/sg_epochs.md, validation split, seed 0): backprop
has plateaued by then (93.4-93.7% over its last 8 epochs; a 30-epoch
schedule gains nothing), and the 3-module Sobolev run climbs from 87.5%
after 5 epochs to a flat 91.5-91.7% over epochs 16-20.
"""

import ml_collections

from synthetic_gradients.configs import fashion_mnist


def get_config() -> ml_collections.ConfigDict:
  """The converged Fashion-MNIST preset."""
  config = fashion_mnist.get_config()
  config.epochs = 20
  return config
