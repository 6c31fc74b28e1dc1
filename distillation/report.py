r"""Rebuilds results.md and figure4.png from a results.csv.

Usage:
  python -m distillation.report --results=docs/distillation_breakout_results.csv \
      --markdown=docs/distillation_breakout_results.md \
      --figure=docs/distillation_breakout_figure4.png

The table's note (teacher and settings) is kept from the existing markdown
file unless `--note` is given; the figure's title names the committed
teacher of the game. Tables and figure bands use the sample std (ddof=1),
the convention of `sobolev.experiment.stats`.
"""

from sobolev.experiment import cli
from sobolev.experiment import errors

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
import dataclasses
import os
from typing import Sequence

from absl import flags
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when run as a program)."""
  flags.DEFINE_string("results", None, "results.csv to read.")
  flags.DEFINE_string("markdown", None, "Markdown table to write.")
  flags.DEFINE_string("figure", None, "Figure 4 PNG to write.")
  flags.DEFINE_string(
      "note", None, "The table's note (default: the existing file's).")
  flags.mark_flag_as_required("results")
  cli.define_dry_run_flag()


def existing_note(path: str):
  """The note paragraph (third line) of a table written by `reporting`."""
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  if len(lines) > 2 and lines[0].startswith("# ") and lines[2] and (
      not lines[2].startswith("Test metrics")):
    return lines[2]
  return None


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  from distillation import reporting  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import files  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import results  # pylint: disable=g-import-not-at-top
  if not os.path.exists(FLAGS.results):
    raise errors.ConfigError(f"`--results`: no file {FLAGS.results}.")
  rows = [dataclasses.asdict(r) for r in
          results.read(FLAGS.results, experiment.Row)]
  if not rows:
    raise errors.ConfigError(f"`--results`: {FLAGS.results} has no rows.")
  game = rows[0]["game"]
  if cli.dry_run():
    if FLAGS.figure:  # The figure's title names the committed teacher.
      try:
        teachers.load(game)
      except ValueError as e:
        raise errors.ConfigError(str(e)) from None
    outputs = [p for p in (FLAGS.markdown, FLAGS.figure) if p]
    cli.say_dry_run(
        f"would write {' and '.join(outputs) or 'nothing'} from the "
        f"{len(rows)} rows ({game}) of {FLAGS.results}.")
    return
  if FLAGS.markdown:
    note = FLAGS.note or existing_note(FLAGS.markdown)
    files.atomic_write_text(FLAGS.markdown,
                            reporting.markdown_table(rows, game, note))
    print(f"Wrote {FLAGS.markdown}")
  if FLAGS.figure:
    meta = teachers.load(game)[1]
    score = meta.get("eval_mean_return")
    title = (f"{game} policy distillation (teacher: {meta.get('frames')} "
             f"frames{'' if score is None else f', score {score:.1f}'})")
    reporting.plot_figure4(rows, FLAGS.figure, title)
    print(f"Wrote {FLAGS.figure}")


if __name__ == "__main__":
  cli.run(main, define_flags)
