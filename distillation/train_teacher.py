r"""Trains an A2C (synchronous A3C) Atari teacher; resumable.

Usage:
  python -m distillation.train_teacher --game=Pong --workdir=results/teacher_pong

Re-running the same command resumes from the latest checkpoint. To continue
a committed teacher in a fresh checkout (no checkpoint in the workdir), add
`--init_from=distillation/teachers/<game>`. The latest
network is exported to `<workdir>/export/` (a teacher directory: copy it to
`distillation/teachers/<game>/` to make it the default teacher).
"""

from absl import app
from absl import flags

from distillation import atari_env
from distillation import teacher_training

_GAME = None
_WORKDIR = None
_SEED = None
_TOTAL_FRAMES = None
_NUM_ENVS = None
_N_STEPS = None
_LR = None
_ENTROPY = None
_CKPT_S = None
_LOG_S = None
_TF_THREADS = None
_INIT_FROM = None
_EPS = None


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the CLIs share flag names
  (`--game`, `--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  global _GAME, _WORKDIR, _SEED, _TOTAL_FRAMES, _NUM_ENVS, _N_STEPS, _LR
  global _ENTROPY, _CKPT_S, _LOG_S, _TF_THREADS, _INIT_FROM, _EPS
  _GAME = flags.DEFINE_string("game", "Pong",
                              f"One of {sorted(atari_env.GAMES)}.")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
  _SEED = flags.DEFINE_integer("seed", 0, "Seed of TF and the environments.")
  _TOTAL_FRAMES = flags.DEFINE_integer("total_frames", 20_000_000,
                                       "Emulator frames to train for.")
  _NUM_ENVS = flags.DEFINE_integer("num_envs", 16, "Parallel games.")
  _N_STEPS = flags.DEFINE_integer("n_steps", 5, "Steps per n-step return.")
  _LR = flags.DEFINE_float("learning_rate", 7e-4, "RMSProp learning rate.")
  _ENTROPY = flags.DEFINE_float("entropy_coef", 0.01, "Entropy bonus weight.")
  _EPS = flags.DEFINE_float(
      "rmsprop_epsilon", 1e-10, "Added to the mean square inside the square "
      "root of RMSProp (Sonnet's form); 1e-10 ~ the usual sqrt(ms) + 1e-5.")
  _CKPT_S = flags.DEFINE_float("checkpoint_every_s", 600.0,
                               "Seconds between checkpoints.")
  _LOG_S = flags.DEFINE_float("log_every_s", 30.0, "Seconds between logs.")
  _TF_THREADS = flags.DEFINE_integer(
      "tf_threads", 1, "TF intra-op threads (the machine is shared).")
  _INIT_FROM = flags.DEFINE_string(
      "init_from", None, "Teacher directory to warm-start a new workdir from "
      "(e.g. distillation/teachers/Pong: weights, counters and logs; fresh "
      "optimiser state). Ignored if the workdir has a checkpoint.")
  flags.mark_flag_as_required("workdir")


def main(argv):
  del argv
  atari_env.check_game(_GAME.value)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(_TF_THREADS.value)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  config = teacher_training.TeacherConfig(
      game=_GAME.value, seed=_SEED.value, num_envs=_NUM_ENVS.value,
      n_steps=_N_STEPS.value, total_frames=_TOTAL_FRAMES.value,
      learning_rate=_LR.value, entropy_coef=_ENTROPY.value,
      rmsprop_epsilon=_EPS.value,
      checkpoint_every_s=_CKPT_S.value, log_every_s=_LOG_S.value)
  summary = teacher_training.train(config, _WORKDIR.value,
                                   init_from=_INIT_FROM.value)
  print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
  define_flags()
  app.run(main)
