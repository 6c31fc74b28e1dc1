"""Input pipelines: Fashion-MNIST (Debian files and mock), splits, errors."""

import os
import shutil
import tempfile
import unittest
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from sobolev.experiment import errors
from synthetic_gradients import data
from synthetic_gradients.fashion_mnist import builder as fm_builder

_HAVE_FILES = not fm_builder.missing_files(fm_builder.DEBIAN_DIR)


def _arrays(ds: tf.data.Dataset):
  """Concatenated (images, labels) numpy arrays of a batched dataset."""
  images, labels = [], []
  for batch in ds:
    images.append(batch["image"].numpy())
    labels.append(batch["label"].numpy())
  return np.concatenate(images), np.concatenate(labels)


def _stored_labels(builder, split: str) -> np.ndarray:
  """Labels of a prepared split in stored order, without decoding images."""
  ds = builder.as_dataset(split=split,
                          decoders={"image": tfds.decode.SkipDecoding()})
  return np.concatenate([b["label"] for b in tfds.as_numpy(ds.batch(20_000))])


class ArgumentsTest(parameterized.TestCase):

  def test_info(self):
    self.assertIn("fashion_mnist", data.DATASETS)
    self.assertEqual(data.info("fashion_mnist").image_shape, (28, 28, 1))
    self.assertEqual(data.info("fashion_mnist", 32).image_shape, (32, 32, 1))
    self.assertEqual(data.info("fashion_mnist").num_classes, 10)

  def test_num_examples_split_the_training_set(self):
    for name in data.DATASETS:
      whole = data.num_examples(name, "train")
      self.assertEqual(
          data.num_examples(name, "train", validation_size=100)
          + data.num_examples(name, "validation", validation_size=100), whole)

  @parameterized.named_parameters(
      ("bad_split", dict(split="val"), ValueError, "split"),
      ("validation_without_size", dict(split="validation"), ValueError,
       "validation_size"),
      ("negative_validation", dict(validation_size=-1), ValueError,
       "validation_size"),
      ("whole_train_held_out", dict(validation_size=60_000), ValueError,
       "validation_size"),
      ("float_validation", dict(validation_size=10.0), TypeError,
       "validation_size"),
      ("bool_validation", dict(validation_size=True), TypeError,
       "validation_size"),
      ("batch", dict(batch_size=0), ValueError, "batch_size"),
      ("image_size", dict(image_size=-4), ValueError, "image_size"),
      ("max_examples", dict(max_examples=0), ValueError, "max_examples"),
      ("unknown_dataset", dict(name="mnist"), ValueError, "dataset"),
  )
  def test_bad_arguments_raise_before_reading(self, kwargs, error, word):
    args = dict(name="fashion_mnist", split="train", batch_size=8,
                manual_dir="/nonexistent", data_dir="/nonexistent")
    args.update(kwargs)
    with self.assertRaisesRegex(error, word):
      data.load(**args)

  @parameterized.parameters(("cifar10", "--config.download=True"),
                            ("imagenet2012", "downloads/manual"))
  def test_unprepared_tfds_dataset_is_one_line_saying_how(self, name, how):
    missing = os.path.join(tempfile.mkdtemp(), "tfds")
    with self.assertRaises(errors.MissingDataError) as cm:
      data.load(name, "train", 8, data_dir=missing)
    message = str(cm.exception)
    self.assertStartsWith(message, f"{name} is not prepared in {missing} "
                          "(--config.data_dir): ")
    self.assertIn(how, message)
    self.assertNotIn("\n", message)
    self.assertFalse(os.path.exists(missing))

  def test_digits_cannot_be_augmented(self):
    with self.assertRaisesRegex(ValueError, "augment"):
      data.load("digits", "train", 8, augment=True)


class DigitsValidationTest(tf.test.TestCase):

  def test_validation_is_a_fixed_disjoint_tail_of_train(self):
    full_x, full_y = _arrays(data.load("digits", "train", 1, seed=3))
    train_x, _ = _arrays(data.load("digits", "train", 1, validation_size=97))
    val_x, val_y = _arrays(data.load("digits", "validation", 10,
                                     validation_size=97))
    val2_x, val2_y = _arrays(data.load("digits", "validation", 7,
                                       validation_size=97))
    self.assertAllEqual(val_x, val2_x)
    self.assertAllEqual(val_y, val2_y)
    self.assertLen(val_y, 97)
    self.assertLen(train_x, len(full_y) - 97)
    # Together they are the training set (as multisets of images).
    key = lambda x: sorted(map(bytes, x.reshape(len(x), -1)))
    self.assertEqual(key(np.concatenate([train_x, val_x])), key(full_x))


class MockFashionMnistTest(tf.test.TestCase):
  """The pipeline on `tfds.testing.mock_data` (no files needed)."""

  def test_splits_shapes_and_dtypes(self):
    with tfds.testing.mock_data(num_examples=20):
      for split, image_size, batches in (("train", None, [8, 8]),
                                         ("validation", 32, [8, 8, 4]),
                                         ("test", 16, [8, 8, 4])):
        ds = data.load("fashion_mnist", split, 8, image_size=image_size,
                       validation_size=100, augment=True,
                       manual_dir="/nonexistent")
        side = image_size or 28
        got = list(ds)
        self.assertEqual([len(b["label"]) for b in got], batches)
        for batch in got:
          self.assertEqual(batch["image"].shape[1:], (side, side, 1))
          self.assertEqual(batch["image"].dtype, tf.float32)
          self.assertEqual(batch["label"].dtype, tf.int32)
          self.assertAllInRange(batch["label"], 0, 9)
          self.assertTrue(np.isfinite(batch["image"].numpy()).all())

  def test_training_order_and_augmentation_follow_the_seed(self):
    with tfds.testing.mock_data(num_examples=32):
      load = lambda seed: _arrays(data.load(
          "fashion_mnist", "train", 32, seed=seed, augment=True,
          manual_dir="/nonexistent"))
      first, again, other = load(1), load(1), load(2)
    self.assertAllEqual(first[0], again[0])
    self.assertAllEqual(first[1], again[1])
    self.assertNotAllEqual(first[0], other[0])


class MissingFilesTest(tf.test.TestCase):

  def test_one_line_error_names_the_package(self):
    empty = tempfile.mkdtemp(dir=self.get_temp_dir())
    data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaises(fm_builder.MissingDataError) as caught:
      data.load("fashion_mnist", "test", 8, data_dir=data_dir,
                manual_dir=empty)
    message = str(caught.exception)
    self.assertNotIn("\n", message)
    self.assertIn("apt-get install dataset-fashion-mnist", message)
    self.assertIn(empty, message)
    self.assertFalse(os.path.exists(
        os.path.join(data_dir, "fashion_mnist", "3.0.1")))


@unittest.skipUnless(_HAVE_FILES, "dataset-fashion-mnist is not installed")
class RealFashionMnistTest(tf.test.TestCase):
  """On the Debian package's files, prepared once for the class."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp(prefix="fashion_mnist_test_")
    cls.builder = fm_builder.prepare(cls.data_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.data_dir, ignore_errors=True)
    super().tearDownClass()

  def _load(self, split, batch_size, **kwargs):
    return data.load("fashion_mnist", split, batch_size,
                     data_dir=self.data_dir, **kwargs)

  def test_prepared_where_tfds_reads_it(self):
    self.assertTrue(self.builder.is_prepared())
    ds = tfds.load("fashion_mnist", split="test", data_dir=self.data_dir,
                   download=False)
    self.assertEqual(int(ds.cardinality()), 10_000)

  def test_real_counts_and_class_balance(self):
    for split, size in (("train", 60_000), ("test", 10_000)):
      labels = _stored_labels(self.builder, split)
      self.assertLen(labels, size)
      self.assertAllEqual(np.bincount(labels, minlength=10),
                          [size // 10] * 10)

  def test_test_split_batches(self):
    images, labels = _arrays(self._load("test", 1000))
    self.assertEqual(images.shape, (10_000, 28, 28, 1))
    self.assertEqual(images.dtype, np.float32)
    self.assertEqual(labels.dtype, np.int32)
    self.assertAllInRange(labels, 0, 9)
    self.assertAllEqual(labels, _stored_labels(self.builder, "test"))
    # Standardised with the training set's statistics: roughly centred.
    self.assertLess(abs(float(images.mean())), 0.1)
    self.assertAllClose(float(images.std()), 1.0, atol=0.1)

  def test_split_sizes_through_the_pipeline(self):
    cardinality = lambda split, batch, **kw: int(
        self._load(split, batch, **kw).cardinality())
    self.assertEqual(cardinality("train", 1000), 60)
    self.assertEqual(cardinality("train", 1000, validation_size=5000), 55)
    self.assertEqual(cardinality("validation", 1000, validation_size=5000), 5)
    self.assertEqual(cardinality("test", 1000), 10)
    self.assertEqual(cardinality("train", 64), 60_000 // 64)  # Drops the rest.

  def test_validation_is_the_stored_tail_and_deterministic(self):
    size = 2000
    images, labels = _arrays(self._load("validation", 500,
                                        validation_size=size))
    again, again_labels = _arrays(self._load("validation", 300,
                                             validation_size=size))
    self.assertAllEqual(images, again)
    self.assertAllEqual(labels, again_labels)
    stored = _stored_labels(self.builder, "train")
    self.assertAllEqual(labels, stored[-size:])
    raw = tfds.as_numpy(self.builder.as_dataset(
        split=f"train[-{size}:]").batch(size))
    raw_images = next(iter(raw))["image"].astype(np.float32) / 255.0
    self.assertAllClose(
        images, (raw_images - data.FASHION_MNIST_MEAN) / data.FASHION_MNIST_STD,
        atol=1e-5)

  def test_padding_to_32_is_background(self):
    images, _ = _arrays(self._load("test", 100, image_size=32,
                                   max_examples=100))
    plain, _ = _arrays(self._load("test", 100, max_examples=100))
    self.assertEqual(images.shape, (100, 32, 32, 1))
    self.assertAllClose(images[:, 2:30, 2:30], plain)
    background = images[:, :2].ravel()
    self.assertAllClose(background, np.full_like(background, background[0]))
    self.assertLess(background[0], plain.min() + 1e-6)

  def test_seeded_shuffle_and_augmentation(self):
    def first_batch(**kwargs):
      return _arrays(self._load("train", 256, max_examples=256, **kwargs))
    plain = first_batch(seed=5)
    augmented = first_batch(seed=5, augment=True)
    self.assertAllEqual(plain[1], augmented[1])  # Same order, same seed.
    self.assertAllEqual(augmented[0], first_batch(seed=5, augment=True)[0])
    self.assertNotAllClose(augmented[0], plain[0])
    self.assertNotAllEqual(plain[1], first_batch(seed=6)[1])

  def test_losing_a_race_to_prepare_uses_the_winners_records(self):
    data_dir = self.create_tempdir().full_path
    fm_builder.prepare(data_dir)  # The winner.
    calls = []

    def lose(builder, *args, **kwargs):
      del args, kwargs
      calls.append(builder)
      raise FileExistsError("Cannot rename ...: destination exists.")

    with mock.patch.object(fm_builder.DebianFashionMNIST, "is_prepared",
                           side_effect=[False, True]), \
        mock.patch.object(fm_builder.DebianFashionMNIST,
                          "download_and_prepare", lose):
      builder = fm_builder.prepare(data_dir)
    self.assertLen(calls, 1)
    self.assertEqual(builder.info.splits["test"].num_examples, 10000)
    with mock.patch.object(fm_builder.DebianFashionMNIST, "is_prepared",
                           return_value=False), \
        mock.patch.object(fm_builder.DebianFashionMNIST,
                          "download_and_prepare", lose):
      with self.assertRaises(FileExistsError):  # Not prepared: re-raised.
        fm_builder.prepare(data_dir)

  def test_corrupted_file_fails_the_checksum(self):
    manual = tempfile.mkdtemp(dir=self.get_temp_dir())
    for name in fm_builder.FILENAMES:
      source = os.path.join(fm_builder.DEBIAN_DIR, name)
      if name.startswith("t10k-labels"):
        with open(source, "rb") as f:
          content = bytearray(f.read())
        content[-1] ^= 0xFF
        with open(os.path.join(manual, name), "wb") as f:
          f.write(bytes(content))
      else:
        os.symlink(source, os.path.join(manual, name))
    data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(fm_builder.ChecksumError,
                                "t10k-labels.*wrong checksum") as caught:
      fm_builder.prepare(data_dir, manual)
    self.assertNotIn("\n", str(caught.exception))
    self.assertIn("apt-get install --reinstall", str(caught.exception))
    self.assertFalse(fm_builder.DebianFashionMNIST(data_dir=data_dir)
                     .is_prepared())


if __name__ == "__main__":
  tf.test.main()
