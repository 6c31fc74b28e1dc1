"""Tests of the Atari environment wrapper and the policy networks."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from distillation import atari_env
from distillation import networks


class AtariEnvTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(("Pong", 6), ("Breakout", 4),
                            ("SpaceInvaders", 6))
  def test_preprocessed_shapes_and_dtypes(self, game, num_actions):
    with atari_env.VectorAtari(game, 2, seed=0, clip_rewards=True) as env:
      self.assertEqual(env.num_actions, num_actions)
      obs = env.reset()
      self.assertEqual(obs.shape, (2, 84, 84, 4))
      self.assertEqual(obs.dtype, np.uint8)
      self.assertGreater(obs.max(), 0)  # Not a blank screen.
      result = env.step(np.zeros(2, np.int64))
      self.assertEqual(result.obs.shape, (2, 84, 84, 4))
      self.assertEqual(result.obs.dtype, np.uint8)
      for field in ("reward", "raw_reward"):
        self.assertEqual(getattr(result, field).shape, (2,))
        self.assertEqual(getattr(result, field).dtype, np.float32)
      for field in ("game_over", "life_lost"):
        self.assertEqual(getattr(result, field).dtype, bool)
      # The newest frame is the last channel: the stack shifts by one.
      nxt = env.step(np.zeros(2, np.int64)).obs
      self.assertAllEqual(nxt[..., :3], result.obs[..., 1:])

  def test_seeded_games_are_reproducible(self):
    def play(seed):
      with atari_env.VectorAtari("Breakout", 2, seed=seed) as env:
        frames = [env.reset()]
        actions = np.random.default_rng(0).integers(0, 4, size=(40, 2))
        for a in actions:
          frames.append(env.step(a).obs)
        return np.stack(frames)
    self.assertAllEqual(play(3), play(3))

  def test_life_loss_is_reported_without_ending_the_game(self):
    with atari_env.VectorAtari("Breakout", 1, seed=0) as env:
      env.reset()
      lost = False
      for _ in range(400):  # NOOP loses the first ball within ~100 steps.
        result = env.step(np.array([1 if _ % 50 == 0 else 0]))  # FIRE.
        if result.life_lost[0]:
          lost = True
          self.assertFalse(result.game_over[0])
          break
      self.assertTrue(lost)

  def test_reward_clipping_keeps_raw_rewards(self):
    with atari_env.VectorAtari("SpaceInvaders", 2, seed=1,
                               clip_rewards=True) as env:
      env.reset()
      rng = np.random.default_rng(0)
      seen = False
      for _ in range(300):
        r = env.step(rng.integers(0, 6, size=2))
        self.assertAllInRange(r.reward, -1.0, 1.0)
        if np.any(r.raw_reward > 1):  # Space Invaders scores 5..30 a hit.
          seen = True
          self.assertAllEqual(r.reward, np.sign(r.raw_reward))
      self.assertTrue(seen)

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

  def test_uint8_and_flat_float_inputs_agree(self):
    net = networks.StudentNet(4)
    states = np.random.default_rng(0).integers(
        0, 256, size=(2, 84, 84, 4)).astype(np.uint8)
    flat = states.reshape(2, -1).astype(np.float32) / 255.0
    self.assertAllClose(net.log_policy(states), net.flat_log_policy(flat),
                        atol=1e-5)
    self.assertAllClose(tf.reduce_sum(tf.exp(net.log_policy(states)), -1),
                        [1.0, 1.0], atol=1e-5)


if __name__ == "__main__":
  tf.test.main()
