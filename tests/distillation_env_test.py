"""Tests of the Atari environment wrapper and the policy networks."""

import os
import subprocess
import sys

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from distillation import atari_env
from distillation import networks
from sobolev import policies
from sobolev import rollouts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AtariEnvTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(("Pong", 6), ("Breakout", 4),
                            ("SpaceInvaders", 6))
  def test_preprocessed_shapes_and_dtypes(self, game, num_actions):
    with atari_env.VectorAtari(game, 2, seed=0) as env:
      self.assertEqual(env.num_actions, num_actions)
      self.assertEqual(env.metadata["autoreset_mode"], "SameStep")
      obs, info = env.reset()
      self.assertEqual(obs.shape, (2, 84, 84, 4))
      self.assertEqual(obs.dtype, np.uint8)
      self.assertGreater(obs.max(), 0)  # Not a blank screen.
      self.assertEqual(info["lives"].shape, (2,))
      obs, reward, terminated, truncated, info = env.step(
          np.zeros(2, np.int64))
      self.assertEqual(obs.shape, (2, 84, 84, 4))
      self.assertEqual(obs.dtype, np.uint8)
      self.assertEqual(reward.shape, (2,))
      self.assertEqual(reward.dtype, np.float32)
      for value in (terminated, truncated, info["life_lost"]):
        self.assertEqual(value.shape, (2,))
        self.assertEqual(value.dtype, bool)
      # The newest frame is the last channel: the stack shifts by one.
      nxt = env.step(np.zeros(2, np.int64))[0]
      self.assertAllEqual(nxt[..., :3], obs[..., 1:])

  def test_seeded_games_are_reproducible(self):
    def play(seed):
      with atari_env.VectorAtari("Breakout", 2, seed=seed) as env:
        frames = [env.reset()[0]]
        actions = np.random.default_rng(0).integers(0, 4, size=(40, 2))
        for a in actions:
          frames.append(env.step(a)[0])
        return np.stack(frames)
    first = play(3)
    self.assertAllEqual(first, play(3))
    # reset(seed=) overrides the constructor's seed.
    with atari_env.VectorAtari("Breakout", 2, seed=0) as env:
      self.assertAllEqual(env.reset(seed=3)[0], first[0])

  def test_life_loss_is_reported_without_ending_the_game(self):
    with atari_env.VectorAtari("Breakout", 1, seed=0) as env:
      env.reset()
      lost = False
      for i in range(400):  # NOOP loses the first ball within ~100 steps.
        _, _, terminated, truncated, info = env.step(
            np.array([1 if i % 50 == 0 else 0]))  # FIRE now and then.
        if info["life_lost"][0]:
          lost = True
          self.assertFalse(terminated[0] or truncated[0])
          break
      self.assertTrue(lost)

  def test_rewards_are_unclipped(self):
    with atari_env.VectorAtari("SpaceInvaders", 2, seed=1) as env:
      env.reset()
      rng = np.random.default_rng(0)
      seen = False
      for _ in range(300):
        reward = env.step(rng.integers(0, 6, size=2))[1]
        if np.any(reward > 1):  # Space Invaders scores 5..30 a hit.
          seen = True
          break
      self.assertTrue(seen)

  def test_core_player_plays_it(self):
    # The core play loop on the Atari wrapper: full games, unclipped
    # returns, steps and ids as in the environment.
    with atari_env.VectorAtari("Breakout", 2, seed=0,
                               max_episode_frames=400) as env:
      player = rollouts.Player(
          env, lambda obs: np.zeros([obs.shape[0], 4], np.float32),
          policies.ActionSampler(seed=0))
      obs = player.reset()
      self.assertEqual(obs.shape, (2, 84, 84, 4))
      finished = []
      for _ in range(120):  # 400 frames = 100 agent steps: truncated.
        t = player.step()
        self.assertTrue(t.valid.all())
        finished += t.finished
      self.assertLen(finished, 2)
      self.assertEqual(sorted(e.episode_id for e in finished), [0, 1])
      self.assertTrue(all(e.length == 100 for e in finished))
      self.assertAllEqual(player.episode_ids, [2, 3])

  def test_core_plays_ale_vector_env_directly(self):
    # ale-py's own vector env (NCHW frames, 'NextStep' autoreset): the
    # reset step after a truncated game is not counted.
    from ale_py import vector_env  # pylint: disable=g-import-not-at-top
    env = vector_env.AtariVectorEnv("breakout", num_envs=2, num_threads=1,
                                    max_num_frames_per_episode=400)
    try:
      player = rollouts.Player(
          env, lambda obs: np.zeros([obs.shape[0], 4], np.float32),
          policies.ActionSampler(seed=0))
      self.assertEqual(player.autoreset_mode, "NextStep")
      self.assertEqual(player.reset(seed=0).shape, (2, 4, 84, 84))
      finished, invalid = [], 0
      for _ in range(102):
        t = player.step()
        invalid += int((~t.valid).sum())
        finished += t.finished
      self.assertEqual(sorted(e.length for e in finished), [100, 100])
      self.assertEqual(invalid, 2)  # One reset step per sub-environment.
      self.assertAllEqual(player.episode_ids, [2, 3])
    finally:
      env.close()

  def test_ale_py_is_imported_only_to_build_an_environment(self):
    code = ("import sys\n"
            "from distillation import atari_env, evaluation, rollouts, "
            "teacher_training, teachers\n"
            "print('ale_py' in sys.modules)\n"
            "atari_env.num_actions('Pong')\n"
            "print('ale_py' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertEqual(proc.stdout.split()[-2:], ["False", "True"])

  def test_unknown_game_is_rejected(self):
    with self.assertRaisesRegex(ValueError, "Unknown game 'Tetris'"):
      atari_env.VectorAtari("Tetris", 1)
    with self.assertRaisesRegex(ValueError, "num_envs"):
      atari_env.VectorAtari("Pong", 0)

  def test_to_nhwc(self):
    x = np.arange(2 * 4 * 3 * 5).reshape(2, 4, 3, 5)
    y = atari_env.to_nhwc(x)
    self.assertEqual(y.shape, (2, 3, 5, 4))
    self.assertEqual(y[1, 2, 4, 3], x[1, 3, 2, 4])


class NetworksTest(tf.test.TestCase):

  def test_teacher_and_student_shapes(self):
    states = tf.zeros([3, 84, 84, 4], tf.uint8)
    teacher = networks.TeacherNet(6)
    logits, values = teacher(states)
    self.assertEqual(logits.shape, (3, 6))
    self.assertEqual(values.shape, (3,))
    student = networks.StudentNet(6)
    self.assertEqual(student(states).shape, (3, 6))
    # Documented sizes: 3 conv + 2 FC (teacher), 2 conv + 1 FC (student).
    self.assertEqual(networks.num_parameters(teacher),
                     (8 * 8 * 4 * 16 + 16) + (4 * 4 * 16 * 32 + 32) +
                     (3 * 3 * 32 * 32 + 32) + (7 * 7 * 32 * 256 + 256) +
                     (256 * 6 + 6) + (256 + 1))
    self.assertEqual(networks.num_parameters(student),
                     (8 * 8 * 4 * 16 + 16) + (4 * 4 * 16 * 32 + 32) +
                     (9 * 9 * 32 * 128 + 128) + (128 * 6 + 6))

  def test_uint8_and_float_inputs_agree(self):
    # uint8 frames are scaled to [0, 1]; float frames already in [0, 1]
    # (what Sobolev distillation differentiates) give the same policy.
    net = networks.StudentNet(4)
    states = np.random.default_rng(0).integers(
        0, 256, size=(2, 84, 84, 4)).astype(np.uint8)
    scaled = states.astype(np.float32) / 255.0
    self.assertAllClose(net.log_policy(states), net.log_policy(scaled),
                        atol=1e-5)
    self.assertAllClose(tf.reduce_sum(tf.exp(net.log_policy(states)), -1),
                        [1.0, 1.0], atol=1e-5)


if __name__ == "__main__":
  tf.test.main()
