"""Pytest configuration for the tf.test / absltest based test files."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top


def pytest_configure(config):
  """Marks absl flags parsed, as absltest.main would (create_tempdir etc.)."""
  del config
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def pytest_collection_modifyitems(config, items):
  """Drops tf.test.TestCase.test_session, a context manager, not a test."""
  del config
  items[:] = [item for item in items if item.name != "test_session"]
