"""Input pipelines: digits, Fashion-MNIST (Debian), CIFAR-10, ImageNet.

Every pipeline yields dicts `{'image': float32 [B, H, W, C], 'label': int32
[B]}`. Training batches drop the remainder so that shapes are static (as
`tf.distribute`/TPU training wants); evaluation batches keep every example.

Splits: `'train'` (shuffled with `seed`, augmented if `augment`), `'test'`
(the dataset's evaluation split, in order) and `'validation'`: with
`validation_size=N > 0` the last N examples of the training set in its fixed
stored order are held out as `'validation'` (in order, never augmented) and
`'train'` is the rest, so hyper-parameters can be chosen without the test
set. The stored order is a fixed permutation: the seed-0 stratified split of
digits, tfds' deterministic write order (examples sorted by a hash of their
key) for the tfds datasets. `validation_size=0` (default) leaves `'train'`
whole and `'validation'` undefined. `num_examples` gives the split sizes.

* `digits`: scikit-learn's bundled 8x8 digits (1,797 images, no download),
  scaled to [0, 1], resized bilinearly to `image_size` (default 16, so the
  four-stage conv net's three 2x2 poolings leave a 2x2 map), standardised
  with the training-set mean and std. A fixed stratified split (seed 0,
  25% test: 1,347 train / 450 test) is the same for every run. No
  augmentation.
* `fashion_mnist`: Zalando's Fashion-MNIST (60,000 train / 10,000 test,
  28x28 grey, 10 classes) from the Debian package `dataset-fashion-mnist`
  (`apt-get install dataset-fashion-mnist`; files in
  /usr/share/datasets/fashion-mnist, or `manual_dir`). tfds' own
  `fashion_mnist` builder prepares them into `data_dir` once, offline, with
  the Debian files' checksums verified (`fashion_mnist/builder.py`); later
  runs read the prepared records (decoded images are cached in memory).
  Preprocessing: scaled to [0, 1]; `image_size` (default 28) above 28 pads
  with background (centred, e.g. 32 for nets that want a power of two),
  below 28 resizes (bilinear, antialiased); standardised with the real
  training set's pixel mean 0.2860 and std 0.3530. `augment=True` (default
  False) adds, for training only, a random crop after 2-pixel background
  padding and a random horizontal flip, seeded by `seed`.
* `cifar10` (tfds): standard augmentation (4-pixel reflection padding, random
  32x32 crop, horizontal flip; `augment=False` turns it off) and
  per-channel standardisation.
* `imagenet2012` (tfds, `train` / `validation`): Inception-style random
  resized crop (area 8%-100%, aspect ratio 3/4-4/3) to `image_size` and
  horizontal flip for training (`augment=False`: the evaluation
  preprocessing); centre crop (87.5%) and resize for evaluation;
  per-channel standardisation.

`data_dir` is passed to tfds (use pre-downloaded data; CIFAR-10 and ImageNet
are downloaded only if `download=True`; Fashion-MNIST is prepared from the
local Debian files whenever needed, never downloaded).
"""

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from sobolev.experiment import errors

DATASETS = ("digits", "fashion_mnist", "cifar10", "imagenet2012")
SPLITS = ("train", "validation", "test")

#: Pixel mean and std (population, over all pixels of the 60,000 training
#: images scaled to [0, 1]) of the real Fashion-MNIST training set.
FASHION_MNIST_MEAN = 0.2860406
FASHION_MNIST_STD = 0.3530242
_FASHION_PAD = 2  # Augmentation: background padding before the random crop.
# (train, test) sizes, the test split being `info(name).test_split`.
_SIZES = {"digits": (1347, 450), "fashion_mnist": (60_000, 10_000),
          "cifar10": (50_000, 10_000), "imagenet2012": (1_281_167, 50_000)}

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
  if name == "fashion_mnist":
    size = image_size or 28
    return DatasetInfo(name, 10, (size, size, 1), "test")
  if name == "cifar10":
    size = image_size or 32
    return DatasetInfo(name, 10, (size, size, 3), "test")
  if name == "imagenet2012":
    size = image_size or 224
    return DatasetInfo(name, 1000, (size, size, 3), "validation")
  raise ValueError(f"`dataset` must be one of {DATASETS}, got {name!r}.")


class DataNotPreparedError(errors.UserError, FileNotFoundError):
  """A tfds dataset is not prepared and may not be downloaded."""


def check_available(name: str, *, data_dir: Optional[str] = None,
                    download: bool = False) -> str:
  """Checks that `load(name, ...)` finds its data, without reading them.

  Digits ship with scikit-learn. Fashion-MNIST must be prepared in
  `data_dir` or its Debian files installed (it is then prepared on first
  use). CIFAR-10 and ImageNet must be prepared in `data_dir`, unless
  `download` lets tfds fetch them.

  Args:
    name: one of `DATASETS`.
    data_dir: tfds data directory (tfds' default if None).
    download: whether the run may download and prepare the dataset.

  Returns:
    Where the data come from, for a message.

  Raises:
    ValueError: for an unknown dataset.
    fashion_mnist.builder.MissingDataError: Fashion-MNIST neither prepared
      nor installed (the message names the Debian package).
    DataNotPreparedError: CIFAR-10 or ImageNet not prepared and `download`
      off (the message says how to prepare it offline).
  """
  info(name)
  if name == "digits":
    return "scikit-learn's bundled digits"
  from absl import logging  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # tfds warns of empty version dirs.
  try:
    if name == "fashion_mnist":
      # pylint: disable=g-import-not-at-top
      from synthetic_gradients.fashion_mnist import builder as fm_builder
      # pylint: enable=g-import-not-at-top
      builder = fm_builder.DebianFashionMNIST(data_dir=data_dir)
      if builder.is_prepared():
        return f"fashion_mnist prepared in {builder.data_dir}"
      fm_builder.check_files(builder.source_dir)
      return (f"the Fashion-MNIST files in {builder.source_dir} (prepared "
              f"into {builder.data_dir} on first use)")
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
      return f"{name} prepared in {builder.data_dir}"
  finally:
    logging.set_verbosity(verbosity)
  if download:
    return f"{name}, downloaded and prepared by tfds into {builder.data_dir}"
  how = ("after its manual download (tfds' imagenet2012 instructions)"
         if name == "imagenet2012" else "where it can be downloaded")
  root = os.path.dirname(os.path.dirname(builder.data_dir))
  raise DataNotPreparedError(
      f"{name} is not prepared in the tfds data_dir {root}: prepare it "
      f"offline with `tfds build {name} --data_dir=<dir>` {how}, then pass "
      "--config.data_dir=<dir> (or let the run download it with "
      "--config.download=True).")


def num_examples(name: str, split: str, *, validation_size: int = 0) -> int:
  """Number of examples of a split (before `max_examples`).

  Args:
    name: one of `DATASETS`.
    split: one of `SPLITS`.
    validation_size: as for `load`.

  Returns:
    The split's size.

  Raises:
    ValueError: for an unknown dataset or split or a bad `validation_size`.
  """
  info(name)
  _check_split(name, split, validation_size)
  num_train, num_test = _SIZES[name]
  return {"train": num_train - validation_size,
          "validation": validation_size, "test": num_test}[split]


def _check_split(name: str, split: str, validation_size) -> None:
  """Raises ValueError for a bad `split` or `validation_size`."""
  if split not in SPLITS:
    raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
  if (isinstance(validation_size, bool)
      or not isinstance(validation_size, (int, np.integer))):
    raise TypeError("`validation_size` must be an int, got "
                    f"{validation_size!r}.")
  num_train = _SIZES[name][0]
  if not 0 <= validation_size < num_train:
    raise ValueError(f"`validation_size` must be in [0, {num_train}) for "
                     f"{name}, got {validation_size}.")
  if split == "validation" and validation_size == 0:
    raise ValueError("`split='validation'` needs `validation_size` > 0 (the "
                     "number of training examples held out).")


def _digits_arrays(split: str, image_size: int, validation_size: int = 0):
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
  mean, std = x_tr.mean(), x_tr.std()  # Of all 1,347: fixed per image_size.
  keep = len(x_tr) - validation_size
  if split == "train":
    return (x_tr[:keep] - mean) / std, y_tr[:keep]
  if split == "validation":
    return (x_tr[keep:] - mean) / std, y_tr[keep:]
  return (x_te - mean) / std, y_te


#: How to prepare each tfds dataset offline, for `MissingDataError`.
_PREPARE = {
    "cifar10": (
        "prepare it once where the internet is reachable (`python -c "
        "\"import tensorflow_datasets as tfds; tfds.builder('cifar10', "
        "data_dir='{dir}').download_and_prepare()\"`) and copy {dir} here, "
        "or pass --config.download=True"),
    "imagenet2012": (
        "tfds needs the manual download: put ILSVRC2012_img_train.tar and "
        "ILSVRC2012_img_val.tar in {dir}/downloads/manual and run `tfds "
        "build imagenet2012 --data_dir={dir}` once"),
}


def _tfds_load(name: str, data_dir: Optional[str], download: bool,
               **kwargs) -> tf.data.Dataset:
  """`tfds.load`, with an unprepared dataset as a one-line error.

  Raises:
    errors.MissingDataError: naming the folder and how to prepare it.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import errors  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  if not download:  # tfds warns of a missing folder before failing.
    logging.set_verbosity(logging.ERROR)
  try:
    return tfds.load(name, data_dir=data_dir, download=download, **kwargs)
  except AssertionError as e:
    if "could not find data" not in str(e):
      raise
    where = data_dir or os.environ.get("TFDS_DATA_DIR", os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"))
    raise errors.MissingDataError(
        f"{name} is not prepared in {where} (--config.data_dir): " +
        _PREPARE[name].format(dir=where) + ".") from None
  finally:
    logging.set_verbosity(verbosity)


def _standardise(image: tf.Tensor, mean, std) -> tf.Tensor:
  return (image - tf.constant(mean)) / tf.constant(std)


def _fashion_preprocess(example, augment: bool, image_size: int, seed=None):
  """[28, 28, 1] uint8 -> standardised float32 [image_size, image_size, 1]."""
  image = tf.cast(example["image"], tf.float32) / 255.0
  if image_size > 28:  # Background (0) padding, centred.
    image = tf.image.resize_with_crop_or_pad(image, image_size, image_size)
  elif image_size < 28:
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
  if augment:
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2))
    padded = image_size + 2 * _FASHION_PAD
    image = tf.image.resize_with_crop_or_pad(image, padded, padded)
    image = tf.image.stateless_random_crop(
        image, [image_size, image_size, 1], seed=crop_seed)
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
  image.set_shape([image_size, image_size, 1])
  return {"image": _standardise(image, FASHION_MNIST_MEAN, FASHION_MNIST_STD),
          "label": tf.cast(example["label"], tf.int32)}


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


def _examples(name: str, split: str, ds_info: DatasetInfo, size: int, *,
              data_dir: Optional[str], seed: int, download: bool,
              validation_size: int,
              manual_dir: Optional[str]) -> tf.data.Dataset:
  """The split's raw examples, in order (files shuffled for 'train').

  Digits come preprocessed (`_digits_arrays`); the tfds datasets give
  their stored examples (`_preprocessed` maps them).
  """
  train = split == "train"
  if name == "digits":
    x, y = _digits_arrays(split, size, validation_size)
    return tf.data.Dataset.from_tensor_slices({"image": x, "label": y})
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if split == "test":
    tfds_split = ds_info.test_split
  elif validation_size == 0:
    tfds_split = "train"
  elif train:
    tfds_split = f"train[:-{validation_size}]"
  else:
    tfds_split = f"train[-{validation_size}:]"
  read_config = tfds.ReadConfig(shuffle_seed=seed)
  if name == "fashion_mnist":
    # pylint: disable=g-import-not-at-top
    from synthetic_gradients.fashion_mnist import builder as fm_builder
    # pylint: enable=g-import-not-at-top
    return fm_builder.prepare(data_dir, manual_dir).as_dataset(
        split=tfds_split, shuffle_files=train, read_config=read_config)
  return _tfds_load(name, data_dir, download, split=tfds_split,
                    shuffle_files=train, read_config=read_config)


def _preprocessed(ds: tf.data.Dataset, name: str, augment: bool, size: int,
                  seed: int) -> tf.data.Dataset:
  """`ds` mapped to float images of side `size` (augmented if `augment`;
  Fashion-MNIST draws one stateless seed pair per example from `seed`)."""
  if name == "fashion_mnist":
    if augment:
      # One stateless seed pair per example, from `seed`: reproducible.
      seeds = tf.data.Dataset.random(seed=seed).batch(2)
      return tf.data.Dataset.zip((ds, seeds)).map(
          lambda e, s: _fashion_preprocess(e, True, size, s),
          num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(lambda e: _fashion_preprocess(e, False, size),
                  num_parallel_calls=tf.data.AUTOTUNE)
  if name == "cifar10":
    return ds.map(lambda e: _cifar_preprocess(e, augment, size),
                  num_parallel_calls=tf.data.AUTOTUNE)
  if name == "imagenet2012":
    return ds.map(lambda e: _imagenet_preprocess(e, augment, size),
                  num_parallel_calls=tf.data.AUTOTUNE)
  return ds  # Digits: already preprocessed.


def load(name: str, split: str, batch_size: int, *,
         data_dir: Optional[str] = None, image_size: Optional[int] = None,
         seed: int = 0, max_examples: Optional[int] = None,
         download: bool = False, validation_size: int = 0,
         augment: Optional[bool] = None,
         manual_dir: Optional[str] = None) -> tf.data.Dataset:
  """A batched dataset of `{'image', 'label'}` dicts.

  Args:
    name: one of `DATASETS`.
    split: `'train'` (shuffled with `seed`, augmented if `augment`,
      remainder dropped), `'validation'` (the last `validation_size` training
      examples, in order, all of them) or `'test'` (the dataset's evaluation
      split, in order, all examples).
    batch_size: global batch size.
    data_dir: tfds data directory (tfds' default if None).
    image_size: side of the preprocessed images (dataset default if None).
    seed: shuffling and augmentation seed.
    max_examples: keep only the first `max_examples` examples of the split
      (smoke runs).
    download: let tfds download and prepare CIFAR-10 / ImageNet.
    validation_size: training examples held out as `'validation'` (0: none,
      `'train'` is the whole training set).
    augment: augment `'train'` (dataset default if None: on for CIFAR-10 and
      ImageNet, off for digits and Fashion-MNIST; digits has none).
    manual_dir: folder holding the Fashion-MNIST IDX files (the Debian
      package's folder if None).

  Returns:
    A `tf.data.Dataset`.

  Raises:
    ValueError: for an unknown dataset or split, a bad batch size, image
      size, `validation_size` or `max_examples`, or augmentation of digits.
    TypeError: for a non-integer `validation_size`.
    fashion_mnist.builder.MissingDataError: when Fashion-MNIST is not
      prepared in `data_dir` and its files are not installed.
    errors.MissingDataError: when CIFAR-10 or ImageNet is not prepared in
      `data_dir` and `download` is False (saying how to prepare it).
  """
  if image_size is not None and int(image_size) < 1:
    raise ValueError(f"`image_size` must be >= 1 or None, got {image_size}.")
  ds_info = info(name, image_size)
  _check_split(name, split, validation_size)
  if int(batch_size) < 1:
    raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
  if max_examples is not None and int(max_examples) < 1:
    raise ValueError(f"`max_examples` must be >= 1 or None, got "
                     f"{max_examples}.")
  if augment and name == "digits":
    raise ValueError("`augment` is not available for digits.")
  train = split == "train"
  if augment is None:
    augment = name in ("cifar10", "imagenet2012")
  augment = bool(augment) and train
  size = ds_info.image_shape[0]
  ds = _examples(name, split, ds_info, size, data_dir=data_dir, seed=seed,
                 download=download, validation_size=validation_size,
                 manual_dir=manual_dir)
  if max_examples is not None:
    ds = ds.take(int(max_examples))
  if name == "fashion_mnist":
    ds = ds.cache()  # 47 MB of decoded uint8 images instead of PNG decoding.
  if train:
    buffer = num_examples(name, "train", validation_size=validation_size)
    buffer = buffer if name == "fashion_mnist" else 10_000
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
  ds = _preprocessed(ds, name, augment, size, seed)
  ds = ds.batch(int(batch_size), drop_remainder=train)
  return ds.prefetch(tf.data.AUTOTUNE)
