"""Input pipelines: scikit-learn digits (offline), CIFAR-10 and ImageNet (tfds).

Every pipeline yields dicts `{'image': float32 [B, H, W, C], 'label': int32
[B]}`. Training batches drop the remainder so that shapes are static (as
`tf.distribute`/TPU training wants); evaluation batches keep every example.

* `digits`: scikit-learn's bundled 8x8 digits (1,797 images, no download),
  scaled to [0, 1], resized bilinearly to `image_size` (default 16, so the
  four-stage conv net's three 2x2 poolings leave a 2x2 map), standardised
  with the training-set mean and std. A fixed stratified split (seed 0,
  25% test: 1,347 train / 450 test) is the same for every run. No
  augmentation.
* `cifar10` (tfds): standard augmentation (4-pixel reflection padding, random
  32x32 crop, horizontal flip) and per-channel standardisation.
* `imagenet2012` (tfds, `train` / `validation`): Inception-style random
  resized crop (area 8%-100%, aspect ratio 3/4-4/3) to `image_size` and
  horizontal flip for training; centre crop (87.5%) and resize for
  evaluation; per-channel standardisation.

`--data_dir` is passed to `tfds.load` (use pre-downloaded data; nothing is
downloaded unless `download=True`).
"""

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

DATASETS = ("digits", "cifar10", "imagenet2012")

_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  num_classes: int
  image_shape: tuple  # (H, W, C) after preprocessing.
  test_split: str


def info(name: str, image_size: Optional[int] = None) -> DatasetInfo:
  """Static description of a dataset after preprocessing.

  Raises:
    ValueError: for an unknown dataset.
  """
  if name == "digits":
    size = image_size or 16
    return DatasetInfo(name, 10, (size, size, 1), "test")
  if name == "cifar10":
    size = image_size or 32
    return DatasetInfo(name, 10, (size, size, 3), "test")
  if name == "imagenet2012":
    size = image_size or 224
    return DatasetInfo(name, 1000, (size, size, 3), "validation")
  raise ValueError(f"`dataset` must be one of {DATASETS}, got {name!r}.")


def _digits_arrays(split: str, image_size: int):
  from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  digits = sk_datasets.load_digits()
  images = (digits.images / 16.0).astype(np.float32)[..., None]
  labels = digits.target.astype(np.int32)
  x_tr, x_te, y_tr, y_te = model_selection.train_test_split(
      images, labels, test_size=0.25, random_state=0, stratify=labels)
  resize = lambda x: tf.image.resize(x, [image_size, image_size],
                                     method="bilinear").numpy()
  x_tr, x_te = resize(x_tr), resize(x_te)
  mean, std = x_tr.mean(), x_tr.std()
  if split == "train":
    return (x_tr - mean) / std, y_tr
  return (x_te - mean) / std, y_te


def _standardise(image: tf.Tensor, mean, std) -> tf.Tensor:
  return (image - tf.constant(mean)) / tf.constant(std)


def _cifar_preprocess(example, train: bool, image_size: int):
  image = tf.cast(example["image"], tf.float32) / 255.0
  if train:
    image = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
    image = tf.image.random_crop(image, [32, 32, 3])
    image = tf.image.random_flip_left_right(image)
  if image_size != 32:
    image = tf.image.resize(image, [image_size, image_size])
  return {"image": _standardise(image, _CIFAR_MEAN, _CIFAR_STD),
          "label": tf.cast(example["label"], tf.int32)}


def _imagenet_preprocess(example, train: bool, image_size: int):
  image = tf.cast(example["image"], tf.float32) / 255.0
  if train:
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([0, 0, 4], tf.float32),
        min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, size)
    image = tf.image.random_flip_left_right(image)
  else:
    image = tf.image.central_crop(image, 0.875)
  image = tf.image.resize(image, [image_size, image_size])
  image.set_shape([image_size, image_size, 3])
  return {"image": _standardise(image, _IMAGENET_MEAN, _IMAGENET_STD),
          "label": tf.cast(example["label"], tf.int32)}


def load(name: str, split: str, batch_size: int, *,
         data_dir: Optional[str] = None, image_size: Optional[int] = None,
         seed: int = 0, max_examples: Optional[int] = None,
         download: bool = False) -> tf.data.Dataset:
  """A batched dataset of `{'image', 'label'}` dicts.

  Args:
    name: one of `DATASETS`.
    split: `'train'` (shuffled with `seed`, augmented, remainder dropped) or
      `'test'` (the dataset's evaluation split, in order, all examples).
    batch_size: global batch size.
    data_dir: tfds data directory.
    image_size: side of the preprocessed images (dataset default if None).
    seed: shuffling and augmentation seed.
    max_examples: keep only the first `max_examples` examples (smoke runs).
    download: let tfds download and prepare the data.

  Returns:
    A `tf.data.Dataset`.

  Raises:
    ValueError: for an unknown dataset or split, or a bad batch size.
  """
  ds_info = info(name, image_size)
  if split not in ("train", "test"):
    raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
  if int(batch_size) < 1:
    raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
  train = split == "train"
  size = ds_info.image_shape[0]
  if name == "digits":
    x, y = _digits_arrays(split, size)
    ds = tf.data.Dataset.from_tensor_slices({"image": x, "label": y})
  else:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds_split = "train" if train else ds_info.test_split
    ds = tfds.load(name, split=tfds_split, data_dir=data_dir,
                   download=download, shuffle_files=train,
                   read_config=tfds.ReadConfig(shuffle_seed=seed))
  if max_examples is not None:
    ds = ds.take(int(max_examples))
  if train:
    ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
  if name == "cifar10":
    ds = ds.map(lambda e: _cifar_preprocess(e, train, size),
                num_parallel_calls=tf.data.AUTOTUNE)
  elif name == "imagenet2012":
    ds = ds.map(lambda e: _imagenet_preprocess(e, train, size),
                num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(int(batch_size), drop_remainder=train)
  return ds.prefetch(tf.data.AUTOTUNE)
