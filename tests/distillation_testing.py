"""Shared fixtures of the distillation tests: tiny random teachers."""

import tensorflow as tf

from distillation import networks
from distillation import teachers


def tiny_teacher(num_actions: int = 6, seed: int = 0) -> networks.TeacherNet:
  """An untrained teacher with 4-channel convs and 8 hidden units."""
  tf.random.set_seed(seed)
  return networks.TeacherNet(num_actions, channels=(4, 4, 4), hidden=8)


def tiny_teacher_dir(directory: str, game: str = "Pong",
                     num_actions: int = 6) -> str:
  """Exports a built `tiny_teacher` for `game` to `directory`; returns it."""
  net = tiny_teacher(num_actions)
  net(tf.zeros([1, 84, 84, 4], tf.uint8))
  teachers.export(net, directory, {"game": game, "frames": 0})
  return directory
