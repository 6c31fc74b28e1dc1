"""Evaluating a policy network on full Atari games (no life-loss resets).

The play loop and the action sampler are the core's
(`sobolev.rollouts.evaluate`); this module runs them on
`atari_env.VectorAtari`.
"""

import math
from typing import Callable, List, Optional

import tensorflow as tf

from distillation import atari_env
from sobolev import rollouts
from sobolev.experiment import stats

# `policy(obs [B, 84, 84, 4] uint8) -> logits or log-probs [B, A]`.
Policy = Callable[[tf.Tensor], tf.Tensor]


def evaluate(policy: Policy,
             game: str,
             episodes: int,
             seed: int = 0,
             greedy: bool = False,
             max_parallel: int = 16,
             max_episode_frames: int = atari_env.MAX_EPISODE_FRAMES,
             progress: Optional[Callable[[int, float], None]] = None
             ) -> List[float]:
  """Plays `episodes` full games and returns their (unclipped) scores.

  Games run in `min(episodes, max_parallel)` parallel environments; each
  environment plays a fixed quota of games, so short games are not
  over-represented. Games end at game over (all lives) or after
  `max_episode_frames` emulator frames.

  Args:
    policy: maps observations to logits (or log-probabilities) `[B, A]`; it
      is run in a `tf.function`.
    game: 'Pong', 'Breakout' or 'SpaceInvaders'.
    episodes: number of games (>= 1).
    seed: seeds the environments and the action sampling.
    greedy: take the most likely action instead of sampling from pi.
    max_parallel: maximum number of parallel environments.
    max_episode_frames: truncation length in emulator frames.
    progress: optional callback `(episode_index, return)` per finished game.

  Returns:
    The `episodes` returns, in order of (environment, game).

  Raises:
    ValueError: for an unknown game, `episodes < 1` or `max_parallel < 1`.
  """
  atari_env.check_game(game)
  rollouts.check_count("episodes", episodes)
  rollouts.check_count("max_parallel", max_parallel)
  num_envs = min(episodes, max_parallel)
  with atari_env.VectorAtari(game, num_envs, seed=seed,
                             max_episode_frames=max_episode_frames) as env:
    return rollouts.evaluate(env, tf.function(policy), episodes, seed=seed,
                             greedy=greedy, progress=progress)


def summarize(returns: List[float]) -> str:
  """`mean_return=<float> std_return=<float>` (sample std, ddof=1)."""
  if not returns:
    return f"mean_return={math.nan} std_return={math.nan}"
  mean, std = stats.mean_std(returns)
  return f"mean_return={mean:.4f} std_return={std:.4f}"
