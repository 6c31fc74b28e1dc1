"""Tests of the core play loop, collection, evaluation and episode split.

The environments are gymnasium vector environments, not Atari: a tiny
`Chain` environment with hand-checkable episodes, and CartPole-v1.
"""

import os
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import gymnasium
import numpy as np
import tensorflow as tf

from sobolev import policies
from sobolev import rollouts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Chain(gymnasium.Env):
  """Episodes of exactly `length` steps; reward (t + 1) * (action + 1).

  The observation is `[t, length]` (t = steps taken in the episode), so a
  recorded state tells its position; the reward of the step taken at t is
  `(t + 1) * (action + 1)`, and an episode of constant action a returns
  `(a + 1) * length * (length + 1) / 2`.
  """

  observation_space = gymnasium.spaces.Box(0.0, 100.0, (2,), np.float32)
  action_space = gymnasium.spaces.Discrete(3)

  def __init__(self, length: int):
    self.length = length
    self.t = 0

  def _obs(self):
    return np.array([self.t, self.length], np.float32)

  def reset(self, seed=None, options=None):
    super().reset(seed=seed)
    self.t = 0
    return self._obs(), {}

  def step(self, action):
    reward = float((self.t + 1) * (int(action) + 1))
    self.t += 1
    return self._obs(), reward, self.t >= self.length, False, {}


def chain_env(lengths, mode="NextStep"):
  return gymnasium.vector.SyncVectorEnv(
      [lambda n=n: Chain(n) for n in lengths], autoreset_mode=mode)


def constant_policy(action: int, num_actions: int = 3):
  """Logits that make `action` (almost) certain, for any observations."""
  def policy(obs):
    logits = np.full([obs.shape[0], num_actions], -30.0, np.float32)
    logits[:, action] = 0.0
    return logits
  return policy


def linear_policy(seed: int = 0, num_inputs: int = 4, num_actions: int = 2):
  """A fixed random linear policy returning log-probs and a value extra."""
  w = tf.constant(np.random.default_rng(seed).normal(
      size=(num_inputs, num_actions)), tf.float32)

  def policy(obs):
    obs = tf.cast(obs, tf.float32)
    return (tf.nn.log_softmax(tf.matmul(obs, w)),
            {"value": tf.reduce_sum(obs, axis=1)})
  return policy


class PlayerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("NextStep", "SameStep")
  def test_bookkeeping_hand_computed(self, mode):
    # Episodes of 2 and 3 steps; action 2 always: rewards 3, 6, 9, ...
    env = chain_env([2, 3], mode)
    player = rollouts.Player(env, constant_policy(2),
                             policies.ActionSampler(greedy=True))
    player.reset(seed=0)
    rows = []
    finished = []
    for _ in range(7):
      t = player.step()
      self.assertAllEqual(t.actions, [2, 2])
      rows.append((t.valid.tolist(), t.episode_ids.tolist(),
                   t.steps.tolist(), t.observations[:, 0].tolist()))
      finished += [(e.env_index, e.episode_id, e.episode_return, e.length)
                   for e in t.finished]
    if mode == "SameStep":
      # Env 0 ends after steps 2, 4, 6; env 1 after steps 3, 6.
      self.assertEqual([r[1] for r in rows],
                       [[0, 1], [0, 1], [2, 1], [2, 3], [4, 3], [4, 3],
                        [5, 6]])
      self.assertEqual([r[2] for r in rows],
                       [[0, 0], [1, 1], [0, 2], [1, 0], [0, 1], [1, 2],
                        [0, 0]])
      self.assertTrue(all(all(r[0]) for r in rows))
    else:
      # A finished episode's next step is a reset step (not valid); the
      # new episode starts there.
      self.assertEqual([r[0] for r in rows],
                       [[True, True], [True, True], [False, True],
                        [True, False], [True, True], [False, True],
                        [True, True]])
      self.assertEqual([r[1] for r in rows],
                       [[0, 1], [0, 1], [0, 1], [2, 1], [2, 3], [2, 3],
                        [4, 3]])
      self.assertEqual([r[2] for r in rows],
                       [[0, 0], [1, 1], [2, 2], [0, 3], [1, 0], [2, 1],
                        [0, 2]])
    # Valid rows: the observation's t is the step index within the episode.
    for valid, _, steps, obs_t in rows:
      for v, s, o in zip(valid, steps, obs_t):
        if v:
          self.assertEqual(s, o)
    # Returns 3 + 6 = 9 (2 steps) and 3 + 6 + 9 = 18 (3 steps).
    expected = {"SameStep": [(0, 0, 9.0, 2), (1, 1, 18.0, 3),
                             (0, 2, 9.0, 2), (0, 4, 9.0, 2),
                             (1, 3, 18.0, 3)],
                "NextStep": [(0, 0, 9.0, 2), (1, 1, 18.0, 3),
                             (0, 2, 9.0, 2), (1, 3, 18.0, 3)]}[mode]
    self.assertEqual(finished, expected)

  def test_errors(self):
    with self.assertRaisesRegex(TypeError, "`env`"):
      rollouts.Player(object(), constant_policy(0))
    with self.assertRaisesRegex(TypeError, "`policy`"):
      rollouts.Player(chain_env([2]), "policy")
    with self.assertRaisesRegex(TypeError, "`sampler`"):
      rollouts.Player(chain_env([2]), constant_policy(0), sampler=0)
    with self.assertRaisesRegex(ValueError, "autoreset_mode"):
      rollouts.Player(chain_env([2], "Disabled"), constant_policy(0))

    class NoMetadata:
      metadata = {}
      reset = step = lambda *a, **k: None

    with self.assertRaisesRegex(ValueError, "no metadata"):
      rollouts.Player(NoMetadata(), constant_policy(0))
    player = rollouts.Player(chain_env([2]), constant_policy(0))
    with self.assertRaisesRegex(RuntimeError, "reset"):
      player.step()
    player = rollouts.Player(chain_env([2]), lambda obs: np.zeros([5, 3]))
    player.reset(seed=0)
    with self.assertRaisesRegex(ValueError, r"logits \[B=1, A\]"):
      player.step()
    player = rollouts.Player(chain_env([2]),
                             lambda obs: (np.zeros([1, 3]), [1.0]))
    player.reset(seed=0)
    with self.assertRaisesRegex(TypeError, "extras"):
      player.step()

  def test_tf_generator_sampler_is_reproducible(self):
    # The teacher-training setup: a TF policy and a checkpointable RNG.
    def play():
      env = gymnasium.make_vec("CartPole-v1", num_envs=3,
                               vectorization_mode="sync")
      player = rollouts.Player(
          env, tf.function(lambda obs: linear_policy()(obs)[0]),
          policies.ActionSampler(rng=tf.random.Generator.from_seed(4)))
      player.reset(seed=1)
      return np.stack([player.step().actions for _ in range(30)])
    self.assertAllEqual(play(), play())


class EvaluateTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("NextStep", "SameStep")
  def test_returns_are_hand_sums(self, mode):
    # Quotas 3 (env 0, length 2) and 2 (env 1, length 3); action 1:
    # returns 2 * (1 + 2) = 6 and 2 * (1 + 2 + 3) = 12.
    seen = []
    returns = rollouts.evaluate(
        chain_env([2, 3], mode), constant_policy(1), 5, greedy=True,
        progress=lambda i, r: seen.append((i, r)))
    self.assertEqual(returns, [6.0, 6.0, 6.0, 12.0, 12.0])
    self.assertEqual([i for i, _ in seen], [0, 1, 2, 3, 4])
    self.assertCountEqual([r for _, r in seen], returns)

  def test_sampled_returns_on_cartpole_are_seeded(self):
    def run(seed):
      env = gymnasium.make_vec("CartPole-v1", num_envs=2,
                               vectorization_mode="sync")
      return rollouts.evaluate(env, linear_policy(), 3, seed=seed)
    first = run(0)
    self.assertLen(first, 3)
    self.assertTrue(all(r >= 1.0 for r in first))  # CartPole: +1 a step.
    self.assertEqual(first, run(0))

  def test_bad_episodes(self):
    with self.assertRaisesRegex(ValueError, "episodes"):
      rollouts.evaluate(chain_env([2]), constant_policy(0), 0)


def _write(path, text):
  with open(path, "w") as f:
    f.write(text)


class CollectTest(tf.test.TestCase, parameterized.TestCase):

  def _cartpole(self, num_envs=3):
    return gymnasium.make_vec("CartPole-v1", num_envs=num_envs,
                              vectorization_mode="sync")

  def test_cartpole_collection_is_deterministic_and_round_trips(self):
    base = tempfile.mkdtemp(dir=self.get_temp_dir())
    a, b, c = (os.path.join(base, n) for n in "abc")
    policy = linear_policy()
    counts = []
    meta = rollouts.collect(self._cartpole(), policy, a, num_states=100,
                            seed=5, shard_size=30, output_key="log_probs",
                            extra_meta={"note": "x"},
                            progress=counts.append)
    rollouts.collect(self._cartpole(), policy, b, num_states=100, seed=5,
                     shard_size=30, output_key="log_probs")
    rollouts.collect(self._cartpole(), policy, c, num_states=100, seed=6,
                     shard_size=30, output_key="log_probs")
    self.assertEqual(meta["shards"], [f"shard-0000{i}.npz" for i in range(4)])
    self.assertEqual(meta["keys"], ["states", "log_probs", "actions",
                                    "episode_ids", "steps", "value"])
    self.assertEqual((meta["num_states"], meta["num_envs"],
                      meta["num_actions"], meta["note"]), (100, 3, 2, "x"))
    self.assertEqual(rollouts.read_meta(a), meta)
    self.assertEqual(counts[-1], 100)
    self.assertEqual(counts, sorted(counts))
    da, db, dc = (rollouts.load(d) for d in (a, b, c))
    shard_rows = []
    for name in meta["shards"]:
      with np.load(os.path.join(a, name)) as shard:
        shard_rows.append(shard["actions"].shape[0])
    self.assertEqual(shard_rows, [30, 30, 30, 10])
    for key in meta["keys"]:
      self.assertAllEqual(da[key], db[key])
      self.assertLen(da[key], 100)
    self.assertNotAllEqual(da["actions"], dc["actions"])
    self.assertEqual(da["states"].dtype, np.float32)
    self.assertEqual(da["states"].shape, (100, 4))
    for key in ("actions", "episode_ids", "steps"):
      self.assertEqual(da[key].dtype, np.int32)
    # The recorded outputs and extras are the policy's at those states.
    log_probs, extras = policy(da["states"])
    self.assertAllClose(da["log_probs"], log_probs, atol=1e-6)
    self.assertAllClose(da["value"], extras["value"])
    # Time-major over 3 environments; steps count up within an episode.
    self.assertAllEqual(da["episode_ids"][:3], [0, 1, 2])
    self.assertAllEqual(da["steps"][:6], [0, 0, 0, 1, 1, 1])
    for ep in np.unique(da["episode_ids"]):
      steps = da["steps"][da["episode_ids"] == ep]
      self.assertAllEqual(steps, np.arange(steps.size))
    self.assertGreater(np.unique(da["episode_ids"]).size, 3)  # Resets seen.
    self.assertAllEqual(rollouts.load(a, keys=["actions"])["actions"],
                        da["actions"])

  def test_chain_collection_skips_reset_steps(self):
    # NextStep autoreset: the terminal observation (t = length) is never a
    # recorded state; every finished episode has exactly `length` states.
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    rollouts.collect(chain_env([2, 3]), constant_policy(0), directory,
                     num_states=14, seed=0)
    data = rollouts.load(directory)
    t, length = data["states"][:, 0], data["states"][:, 1]
    self.assertTrue(np.all(t < length), (t, length))
    self.assertAllEqual(t, data["steps"])
    self.assertAllEqual(data["episode_ids"],
                        [0, 1, 0, 1, 1, 2, 2, 3, 3, 4, 3, 4, 5, 6])
    self.assertIn("logits", rollouts.read_meta(directory)["keys"])

  def test_incomplete_collection_is_not_loaded(self):
    with self.assertRaisesRegex(ValueError, "No complete rollout"):
      rollouts.load(tempfile.mkdtemp(dir=self.get_temp_dir()))

  def test_complete_collection_is_replaced_only_when_asked(self):
    directory = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "r")
    first = rollouts.collect(chain_env([2, 3]), constant_policy(0),
                             directory, num_states=14, seed=0, shard_size=5)
    _write(os.path.join(directory, "provenance.json"), "{}")
    with self.assertRaises(rollouts.CollectionExistsError) as cm:
      rollouts.collect(chain_env([2]), constant_policy(1), directory, 6)
    self.assertEqual(cm.exception.filename, os.path.abspath(directory))
    self.assertIn("overwrite=True", cm.exception.strerror)
    self.assertEqual(rollouts.read_meta(directory), first)
    # An interrupted second collection leaves the first one usable.
    calls = []

    def interrupt(n):
      calls.append(n)
      if len(calls) == 3:
        raise KeyboardInterrupt

    before = rollouts.load(directory)
    with self.assertRaises(KeyboardInterrupt):
      rollouts.collect(chain_env([2]), constant_policy(1), directory, 20,
                       shard_size=2, progress=interrupt, overwrite=True)
    self.assertEqual(rollouts.read_meta(directory), first)
    for key, value in rollouts.load(directory).items():
      self.assertAllEqual(value, before[key])
    parent = os.path.dirname(directory)
    self.assertEqual(sorted(os.listdir(parent)), ["r"])  # No build left.
    # Replaced when asked: only the new shards and the other files remain.
    second = rollouts.collect(chain_env([2]), constant_policy(1), directory,
                              6, shard_size=4, overwrite=True)
    self.assertEqual(second["shards"], ["shard-g1-00000.npz",
                                        "shard-g1-00001.npz"])
    self.assertEqual(sorted(os.listdir(directory)),
                     ["meta.json", "provenance.json"] + second["shards"])
    self.assertAllEqual(rollouts.load(directory)["actions"], [1] * 6)
    third = rollouts.collect(chain_env([2]), constant_policy(0), directory,
                             6, shard_size=6, overwrite=True)
    self.assertEqual(third["shards"], ["shard-g2-00000.npz"])

  def test_stale_shards_and_builds_of_killed_collections_are_removed(self):
    directory = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "r")
    os.makedirs(directory)
    _write(os.path.join(directory, "shard-00007.npz"), "x")
    dead = subprocess.run([sys.executable, "-c", "import os; "
                           "print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = os.path.join(os.path.dirname(directory),
                         f".r.collecting-{dead}-abc")
    os.makedirs(stale)
    meta = rollouts.collect(chain_env([2]), constant_policy(0), directory, 4)
    self.assertEqual(sorted(os.listdir(directory)),
                     ["meta.json"] + meta["shards"])
    self.assertFalse(os.path.exists(stale))

  @parameterized.parameters("truncated", "garbage", "missing", "no_key")
  def test_unreadable_shard_is_named(self, fault):
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    meta = rollouts.collect(chain_env([2, 3]), constant_policy(0), directory,
                            num_states=14, seed=0, shard_size=5)
    shard = os.path.join(directory, meta["shards"][1])
    if fault == "truncated":
      with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)
    elif fault == "garbage":
      _write(shard, "not a zip")
    elif fault == "missing":
      os.remove(shard)
    keys = ["nothing"] if fault == "no_key" else None
    with self.assertRaises(rollouts.CorruptShardError) as cm:
      rollouts.load(directory, keys=keys)
    self.assertIsInstance(cm.exception, OSError)
    self.assertEqual(cm.exception.filename,
                     os.path.join(directory, meta["shards"][0 if keys else 1]))
    self.assertIn("not a readable rollout shard", cm.exception.strerror)

  def test_bad_arguments(self):
    directory = os.path.join(self.get_temp_dir(), "never")
    with self.assertRaisesRegex(ValueError, "num_states"):
      rollouts.collect(chain_env([2]), constant_policy(0), directory, 0)
    with self.assertRaisesRegex(ValueError, "shard_size"):
      rollouts.collect(chain_env([2]), constant_policy(0), directory, 5,
                       shard_size=0)
    with self.assertRaisesRegex(ValueError, "output_key"):
      rollouts.collect(chain_env([2]), constant_policy(0), directory, 5,
                       output_key="actions")
    self.assertFalse(os.path.exists(directory))
    with self.assertRaisesRegex(ValueError, "clash"):
      rollouts.collect(chain_env([2]),
                       lambda obs: (np.zeros([1, 3]), {"steps": [0]}),
                       directory, 5)


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
    # Test episodes are complete; no index is used twice.
    for ep in sets[2]:
      self.assertEqual(np.sum(ids[test] == ep), np.sum(ids == ep))
    self.assertLen(np.unique(np.concatenate([train, val, test])),
                   train.size + val.size + test.size)

  def test_split_of_a_collection_holds_out_whole_episodes(self):
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    env = gymnasium.make_vec("CartPole-v1", num_envs=2,
                             vectorization_mode="sync")
    rollouts.collect(env, linear_policy(), directory, num_states=150, seed=0)
    ids = rollouts.load(directory)["episode_ids"]
    train, _, test = rollouts.split_by_episodes(ids, 0.4, seed=0)
    self.assertEmpty(set(ids[train]) & set(ids[test]))
    for ep in set(ids[test]):
      self.assertEqual(np.sum(ids[test] == ep), np.sum(ids == ep))

  def test_split_hand_computed(self):
    ids = np.repeat(np.arange(4), 5)  # Four episodes of 5 states.
    train, val, test = rollouts.split_by_episodes(ids, 0.3, 0.0, seed=0)
    order = np.random.default_rng(0).permutation(4)
    first, second = order[0], order[1]
    # 6 training states: all of the first episode, 1 of the second (its
    # other 4 are dropped); the test set is the two remaining episodes.
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


class ImportTest(tf.test.TestCase):

  def test_core_imports_neither_gymnasium_nor_ale(self):
    code = ("import sys\n"
            "from sobolev import rollouts, policies\n"
            "print(sorted(m for m in ('ale_py', 'gymnasium') "
            "if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertEqual(proc.stdout.strip().splitlines()[-1], "[]")


if __name__ == "__main__":
  tf.test.main()
