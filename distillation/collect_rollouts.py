r"""Records teacher rollouts (states, log-probs, actions, episode ids).

Usage:
  python -m distillation.collect_rollouts --output_dir=results/rollouts_pong \
      --config.game=Pong --config.num_states=100000

Collection settings are the Figure 4 config's (`configs/default.py`:
`game`, `teacher_dir`, `num_states`, `collect_seed`, `collect_envs`); the
directory's `meta.json` records them with the teacher's weights digest, so
`python -m distillation.run --config.rollouts_dir=<output_dir> ...` uses the
states only for the same teacher and settings. A directory holding a
complete collection of other settings is refused.
"""

import os
from typing import Sequence

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "configs", "default.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(CONFIG_FILE,
                         "Collection settings (configs/default.py).")
  flags.DEFINE_string("output_dir", None, "Output directory.")
  flags.mark_flag_as_required("output_dir")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)
  from distillation import settings  # pylint: disable=g-import-not-at-top
  config = FLAGS.config
  settings.check(config)  # Before TensorFlow starts.
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  from distillation import rollouts  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import configs  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import locks  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import provenance  # pylint: disable=g-import-not-at-top
  output_dir = FLAGS.output_dir
  if os.path.realpath(output_dir) == os.path.realpath(os.getcwd()):
    raise errors.ConfigError("`--output_dir` must not be the current "
                             "directory.")
  teacher, teacher_meta, digest = experiment.load_teacher(config)
  wanted = experiment.rollout_settings(config, digest)
  meta = rollouts.read_meta(output_dir)
  if meta is not None:
    differences = configs.diff(meta.get("settings", {}), wanted)
    if differences:
      raise errors.ConfigError(
          f"{output_dir} holds rollouts of other settings "
          f"({'; '.join(differences)}); give another --output_dir.")
    print(f"{output_dir} already holds these rollouts "
          f"({meta['num_states']} states).")
    return
  if cli.dry_run():
    cli.say_dry_run(
        f"would record {config.num_states} states of {config.game} with the "
        f"teacher (digest {digest}, {teacher_meta.get('frames')} frames) "
        f"into {output_dir}.")
    return
  collection = {k: configs.to_dict(config)[k] for k in (
      "game", "teacher_dir", "num_states", "collect_seed", "collect_envs")}
  collection["teacher_digest"] = digest
  locks.hold(output_dir)  # One writer (created if missing).
  config = configs.to_dict(config)
  config["rollouts_dir"] = output_dir
  from ml_collections import ConfigDict  # pylint: disable=g-import-not-at-top
  config = ConfigDict(config)
  with provenance.recorded(output_dir, collection):
    _, out, _ = experiment.get_rollouts(config, output_dir, teacher,
                                        teacher_meta, digest)
  print(f"Recorded {out['num_states']} states in {len(out['shards'])} shards "
        f"to {output_dir}.")


if __name__ == "__main__":
  cli.run(main, define_flags)
