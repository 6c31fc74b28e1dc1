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

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
# pylint: enable=g-import-not-at-top,wrong-import-position

_GAME = None
_TEACHER_DIR = None
_STUDENT = None
_OUT = None


def define_flags() -> None:
  """Defines this program's flags (only when run as a program)."""
  global _GAME, _TEACHER_DIR, _STUDENT, _OUT
  _GAME = flags.DEFINE_string(
      "game", None, "Export the committed teacher of this game.")
  _TEACHER_DIR = flags.DEFINE_string(
      "teacher_dir", None, "Export the teacher in this directory.")
  _STUDENT = flags.DEFINE_string(
      "student", None, "Export the finished student in this unit directory "
      "(<workdir>/runs/<key>).")
  _OUT = flags.DEFINE_string("out", None, "SavedModel directory to write.")
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


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  if _STUDENT.value and (_GAME.value or _TEACHER_DIR.value):
    raise errors.ConfigError("Give `--student` or a teacher (`--game`, "
                             "`--teacher_dir`), not both.")
  if not (_STUDENT.value or _GAME.value or _TEACHER_DIR.value):
    raise errors.ConfigError("Give `--game`, `--teacher_dir` or "
                             "`--student`.")
  import os  # pylint: disable=g-import-not-at-top
  if _STUDENT.value and not os.path.exists(
      os.path.join(_STUDENT.value, "result.json")):
    # Checked before TensorFlow starts, so the error is one line.
    raise errors.ConfigError(f"{_STUDENT.value!r} holds no finished student "
                             "(no result.json).")
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  try:
    if cli.dry_run():
      if _STUDENT.value:
        experiment.load_student(_STUDENT.value)
        what = f"student {_STUDENT.value}"
      else:
        _, meta = teachers.load(_GAME.value, _TEACHER_DIR.value)
        what = f"{meta.get('game')} teacher ({meta.get('frames')} frames)"
      cli.say_dry_run(f"would export the {what} as a SavedModel to "
                      f"{_OUT.value}.")
      return
    if _STUDENT.value:
      net = experiment.load_student(_STUDENT.value)
      path = experiment.export_student(net, _OUT.value)
      what = f"student {_STUDENT.value}"
    else:
      net, meta = teachers.load(_GAME.value, _TEACHER_DIR.value)
      path = export_teacher(net, _OUT.value)
      what = (f"{meta.get('game')} teacher ({meta.get('frames')} frames, "
              f"digest {teachers.digest(net)})")
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  print(f"Exported the {what} to {path} (input uint8 [B, 84, 84, 4], output "
        "log_probs [B, A]).")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
