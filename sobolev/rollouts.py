"""Playing a policy in a vector environment: collection and evaluation.

One play loop (`Player`) serves recording rollouts (`collect`), measuring
returns (`evaluate`) and the actor of an on-policy learner.

Environments: any vector environment with the gymnasium 1.x API,
`reset(seed=) -> (obs [B, ...], info)` and `step(actions [B]) -> (obs,
rewards [B], terminated [B], truncated [B], info)`, that resets finished
sub-environments itself (e.g. `gymnasium.vector.SyncVectorEnv`, ale-py's
`AtariVectorEnv`; neither is imported here), in either autoreset mode
(`env.metadata['autoreset_mode']`, or given):

* 'NextStep' (gymnasium's default): after an episode ends, the next `step`
  ignores its action and returns the first observation of a new episode.
  That step is not a decision: its row has `valid=False` and is neither
  recorded nor counted.
* 'SameStep': the observation returned with `terminated | truncated` is
  already the first one of the new episode.

Policies: any callable `policy(observations [B, ...]) -> logits [B, A]` (or
log-probabilities), or `-> (logits, extras)` with `extras` a mapping of name
to `[B, ...]` arrays recorded with each state (e.g. values). NumPy goes in,
TensorFlow or NumPy may come out (wrap TF policies in `tf.function`).
Actions are chosen by `policies.ActionSampler`.

Collections (`collect`) are deterministic given the seed (sub-environment
`i` is reset with `seed + i`, actions drawn from
`np.random.default_rng(seed)`) on one machine and TensorFlow build. They
hold, for the first `num_states` decision states, by time then
sub-environment:

  states        [N, ...]   the observations (dtype as the environment's)
  <output_key>  [N, A]     float32, the policy's logits or log-probabilities
  actions       [N]        int32, the action taken
  episode_ids   [N]        int32, a global id per episode, numbered in the
                           order the episodes start (the first B are 0..B-1)
  steps         [N]        int32, index of the state within its episode
  <extra name>  [N, ...]   each extra output of the policy

in compressed shards `shard-XXXXX.npz` written atomically, plus `meta.json`
last (without it, `load` refuses the directory). A collection is built in a
hidden sibling folder (`.<name>.collecting-<pid>-*`) and moved in when
complete, so a complete collection stays until its replacement is complete
(`overwrite=True`). An unreadable shard is a `CorruptShardError` naming it.
`split_by_episodes` splits states into sets that share no episode.
"""

import dataclasses
import errno
import glob
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

from sobolev import policies

# `policy(observations [B, ...]) -> logits [B, A]` or `(logits, extras)`.
Policy = Callable[[np.ndarray], Any]
NEXT_STEP = "NextStep"
SAME_STEP = "SameStep"
META_FILE = "meta.json"


class CorruptShardError(OSError):
  """A shard of a collection is missing or cannot be read.

  An `OSError` whose `filename` is the shard and whose `strerror` says what
  to do (the experiment CLIs print it as one line).
  """


def _atomic_write(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically (temp file + fsync + rename); the
  harness has its own copy (`sobolev.experiment.files`)."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory,
                             prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600.
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _json_value(obj: Any) -> Any:
  """NumPy scalars and arrays as Python values, for `json.dumps`."""
  if isinstance(obj, (np.generic, np.ndarray)):
    return obj.tolist()
  raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class CollectionExistsError(FileExistsError):
  """`collect` into a directory that holds a complete collection, without
  `overwrite=True`."""


@dataclasses.dataclass
class Episode:
  """An episode that ended in a step.

  Attributes:
    env_index: the sub-environment that played it.
    episode_id: its global id (see `Player.episode_ids`).
    episode_return: the sum of its rewards (as the environment gave them).
    length: its number of decision steps.
  """
  env_index: int
  episode_id: int
  episode_return: float
  length: int


@dataclasses.dataclass
class Transition:
  """One batched step of `Player.step` (leading axis B everywhere).

  Attributes:
    observations: `[B, ...]` the states the actions were chosen in.
    outputs: `[B, A]` float32, the policy's logits (or log-probabilities).
    extras: the policy's extra outputs, name -> `[B, ...]` array.
    actions: `[B]` int32, the actions sent to the environment.
    rewards: `[B]` float, the rewards of this step (environment's values).
    terminated, truncated: `[B]` bool.
    valid: `[B]` bool; False where the row was not a decision (the reset
      step of the 'NextStep' autoreset mode, whose action was ignored).
    episode_ids: `[B]` int32, the episode of each state.
    steps: `[B]` int32, index of each state within its episode.
    info: the environment's info dict of this step.
    finished: the episodes that ended in this step.
  """
  observations: np.ndarray
  outputs: np.ndarray
  extras: Dict[str, np.ndarray]
  actions: np.ndarray
  rewards: np.ndarray
  terminated: np.ndarray
  truncated: np.ndarray
  valid: np.ndarray
  episode_ids: np.ndarray
  steps: np.ndarray
  info: Dict[str, Any]
  finished: List[Episode]


def get_autoreset_mode(env: Any, mode: Optional[str] = None) -> str:
  """`mode` ('NextStep' or 'SameStep'), or `env.metadata['autoreset_mode']`.

  Raises:
    ValueError: if the mode is missing, 'Disabled' or unknown.
  """
  if mode is None:
    mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode")
    if mode is None:
      raise ValueError(
          "The environment has no metadata['autoreset_mode']; pass "
          "`autoreset_mode='NextStep'` or `'SameStep'`.")
  value = getattr(mode, "value", mode)  # gymnasium's AutoresetMode enum.
  if value not in (NEXT_STEP, SAME_STEP):
    raise ValueError(f"`autoreset_mode` must be {NEXT_STEP!r} or "
                     f"{SAME_STEP!r} (the environment resets finished "
                     f"episodes itself), got {mode!r}.")
  return value


class Player:
  """Plays a policy in a vector environment, one batched step at a time.

  Keeps the current observations and the episode bookkeeping. Episode ids
  are global: the B first episodes are 0..B-1, then each new episode takes
  the next id when it starts (by sub-environment within a step).

  Example:
    player = rollouts.Player(env, policy, policies.ActionSampler(seed=0))
    player.reset(seed=0)
    for _ in range(100):
      t = player.step()          # a Transition
      for episode in t.finished:
        print(episode.episode_return)

  Attributes:
    env, policy, sampler: as given to `__init__` (`sampler` defaulted).
    autoreset_mode: 'NextStep' or 'SameStep'.
    observations: `[B, ...]` the current observations (after `reset`).
    episode_ids: `[B]` int32, the episode each sub-environment is in.
    steps: `[B]` int32, index of `observations` within its episode.
  """

  def __init__(self, env: Any, policy: Policy,
               sampler: Optional[policies.ActionSampler] = None,
               autoreset_mode: Optional[str] = None):
    """Creates a player (call `reset` before `step`).

    Args:
      env, policy: a vector environment and a policy (module docstring).
      sampler: chooses the actions (default `ActionSampler(seed=0)`).
      autoreset_mode: see `get_autoreset_mode` (default: the env's).

    Raises:
      TypeError: if `env` lacks `reset`/`step`, `policy` is not callable or
        `sampler` is not an `ActionSampler`.
      ValueError: for a missing or unsupported autoreset mode.
    """
    if not (callable(getattr(env, "reset", None)) and
            callable(getattr(env, "step", None))):
      raise TypeError("`env` must be a vector environment with reset() and "
                      f"step() methods, got {type(env).__name__}.")
    if not callable(policy):
      raise TypeError(f"`policy` must be callable, got "
                      f"{type(policy).__name__}.")
    sampler = policies.ActionSampler(seed=0) if sampler is None else sampler
    if not isinstance(sampler, policies.ActionSampler):
      raise TypeError("`sampler` must be a policies.ActionSampler, got "
                      f"{type(sampler).__name__}.")
    self.env = env
    self.policy = policy
    self.sampler = sampler
    self.autoreset_mode = get_autoreset_mode(env, autoreset_mode)
    self.observations: Optional[np.ndarray] = None
    self._start_bookkeeping(0)

  def _start_bookkeeping(self, b: int) -> None:
    """Episode ids 0..B-1 at step 0, with no return yet."""
    self.episode_ids = np.arange(b, dtype=np.int32)
    self._next_id = b
    self.steps = np.zeros(b, np.int32)
    self._returns = np.zeros(b, np.float64)
    self._lengths = np.zeros(b, np.int64)
    self._pending_reset = np.zeros(b, bool)

  @property
  def num_envs(self) -> int:
    """B, the number of sub-environments (known after `reset`)."""
    return int(self.episode_ids.shape[0])

  def reset(self, seed: Optional[int] = None) -> np.ndarray:
    """`env.reset(seed=seed)` and the bookkeeping; returns observations.

    Raises:
      TypeError: if `env.reset` does not return `(observations, info)`.
    """
    out = self.env.reset(seed=seed)
    if not (isinstance(out, tuple) and len(out) == 2):
      raise TypeError("`env.reset(seed=...)` must return (observations, "
                      "info), as gymnasium vector environments do.")
    self.observations = np.asarray(out[0])
    self._start_bookkeeping(self.observations.shape[0])
    return self.observations

  def act(self, observations: np.ndarray
          ) -> Tuple[np.ndarray, Dict[str, np.ndarray], np.ndarray]:
    """`(outputs [B, A] float32, extras, actions [B] int32)` for `[B, ...]`.

    Raises:
      TypeError: if the policy's extras are not a mapping.
      ValueError: if the outputs are not `[B, A]` or an extra output does
        not have B rows.
    """
    out = self.policy(observations)
    extras: Mapping[str, Any] = {}
    if isinstance(out, tuple):
      if len(out) != 2 or not isinstance(out[1], Mapping):
        raise TypeError("`policy` must return logits [B, A] or (logits, "
                        "extras) with extras a mapping of name to array.")
      out, extras = out
    outputs = np.asarray(out).astype(np.float32)  # Eager tensors too.
    b = observations.shape[0]
    if outputs.ndim != 2 or outputs.shape[0] != b:
      raise ValueError(f"`policy` must return logits [B={b}, A], got shape "
                       f"{outputs.shape}.")
    extras = {name: np.asarray(v) for name, v in extras.items()}
    for name, value in extras.items():
      if value.ndim < 1 or value.shape[0] != b:
        raise ValueError(f"The policy's extra output {name!r} must have "
                         f"{b} rows, got shape {value.shape}.")
    return outputs, extras, self.sampler(outputs)

  def step(self) -> Transition:
    """Plays one step in every sub-environment; returns the `Transition`.

    Raises:
      RuntimeError: before `reset`.
      ValueError: if the environment returns arrays of the wrong length.
    """
    if self.observations is None:
      raise RuntimeError("Call `Player.reset` before `step`.")
    obs = self.observations
    outputs, extras, actions = self.act(obs)
    next_obs, rewards, terminated, truncated, info = self.env.step(actions)
    next_obs = np.asarray(next_obs)
    rewards = np.asarray(rewards)
    terminated = np.asarray(terminated, bool)
    truncated = np.asarray(truncated, bool)
    b = self.num_envs
    for name, value in (("rewards", rewards), ("terminated", terminated),
                        ("truncated", truncated)):
      if value.shape != (b,):
        raise ValueError(f"`env.step` returned {name} of shape "
                         f"{value.shape}, expected ({b},).")
    valid = ~self._pending_reset
    transition_ids = self.episode_ids.copy()
    transition_steps = self.steps.copy()
    self._returns[valid] += rewards[valid]
    self._lengths[valid] += 1
    done = (terminated | truncated) & valid
    finished = [Episode(int(i), int(self.episode_ids[i]),
                        float(self._returns[i]), int(self._lengths[i]))
                for i in np.flatnonzero(done)]
    self.steps = self.steps + 1
    if self.autoreset_mode == SAME_STEP:
      starting = done
    else:  # NEXT_STEP: rows reset in this step start a new episode now.
      starting = self._pending_reset
      self._pending_reset = done
    for i in np.flatnonzero(starting):
      self.episode_ids[i] = self._next_id
      self._next_id += 1
      self.steps[i] = 0
    self._returns[done] = 0.0
    self._lengths[done] = 0
    self.observations = next_obs
    return Transition(
        observations=obs, outputs=outputs, extras=extras, actions=actions,
        rewards=rewards, terminated=terminated, truncated=truncated,
        valid=valid, episode_ids=transition_ids, steps=transition_steps,
        info=dict(info or {}), finished=finished)


def check_count(name: str, value: Any) -> int:
  """`value` as an int; a `ValueError` naming `name` unless an int >= 1."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, (int, np.integer)) or value < 1:
    raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
  return int(value)


def evaluate(env: Any, policy: Policy, episodes: int, seed: int = 0,
             greedy: bool = False,
             autoreset_mode: Optional[str] = None,
             progress: Optional[Callable[[int, float], None]] = None
             ) -> List[float]:
  """Plays `episodes` episodes and returns their returns.

  Each of the B sub-environments plays a fixed quota of episodes
  (`episodes // B`, one more for the first `episodes % B`), so short
  episodes are not over-represented; it then keeps stepping (its further
  episodes are ignored) until every quota is met.

  Args:
    env, policy, autoreset_mode: as for `Player`.
    episodes: number of episodes (>= 1).
    seed: seeds the environment reset and `ActionSampler(seed, greedy)`.
    greedy: take the most likely action instead of sampling.
    progress: optional callback `(episode_index, return)` per counted
      episode, in the order they finish.

  Returns:
    The `episodes` returns (sums of the environment's rewards), in order of
    (sub-environment, episode).

  Raises:
    ValueError: for `episodes < 1` or an unsupported environment.
  """
  episodes = check_count("episodes", episodes)
  player = Player(env, policy, policies.ActionSampler(seed, greedy),
                  autoreset_mode)
  player.reset(seed=seed)
  b = player.num_envs
  quota = [episodes // b + (1 if i < episodes % b else 0) for i in range(b)]
  results: List[List[float]] = [[] for _ in range(b)]
  counted = 0
  while any(len(r) < q for r, q in zip(results, quota)):
    for episode in player.step().finished:
      if len(results[episode.env_index]) < quota[episode.env_index]:
        results[episode.env_index].append(episode.episode_return)
        if progress is not None:
          progress(counted, episode.episode_return)
        counted += 1
  return [ret for env_results in results for ret in env_results]


def _generation(meta: Optional[Mapping[str, Any]]) -> int:
  """The shard-name generation for a collection replacing `meta`'s (names
  differ from the old collection's, readable until the new `meta.json`)."""
  if meta is None:
    return 0
  found = [int(m.group(1)) for m in (re.match(r"shard-g(\d+)-", name)
                                     for name in meta.get("shards", ())) if m]
  return max(found, default=0) + 1


def _remove_stale_builds(directory: str) -> None:
  """Removes build folders of `collect`s whose process is gone (kill -9)."""
  pattern = os.path.join(os.path.dirname(directory),
                         f".{os.path.basename(directory)}.collecting-*")
  for path in glob.glob(pattern):
    m = re.search(r"\.collecting-(\d+)-", path)
    if m is None:
      continue
    try:
      os.kill(int(m.group(1)), 0)  # Succeeds while that process runs.
    except ProcessLookupError:
      shutil.rmtree(path, ignore_errors=True)
    except PermissionError:
      pass  # Another user's live process.


def collect(env: Any, policy: Policy, directory: str, num_states: int,
            seed: int = 0, shard_size: int = 10_000,
            output_key: str = "logits",
            extra_meta: Optional[Dict[str, Any]] = None,
            autoreset_mode: Optional[str] = None,
            progress: Optional[Callable[[int], None]] = None,
            overwrite: bool = False) -> Dict[str, Any]:
  """Records the first `num_states` decision states of `policy` in `env`.

  Keeps the valid rows of a `Player`'s transitions (arrays and build folder:
  module docstring); once the new `meta.json` is in place, the replaced and
  stale shards are removed (other files in `directory` are kept).

  Args:
    env, policy, autoreset_mode: as for `Player`.
    directory: output directory (created).
    num_states: number of states to record (>= 1).
    seed: seeds the environment reset and `ActionSampler(seed)`.
    shard_size: states per shard file (>= 1).
    output_key: name of the policy's output in the shards (e.g.
      'log_probs'); must differ from the other keys.
    extra_meta: added to `meta.json`.
    progress: optional callback with the number of states recorded so far.
    overwrite: replace a complete collection already in `directory`
      (otherwise `CollectionExistsError`).

  Returns:
    The dict written to `meta.json`: `extra_meta` and `num_states`, `seed`,
    `num_envs`, `shard_size`, `num_actions`, `keys` (the arrays' names) and
    `shards` (file names in order).

  Raises:
    ValueError: for non-positive sizes, a clashing key or an unsupported
      environment.
    CollectionExistsError: if `directory` holds a complete collection and
      `overwrite` is False (before any work).
  """
  num_states = check_count("num_states", num_states)
  shard_size = check_count("shard_size", shard_size)
  base_keys = ("states", "actions", "episode_ids", "steps")
  if not isinstance(output_key, str) or output_key in base_keys:
    raise ValueError(f"`output_key` must be a str other than {base_keys}, "
                     f"got {output_key!r}.")
  directory = os.path.abspath(directory)
  old = read_meta(directory)
  if old is not None and not overwrite:
    raise CollectionExistsError(
        errno.EEXIST, "holds a complete rollout collection (pass "
        "overwrite=True to replace it)", directory)
  player = Player(env, policy, policies.ActionSampler(seed), autoreset_mode)
  os.makedirs(directory, exist_ok=True)
  _remove_stale_builds(directory)
  build = tempfile.mkdtemp(
      dir=os.path.dirname(directory),
      prefix=f".{os.path.basename(directory)}.collecting-{os.getpid()}-")
  try:
    meta = _record(player, build, num_states, seed, shard_size, output_key,
                   base_keys, extra_meta, progress, _generation(old))
    _move_in(build, directory, meta)
  finally:
    shutil.rmtree(build, ignore_errors=True)
  return meta


def _move_in(build: str, directory: str, meta: Dict[str, Any]) -> None:
  """Moves the new shards in, then `meta.json` (the atomic switch), then
  removes the old and stale shards."""
  for name in meta["shards"]:
    os.replace(os.path.join(build, name), os.path.join(directory, name))
  _atomic_write(os.path.join(directory, META_FILE), (json.dumps(
      meta, indent=2, sort_keys=True, default=_json_value) + "\n").encode())
  keep = set(meta["shards"])
  for path in glob.glob(os.path.join(directory, "shard-*.npz")):
    if os.path.basename(path) not in keep:
      os.remove(path)


def _record(player: "Player", directory: str, num_states: int, seed: int,
            shard_size: int, output_key: str, base_keys: Sequence[str],
            extra_meta: Optional[Dict[str, Any]],
            progress: Optional[Callable[[int], None]],
            generation: int) -> Dict[str, Any]:
  """Plays and writes the shards into `directory`; returns the meta dict."""
  player.reset(seed=seed)
  buffers: Dict[str, List[np.ndarray]] = {}
  keys: List[str] = []
  shards: List[str] = []
  recorded = buffered = 0
  num_actions = None

  def flush(count: int) -> None:
    """Writes the first `count` buffered states as one shard."""
    arrays = {k: np.concatenate(buffers[k], axis=0) for k in keys}
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: v[:count] for k, v in arrays.items()})
    prefix = f"shard-g{generation}-" if generation else "shard-"
    shards.append(f"{prefix}{len(shards):05d}.npz")
    _atomic_write(os.path.join(directory, shards[-1]), buf.getvalue())
    for k, v in arrays.items():
      buffers[k] = [v[count:]]

  while recorded < num_states:
    t = player.step()
    num_actions = t.outputs.shape[1]
    rows = np.flatnonzero(t.valid)[:num_states - recorded]
    record = {"states": t.observations, output_key: t.outputs,
              "actions": t.actions, "episode_ids": t.episode_ids,
              "steps": t.steps, **t.extras}
    if not keys:
      keys = list(record)
      if len(keys) != 5 + len(t.extras):
        raise ValueError(f"The policy's extra outputs {sorted(t.extras)} "
                         f"clash with the recorded keys "
                         f"{['states', output_key, *base_keys[1:]]}.")
      buffers = {k: [] for k in keys}
    for key in keys:
      buffers[key].append(np.array(record[key][rows]))
    recorded += rows.size
    buffered += rows.size
    while buffered >= shard_size:
      flush(shard_size)
      buffered -= shard_size
    if progress is not None and rows.size:
      progress(recorded)
  if buffered:
    flush(buffered)
  return dict(extra_meta or {}, num_states=num_states, seed=seed,
              num_envs=player.num_envs, shard_size=shard_size,
              num_actions=int(num_actions), keys=keys, shards=shards)


def read_meta(directory: str) -> Optional[Dict[str, Any]]:
  """`meta.json` of a complete collection, or None if there is none."""
  path = os.path.join(directory, META_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except ValueError as e:
    raise CorruptShardError(
        errno.EINVAL, f"not valid JSON ({e}); collect the rollouts again "
        f"(delete {directory} first)", path) from e


def load(directory: str, keys: Optional[Sequence[str]] = None
         ) -> Dict[str, np.ndarray]:
  """The arrays (N rows each) of the collection `collect` wrote in `directory`.

  Args:
    directory: a directory written by `collect`.
    keys: the arrays to load; default `meta['keys']` (all of them).

  Raises:
    ValueError: if the directory holds no complete collection, or `keys`
      is not given and `meta.json` does not list them.
    CorruptShardError: if a shard is missing, truncated or garbled, or
      lacks one of `keys` (naming it).
  """
  meta = read_meta(directory)
  if meta is None:
    raise ValueError(f"No complete rollout collection in {directory!r} "
                     f"(missing {META_FILE}).")
  if keys is None:
    keys = meta.get("keys")
    if not keys:
      raise ValueError(f"{META_FILE} in {directory!r} lists no `keys`; pass "
                       "`keys=` to `load`.")
  parts: Dict[str, List[np.ndarray]] = {k: [] for k in keys}
  for name in meta["shards"]:
    path = os.path.join(directory, name)
    try:
      with np.load(path) as shard:
        for k in keys:
          parts[k].append(shard[k])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
            zlib.error) as e:
      what = (f"{type(e).__name__}: {e.strerror}" if isinstance(e, OSError)
              and e.strerror else f"{type(e).__name__}: {e}")
      raise CorruptShardError(
          errno.EIO, f"not a readable rollout shard ({what}); collect the "
          f"rollouts again (delete {directory} first)", path) from e
  return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def check_fraction(train_fraction: Any) -> float:
  """`train_fraction` as a float; a `ValueError` naming it unless in (0, 1)."""
  try:
    value = float(train_fraction)
  except (TypeError, ValueError):
    raise ValueError("`train_fraction` must be a number in (0, 1), got "
                     f"{train_fraction!r}.") from None
  if not 0.0 < value < 1.0:
    raise ValueError(f"`train_fraction` must be in (0, 1), got "
                     f"{train_fraction!r}.")
  return value


def split_by_episodes(episode_ids: np.ndarray,
                      train_fraction: float,
                      validation_fraction: float = 0.0,
                      seed: int = 0
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Splits state indices by whole episodes.

  Shuffled episodes (with `seed`) fill the training set up to
  `round(train_fraction * N)` states (at least 1), then the validation set
  up to `round(validation_fraction * N)`; the rest is the test set. An
  episode crossing a boundary gives its first states to the earlier set and
  its others are dropped, so no episode is on two sides.

  Args:
    episode_ids: `[N]` episode id of every state (states of an episode in
      time order).
    train_fraction: in (0, 1).
    validation_fraction: in [0, 1 - train_fraction).
    seed: seed of the episode shuffle.

  Returns:
    `(train, validation, test)` sorted index arrays (validation may be
    empty).

  Raises:
    ValueError: for fractions out of range, empty or non-vector
      `episode_ids`, or if the test set would be empty.
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
  # The states of the shuffled episodes in a row, each episode in time order.
  parts = [np.flatnonzero(episode_ids == ep) for ep in order]
  stream = np.concatenate(parts)
  starts = np.cumsum([0] + [p.size for p in parts])  # Episode starts, and N.
  out, begin = [], 0
  for target in targets:
    out.append(np.sort(stream[begin:begin + target]))
    begin = starts[np.searchsorted(starts, min(begin + target, n))]
  out.append(np.sort(stream[begin:]))
  if out[2].size == 0:
    raise ValueError(
        f"No episode is left for the test set ({unique.size} episodes, "
        f"train_fraction={train_fraction}, validation_fraction="
        f"{validation_fraction}); record more states or lower the fractions.")
  return out[0], out[1], out[2]
