"""Tests of the rollout recorder and the episode split."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from distillation import rollouts
import distillation_testing


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


class SplitTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((0.01, 0.0), (0.05, 0.1), (0.3, 0.2), (0.5, 0.0))
  def test_no_episode_on_two_sides(self, train_fraction, val_fraction):
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, size=40)
    ids = np.repeat(rng.permutation(1000)[:40], lengths)
    train, val, test = rollouts.split_by_episodes(ids, train_fraction,
                                                  val_fraction, seed=3)
    n = ids.size
    self.assertEqual(train.size, round(train_fraction * n))
    self.assertEqual(val.size, round(val_fraction * n))
    sets = [set(ids[train]), set(ids[val]), set(ids[test])]
    self.assertEmpty(sets[0] & sets[1])
    self.assertEmpty(sets[0] & sets[2])
    self.assertEmpty(sets[1] & sets[2])
    # Test games are complete; no index is used twice.
    for ep in sets[2]:
      self.assertEqual(np.sum(ids[test] == ep), np.sum(ids == ep))
    self.assertLen(np.unique(np.concatenate([train, val, test])),
                   train.size + val.size + test.size)

  def test_split_hand_computed(self):
    ids = np.repeat(np.arange(4), 5)  # Four games of 5 states.
    train, val, test = rollouts.split_by_episodes(ids, 0.3, 0.0, seed=0)
    order = np.random.default_rng(0).permutation(4)
    first, second = order[0], order[1]
    # 6 training states: all of the first game, 1 of the second (its other
    # 4 are dropped); the test set is the two remaining games.
    self.assertAllEqual(train, np.sort(np.concatenate(
        [np.flatnonzero(ids == first), np.flatnonzero(ids == second)[:1]])))
    self.assertEmpty(val)
    self.assertAllEqual(np.sort(test), np.flatnonzero(
        np.isin(ids, order[2:])))

  def test_split_is_seeded(self):
    ids = np.repeat(np.arange(20), 7)
    a = rollouts.split_by_episodes(ids, 0.2, seed=1)[0]
    self.assertAllEqual(a, rollouts.split_by_episodes(ids, 0.2, seed=1)[0])
    self.assertNotAllEqual(a, rollouts.split_by_episodes(ids, 0.2, seed=2)[0])

  @parameterized.parameters(0.0, 1.0, -0.1, 1.5, "abc", None)
  def test_fraction_outside_the_open_unit_interval_is_rejected(self, bad):
    with self.assertRaisesRegex(ValueError, "train_fraction"):
      rollouts.split_by_episodes(np.arange(10), bad)

  def test_empty_test_set_is_rejected(self):
    with self.assertRaisesRegex(ValueError, "test set"):
      rollouts.split_by_episodes(np.zeros(10, int), 0.5)


if __name__ == "__main__":
  tf.test.main()
