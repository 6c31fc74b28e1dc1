r"""Plots the committed teachers' learning curves.

Usage:
  python -m distillation.plot_teachers --output=docs/distillation_teacher_curves.png \
      [--mark=Pong:7840960,SpaceInvaders:7552960] [--mark_label="..."]

Reads `distillation/teachers/<game>/train_log.csv` (one row per training
game: frames, unclipped score) for every game that has one.
"""

import os
from typing import Sequence

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from distillation import atari_env
from distillation import reporting
from distillation import teachers
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def parse_marks(items):
  """`['Pong:7840960', ...]` -> `{'Pong': 7840960.0}`; ValueError if bad."""
  marks = {}
  for item in items or []:
    game, sep, frames = item.partition(":")
    if not sep:
      raise ValueError(f"`--mark` entries must be GAME:FRAMES, got {item!r}.")
    atari_env.check_game(game)
    try:
      marks[game] = float(frames)
    except ValueError:
      raise ValueError(f"`--mark` frames must be a number, got {item!r}.")
  return marks


def define_flags() -> None:
  """Defines this program's flags (only when run as a program)."""
  flags.DEFINE_string("output", None, "Output PNG.")
  flags.DEFINE_list("mark", [], "GAME:FRAMES vertical markers.")
  flags.DEFINE_string("mark_label", "", "Legend of markers.")
  flags.mark_flag_as_required("output")
  cli.define_dry_run_flag()


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  try:
    marks = parse_marks(FLAGS.mark)
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  logs = {}
  for game in atari_env.GAMES:
    path = os.path.join(teachers.default_dir(game), "train_log.csv")
    if os.path.exists(path):
      logs[game] = path
  if not logs:
    raise errors.UserError("No teacher has a train_log.csv.")
  if cli.dry_run():
    cli.say_dry_run(f"would plot the learning curves of {', '.join(logs)} "
                    f"to {FLAGS.output}.")
    return
  reporting.plot_teacher_curves(logs, FLAGS.output, marks, FLAGS.mark_label)
  print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main, define_flags)
