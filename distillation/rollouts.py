"""Recording teacher rollouts on Atari and splitting them by episode.

The play loop, the shard format and the split are the core's
(`sobolev.rollouts`); this module runs them on `atari_env.VectorAtari` and
keeps the Figure 4 names. `collect` runs a policy in parallel games
(actions sampled from the policy, full games without life-loss resets) and
records, for every visited state:

  states      [N, 84, 84, 4] uint8   stacked frames
  log_probs   [N, A] float32         the policy's log pi(.|s)
  actions     [N] int32              the action taken
  episode_ids [N] int32              a global id per game, numbered in order
                                     of the games' starts
  steps       [N] int32              index of the state within its game

States are stored time-major across environments (all environments at step
t, then t+1, ...). They go into compressed shards `shard-XXXXX.npz` of
`shard_size` states (written atomically) plus `meta.json`; an interrupted
collection is simply restarted. Collection is deterministic given the seed
(environment seeds and a numpy sampling RNG), on the same machine and TF
build.

`split_by_episodes` makes a train/validation/test split in which no game
contributes to two sides (no temporal overlap between them).
"""

from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from distillation import atari_env
from sobolev import rollouts

# `policy(obs [B, 84, 84, 4] uint8) -> log-probabilities [B, A]`.
LogPolicy = Callable[[tf.Tensor], tf.Tensor]
META_FILE = rollouts.META_FILE
KEYS = ("states", "log_probs", "actions", "episode_ids", "steps")

# The same functions as the core's, under the names the Figure 4 code uses.
read_meta = rollouts.read_meta
check_fraction = rollouts.check_fraction
split_by_episodes = rollouts.split_by_episodes


def collect(log_policy: LogPolicy,
            game: str,
            directory: str,
            num_states: int = 100_000,
            seed: int = 0,
            num_envs: int = 8,
            shard_size: int = 10_000,
            extra_meta: Optional[Dict] = None,
            progress: Optional[Callable[[int], None]] = None,
            overwrite: bool = False) -> Dict:
  """Records `num_states` states of `log_policy` playing `game`.

  Args:
    log_policy: maps uint8 observations `[B, 84, 84, 4]` to log-probabilities
      `[B, A]` (e.g. `teacher.log_policy`); it is run in a `tf.function`.
    game: 'Pong', 'Breakout' or 'SpaceInvaders'.
    directory: output directory (created).
    num_states: number of states to record (>= 1).
    seed: seeds the games (`seed + i` for game slot i) and action sampling.
    num_envs: parallel games.
    shard_size: states per shard file.
    extra_meta: added to `meta.json` (e.g. the teacher's score).
    progress: optional callback with the number of states recorded so far.
    overwrite: replace a complete collection in `directory` (otherwise
      `sobolev.rollouts.CollectionExistsError`); the old one stays usable
      until the new one is complete.

  Returns:
    The metadata dict written to `meta.json` (`sobolev.rollouts.collect`'s,
    with `game`).

  Raises:
    ValueError: for an unknown game or non-positive sizes.
    sobolev.rollouts.CollectionExistsError: see `overwrite`.
  """
  atari_env.check_game(game)
  for name, value in (("num_states", num_states), ("num_envs", num_envs),
                      ("shard_size", shard_size)):
    rollouts.check_count(name, value)
  with atari_env.VectorAtari(game, num_envs, seed=seed) as env:
    return rollouts.collect(
        env, tf.function(log_policy), directory, num_states, seed=seed,
        shard_size=shard_size, output_key="log_probs",
        extra_meta=dict(extra_meta or {}, game=game), progress=progress,
        overwrite=overwrite)


def load(directory: str) -> Dict[str, np.ndarray]:
  """Loads a complete collection (all shards concatenated).

  Args:
    directory: a directory written by `collect`.

  Returns:
    A dict with the arrays of `KEYS`.

  Raises:
    ValueError: if the directory holds no complete collection.
  """
  return rollouts.load(directory, keys=KEYS)
