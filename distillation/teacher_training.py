"""Training A2C teachers on Atari (resumable, logged, exported).

`train(config, workdir)` (config: `configs/teacher.py`) writes into
`workdir`:
  config.json        the settings (a workdir of other settings is refused)
  provenance.json    command line, config, versions, commit, machine, times
  checkpoints/       `sobolev.experiment.checkpoints.Manager` (network,
                     optimiser, RNG, counters), every `checkpoint_every_s`
                     seconds and at the end
  episodes.csv       one row per finished game (unclipped return, all lives)
  progress.csv       one row per log interval (losses, entropy, frames/s)
  tb/                TensorBoard scalars (`metrics.MetricWriter`)
  export/            the latest network as a teacher directory (see
                     `distillation.teachers`), with the full training state
                     (`train_state.*`), written at each checkpoint

A killed run resumes from its newest intact checkpoint (a truncated one is
skipped for an older one, a garbled `checkpoints/checkpoint` index is
rebuilt, both with a warning; if checkpoints exist but none is readable it
stops with `CheckpointError` instead of restarting from frame 0) and loses
at most one checkpoint interval; CSV rows logged after the restored frame
are dropped on resume. CSV files are written atomically. A NaN/inf loss
stops training with `DivergenceError` (the last checkpoint stays).
Frames are emulator frames (4 per agent step).

The actor is the core play loop (`sobolev.rollouts.Player`) with the core
action sampler (`sobolev.policies.ActionSampler`, inverse-CDF sampling)
drawing its uniforms from the checkpointed `tf.random.Generator`. Gradients
are clipped by `make_train_step(transform_grads=a2c.clip_by_global_norm)`,
the optimiser is a plain `snt.optimizers.RMSProp`.

Checkpoint compatibility: the checkpoint keeps the layout written when the
optimiser was wrapped in a clipping module (`optimizer/optimizer/ms/...`;
see `A2CLearner.optimizer_slot`), so checkpoints, exports and the committed
teachers' `train_state` written before that change restore unchanged and
training resumes from them (weights, RMSProp statistics, RNG state,
counters). Since actions were then drawn by Gumbel-max sampling, a run
resumed from such a checkpoint draws other actions than the old code would
have (the same distribution, another random stream); it is not a
bit-for-bit continuation.
"""

import os
import shutil
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from distillation import a2c
from distillation import atari_env
from distillation import networks
from distillation import settings
from distillation import teachers
from distillation.configs import teacher as teacher_configs
from sobolev import policies
from sobolev import rollouts
from sobolev import training
from sobolev.experiment import checkpoints
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import metrics
from sobolev.experiment import progress
from sobolev.experiment import provenance
from sobolev.experiment import workdirs

EPISODE_FIELDS = ["frames", "updates", "env", "episode_return",
                  "episode_length", "wall_time"]
PROGRESS_FIELDS = ["frames", "updates", "loss", "policy_loss", "value_loss",
                   "entropy", "mean_return_last20", "frames_per_sec",
                   "wall_time"]


# Settings that may change when a run is resumed: they do not change what
# is learnt (total_frames only says when to stop).
WORKDIR_IGNORE = ("total_frames", "checkpoint_every_s", "log_every_s",
                  "env_threads", "tf_threads", "init_from")


def make_config(**overrides: Any):
  """`configs/teacher.py`'s config with `overrides` (e.g. for tests).

  Raises:
    errors.ConfigError: for an unknown field.
  """
  config = teacher_configs.get_config()
  for name, value in overrides.items():
    if name not in config:
      raise errors.ConfigError(f"Unknown teacher setting `{name}`.")
    config[name] = value
  return config


def check(config: Any) -> None:
  """Checks every setting before any work starts.

  Raises:
    errors.ConfigError: naming the first bad field.
  """
  settings.check_finite_and_game(config)
  for name in ("num_envs", "n_steps", "total_frames", "hidden",
               "env_threads", "tf_threads"):
    configs.check_int(name, config[name], low=1)
  configs.check_int("seed", config.seed, low=0)
  for name in ("learning_rate", "max_grad_norm", "checkpoint_every_s",
               "log_every_s", "rmsprop_epsilon"):
    configs.check_number(name, config[name], 0.0, low_inclusive=False)
  for name in ("gamma", "rmsprop_decay"):
    configs.check_number(name, config[name], 0.0, 1.0)
  for name in ("entropy_coef", "value_coef"):
    configs.check_number(name, config[name], 0.0)
  channels = config.channels
  if (isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__")
      or len(channels) != 3):
    raise errors.ConfigError(f"`channels` must be 3 ints, got {channels!r}.")
  for c in channels:
    configs.check_int("channels", c, low=1)


def read_episodes(workdir: str) -> List[Dict[str, float]]:
  """Rows of `workdir/episodes.csv` as dicts of floats."""
  return [{k: float(v) for k, v in r.items()}
          for r in files.read_csv(os.path.join(workdir, "episodes.csv"))]


class A2CLearner:
  """Network, optimiser, compiled step and actor of one A2C run.

  Attributes:
    net: the `TeacherNet`.
    optimizer: `snt.optimizers.RMSProp`.
    optimizer_slot: a module holding `optimizer` as its attribute
      `optimizer`; put it in the checkpoint as `optimizer=` to keep the
      layout `optimizer/optimizer/...` of older checkpoints.
    rng: the `tf.random.Generator` the sampler draws from (checkpointed).
    sampler: the core `policies.ActionSampler` on `rng`.
    train_step: the compiled update (`make_train_step` with global-norm
      clipping as `transform_grads`).
  """

  def __init__(self, config: Any, num_actions: int):
    self.config = config
    tf.random.set_seed(config.seed)
    self.net = networks.TeacherNet(num_actions, tuple(config.channels),
                                   config.hidden)
    self.net(tf.zeros([1, *atari_env.FRAME_SHAPE], tf.uint8))
    self.optimizer = a2c.make_optimizer(
        config.learning_rate, config.rmsprop_decay, config.rmsprop_epsilon)
    self.optimizer_slot = tf.Module(name="optimizer_slot")
    self.optimizer_slot.optimizer = self.optimizer
    self.rng = tf.random.Generator.from_seed(config.seed)
    self.sampler = policies.ActionSampler(rng=self.rng)

    def loss_fn(model, batch):
      logits, values = model(batch["obs"])
      return a2c.a2c_loss(logits, values, batch["actions"], batch["returns"],
                          config.entropy_coef, config.value_coef)

    self.train_step = training.make_train_step(
        self.net, self.optimizer, loss_fn,
        transform_grads=a2c.clip_by_global_norm(config.max_grad_norm))
    self._forward = tf.function(self.net)

  def policy(self, obs) -> tf.Tensor:
    """Policy logits `[B, A]` of observations `[B, 84, 84, 4]` uint8."""
    return self._forward(obs)[0]

  def values(self, obs) -> np.ndarray:
    """State values `[B]` of observations `[B, 84, 84, 4]` uint8."""
    return self._forward(obs)[1].numpy()

  def act(self, obs) -> Tuple[np.ndarray, np.ndarray]:
    """Samples actions; returns `(actions [B] int32, values [B])`."""
    logits, values = self._forward(obs)
    return self.sampler(logits), values.numpy()


def _warm_start(learner: "A2CLearner", ckpt: tf.train.Checkpoint,
                updates: tf.Variable, frames: tf.Variable, init_from: str,
                workdir: str, config: Any) -> None:
  """Starts a new workdir from a teacher directory.

  If the directory has a `train_state` checkpoint (exported by `train`
  since it exists), the whole training state is restored: network, RMSProp
  statistics, RNG and counters, so training continues exactly as a resumed
  run would. Otherwise only the weights and counters are taken and the
  optimiser starts afresh (its mean squares at zero, so the first updates
  are up to ~10x the learning rate). The training logs (`train_log.csv`,
  `progress.csv`) are copied so the learning curve continues.
  """
  try:
    net, meta = teachers.load(config.game, init_from)
  except ValueError as e:
    raise errors.ConfigError(f"`init_from`: {e}") from None
  if (list(net.channels) != list(config.channels) or
      net.hidden != config.hidden):
    raise errors.ConfigError(f"The teacher in {init_from!r} has sizes "
                     f"{net.channels}/{net.hidden}, the config "
                     f"{config.channels}/{config.hidden}.")
  state = teachers.train_state_path(init_from)
  if state is not None:
    checkpoints.read(ckpt, state, remedy=(
        f"delete {state}* to continue from the teacher's weights only")
    ).assert_existing_objects_matched()
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


def plan(config: Any, workdir: str, *, checked: bool = False) -> str:
  """Checks what `train` checks first; says what it would do.

  The dry run of `python -m distillation.train_teacher`: the settings, and
  the teacher of `init_from` (when the workdir has no checkpoint to resume
  from). Nothing is written.

  Args:
    config: the settings (`configs/teacher.py`).
    workdir: the output directory.
    checked: `check(config)` already ran (the command line runs it
      first); else it runs here.

  Returns:
    One line: the game, the frames and where training starts from.

  Raises:
    errors.ConfigError: for an invalid setting or a missing `init_from`.
  """
  if not checked:
    check(config)
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  if tf.train.latest_checkpoint(checkpoint_dir) is not None:
    start = f"resuming from the newest checkpoint in {checkpoint_dir}"
  elif config.init_from is not None:
    try:
      _, meta = teachers.load(config.game, config.init_from)
    except ValueError as e:
      raise errors.ConfigError(f"`init_from`: {e}") from None
    start = (f"starting from the teacher in {config.init_from} "
             f"({meta.get('frames')} frames)")
  else:
    start = "starting from random weights"
  return (f"would train the {config.game} A2C teacher up to "
          f"{config.total_frames} frames with {config.num_envs} games, "
          f"{start}, writing to {workdir}.")


def train(config: Any, workdir: str,
          max_updates: Optional[int] = None,
          init_from: Optional[str] = None,
          if_different: str = "refuse", *,
          checked: bool = False) -> Dict[str, float]:
  """Trains (or resumes) an A2C teacher.

  Args:
    config: the settings (`configs/teacher.py`, or `make_config(...)`).
    workdir: output directory (created if needed).
    max_updates: stop after this many updates in this call (for tests); by
      default train until `config.total_frames`.
    init_from: teacher directory to start from when `workdir` has no
      checkpoint yet (default `config.init_from`): its full training state
      if it has a `train_state` checkpoint (then training continues exactly
      as a resumed run), else its weights and frame/update counters with a
      fresh optimiser; its training logs are copied. Ignored when resuming.
    if_different: 'refuse', 'fresh' or 'separate' when the workdir holds a
      run of other settings (see `workdirs.open_workdir`).
    checked: `check(config)` already ran (the command line runs it
      first); else it runs here.

  Returns:
    A summary dict: `frames`, `updates`, `episodes`, `mean_return_last20`.

  Raises:
    errors.ConfigError: for an invalid setting.
    errors.WorkdirMismatchError: for a workdir holding a run of other
      settings (with `if_different='refuse'`).
    errors.CheckpointError: if checkpoints exist but none can be read.
    errors.DivergenceError: if the loss becomes NaN or inf.
  """
  if not checked:
    check(config)
  if init_from is None:
    init_from = config.init_from
  with workdirs.opened(workdir, config, ignore=WORKDIR_IGNORE,
                       if_different=if_different) as workdir, \
      provenance.recorded(workdir, config):
    return _train(config, workdir, max_updates, init_from)


def _train(config: Any, workdir: str, max_updates: Optional[int],
           init_from: Optional[str]) -> Dict[str, float]:
  """`train` after the settings and the workdir are checked."""
  learner = A2CLearner(config, atari_env.num_actions(config.game))
  state = _TrainState(learner, workdir)
  if state.restored is not None:
    print(f"Resumed from {state.restored} at {state.frames_done()} frames.",
          flush=True)
  elif init_from is not None:
    _warm_start(learner, state.ckpt, state.updates, state.frames, init_from,
                workdir, config)
  logs = _Logs(config, workdir, state.frames_done())
  env = atari_env.VectorAtari(config.game, config.num_envs,
                              num_threads=config.env_threads)

  def policy(obs):
    # Diverged weights give NaN logits before the loss is seen.
    return metrics.finite_or_raise(
        {"policy_logits": learner.policy(obs)},
        f"{config.game} teacher, update {state.updates_done() + 1}"
    )["policy_logits"]

  player = rollouts.Player(env, policy, learner.sampler)
  # A resumed run seeds its games differently so it does not replay the
  # games of the first segment.
  player.reset(seed=config.seed + 1000 * state.updates_done())
  frames_per_update = config.num_envs * config.n_steps * atari_env.FRAME_SKIP
  start_frames = state.frames_done()
  total = config.total_frames
  if max_updates is not None:
    total = min(total, start_frames + max_updates * frames_per_update)
  bar = progress.Progress(total=max(total, start_frames),
                          desc=f"{config.game} teacher", unit="frame",
                          initial=start_frames)
  last_ckpt = time.time()
  done_updates = 0
  try:
    while state.frames_done() < config.total_frames:
      if max_updates is not None and done_updates >= max_updates:
        break
      batch, new_episodes = _rollout(config, learner, player)
      out = metrics.finite_or_raise(
          learner.train_step(batch),
          f"{config.game} teacher, update {state.updates_done() + 1}")
      state.updates.assign_add(1)
      state.frames.assign_add(frames_per_update)
      done_updates += 1
      bar.update(frames_per_update)
      now = time.time()
      logs.step(out, new_episodes, state.frames_done(), state.updates_done(),
                now, bar)
      if now - last_ckpt >= config.checkpoint_every_s:
        state.save(config, logs)
        last_ckpt = now
    state.save(config, logs, final=True)
  finally:
    env.close()
    bar.close()
    logs.close()
  return {"frames": state.frames_done(), "updates": state.updates_done(),
          "episodes": len(read_episodes(workdir)),
          "mean_return_last20": logs.mean_return()}


def _rollout(config: Any, learner: A2CLearner, player: rollouts.Player
            ) -> Tuple[Dict[str, np.ndarray], List[Any]]:
  """`n_steps` steps of every game: `(batch, finished episodes)`.

  The batch holds `obs` `[n_steps * num_envs, 84, 84, 4]`, `actions` and
  the n-step `returns` (clipped rewards; an episode or a life ends a
  return).
  """
  obs_buf, act_buf, rew_buf, done_buf = [], [], [], []
  new_episodes = []
  for _ in range(config.n_steps):
    t = player.step()
    obs_buf.append(t.observations)
    act_buf.append(t.actions)
    rew_buf.append(np.clip(t.rewards, -1.0, 1.0))  # Training only.
    done_buf.append(t.terminated | t.truncated | t.info["life_lost"])
    new_episodes.extend(t.finished)
  returns = a2c.n_step_returns(np.stack(rew_buf), np.stack(done_buf),
                               learner.values(player.observations),
                               config.gamma)
  return {"obs": np.concatenate(obs_buf, axis=0),
          "actions": np.concatenate(act_buf, axis=0),
          "returns": returns.reshape(-1)}, new_episodes


class _TrainState:
  """The checkpointed state of a run: network, optimiser, RNG, counters."""

  def __init__(self, learner: A2CLearner, workdir: str):
    self.learner = learner
    self.workdir = workdir
    self.updates = tf.Variable(0, dtype=tf.int64, name="updates")
    self.frames = tf.Variable(0, dtype=tf.int64, name="frames")
    self.ckpt = tf.train.Checkpoint(
        net=learner.net, optimizer=learner.optimizer_slot, rng=learner.rng,
        updates=self.updates, frames=self.frames)
    self.manager = checkpoints.Manager(
        self.ckpt, os.path.join(workdir, "checkpoints"), max_to_keep=3)
    self.restored = self.manager.restore_or_initialize()

  def frames_done(self) -> int:
    return int(self.frames.numpy())

  def updates_done(self) -> int:
    return int(self.updates.numpy())

  def save(self, config: Any, logs: "_Logs", final: bool = False) -> None:
    """A checkpoint, and the teacher with its training state in `export/`."""
    logs.flush_episodes()
    self.manager.save(self.updates_done())
    export = os.path.join(self.workdir, "export")
    teachers.export(self.learner.net, export, {
        "game": config.game, "frames": self.frames_done(),
        "updates": self.updates_done(),
        "mean_return_last20": (float(np.mean(logs.recent)) if logs.recent
                               else None),
        "algorithm": "A2C (synchronous A3C)", "seed": config.seed,
        "init": "orthogonal (gains sqrt(2) torso, 0.01 policy, 1 value)",
        "rmsprop_epsilon_in_sqrt": config.rmsprop_epsilon})
    teachers.export_train_state(self.ckpt, export)
    if final:
      print(f"Saved final checkpoint at {self.frames_done()} frames.",
            flush=True)


class _Logs:
  """`episodes.csv`, `progress.csv` (every `log_every_s`) and TensorBoard.

  Rows logged after the restored frame are dropped first (atomically).
  `mean_return_last20` is NaN until the first episode ends (a mean over no
  episodes), so it may be NaN; every other metric must be finite.
  """

  def __init__(self, config: Any, workdir: str, frames: int):
    self.config = config
    self.episodes_path = os.path.join(workdir, "episodes.csv")
    metrics.MetricWriter(self.episodes_path,
                         step_key="frames").truncate_after(frames)
    if not os.path.exists(self.episodes_path):
      files.write_csv(self.episodes_path, [], EPISODE_FIELDS)  # Header only.
    self.progress = metrics.MetricWriter(
        os.path.join(workdir, "progress.csv"), step_key="frames",
        allow_nan=("mean_return_last20",))
    self.progress.truncate_after(frames)
    self.tb = metrics.MetricWriter(logdir=os.path.join(workdir, "tb"),
                                   step_key="frames",
                                   allow_nan=("mean_return_last20",))
    self.recent = [r["episode_return"] for r in read_episodes(workdir)][-20:]
    self.pending: List[Dict[str, Any]] = []
    self.sums: Dict[str, float] = {}
    self.count = 0
    self.start = self.last_log = time.time()
    self.start_frames = frames

  def mean_return(self) -> float:
    return float(np.mean(self.recent)) if self.recent else float("nan")

  def flush_episodes(self) -> None:
    if self.pending:
      files.append_csv(self.episodes_path, self.pending, EPISODE_FIELDS)
      self.pending.clear()

  def step(self, out: Dict[str, Any], new_episodes, frames: int,
           updates: int, now: float, bar: progress.Progress) -> None:
    """Records one update's metrics and finished episodes; logs progress
    when `log_every_s` has passed."""
    for k, v in out.items():
      self.sums[k] = self.sums.get(k, 0.0) + float(v)
    self.count += 1
    for episode in new_episodes:
      ret = episode.episode_return
      self.recent = (self.recent + [ret])[-20:]
      self.pending.append({
          "frames": frames, "updates": updates, "env": episode.env_index,
          "episode_return": ret, "episode_length": episode.length,
          "wall_time": round(now, 1)})
      self.tb.write({"frames": frames, "episode_return": ret})
    if now - self.last_log < self.config.log_every_s:
      return
    fps = (frames - self.start_frames) / max(now - self.start, 1e-9)
    means = {k: v / self.count for k, v in self.sums.items()}
    mean_ret = self.mean_return()
    self.flush_episodes()
    self.progress.write({
        "frames": frames, "updates": updates, "loss": means["loss"],
        "policy_loss": means["policy_loss"],
        "value_loss": means["value_loss"], "entropy": means["entropy"],
        "mean_return_last20": mean_ret, "frames_per_sec": round(fps, 1),
        "wall_time": round(now, 1)})
    self.tb.write({"frames": frames, "frames_per_sec": fps,
                   "mean_return_last20": mean_ret,
                   **{f"train/{k}": v for k, v in means.items()}})
    bar.update(0, ret20=mean_ret, entropy=means["entropy"])
    self.sums, self.count, self.last_log = {}, 0, now

  def close(self) -> None:
    self.tb.close()
