r"""Records teacher rollouts (states, log-probs, actions, episode ids).

Usage:
  python -m distillation.collect_rollouts --game=Pong --num_states=100000 \
      --output_dir=results/rollouts_pong
"""

from absl import app
from absl import flags

from distillation import atari_env

_GAME = None
_NUM_STATES = None
_SEED = None
_NUM_ENVS = None
_SHARD = None
_TEACHER_DIR = None
_OUTPUT_DIR = None


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the CLIs share flag names
  (`--game`, `--seeds`, `--workdir`, ...), so importing a module (as the
  tests do) must not define them.
  """
  global _GAME, _NUM_STATES, _SEED, _NUM_ENVS, _SHARD, _TEACHER_DIR, _OUTPUT_DIR
  _GAME = flags.DEFINE_string("game", "Pong",
                              f"One of {sorted(atari_env.GAMES)}.")
  _NUM_STATES = flags.DEFINE_integer("num_states", 100_000, "States to record.")
  _SEED = flags.DEFINE_integer("seed", 0, "Seed of the games and sampling.")
  _NUM_ENVS = flags.DEFINE_integer("num_envs", 8, "Parallel games.")
  _SHARD = flags.DEFINE_integer("shard_size", 10_000, "States per shard.")
  _TEACHER_DIR = flags.DEFINE_string("teacher_dir", None,
                                     "Teacher directory (default: committed).")
  _OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output directory.")
  flags.mark_flag_as_required("output_dir")


def main(argv):
  del argv
  atari_env.check_game(_GAME.value)
  from distillation import rollouts  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  net, meta = teachers.load(_GAME.value, _TEACHER_DIR.value)
  out = rollouts.collect(
      net.log_policy, _GAME.value, _OUTPUT_DIR.value, _NUM_STATES.value,
      seed=_SEED.value, num_envs=_NUM_ENVS.value, shard_size=_SHARD.value,
      extra_meta={"teacher_frames": meta.get("frames")},
      progress=lambda n: None)
  print(f"Recorded {out['num_states']} states in {len(out['shards'])} shards "
        f"to {_OUTPUT_DIR.value}.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
