"""Training A2C teachers on Atari (resumable, logged, exported).

`train(config, workdir)` writes into `workdir`:
  checkpoints/       `tf.train.CheckpointManager` (network, optimiser, RNG,
                     counters), every `checkpoint_every_s` seconds
  episodes.csv       one row per finished game (unclipped return, all lives)
  progress.csv       one row per log interval (losses, entropy, frames/s)
  tb/                TensorBoard summaries
  export/            the latest network as a teacher directory (see
                     `distillation.teachers`), with the full training state
                     (`train_state.*`), written at each checkpoint

A killed run resumes from its latest checkpoint and loses at most one
checkpoint interval; CSV rows logged after that checkpoint are dropped on
resume. Frames are emulator frames (4 per agent step).
"""

import csv
import dataclasses
import json
import os
import shutil
import time
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf

from distillation import a2c
from distillation import atari_env
from distillation import networks
from distillation import summaries
from distillation import teachers
from sobolev import training

EPISODE_FIELDS = ["frames", "updates", "env", "episode_return",
                  "episode_length", "wall_time"]
PROGRESS_FIELDS = ["frames", "updates", "loss", "policy_loss", "value_loss",
                   "entropy", "mean_return_last20", "frames_per_sec",
                   "wall_time"]


@dataclasses.dataclass
class TeacherConfig:
  """A2C hyper-parameters (defaults: the A2C/A3C Atari settings)."""
  game: str = "Pong"
  seed: int = 0
  num_envs: int = 16
  n_steps: int = 5
  total_frames: int = 20_000_000
  learning_rate: float = 7e-4
  rmsprop_decay: float = 0.99
  # Sonnet's RMSProp divides by sqrt(ms + epsilon); 1e-10 there matches
  # the A2C implementations' sqrt(ms) + 1e-5 (PyTorch/Keras form). With
  # 1e-5 inside the root the denominator never drops below 3.2e-3, while
  # the actor's and torso's gradient RMS is ~1e-5..1e-3: their steps were
  # 15-200x too small and the policy stayed near uniform (measured from the
  # optimiser's own `ms` slots after 7M Pong frames).
  rmsprop_epsilon: float = 1e-10
  gamma: float = 0.99
  entropy_coef: float = 0.01
  value_coef: float = 0.5
  max_grad_norm: float = 0.5
  channels: tuple = (16, 32, 32)
  hidden: int = 256
  checkpoint_every_s: float = 600.0
  log_every_s: float = 30.0
  env_threads: int = 1

  def validate(self) -> None:
    """Raises ValueError naming the first bad field."""
    atari_env.check_game(self.game)
    for name in ("num_envs", "n_steps", "total_frames", "hidden",
                 "env_threads"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
    for name in ("learning_rate", "max_grad_norm", "checkpoint_every_s",
                 "log_every_s", "rmsprop_epsilon"):
      if not getattr(self, name) > 0:
        raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)}.")
    for name in ("gamma", "rmsprop_decay"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1], got "
                         f"{getattr(self, name)}.")
    for name in ("entropy_coef", "value_coef"):
      if not getattr(self, name) >= 0:
        raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}.")


class _CsvLog:
  """An append-only CSV file whose rows past a frame count can be dropped."""

  def __init__(self, path: str, fields: List[str]):
    self.path = path
    self.fields = fields

  def truncate_after(self, frames: int) -> None:
    """Keeps only rows with `frames <= frames` (atomically), or starts one."""
    rows = []
    if os.path.exists(self.path):
      with open(self.path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["frames"]) <= frames]
    tmp = self.path + ".tmp"
    with open(tmp, "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=self.fields)
      writer.writeheader()
      writer.writerows(rows)
    os.replace(tmp, self.path)

  def append(self, rows: List[Dict[str, Any]]) -> None:
    if not rows:
      return
    with open(self.path, "a", newline="") as f:
      csv.DictWriter(f, fieldnames=self.fields).writerows(rows)


def read_episodes(workdir: str) -> List[Dict[str, float]]:
  """Rows of `workdir/episodes.csv` as dicts of floats."""
  path = os.path.join(workdir, "episodes.csv")
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


class A2CLearner:
  """Network, optimiser, compiled step and actor of one A2C run."""

  def __init__(self, config: TeacherConfig, num_actions: int):
    self.config = config
    tf.random.set_seed(config.seed)
    self.net = networks.TeacherNet(num_actions, config.channels,
                                   config.hidden)
    self.net(tf.zeros([1, *atari_env.FRAME_SHAPE], tf.uint8))
    self.optimizer = a2c.make_optimizer(
        config.learning_rate, config.max_grad_norm, config.rmsprop_decay,
        config.rmsprop_epsilon)
    self.rng = tf.random.Generator.from_seed(config.seed)

    def loss_fn(model, batch):
      logits, values = model(batch["obs"])
      return a2c.a2c_loss(logits, values, batch["actions"], batch["returns"],
                          config.entropy_coef, config.value_coef)

    self.train_step = training.make_train_step(self.net, self.optimizer,
                                               loss_fn)

  @tf.function
  def act(self, obs: tf.Tensor):
    """Samples actions; returns `(actions [B] int32, values [B])`."""
    logits, values = self.net(obs)
    gumbel = -tf.math.log(-tf.math.log(
        self.rng.uniform(tf.shape(logits), 1e-20, 1.0)))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32), values


def _warm_start(learner: "A2CLearner", ckpt: tf.train.Checkpoint,
                updates: tf.Variable, frames: tf.Variable, init_from: str,
                workdir: str, config: TeacherConfig) -> None:
  """Starts a new workdir from a teacher directory.

  If the directory has a `train_state` checkpoint (exported by `train`
  since it exists), the whole training state is restored: network, RMSProp
  statistics, RNG and counters, so training continues exactly as a resumed
  run would. Otherwise only the weights and counters are taken and the
  optimiser starts afresh (its mean squares at zero, so the first updates
  are up to ~10x the learning rate). The training logs (`train_log.csv`,
  `progress.csv`) are copied so the learning curve continues.
  """
  net, meta = teachers.load(config.game, init_from)
  if (list(net.channels) != list(config.channels) or
      net.hidden != config.hidden):
    raise ValueError(f"The teacher in {init_from!r} has sizes "
                     f"{net.channels}/{net.hidden}, the config "
                     f"{config.channels}/{config.hidden}.")
  state = teachers.train_state_path(init_from)
  if state is not None:
    ckpt.read(state).assert_existing_objects_matched()
    what = "full training state"
  else:
    for dst, src in zip(learner.net.variables, net.variables):
      dst.assign(src)
    updates.assign(int(meta.get("updates", 0)))
    frames.assign(int(meta.get("frames", 0)))
    what = "weights only; fresh optimiser state"
  for src, dst in (("train_log.csv", "episodes.csv"),
                   ("progress.csv", "progress.csv")):
    if os.path.exists(os.path.join(init_from, src)):
      shutil.copyfile(os.path.join(init_from, src),
                      os.path.join(workdir, dst))
  print(f"Warm-started from {init_from} at {int(frames.numpy())} frames "
        f"({what}).", flush=True)


def train(config: TeacherConfig, workdir: str,
          max_updates: Optional[int] = None,
          init_from: Optional[str] = None) -> Dict[str, float]:
  """Trains (or resumes) an A2C teacher.

  Args:
    config: the hyper-parameters; validated first.
    workdir: output directory (created if needed).
    max_updates: stop after this many updates in this call (for tests); by
      default train until `config.total_frames`.
    init_from: optional teacher directory (e.g. a committed
      `distillation/teachers/<game>/`) to start from when `workdir` has no
      checkpoint yet: its full training state if it has a `train_state`
      checkpoint (then training continues exactly as a resumed run), else
      its weights and frame/update counters with a fresh optimiser; its
      training logs are copied. Ignored when resuming from a checkpoint.

  Returns:
    A summary dict: `frames`, `updates`, `episodes`, `mean_return_last20`.

  Raises:
    ValueError: for an invalid config, or a workdir holding a run with a
      different config.
  """
  config.validate()
  os.makedirs(workdir, exist_ok=True)
  config_path = os.path.join(workdir, "config.json")
  config_dict = dataclasses.asdict(config)
  config_dict["channels"] = list(config.channels)
  if os.path.exists(config_path):
    with open(config_path) as f:
      old = json.load(f)
    changed = {k for k in config_dict
               if k not in ("total_frames", "checkpoint_every_s",
                            "log_every_s", "env_threads")
               and old.get(k) != config_dict[k]}
    if changed:
      raise ValueError(f"{workdir!r} holds a run with a different config "
                       f"({sorted(changed)}); use a new workdir.")
  with open(config_path + ".tmp", "w") as f:
    json.dump(config_dict, f, indent=2, sort_keys=True)
  os.replace(config_path + ".tmp", config_path)

  learner = A2CLearner(config, atari_env.num_actions(config.game))
  updates = tf.Variable(0, dtype=tf.int64, name="updates")
  frames = tf.Variable(0, dtype=tf.int64, name="frames")
  ckpt = tf.train.Checkpoint(net=learner.net, optimizer=learner.optimizer,
                             rng=learner.rng, updates=updates, frames=frames)
  manager = tf.train.CheckpointManager(
      ckpt, os.path.join(workdir, "checkpoints"), max_to_keep=3)
  if manager.latest_checkpoint:
    ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    print(f"Resumed from {manager.latest_checkpoint} at "
          f"{int(frames.numpy())} frames.", flush=True)
  elif init_from is not None:
    _warm_start(learner, ckpt, updates, frames, init_from, workdir,
                config)
  episodes_log = _CsvLog(os.path.join(workdir, "episodes.csv"),
                         EPISODE_FIELDS)
  progress_log = _CsvLog(os.path.join(workdir, "progress.csv"),
                         PROGRESS_FIELDS)
  episodes_log.truncate_after(int(frames.numpy()))
  progress_log.truncate_after(int(frames.numpy()))
  recent = [r["episode_return"] for r in read_episodes(workdir)][-20:]
  writer = tf.summary.create_file_writer(os.path.join(workdir, "tb"))

  # A resumed run seeds its games differently so it does not replay the
  # games of the first segment.
  env = atari_env.VectorAtari(
      config.game, config.num_envs,
      seed=config.seed + 1000 * int(updates.numpy()), clip_rewards=True,
      num_threads=config.env_threads)
  obs = env.reset()
  frames_per_update = config.num_envs * config.n_steps * atari_env.FRAME_SKIP
  start = last_log = last_ckpt = time.time()
  start_frames = int(frames.numpy())
  done_updates = 0
  metrics_sum: Dict[str, float] = {}
  metrics_n = 0

  def save(final: bool = False) -> None:
    manager.save(checkpoint_number=int(updates.numpy()))
    teachers.export(learner.net, os.path.join(workdir, "export"), {
        "game": config.game, "frames": int(frames.numpy()),
        "updates": int(updates.numpy()),
        "mean_return_last20": float(np.mean(recent)) if recent else None,
        "algorithm": "A2C (synchronous A3C)", "seed": config.seed,
        "init": "orthogonal (gains sqrt(2) torso, 0.01 policy, 1 value)",
        "rmsprop_epsilon_in_sqrt": config.rmsprop_epsilon})
    teachers.export_train_state(ckpt, os.path.join(workdir, "export"))
    if final:
      print(f"Saved final checkpoint at {int(frames.numpy())} frames.",
            flush=True)

  try:
    while int(frames.numpy()) < config.total_frames:
      if max_updates is not None and done_updates >= max_updates:
        break
      obs_buf, act_buf, rew_buf, done_buf = [], [], [], []
      new_episodes = []
      for _ in range(config.n_steps):
        actions, _ = learner.act(obs)
        actions = actions.numpy()
        result = env.step(actions)
        obs_buf.append(obs)
        act_buf.append(actions)
        rew_buf.append(result.reward)
        done_buf.append(np.logical_or(result.game_over, result.life_lost))
        obs = result.obs
        new_episodes.extend(result.episode_returns)
      _, bootstrap = learner.act(obs)
      returns = a2c.n_step_returns(np.stack(rew_buf), np.stack(done_buf),
                                   bootstrap.numpy(), config.gamma)
      batch = {
          "obs": np.concatenate(obs_buf, axis=0),
          "actions": np.concatenate(act_buf, axis=0),
          "returns": returns.reshape(-1),
      }
      out = learner.train_step(batch)
      updates.assign_add(1)
      frames.assign_add(frames_per_update)
      done_updates += 1
      for k, v in out.items():
        metrics_sum[k] = metrics_sum.get(k, 0.0) + float(v.numpy())
      metrics_n += 1
      now = time.time()
      n_frames = int(frames.numpy())
      rows = []
      with writer.as_default(step=n_frames):
        for env_id, ret, length in new_episodes:
          recent = (recent + [ret])[-20:]
          rows.append({"frames": n_frames, "updates": int(updates.numpy()),
                       "env": env_id, "episode_return": ret,
                       "episode_length": length,
                       "wall_time": round(now, 1)})
          summaries.scalar("episode_return", ret, n_frames)
      episodes_log.append(rows)
      if now - last_log >= config.log_every_s:
        fps = (n_frames - start_frames) / max(now - start, 1e-9)
        means = {k: v / metrics_n for k, v in metrics_sum.items()}
        mean_ret = float(np.mean(recent)) if recent else float("nan")
        progress_log.append([{
            "frames": n_frames, "updates": int(updates.numpy()),
            "loss": means["loss"], "policy_loss": means["policy_loss"],
            "value_loss": means["value_loss"], "entropy": means["entropy"],
            "mean_return_last20": mean_ret, "frames_per_sec": round(fps, 1),
            "wall_time": round(now, 1)}])
        with writer.as_default(step=n_frames):
          for k, v in means.items():
            summaries.scalar(f"train/{k}", v, n_frames)
          summaries.scalar("frames_per_sec", fps, n_frames)
        writer.flush()
        print(f"[{config.game}] frames={n_frames:,} updates="
              f"{int(updates.numpy())} return(last20)={mean_ret:.2f} "
              f"entropy={means['entropy']:.3f} loss={means['loss']:.4f} "
              f"fps={fps:.0f}", flush=True)
        metrics_sum, metrics_n, last_log = {}, 0, now
      if now - last_ckpt >= config.checkpoint_every_s:
        save()
        last_ckpt = now
    save(final=True)
  finally:
    env.close()
    writer.close()
  return {"frames": int(frames.numpy()), "updates": int(updates.numpy()),
          "episodes": len(read_episodes(workdir)),
          "mean_return_last20": float(np.mean(recent)) if recent else
                                float("nan")}
