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


def tiny_config(teacher_dir: str, **overrides):
  """A Figure 4 config that runs in seconds with a tiny teacher.

  One fraction (0.25), one seed, 4 steps of batch 4, 48 recorded states of
  4 games; `overrides` set any field.
  """
  from distillation.configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.game = "Pong"
  config.teacher_dir = teacher_dir
  config.train_fractions = (0.25,)
  config.seeds = 1
  config.steps = 4
  config.eval_every = 2
  config.batch_size = 4
  config.num_states = 48
  config.collect_envs = 4
  config.validation_fraction = 0.1
  config.max_eval_states = 16
  config.update(overrides)
  return config
