"""Tests of teacher evaluation on full games and its command line."""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from distillation import evaluation
from distillation import teachers
import distillation_testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_env():
  """The environment of a user who set no TensorFlow log level (the tests'
  conftest sets one)."""
  return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def _constant_policy(action: int, num_actions: int):
  def policy(obs):
    batch = tf.shape(obs)[0]
    return tf.tile(10.0 * tf.one_hot([action], num_actions), [batch, 1])
  return policy


class EvaluationTest(tf.test.TestCase):

  def test_summarize_hand_computed(self):
    # Sample std (ddof=1): sqrt(((1-2)^2 + (3-2)^2) / 1) = 1.4142.
    self.assertEqual(evaluation.summarize([1.0, 3.0]),
                     "mean_return=2.0000 std_return=1.4142")
    self.assertEqual(evaluation.summarize([5.0]),
                     "mean_return=5.0000 std_return=0.0000")

  def test_breakout_without_fire_scores_zero(self):
    # NOOP never launches the ball: every game is 0 and ends at the
    # truncation length.
    returns = evaluation.evaluate(
        _constant_policy(0, 4), "Breakout", 3, seed=0, greedy=True,
        max_episode_frames=400)
    self.assertEqual(returns, [0.0, 0.0, 0.0])

  def test_sampled_play_is_seeded_and_counts_games(self):
    def play(seed):
      uniform = lambda obs: tf.zeros([tf.shape(obs)[0], 4])
      return evaluation.evaluate(uniform, "Breakout", 5, seed=seed,
                                 max_parallel=2, max_episode_frames=2000)
    first = play(3)
    self.assertLen(first, 5)
    self.assertTrue(all(r >= 0.0 for r in first))
    self.assertEqual(first, play(3))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "episodes"):
      evaluation.evaluate(_constant_policy(0, 4), "Breakout", 0)
    with self.assertRaisesRegex(ValueError, "Unknown game 'Tetris'"):
      evaluation.evaluate(_constant_policy(0, 4), "Tetris", 1)

  def test_command_line_prints_the_summary_last(self):
    directory = distillation_testing.tiny_teacher_dir(
        tempfile.mkdtemp(dir=self.get_temp_dir()), "Breakout", 4)
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.evaluate_teacher",
         "--game=Breakout", "--episodes=2", f"--teacher_dir={directory}",
         "--record"], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    lines = proc.stdout.strip().splitlines()
    self.assertLen([l for l in lines if l.startswith("episode=")], 2)
    match = re.fullmatch(r"mean_return=(\S+) std_return=(\S+)", lines[-1])
    self.assertIsNotNone(match, lines[-1])
    returns = [float(l.split("return=")[1]) for l in lines
               if l.startswith("episode=")]
    self.assertAlmostEqual(float(match.group(1)), np.mean(returns), places=3)
    self.assertAlmostEqual(float(match.group(2)), np.std(returns, ddof=1),
                           places=3)
    _, meta = teachers.load(directory=directory)
    self.assertAlmostEqual(meta["eval_mean_return"], np.mean(returns))
    self.assertEqual(meta["eval_episodes"], 2)
    self.assertAlmostEqual(meta["eval_std_return"], np.std(returns, ddof=1))

  def test_command_line_errors_are_one_line(self):
    proc = subprocess.run(
        [sys.executable, "-m", "distillation.evaluate_teacher",
         "--game=Tetris"], cwd=REPO, capture_output=True, text=True,
        timeout=300, env=_user_env())
    self.assertEqual(proc.returncode, 2)
    self.assertEqual(proc.stderr.strip().splitlines(),
                     ["error: Unknown game 'Tetris': `game` must be one of "
                      "['Breakout', 'Pong', 'SpaceInvaders']."])


if __name__ == "__main__":
  tf.test.main()
