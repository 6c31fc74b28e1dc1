"""Tests of A2C (returns, loss, updates on a real game) and teacher I/O."""

import contextlib
import csv
import glob
import io
import os
import shutil
import tempfile

import numpy as np
import sonnet as snt
import tensorflow as tf

from distillation import a2c
from distillation import atari_env
from distillation import networks
from distillation import teacher_training
from distillation import teachers
from sobolev import training
from sobolev.experiment import errors
from sobolev.experiment import files
from tensorboard.backend.event_processing import event_accumulator

TINY = dict(channels=(4, 4, 4), hidden=8)


class A2CMathTest(tf.test.TestCase):

  def test_n_step_returns_hand_computed(self):
    # gamma = 0.5; the episode ends at t=1, so t=0 does not see t=2.
    returns = a2c.n_step_returns(
        rewards=np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 2.0]]),
        dones=np.array([[False, False], [True, False], [False, False]]),
        bootstrap=np.array([10.0, 4.0]), gamma=0.5)
    # Column 0: R2 = 1 + .5*10 = 6, R1 = 0 (done), R0 = 1 + .5*0 = 1.
    # Column 1: R2 = 2 + .5*4 = 4, R1 = .5*4 = 2, R0 = .5*2 = 1.
    self.assertAllClose(returns, [[1.0, 1.0], [0.0, 2.0], [6.0, 4.0]])

  def test_n_step_returns_rejects_bad_shapes(self):
    with self.assertRaisesRegex(ValueError, "bootstrap"):
      a2c.n_step_returns(np.zeros([3, 2]), np.zeros([3, 2], bool),
                         np.zeros([3]), 0.9)
    with self.assertRaisesRegex(ValueError, "gamma"):
      a2c.n_step_returns(np.zeros([3, 2]), np.zeros([3, 2], bool),
                         np.zeros([2]), 1.5)

  def test_a2c_loss_hand_computed(self):
    # Row 0: pi = [1/4, 3/4], a = 1, V = 1, R = 3 -> advantage 2.
    # Row 1: pi = [1/2, 1/2], a = 0, V = 0, R = -1 -> advantage -1.
    logits = tf.constant([[0.0, np.log(3.0)], [0.0, 0.0]])
    values = tf.constant([1.0, 0.0])
    loss, m = a2c.a2c_loss(logits, values, tf.constant([1, 0]),
                           tf.constant([3.0, -1.0]), entropy_coef=0.01,
                           value_coef=0.5)
    policy = (-np.log(0.75) * 2.0 + -np.log(0.5) * -1.0) / 2  # -0.0588915
    value = (2.0 ** 2 + 1.0 ** 2) / 2  # 2.5
    entropy = (-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)) + np.log(2)) / 2
    self.assertAllClose(m["policy_loss"], policy, atol=1e-6)
    self.assertAllClose(m["value_loss"], value, atol=1e-6)
    self.assertAllClose(m["entropy"], entropy, atol=1e-6)
    self.assertAllClose(loss, 1.1848325, atol=1e-6)
    self.assertAllClose(loss, policy + 0.5 * value - 0.01 * entropy,
                        atol=1e-6)

  def test_policy_gradient_does_not_flow_into_the_advantage(self):
    logits = tf.constant([[0.0, 0.0]])
    values = tf.Variable([1.0])
    with tf.GradientTape() as tape:
      _, m = a2c.a2c_loss(logits, values, tf.constant([0]),
                          tf.constant([3.0]))
      policy_loss = m["policy_loss"]
    self.assertIsNone(tape.gradient(policy_loss, values))

  def test_clip_by_global_norm_hand_computed(self):
    # Global norm of ([3], [4]) is 5: clipped to 0.5 -> ([0.3], [0.4]);
    # a norm below the limit is left alone.
    clip = a2c.clip_by_global_norm(0.5)
    a, b = clip([tf.constant([3.0]), tf.constant([4.0])])
    self.assertAllClose(a, [0.3])
    self.assertAllClose(b, [0.4])
    a, b = a2c.clip_by_global_norm(10.0)([tf.constant([3.0]),
                                          tf.constant([4.0])])
    self.assertAllClose(a, [3.0])
    self.assertAllClose(b, [4.0])

  def test_clipping_applies_in_the_train_step(self):
    # SGD with lr 1 on loss 3a + 4b (gradient norm 5) clipped to 0.5.
    v = tf.Variable([0.0, 0.0])
    step = training.make_train_step(
        lambda x: x, snt.optimizers.SGD(1.0),
        lambda model, batch: tf.reduce_sum(tf.constant([3.0, 4.0]) * v),
        variables=[v], transform_grads=a2c.clip_by_global_norm(0.5))
    step({"x": tf.zeros([1])})
    self.assertAllClose(v, [-0.3, -0.4])

  def test_bad_clipping_norm(self):
    for bad in (0.0, -1.0, float("inf"), float("nan"), "1", True):
      with self.assertRaisesRegex(ValueError, "max_norm"):
        a2c.clip_by_global_norm(bad)


class A2CTrainingTest(tf.test.TestCase):

  def test_updates_on_a_real_game_change_the_parameters(self):
    config = teacher_training.make_config(game="Pong", num_envs=2,
                                            n_steps=3, **TINY)
    learner = teacher_training.A2CLearner(config, 6)
    before = [v.numpy().copy() for v in learner.net.trainable_variables]
    with atari_env.VectorAtari("Pong", 2, seed=0) as env:
      obs, _ = env.reset()
      for _ in range(2):
        batch_obs, actions_list = [], []
        for _ in range(config.n_steps):
          actions, values = learner.act(obs)
          self.assertEqual(actions.shape, (2,))
          self.assertEqual(values.shape, (2,))
          batch_obs.append(obs)
          actions_list.append(actions)
          obs = env.step(actions)[0]
        out = learner.train_step({
            "obs": np.concatenate(batch_obs),
            "actions": np.concatenate(actions_list),
            "returns": np.linspace(-1, 1, 6).astype(np.float32)})
        self.assertTrue(np.isfinite(out["loss"].numpy()))
    after = [v.numpy() for v in learner.net.trainable_variables]
    self.assertTrue(all(np.any(a != b) for a, b in zip(before, after)))

  def test_learner_solves_a_bandit(self):
    # One-step episodes with reward 1 for action 2 only: the policy must
    # concentrate on action 2 (a sign error or a broken step would not).
    config = teacher_training.make_config(num_envs=16, n_steps=1, **TINY)
    learner = teacher_training.A2CLearner(config, 4)
    obs = np.random.default_rng(0).integers(
        0, 256, size=(16, 84, 84, 4)).astype(np.uint8)
    for _ in range(60):
      actions = learner.act(obs)[0]
      learner.train_step({"obs": obs, "actions": actions,
                          "returns": (actions == 2).astype(np.float32)})
    probs = tf.nn.softmax(learner.net(obs)[0]).numpy().mean(0)
    self.assertGreater(probs[2], 0.8)

  def test_learner_learns_a_state_dependent_policy(self):
    # A contextual bandit on Atari-shaped frames: a bright 8x8 "ball" on the
    # left or right half; reward 1 for action 3 (left) or 2 (right) to
    # match it. A network that ignored its input could not beat 50%
    # greedy accuracy.
    rng = np.random.default_rng(0)

    def frames(n):
      side = rng.integers(0, 2, n)
      obs = rng.integers(0, 40, size=(n, 84, 84, 4)).astype(np.uint8)
      for i in range(n):
        row, col = rng.integers(10, 70), 10 + 50 * side[i]
        obs[i, row:row + 8, col:col + 8] = 255
      return obs, np.where(side == 1, 2, 3)

    config = teacher_training.make_config(channels=(16, 16, 16), hidden=64)
    learner = teacher_training.A2CLearner(config, 6)
    for _ in range(150):
      obs, wanted = frames(80)
      actions = learner.act(obs)[0]
      learner.train_step({"obs": obs, "actions": actions,
                          "returns": (actions == wanted).astype(np.float32)})
    obs, wanted = frames(400)
    greedy = learner.net(obs)[0].numpy().argmax(axis=1)
    self.assertGreater(np.mean(greedy == wanted), 0.9)

  def test_train_resumes_from_its_checkpoint(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e9, **TINY)
    first = teacher_training.train(config, workdir, max_updates=2)
    self.assertEqual(first["updates"], 2)
    self.assertEqual(first["frames"], 2 * 2 * 2 * 4)
    net1, meta1 = teachers.load("Pong", os.path.join(workdir, "export"))
    self.assertEqual(meta1["updates"], 2)
    w1 = [v.numpy() for v in net1.trainable_variables]
    second = teacher_training.train(config, workdir, max_updates=1)
    self.assertEqual(second["updates"], 3)  # Resumed, not restarted.
    net2, _ = teachers.load("Pong", os.path.join(workdir, "export"))
    w2 = [v.numpy() for v in net2.trainable_variables]
    self.assertTrue(any(np.any(a != b) for a, b in zip(w1, w2)))
    with open(os.path.join(workdir, "episodes.csv")) as f:
      self.assertEqual(next(csv.reader(f)), teacher_training.EPISODE_FIELDS)
    # A different config in the same workdir is refused, naming the field;
    # a longer run (total_frames) resumes.
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "num_envs: 2 -> 3"):
      teacher_training.train(
          teacher_training.make_config(game="Pong", num_envs=3, n_steps=2,
                                       **TINY),
          workdir, max_updates=1)
    longer = teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e9, total_frames=10**9, **TINY)
    self.assertEqual(
        teacher_training.train(longer, workdir, max_updates=1)["updates"], 4)

  def test_warm_start_from_a_teacher_directory(self):
    teacher_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    net = networks.TeacherNet(6, **TINY)
    net(tf.zeros([1, 84, 84, 4], tf.uint8))
    teachers.export(net, teacher_dir, {"game": "Pong", "frames": 400,
                                       "updates": 5})
    with open(os.path.join(teacher_dir, "train_log.csv"), "w") as f:
      f.write(",".join(teacher_training.EPISODE_FIELDS) + "\n")
      f.write("320,4,0,-21.0,800,0.0\n")
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e9, **TINY)
    out = teacher_training.train(config, workdir, max_updates=0,
                                 init_from=teacher_dir)
    self.assertEqual(out["frames"], 400)
    self.assertEqual(out["updates"], 5)
    self.assertEqual(out["episodes"], 1)
    loaded, _ = teachers.load("Pong", os.path.join(workdir, "export"))
    for a, b in zip(net.variables, loaded.variables):
      self.assertAllEqual(a, b)

  def test_warm_start_from_an_export_continues_like_a_resume(self):
    # The export holds the full training state, so a fresh workdir started
    # from it makes exactly the update that resuming the run would make
    # (same weights, RMSProp statistics, RNG, counters and game seeds).
    config = teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e9, **TINY)
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    teacher_training.train(config, run_dir, max_updates=2)
    export_dir = os.path.join(run_dir, "export")
    self.assertIsNotNone(teachers.train_state_path(export_dir))
    snapshot = tempfile.mkdtemp(dir=self.get_temp_dir())
    for name in os.listdir(export_dir):
      shutil.copy(os.path.join(export_dir, name), snapshot)
    warm_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    warm = teacher_training.train(config, warm_dir, max_updates=1,
                                  init_from=snapshot)
    resumed = teacher_training.train(config, run_dir, max_updates=1)
    self.assertEqual(warm["updates"], 3)
    self.assertEqual(warm["frames"], resumed["frames"])
    a, _ = teachers.load("Pong", os.path.join(warm_dir, "export"))
    b, _ = teachers.load("Pong", export_dir)
    c, _ = teachers.load("Pong", snapshot)
    for va, vb in zip(a.variables, b.variables):
      self.assertAllClose(va, vb, rtol=0, atol=1e-7)
    self.assertTrue(any(np.any(va.numpy() != vc.numpy())
                        for va, vc in zip(a.variables, c.variables)))

  def test_committed_train_state_restores_into_the_learner(self):
    # The committed teachers' train_state was written when the optimiser
    # was wrapped in a clipping module; the learner's checkpoint keeps that
    # layout, so every stored value (RMSProp slots included) is matched.
    state = teachers.train_state_path(teachers.default_dir("Pong"))
    self.assertIsNotNone(state)
    config = teacher_training.make_config(game="Pong", num_envs=2,
                                            n_steps=2)
    learner = teacher_training.A2CLearner(config, 6)
    updates = tf.Variable(0, dtype=tf.int64)
    frames = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(net=learner.net,
                               optimizer=learner.optimizer_slot,
                               rng=learner.rng, updates=updates,
                               frames=frames)
    status = ckpt.restore(state)  # Also matches `save_counter`.
    status.assert_existing_objects_matched()
    reader = tf.train.load_checkpoint(state)
    stored_ms = reader.get_tensor(
        "optimizer/optimizer/ms/0/.ATTRIBUTES/VARIABLE_VALUE")
    self.assertGreater(int(updates.numpy()), 0)
    obs = np.random.default_rng(0).integers(
        0, 256, size=(4, 84, 84, 4)).astype(np.uint8)
    learner.train_step({"obs": obs, "actions": np.zeros(4, np.int32),
                        "returns": np.zeros(4, np.float32)})
    status.assert_consumed()  # The lazily created slots were restored too.
    # ms' = decay * ms + (1 - decay) * g^2 >= decay * ms (restored, not 0).
    ms = learner.optimizer.ms[0].numpy()
    self.assertAllGreaterEqual(ms - config.rmsprop_decay * stored_ms, -1e-12)
    self.assertGreater(np.max(stored_ms), 0.0)

  def test_new_checkpoints_keep_the_committed_layout(self):
    # A warm start from the committed Pong teacher (old checkpoint layout)
    # trains, and the state it exports has the same variable names.
    committed = teachers.default_dir("Pong")
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e9, total_frames=10**9)
    out = teacher_training.train(config, workdir, max_updates=1,
                                 init_from=committed)
    _, meta = teachers.load("Pong", committed)
    self.assertEqual(out["updates"], meta["updates"] + 1)
    names = lambda path: sorted(n for n, _ in tf.train.list_variables(path))
    self.assertEqual(
        names(teachers.train_state_path(os.path.join(workdir, "export"))),
        names(teachers.train_state_path(committed)))

  def test_bad_config_is_rejected(self):
    workdir = os.path.join(self.get_temp_dir(), "never")
    for overrides, message in (
        (dict(game="Tetris"), "Unknown game"),
        (dict(n_steps=0), "n_steps"),
        (dict(learning_rate=float("nan")), "`learning_rate` must be finite"),
        (dict(entropy_coef=float("inf")), "`entropy_coef` must be finite"),
        (dict(gamma=1.5), "gamma"),
        (dict(channels=(4, 4)), "channels")):
      with self.assertRaisesRegex(errors.ConfigError, message):
        teacher_training.train(teacher_training.make_config(**overrides),
                               workdir)
    self.assertFalse(os.path.exists(workdir))
    with self.assertRaisesRegex(errors.ConfigError, "Unknown teacher"):
      teacher_training.make_config(learning_rat=1e-3)

  def test_diverging_training_stops(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e9, learning_rate=1e38, max_grad_norm=1e38, **TINY)
    with self.assertRaisesRegex(errors.DivergenceError, "Pong teacher"):
      teacher_training.train(config, workdir, max_updates=20)
    self.assertFalse(os.path.exists(os.path.join(workdir, "checkpoints",
                                                 "checkpoint")))
    data = files.read_json(os.path.join(workdir, "provenance.json"))
    self.assertEqual(data["invocations"][-1]["status"], "failed")


class TeacherResumeTest(tf.test.TestCase):
  """Checkpoint fallback and logs on resume (a tiny teacher on Pong)."""

  def _config(self):
    return teacher_training.make_config(
        game="Pong", num_envs=2, n_steps=2, checkpoint_every_s=1e9,
        log_every_s=1e-9, **TINY)

  def _two_checkpoints(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    teacher_training.train(self._config(), workdir, max_updates=2)
    teacher_training.train(self._config(), workdir, max_updates=1)
    ckpts = os.path.join(workdir, "checkpoints")
    self.assertTrue(os.path.exists(os.path.join(ckpts, "ckpt-2.index")))
    self.assertTrue(os.path.exists(os.path.join(ckpts, "ckpt-3.index")))
    return workdir, ckpts

  def test_truncated_newest_checkpoint_falls_back_to_an_older_one(self):
    workdir, ckpts = self._two_checkpoints()
    (data,) = glob.glob(os.path.join(ckpts, "ckpt-3.data-*"))
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      summary = teacher_training.train(self._config(), workdir, max_updates=1)
    self.assertIn("ckpt-3 is unreadable; resumed from the older", out.getvalue())
    self.assertIn("ckpt-2", out.getvalue())
    self.assertEqual(summary["updates"], 3)  # 2 restored + 1.
    # Progress rows logged after the restored frame were dropped first.
    frames = [int(r["frames"]) for r in files.read_csv(
        os.path.join(workdir, "progress.csv"))]
    self.assertEqual(frames, sorted(frames))
    self.assertEqual(frames, [16, 32, 48])

  def test_garbled_index_is_repaired(self):
    workdir, ckpts = self._two_checkpoints()
    with open(os.path.join(ckpts, "checkpoint"), "w") as f:
      f.write("garbage {{{\n")
    summary = teacher_training.train(self._config(), workdir, max_updates=1)
    self.assertEqual(summary["updates"], 4)  # Resumed from ckpt-3, not 0.
    self.assertTrue(os.path.exists(os.path.join(ckpts, "checkpoint.corrupt")))

  def test_no_readable_checkpoint_stops_instead_of_restarting(self):
    workdir, ckpts = self._two_checkpoints()
    for data in glob.glob(os.path.join(ckpts, "ckpt-*.data-*")):
      with open(data, "r+b") as f:
        f.truncate(10)
    with self.assertRaises(errors.CheckpointError):
      teacher_training.train(self._config(), workdir, max_updates=1)

  def test_tensorboard_events_and_provenance(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    teacher_training.train(self._config(), workdir, max_updates=2)
    acc = event_accumulator.EventAccumulator(os.path.join(workdir, "tb"))
    acc.Reload()
    self.assertIn("train/loss", acc.Tags()["tensors"])
    self.assertEqual([e.step for e in acc.Tensors("train/loss")], [16, 32])
    progress = files.read_csv(os.path.join(workdir, "progress.csv"))
    self.assertAllClose(
        [float(tf.make_ndarray(e.tensor_proto))
         for e in acc.Tensors("train/loss")],
        [float(r["loss"]) for r in progress], rtol=1e-6)
    record = files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"][-1]
    self.assertEqual(record["status"], "finished")
    self.assertEqual(record["config"]["num_envs"], 2)
    self.assertIn("tensorflow", record["versions"])


class TeacherCheckpointTest(tf.test.TestCase):

  def test_export_and_load_round_trip(self):
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    net = networks.TeacherNet(4, **TINY)
    states = np.random.default_rng(0).integers(
        0, 256, size=(3, 84, 84, 4)).astype(np.uint8)
    logits, values = net(states)
    teachers.export(net, directory, {"game": "Breakout", "frames": 123})
    loaded, meta = teachers.load("Breakout", directory)
    self.assertEqual(meta["frames"], 123)
    self.assertEqual(meta["channels"], [4, 4, 4])
    logits2, values2 = loaded(states)
    self.assertAllClose(logits, logits2)
    self.assertAllClose(values, values2)
    with self.assertRaisesRegex(ValueError, "plays Breakout"):
      teachers.load("Pong", directory)
    with self.assertRaisesRegex(ValueError, "No teacher"):
      teachers.load("Pong", tempfile.mkdtemp(dir=self.get_temp_dir()))


if __name__ == "__main__":
  tf.test.main()
