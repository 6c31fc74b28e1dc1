"""Recording teacher rollouts and splitting them by episode.

`collect` runs a policy in parallel games (actions sampled from the policy,
full games without life-loss resets) and records, for every visited state:

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

import io
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from distillation import atari_env
from sobolev.experiment import files

# `policy(obs [B, 84, 84, 4] uint8) -> log-probabilities [B, A]`.
LogPolicy = Callable[[tf.Tensor], tf.Tensor]
META_FILE = "meta.json"
KEYS = ("states", "log_probs", "actions", "episode_ids", "steps")


def _shard_name(index: int) -> str:
  return f"shard-{index:05d}.npz"


def _write_shard(directory: str, index: int,
                 arrays: Dict[str, np.ndarray]) -> str:
  name = _shard_name(index)
  buf = io.BytesIO()
  np.savez_compressed(buf, **arrays)
  files.atomic_write_bytes(os.path.join(directory, name), buf.getvalue())
  return name


def collect(log_policy: LogPolicy,
            game: str,
            directory: str,
            num_states: int = 100_000,
            seed: int = 0,
            num_envs: int = 8,
            shard_size: int = 10_000,
            extra_meta: Optional[Dict] = None,
            progress: Optional[Callable[[int], None]] = None) -> Dict:
  """Records `num_states` states of `log_policy` playing `game`.

  Args:
    log_policy: maps uint8 observations `[B, 84, 84, 4]` to log-probabilities
      `[B, A]` (e.g. `teacher.log_policy`).
    game: 'Pong', 'Breakout' or 'SpaceInvaders'.
    directory: output directory (created); existing shards are overwritten.
    num_states: number of states to record (>= 1).
    seed: seeds the games (`seed + i` for game slot i) and action sampling.
    num_envs: parallel games.
    shard_size: states per shard file.
    extra_meta: added to `meta.json` (e.g. the teacher's score).
    progress: optional callback with the number of states recorded so far.

  Returns:
    The metadata dict written to `meta.json`.

  Raises:
    ValueError: for an unknown game or non-positive sizes.
  """
  atari_env.check_game(game)
  for name, value in (("num_states", num_states), ("num_envs", num_envs),
                      ("shard_size", shard_size)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
  os.makedirs(directory, exist_ok=True)
  meta_path = os.path.join(directory, META_FILE)
  if os.path.exists(meta_path):
    os.remove(meta_path)  # Marks the directory incomplete while we write.
  rng = np.random.default_rng(seed)
  policy_fn = tf.function(log_policy)
  buffers = {k: [] for k in KEYS}
  shards = []
  recorded = 0  # States taken (written or buffered).
  episode_of_env = np.arange(num_envs, dtype=np.int32)
  next_episode = num_envs
  step_of_env = np.zeros(num_envs, np.int32)
  num_actions = None

  def flush(count: int) -> None:
    """Writes the first `count` buffered states as one shard."""
    arrays = {k: np.concatenate(v, axis=0) for k, v in buffers.items()}
    shards.append(_write_shard(directory, len(shards),
                               {k: v[:count] for k, v in arrays.items()}))
    for k, v in arrays.items():
      buffers[k] = [v[count:]]

  with atari_env.VectorAtari(game, num_envs, seed=seed,
                             clip_rewards=False) as env:
    obs = env.reset()
    buffered = 0
    while recorded < num_states:
      log_probs = policy_fn(tf.constant(obs)).numpy().astype(np.float32)
      num_actions = log_probs.shape[-1]
      probs = np.exp(log_probs.astype(np.float64))
      probs /= probs.sum(axis=-1, keepdims=True)
      u = rng.random((num_envs, 1))
      actions = np.minimum((probs.cumsum(axis=-1) < u).sum(axis=-1),
                           num_actions - 1).astype(np.int32)
      take = min(num_envs, num_states - recorded)
      for key, value in (("states", obs), ("log_probs", log_probs),
                         ("actions", actions),
                         ("episode_ids", episode_of_env),
                         ("steps", step_of_env)):
        buffers[key].append(np.array(value[:take]))
      recorded += take
      buffered += take
      while buffered >= shard_size:
        flush(shard_size)
        buffered -= shard_size
      if progress is not None:
        progress(recorded)
      if recorded >= num_states:
        break
      result = env.step(actions)
      obs = result.obs
      step_of_env = step_of_env + 1
      episode_of_env = episode_of_env.copy()
      for env_id in np.flatnonzero(result.game_over):
        episode_of_env[env_id] = next_episode
        next_episode += 1
        step_of_env[env_id] = 0
    if buffered:
      flush(buffered)
  meta = dict(extra_meta or {}, game=game, num_states=num_states, seed=seed,
              num_envs=num_envs, shard_size=shard_size,
              num_actions=int(num_actions), shards=shards)
  files.write_json(meta_path, meta)  # Written last: marks it complete.
  return meta


def read_meta(directory: str) -> Optional[Dict]:
  """`meta.json` of a complete collection, or None if there is none."""
  return files.read_json(os.path.join(directory, META_FILE))


def load(directory: str) -> Dict[str, np.ndarray]:
  """Loads a complete collection (all shards concatenated).

  Args:
    directory: a directory written by `collect`.

  Returns:
    A dict with the arrays of `KEYS`.

  Raises:
    ValueError: if the directory holds no complete collection.
  """
  meta = read_meta(directory)
  if meta is None:
    raise ValueError(f"No complete rollout collection in {directory!r} "
                     f"(missing {META_FILE}).")
  parts = {k: [] for k in KEYS}
  for name in meta["shards"]:
    with np.load(os.path.join(directory, name)) as shard:
      for k in KEYS:
        parts[k].append(shard[k])
  return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def check_fraction(train_fraction: float, name: str = "train_fraction"
                   ) -> float:
  """Returns `train_fraction` as a float; raises unless it is in (0, 1)."""
  try:
    value = float(train_fraction)
  except (TypeError, ValueError):
    raise ValueError(f"`{name}` must be a number in (0, 1), got "
                     f"{train_fraction!r}.") from None
  if not 0.0 < value < 1.0:
    raise ValueError(f"`{name}` must be in (0, 1), got {train_fraction!r}.")
  return value


def split_by_episodes(episode_ids: np.ndarray,
                      train_fraction: float,
                      validation_fraction: float = 0.0,
                      seed: int = 0
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Splits state indices by whole games.

  Games are shuffled (with `seed`) and assigned in that order: first to the
  training set until it holds `round(train_fraction * N)` states, then to
  the validation set until it holds `round(validation_fraction * N)`
  states; all remaining games form the test set. The game that crosses a
  boundary contributes its first states to the earlier set and its
  remaining states are dropped, so that no game is on two sides (small
  training fractions can be smaller than one game).

  Args:
    episode_ids: `[N]` game id of every state.
    train_fraction: in (0, 1).
    validation_fraction: in [0, 1 - train_fraction).
    seed: seed of the game shuffle.

  Returns:
    `(train, validation, test)` sorted index arrays (validation may be
    empty).

  Raises:
    ValueError: for fractions out of range or if the test set would be
      empty.
  """
  train_fraction = check_fraction(train_fraction)
  validation_fraction = float(validation_fraction)
  if not 0.0 <= validation_fraction < 1.0 - train_fraction:
    raise ValueError(
        f"`validation_fraction` must be in [0, 1 - train_fraction) = "
        f"[0, {1.0 - train_fraction}), got {validation_fraction}.")
  episode_ids = np.asarray(episode_ids)
  if episode_ids.ndim != 1 or episode_ids.size == 0:
    raise ValueError("`episode_ids` must be a non-empty vector.")
  n = episode_ids.size
  targets = [max(1, int(round(train_fraction * n))),
             int(round(validation_fraction * n))]
  unique = np.unique(episode_ids)
  order = np.random.default_rng(seed).permutation(unique)
  sides = [[], [], []]
  side = 0
  filled = 0
  for ep in order:
    idx = np.flatnonzero(episode_ids == ep)
    while side < 2 and filled >= targets[side]:
      side, filled = side + 1, 0
    if side < 2:
      need = targets[side] - filled
      sides[side].append(idx[:need])  # idx is in time order.
      filled += min(need, idx.size)
    else:
      sides[2].append(idx)
  out = [np.sort(np.concatenate(s)) if s else np.zeros([0], np.int64)
         for s in sides]
  if out[2].size == 0:
    raise ValueError(
        f"No game is left for the test set ({unique.size} games, "
        f"train_fraction={train_fraction}, validation_fraction="
        f"{validation_fraction}); record more states or lower the fractions.")
  return out[0], out[1], out[2]
