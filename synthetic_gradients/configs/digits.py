r"""Table 1 on scikit-learn's digits (offline): every field and its default.

    python -m synthetic_gradients.run --workdir=results/sg_digits \
        --config.seeds=3 --config.epochs=20

The 4-part VGG-style conv net with widths (16, 32, 32, 64) on 16x16 digits,
3 SG modules, Adam 2e-3 with cosine decay, batch 64, 30 epochs, no weight
decay. Small enough for a 2-core CPU. Every field can be overridden as
`--config.<field>=<value>` (tuples as `--config.widths=4,8,8,16`, methods as
`--config.methods=noprop,sobolev`).
"""

import ml_collections
from ml_collections import config_dict

# Every method, in the column order of Table 1.
ALL_METHODS = "noprop,direct,vfbn,critic,sobolev,backprop"


def get_config() -> ml_collections.ConfigDict:
  """The digits preset; the other presets start from it."""
  config = ml_collections.ConfigDict()
  # What runs: comma-separated methods x `seeds` seeds from `first_seed`.
  config.methods = ALL_METHODS
  config.seeds = 3
  config.first_seed = 0
  # Data (`synthetic_gradients.data`).
  config.dataset = "digits"
  config.data_dir = config_dict.placeholder(str)  # tfds data directory.
  config.download = False  # Let tfds download the dataset.
  config.image_size = config_dict.placeholder(int)  # None: dataset default.
  config.max_train_examples = config_dict.placeholder(int)  # None: all.
  config.max_test_examples = config_dict.placeholder(int)  # None: all.
  # Training examples held out as the 'validation' split (0: none).
  config.validation_size = 0
  # Split the accuracies are measured on: 'test' or 'validation' (tuning).
  config.eval_split = "test"
  # Training-set augmentation; None: the dataset's default (on for CIFAR-10
  # and ImageNet, off for Fashion-MNIST; digits has none).
  config.augment = config_dict.placeholder(bool)
  # Network: 'convnet' (stage `widths`) or 'resnet50'; SG modules = splits.
  config.arch = "convnet"
  config.num_modules = 3  # The network has num_modules + 1 parts.
  config.widths = (16, 32, 32, 64)
  config.resnet_width_divisor = 1  # Divides ResNet-50 channels (tests).
  config.resnet_blocks = (3, 4, 6, 3)  # Bottlenecks per stage (ResNet-50).
  # SG modules.
  config.sobolev_weights = (1.0, 1.0)  # w0, w1 of the `sobolev` method.
  config.value_target = "bootstrap"  # Or 'true_loss'.
  config.critic_width_multiplier = 0.25
  config.direct_hidden_multiplier = 1.0
  # Optimisation.
  config.epochs = 30
  config.batch_size = 64
  config.optimizer = "adam"  # Or 'momentum' (0.9).
  config.learning_rate = 2e-3
  config.schedule = "cosine"  # Or 'constant'.
  config.weight_decay = 0.0
  # Infrastructure (no effect on the numbers).
  config.strategy = "none"  # Or 'replicator', 'multi_worker'.
  config.checkpoint_every = 1  # Epochs between checkpoints; 0: none.
  config.export_saved_model = True  # Each run's network as a SavedModel.
  # Stop a run whose trained parameters stay bit-identical for this many
  # epochs in a row (a learning rate that kills every gradient); 0: never.
  config.stall_patience = 3
  return config
