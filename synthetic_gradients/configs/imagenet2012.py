r"""Table 1 on ImageNet: ResNet-50 v1.5 at 224px with 1 SG module.

    python -m synthetic_gradients.run \
        --config=synthetic_gradients/configs/imagenet2012.py \
        --config.data_dir=$TFDS_DIR --config.num_modules=3 \
        --workdir=results/sg_imagenet_3

1 SG module (2 parts) by default, `--config.num_modules=3` for 3; momentum
0.9, learning rate 0.1 x batch / 256 = 0.4 with cosine decay, weight decay
1e-4, batch 1024, 90 epochs, `snt.distribute.Replicator` over the local
GPUs, methods without direct SG (the paper has no ImageNet direct SG row).
"""

import ml_collections

from synthetic_gradients.configs import digits


def get_config() -> ml_collections.ConfigDict:
  """The ImageNet preset."""
  config = digits.get_config()
  config.dataset = "imagenet2012"
  config.methods = "noprop,vfbn,critic,sobolev,backprop"
  config.seeds = 1
  config.arch = "resnet50"
  config.num_modules = 1
  config.epochs = 90
  config.batch_size = 1024
  config.optimizer = "momentum"
  config.learning_rate = 0.4
  config.weight_decay = 1e-4
  config.strategy = "replicator"
  return config
