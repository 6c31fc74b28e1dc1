"""Evaluating a policy network on full Atari games (no life-loss resets)."""

import math
from typing import Callable, List, Optional

import numpy as np
import tensorflow as tf

from distillation import atari_env
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
    policy: maps observations to logits (or log-probabilities) `[B, A]`.
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
    ValueError: for an unknown game or `episodes < 1`.
  """
  atari_env.check_game(game)
  if isinstance(episodes, bool) or not isinstance(episodes, int) or (
      episodes < 1):
    raise ValueError(f"`episodes` must be an int >= 1, got {episodes!r}.")
  num_envs = min(episodes, max_parallel)
  quota = [episodes // num_envs + (1 if i < episodes % num_envs else 0)
           for i in range(num_envs)]
  results = [[] for _ in range(num_envs)]
  rng = np.random.default_rng(seed)
  policy_fn = tf.function(policy)
  finished = 0
  with atari_env.VectorAtari(game, num_envs, seed=seed, clip_rewards=False,
                             max_episode_frames=max_episode_frames) as env:
    obs = env.reset()
    while any(len(r) < q for r, q in zip(results, quota)):
      logits = policy_fn(tf.constant(obs)).numpy().astype(np.float64)
      if greedy:
        actions = np.argmax(logits, axis=-1)
      else:
        logits -= logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=-1, keepdims=True)
        u = rng.random((num_envs, 1))
        actions = np.minimum((probs.cumsum(axis=-1) < u).sum(axis=-1),
                             probs.shape[-1] - 1)
      result = env.step(actions)
      obs = result.obs
      for env_id, ret, _ in result.episode_returns:
        if len(results[env_id]) < quota[env_id]:
          results[env_id].append(ret)
          if progress is not None:
            progress(finished, ret)
          finished += 1
  return [ret for env_results in results for ret in env_results]


def summarize(returns: List[float]) -> str:
  """`mean_return=<float> std_return=<float>` (sample std, ddof=1)."""
  if not returns:
    return f"mean_return={math.nan} std_return={math.nan}"
  mean, std = stats.mean_std(returns)
  return f"mean_return={mean:.4f} std_return={std:.4f}"
