r"""Exports a teacher or a trained student as a SavedModel.

Usage:
  python -m distillation.export --game=Pong --out=/tmp/pong_teacher
  python -m distillation.export --teacher_dir=results/teacher_Pong/export \
      --out=/tmp/teacher
  python -m distillation.export --student=results/fig4/runs/<key> \
      --out=/tmp/student

The SavedModel loads with plain TensorFlow, without this project:

  m = tf.saved_model.load("/tmp/pong_teacher")
  log_probs = m(states)   # states: uint8 [B, 84, 84, 4] -> [B, A]
  m.signatures["serving_default"](states=states)["log_probs"]

Teachers export their log-policy (`TeacherNet.log_policy`), students theirs
(`StudentNet.log_policy`).
"""

from typing import Sequence

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when run as a program)."""
  flags.DEFINE_string(
      "game", None, "Export the committed teacher of this game.")
  flags.DEFINE_string(
      "teacher_dir", None, "Export the teacher in this directory.")
  flags.DEFINE_string(
      "student", None, "Export the finished student in this unit directory "
      "(<workdir>/runs/<key>).")
  flags.DEFINE_string("out", None, "SavedModel directory to write.")
  flags.mark_flag_as_required("out")
  cli.define_dry_run_flag()


def export_teacher(net, path: str) -> str:
  """A SavedModel of a teacher: uint8 `[None, 84, 84, 4]` -> log-probs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from distillation import atari_env  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import saved_models  # pylint: disable=g-import-not-at-top
  return saved_models.export(
      net, [tf.TensorSpec([None, *atari_env.FRAME_SHAPE], tf.uint8,
                          name="states")], path, fn=net.log_policy,
      output_name="log_probs")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)
  if FLAGS.student and (FLAGS.game or FLAGS.teacher_dir):
    raise errors.ConfigError("Give `--student` or a teacher (`--game`, "
                             "`--teacher_dir`), not both.")
  if not (FLAGS.student or FLAGS.game or FLAGS.teacher_dir):
    raise errors.ConfigError("Give `--game`, `--teacher_dir` or "
                             "`--student`.")
  import os  # pylint: disable=g-import-not-at-top
  if FLAGS.student and not os.path.exists(
      os.path.join(FLAGS.student, "result.json")):
    # Checked before TensorFlow starts, so the error is one line.
    raise errors.ConfigError(f"{FLAGS.student!r} holds no finished student "
                             "(no result.json).")
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  try:
    if cli.dry_run():
      if FLAGS.student:
        experiment.load_student(FLAGS.student)
        what = f"student {FLAGS.student}"
      else:
        _, meta = teachers.load(FLAGS.game, FLAGS.teacher_dir)
        what = f"{meta.get('game')} teacher ({meta.get('frames')} frames)"
      cli.say_dry_run(f"would export the {what} as a SavedModel to "
                      f"{FLAGS.out}.")
      return
    if FLAGS.student:
      net = experiment.load_student(FLAGS.student)
      path = experiment.export_student(net, FLAGS.out)
      what = f"student {FLAGS.student}"
    else:
      net, meta = teachers.load(FLAGS.game, FLAGS.teacher_dir)
      path = export_teacher(net, FLAGS.out)
      what = (f"{meta.get('game')} teacher ({meta.get('frames')} frames, "
              f"digest {teachers.digest(net)})")
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  print(f"Exported the {what} to {path} (input uint8 [B, 84, 84, 4], output "
        "log_probs [B, A]).")


if __name__ == "__main__":
  cli.run(main, define_flags)
