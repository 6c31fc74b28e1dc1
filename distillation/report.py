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

from absl import flags
# pylint: enable=g-import-not-at-top,wrong-import-position

_RESULTS = None
_MARKDOWN = None
_FIGURE = None
_NOTE = None


def define_flags() -> None:
  """Defines this program's flags (only when run as a program)."""
  global _RESULTS, _MARKDOWN, _FIGURE, _NOTE
  _RESULTS = flags.DEFINE_string("results", None, "results.csv to read.")
  _MARKDOWN = flags.DEFINE_string("markdown", None, "Markdown table to write.")
  _FIGURE = flags.DEFINE_string("figure", None, "Figure 4 PNG to write.")
  _NOTE = flags.DEFINE_string(
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


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"Unexpected arguments: {argv[1:]}")
  from distillation import experiment  # pylint: disable=g-import-not-at-top
  from distillation import reporting  # pylint: disable=g-import-not-at-top
  from distillation import teachers  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import files  # pylint: disable=g-import-not-at-top
  from sobolev.experiment import results  # pylint: disable=g-import-not-at-top
  if not os.path.exists(_RESULTS.value):
    raise errors.ConfigError(f"`--results`: no file {_RESULTS.value}.")
  rows = [dataclasses.asdict(r) for r in
          results.read(_RESULTS.value, experiment.Row)]
  if not rows:
    raise errors.ConfigError(f"`--results`: {_RESULTS.value} has no rows.")
  game = rows[0]["game"]
  if cli.dry_run():
    if _FIGURE.value:  # The figure's title names the committed teacher.
      try:
        teachers.load(game)
      except ValueError as e:
        raise errors.ConfigError(str(e)) from None
    outputs = [p for p in (_MARKDOWN.value, _FIGURE.value) if p]
    cli.say_dry_run(
        f"would write {' and '.join(outputs) or 'nothing'} from the "
        f"{len(rows)} rows ({game}) of {_RESULTS.value}.")
    return
  if _MARKDOWN.value:
    note = _NOTE.value or existing_note(_MARKDOWN.value)
    files.atomic_write_text(_MARKDOWN.value,
                            reporting.markdown_table(rows, game, note))
    print(f"Wrote {_MARKDOWN.value}")
  if _FIGURE.value:
    meta = teachers.load(game)[1]
    score = meta.get("eval_mean_return")
    title = (f"{game} policy distillation (teacher: {meta.get('frames')} "
             f"frames{'' if score is None else f', score {score:.1f}'})")
    reporting.plot_figure4(rows, _FIGURE.value, title)
    print(f"Wrote {_FIGURE.value}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
