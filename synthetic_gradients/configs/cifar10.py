r"""Table 1 on CIFAR-10: 3 SG modules, the paper's setting.

    python -m synthetic_gradients.run \
        --config=synthetic_gradients/configs/cifar10.py \
        --config.data_dir=$TFDS_DIR --workdir=results/sg_cifar10

Widths (128, 256, 512, 512), SGD with momentum 0.9, learning rate 0.1 with
cosine decay, weight decay 5e-4, batch 128, 200 epochs (tuned for backprop,
as in the paper), `snt.distribute.Replicator` over the local GPUs.
"""

import ml_collections

from synthetic_gradients.configs import digits


def get_config() -> ml_collections.ConfigDict:
  """The CIFAR-10 preset."""
  config = digits.get_config()
  config.dataset = "cifar10"
  config.epochs = 200
  config.batch_size = 128
  config.widths = (128, 256, 512, 512)
  config.optimizer = "momentum"
  config.learning_rate = 0.1
  config.weight_decay = 5e-4
  config.strategy = "replicator"
  return config
