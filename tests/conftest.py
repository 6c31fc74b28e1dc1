"""Pytest configuration: quiet TensorFlow's C++ logging."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
  """Drops tf.test.TestCase.test_session, a context manager, not a test."""
  del config
  items[:] = [item for item in items if item.name != "test_session"]
