"""tensorflow-datasets' Fashion-MNIST builder fed from Debian's package files.

`apt-get install dataset-fashion-mnist` installs the four original IDX files
of Zalando's Fashion-MNIST (60,000 training and 10,000 test images, 28x28
grey, 10 classes) in `DEBIAN_DIR`. tfds' own `fashion_mnist` builder can
read them from a `manual_dir`, but Debian re-wrote their gzip headers (the
stored file name is dropped and the time stamp differs; the sizes are 24
bytes smaller, the images identical), so their SHA-256 sums differ from the
ones tfds registered for the Zalando downloads and tfds refuses them.

`DebianFashionMNIST` is tfds' builder unchanged (same features, version,
example generation and on-disk layout `<data_dir>/fashion_mnist/<version>/`,
so `tfds.load('fashion_mnist', data_dir=...)` reads what it prepared) except
for the source: its URLs are the Debian files' install locations and
`checksums.tsv` beside this module registers their sizes and SHA-256 sums,
found through tfds' own per-builder checksums file. tfds verifies every file
against it while preparing; the installed tfds package is not modified and
the builder is not registered under tfds' name (`skip_registration`).
"""

import os
import tempfile
from typing import Optional, Sequence

import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager
from tensorflow_datasets.image_classification import mnist

from sobolev.experiment import errors

#: Where `apt-get install dataset-fashion-mnist` puts the IDX files.
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
#: The Debian package holding the files.
DEBIAN_PACKAGE = "dataset-fashion-mnist"
#: The four files tfds' builder reads.
FILENAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class MissingDataError(errors.UserError, FileNotFoundError):
  """The dataset's source files are not installed."""


class ChecksumError(errors.UserError, ValueError):
  """A source file differs from the one registered in `checksums.tsv`."""


def missing_files(manual_dir: str) -> Sequence[str]:
  """The names in `FILENAMES` that `manual_dir` lacks (empty if complete)."""
  return [f for f in FILENAMES
          if not os.path.isfile(os.path.join(manual_dir, f))]


def check_files(manual_dir: str) -> None:
  """Raises a one-line `MissingDataError` unless all files are present.

  Args:
    manual_dir: folder that should hold `FILENAMES`.

  Raises:
    MissingDataError: naming the folder, the missing files and the package.
  """
  missing = missing_files(manual_dir)
  if missing:
    raise MissingDataError(
        f"Fashion-MNIST files missing in {manual_dir} ({', '.join(missing)}): "
        f"install them with `apt-get install {DEBIAN_PACKAGE}`.")


class DebianFashionMNIST(mnist.FashionMNIST, skip_registration=True):
  """tfds' `fashion_mnist` read from the Debian package's files."""

  name = "fashion_mnist"
  URL = f"file://{DEBIAN_DIR}/"
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"`apt-get install {DEBIAN_PACKAGE}` puts the four IDX .gz files in "
      f"{DEBIAN_DIR}.")

  def __init__(self, *, manual_dir: Optional[str] = None, **kwargs):
    """Builder reading the files from `manual_dir`.

    Args:
      manual_dir: folder holding `FILENAMES` (`DEBIAN_DIR` if None).
      **kwargs: for `tfds.core.DatasetBuilder` (`data_dir`, ...).
    """
    self.source_dir = os.path.expanduser(manual_dir or DEBIAN_DIR)
    super().__init__(**kwargs)

  def _split_generators(self, dl_manager):
    check_files(self.source_dir)
    return super()._split_generators(dl_manager)


def prepare(data_dir: Optional[str] = None,
            manual_dir: Optional[str] = None) -> DebianFashionMNIST:
  """A prepared builder: prepares `data_dir` from the files once, offline.

  Nothing is downloaded. The decompressed intermediate files (55 MB) go to
  a temporary folder that is removed afterwards; tfds writes
  the prepared records into an incomplete folder renamed when complete, so an
  interrupted preparation leaves nothing half-written, and a process that
  loses a race to prepare the same `data_dir` uses the winner's records.

  Args:
    data_dir: tfds data directory (tfds' default, `~/tensorflow_datasets` or
      `$TFDS_DATA_DIR`, if None).
    manual_dir: folder holding `FILENAMES` (`DEBIAN_DIR` if None).

  Returns:
    The builder, prepared.

  Raises:
    MissingDataError: when the data are not prepared and a file is missing.
    ChecksumError: when a file's size or SHA-256 differs from the registered
      one (nothing is prepared).
  """
  builder = DebianFashionMNIST(data_dir=data_dir, manual_dir=manual_dir)
  if builder.is_prepared():
    return builder
  if builder.url_infos is None:  # A broken installation, not a user error.
    raise FileNotFoundError(
        "checksums.tsv is missing beside "
        f"{DebianFashionMNIST.code_path}; reinstall the package.")
  with tempfile.TemporaryDirectory(prefix="fashion_mnist_") as tmp:
    try:
      builder.download_and_prepare(
          download_dir=tmp,
          download_config=tfds.download.DownloadConfig(
              manual_dir=builder.source_dir,
              extract_dir=os.path.join(tmp, "extracted"),
              force_checksums_validation=True))
    except FileExistsError:
      # Another process prepared the same data_dir first (tfds renames its
      # finished incomplete folder into place): use theirs.
      builder = DebianFashionMNIST(data_dir=data_dir, manual_dir=manual_dir)
      if not builder.is_prepared():
        raise
    except download_manager.NonMatchingChecksumError as e:
      first_line = str(e).splitlines()[0]
      raise ChecksumError(
          f"{first_line} (not the files of the Debian package registered in "
          f"checksums.tsv): reinstall them with `apt-get install --reinstall "
          f"{DEBIAN_PACKAGE}`.") from e
  return builder
