"""Tests of the rollout recorder and the episode split."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from distillation import rollouts
import distillation_testing
from sobolev import rollouts as core_rollouts
from sobolev.experiment import files


class CollectTest(tf.test.TestCase):

  def test_collection_is_deterministic_and_complete(self):
    teacher = distillation_testing.tiny_teacher()
    base = tempfile.mkdtemp(dir=self.get_temp_dir())
    a, b, c = (os.path.join(base, n) for n in "abc")
    meta = rollouts.collect(teacher.log_policy, "Pong", a, num_states=21,
                            seed=5, num_envs=4, shard_size=8)
    rollouts.collect(teacher.log_policy, "Pong", b, num_states=21, seed=5,
                     num_envs=4, shard_size=8)
    rollouts.collect(teacher.log_policy, "Pong", c, num_states=21, seed=6,
                     num_envs=4, shard_size=8)
    self.assertEqual(meta["shards"], ["shard-00000.npz", "shard-00001.npz",
                                      "shard-00002.npz"])
    self.assertEqual(meta["num_actions"], 6)
    self.assertEqual(meta["game"], "Pong")
    self.assertEqual(meta["keys"], list(rollouts.KEYS))
    da, db, dc = rollouts.load(a), rollouts.load(b), rollouts.load(c)
    self.assertEqual(da["states"].shape, (21, 84, 84, 4))
    self.assertEqual(da["states"].dtype, np.uint8)
    self.assertEqual(da["log_probs"].shape, (21, 6))
    for key in rollouts.KEYS:
      self.assertAllEqual(da[key], db[key])
    self.assertNotAllEqual(da["actions"], dc["actions"])
    # Time-major over 4 games: ids 0..3 repeat, steps count up.
    self.assertAllEqual(da["episode_ids"][:8], [0, 1, 2, 3] * 2)
    self.assertAllEqual(da["steps"][:8], [0] * 4 + [1] * 4)
    # The recorded log-probabilities are the teacher's at those states.
    self.assertAllClose(da["log_probs"], teacher.log_policy(da["states"]),
                        atol=1e-5)
    self.assertAllClose(np.exp(da["log_probs"]).sum(-1), np.ones(21),
                        atol=1e-5)

  def test_incomplete_collection_is_not_loaded(self):
    with self.assertRaisesRegex(ValueError, "No complete rollout"):
      rollouts.load(tempfile.mkdtemp(dir=self.get_temp_dir()))

  def test_bad_arguments(self):
    teacher = distillation_testing.tiny_teacher()
    with self.assertRaisesRegex(ValueError, "Unknown game"):
      rollouts.collect(teacher.log_policy, "Tetris", self.get_temp_dir())
    with self.assertRaisesRegex(ValueError, "num_states"):
      rollouts.collect(teacher.log_policy, "Pong", self.get_temp_dir(),
                       num_states=0)


class CoreTest(tf.test.TestCase):

  def test_split_and_loading_are_the_cores(self):
    # The split is tested in tests/rollouts_test.py.
    self.assertIs(rollouts.split_by_episodes, core_rollouts.split_by_episodes)
    self.assertIs(rollouts.read_meta, core_rollouts.read_meta)
    self.assertEqual(rollouts.META_FILE, core_rollouts.META_FILE)

  def test_collections_without_keys_in_meta_still_load(self):
    # Collections written before `meta.json` listed its keys.
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    arrays = {"states": np.zeros([3, 84, 84, 4], np.uint8),
              "log_probs": np.full([3, 6], -np.log(6.0), np.float32),
              "actions": np.arange(3, dtype=np.int32),
              "episode_ids": np.zeros(3, np.int32),
              "steps": np.arange(3, dtype=np.int32)}
    np.savez_compressed(os.path.join(directory, "shard-00000.npz"), **arrays)
    files.write_json(os.path.join(directory, "meta.json"), {
        "game": "Pong", "num_states": 3, "seed": 0, "num_envs": 1,
        "shard_size": 10, "num_actions": 6, "shards": ["shard-00000.npz"]})
    data = rollouts.load(directory)
    for key in rollouts.KEYS:
      self.assertAllEqual(data[key], arrays[key])


if __name__ == "__main__":
  tf.test.main()
