r"""Table 1 on Fashion-MNIST (offline, from the Debian package).

    python -m synthetic_gradients.run \
        --config=synthetic_gradients/configs/fashion_mnist.py \
        --workdir=results/sg_fashion_mnist

The digits network (widths 16, 32, 32, 64; 3 SG modules) on 28x28
Fashion-MNIST (`apt-get install dataset-fashion-mnist`; prepared by tfds
into `data_dir` on first use), Adam 2e-3 with cosine decay, batch 128,
20 epochs, no augmentation. A starting point sized for a CPU, not tuned:
`--config.validation_size=5000 --config.eval_split=validation` measures on
5,000 held-out training images instead of the test set, for tuning.
"""

import ml_collections

from synthetic_gradients.configs import digits


def get_config() -> ml_collections.ConfigDict:
  """The Fashion-MNIST preset."""
  config = digits.get_config()
  config.dataset = "fashion_mnist"
  config.batch_size = 128
  config.epochs = 20
  return config
