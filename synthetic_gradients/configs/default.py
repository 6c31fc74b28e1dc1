"""The default preset of `synthetic_gradients.run`: digits (`digits.py`)."""

import ml_collections

from synthetic_gradients.configs import digits


def get_config() -> ml_collections.ConfigDict:
  """The digits preset."""
  return digits.get_config()
