"""Experiment configuration: one dataclass, per-dataset presets, validation.

Presets (override any field from the command line):

* `digits`: the 4-part VGG-style conv net with widths (16, 32, 32, 64) on
  16x16 digits, Adam 2e-3 with cosine decay, batch 64, 30 epochs, no weight
  decay. Small enough for a 2-core CPU.
* `cifar10`: widths (128, 256, 512, 512), SGD with momentum 0.9, learning
  rate 0.1 with cosine decay, weight decay 5e-4, batch 128, 200 epochs
  (tuned for backprop, as in the paper).
* `imagenet2012`: ResNet-50 v1.5 at 224px, 2 parts (1 module) by default
  (`num_parts=4` for 3 modules), momentum 0.9, learning rate
  0.1 x batch / 256 with cosine decay, weight decay 1e-4, batch 1024,
  90 epochs.
"""

import dataclasses
from typing import Optional, Tuple

from synthetic_gradients import data
from synthetic_gradients import decoupled

ARCHS = ("convnet", "resnet50")
OPTIMIZERS = ("adam", "momentum")
SCHEDULES = ("cosine", "constant")
STRATEGIES = ("none", "replicator", "multi_worker")


@dataclasses.dataclass
class Config:
  """All knobs of a synthetic-gradients experiment."""
  dataset: str = "digits"
  data_dir: Optional[str] = None
  methods: Tuple[str, ...] = decoupled.METHODS
  seeds: int = 3
  first_seed: int = 0
  epochs: int = 30
  batch_size: int = 64
  arch: str = "convnet"
  num_parts: int = 4
  widths: Tuple[int, ...] = (16, 32, 32, 64)
  resnet_width_divisor: int = 1
  resnet_blocks: Tuple[int, ...] = (3, 4, 6, 3)  # ResNet-50; smaller: tests.
  image_size: Optional[int] = None
  optimizer: str = "adam"
  learning_rate: float = 2e-3
  schedule: str = "cosine"
  weight_decay: float = 0.0
  sobolev_weights: Tuple[float, float] = (1.0, 1.0)
  value_target: str = "bootstrap"
  critic_width_multiplier: float = 0.25
  direct_hidden_multiplier: float = 1.0
  strategy: str = "none"
  max_train_examples: Optional[int] = None
  max_test_examples: Optional[int] = None
  checkpoint_every: int = 0  # Epochs between checkpoints; 0: none.
  download: bool = False

  @property
  def num_modules(self) -> int:
    return self.num_parts - 1


def preset(dataset: str) -> Config:
  """The default configuration of a dataset.

  Raises:
    ValueError: for an unknown dataset.
  """
  if dataset == "digits":
    return Config()
  if dataset == "cifar10":
    return Config(dataset="cifar10", epochs=200, batch_size=128,
                  widths=(128, 256, 512, 512), optimizer="momentum",
                  learning_rate=0.1, weight_decay=5e-4, checkpoint_every=1)
  if dataset == "imagenet2012":
    return Config(dataset="imagenet2012", epochs=90, batch_size=1024,
                  arch="resnet50", num_parts=2, optimizer="momentum",
                  learning_rate=0.4, weight_decay=1e-4, checkpoint_every=1,
                  strategy="replicator")
  raise ValueError(f"`dataset` must be one of {data.DATASETS}, got "
                   f"{dataset!r}.")


def validate(config: Config) -> Config:
  """Checks every field; returns the config.

  Raises:
    ValueError: naming the first bad field.
    TypeError: for a field of the wrong type.
  """
  if not isinstance(config, Config):
    raise TypeError(f"`config` must be a Config, got {type(config)}.")
  data.info(config.dataset)  # Raises on unknown datasets.
  if not config.methods:
    raise ValueError("`methods` must name at least one method.")
  for m in config.methods:
    decoupled.check_method(m)
  if len(set(config.methods)) != len(config.methods):
    raise ValueError(f"`methods` has duplicates: {config.methods}.")
  for name in ("seeds", "epochs", "batch_size"):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
  if config.first_seed < 0:
    raise ValueError(f"`first_seed` must be >= 0, got {config.first_seed}.")
  if config.arch not in ARCHS:
    raise ValueError(f"`arch` must be one of {ARCHS}, got {config.arch!r}.")
  if config.arch == "convnet":
    if not 1 <= config.num_parts <= len(config.widths):
      raise ValueError(f"`num_parts` must be in [1, {len(config.widths)}] "
                       f"for widths {config.widths}, got {config.num_parts}.")
  else:
    if config.num_parts not in (1, 2, 4):
      raise ValueError(f"`num_parts` must be 1, 2 or 4 for resnet50, got "
                       f"{config.num_parts}.")
    if (len(config.resnet_blocks) != 4 or
        min(config.resnet_blocks) < 1):
      raise ValueError("`resnet_blocks` must be 4 positive ints, got "
                       f"{config.resnet_blocks}.")
  sg = [m for m in config.methods if m in decoupled.SG_METHODS]
  if sg and config.num_parts < 2:
    raise ValueError(f"methods {sg} need `num_parts` >= 2 (at least one "
                     "split), got 1.")
  if config.optimizer not in OPTIMIZERS:
    raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}, got "
                     f"{config.optimizer!r}.")
  if config.schedule not in SCHEDULES:
    raise ValueError(f"`schedule` must be one of {SCHEDULES}, got "
                     f"{config.schedule!r}.")
  if not config.learning_rate > 0:
    raise ValueError(f"`learning_rate` must be > 0, got "
                     f"{config.learning_rate}.")
  if config.weight_decay < 0:
    raise ValueError(f"`weight_decay` must be >= 0, got "
                     f"{config.weight_decay}.")
  if (len(config.sobolev_weights) != 2 or
      min(config.sobolev_weights) < 0):
    raise ValueError("`sobolev_weights` must be two numbers >= 0, got "
                     f"{config.sobolev_weights}.")
  if config.value_target not in decoupled.VALUE_TARGETS:
    raise ValueError(f"`value_target` must be one of "
                     f"{decoupled.VALUE_TARGETS}, got {config.value_target!r}.")
  if config.strategy not in STRATEGIES:
    raise ValueError(f"`strategy` must be one of {STRATEGIES}, got "
                     f"{config.strategy!r}.")
  for name in ("max_train_examples", "max_test_examples"):
    value = getattr(config, name)
    if value is not None and value < 1:
      raise ValueError(f"`{name}` must be >= 1 or None, got {value}.")
  if config.image_size is not None and config.image_size < 8:
    raise ValueError(f"`image_size` must be >= 8, got {config.image_size}.")
  if config.checkpoint_every < 0:
    raise ValueError(f"`checkpoint_every` must be >= 0, got "
                     f"{config.checkpoint_every}.")
  return config
