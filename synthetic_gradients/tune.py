r"""Per-method learning-rate tuning for Table 1, on the validation split.

    python -m synthetic_gradients.tune \
        --config=synthetic_gradients/configs/fashion_mnist_tuning.py \
        --workdir=results/sg_tuning

For every method of `config.methods` and every rate of
`config.learning_rates` (the same trials for every method), trains one run
of `config.model` (seed `config.seed`, its `eval_split` must be
'validation') with `synthetic_gradients.experiment.train_and_evaluate` into
`<workdir>/trials/lr_<rate>/` and scores it by its validation accuracy. The
trials are recorded in `<workdir>/tuning.csv` (`sobolev.experiment.tuning`,
keyed by every setting the score depends on); rerunning resumes: recorded
trials are reused, an interrupted run continues from its checkpoint. A
diverged trial scores NaN and ranks last. Writes

* `tuning.md`: validation accuracy per method and rate, the best in bold;
* `tuned.json`: `{method: best rate}` and the `method_learning_rates`
  string that a per-method-tuned preset (`configs/fashion_mnist_tuned.py`)
  sets;
* `provenance.json`.
"""

import copy
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence

from sobolev.experiment import cli

if __name__ == "__main__":
  cli.quiet()  # Before TensorFlow is imported (not when imported).

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import provenance
from sobolev.experiment import tuning
from sobolev.experiment import workdirs
from synthetic_gradients import data
from synthetic_gradients import decoupled
from synthetic_gradients import experiment
# pylint: enable=g-import-not-at-top,wrong-import-position

Log = Optional[experiment.Log]


def methods(config: Any) -> tuple:
  return configs.split_names("methods", config.methods)


def rates(config: Any) -> List[float]:
  return [float(r) for r in tuple(config.learning_rates)]


def check(config: Any) -> None:
  """Raises `errors.ConfigError` naming the first bad setting."""
  configs.check_finite(config)
  names = methods(config)
  if not names:
    raise errors.ConfigError("`methods` must name at least one method.")
  for m in names:
    configs.check_choice("methods", m, decoupled.METHODS)
  grid = rates(config)
  if not grid:
    raise errors.ConfigError("`learning_rates` must list at least one rate.")
  for i, r in enumerate(grid):
    configs.check_number(f"learning_rates[{i}]", r, 0, low_inclusive=False)
  if len(set(grid)) != len(grid):
    raise errors.ConfigError(f"`learning_rates` has duplicates: {grid}.")
  configs.check_int("seed", config.seed, 0)
  if config.model.eval_split != "validation":
    raise errors.ConfigError(
        "`model.eval_split` must be 'validation' (tuning never looks at the "
        f"test set), got {config.model.eval_split!r}.")
  if "method_learning_rates" in config.model:
    raise errors.ConfigError("`model` must be a preset with one "
                             "`learning_rate` (no `method_learning_rates`).")
  # Every method at once: a setting one method cannot take (e.g. an SG
  # method without modules) is refused before any trial runs.
  experiment.check(trial_config(config, ",".join(names), grid[0]))


def trial_config(config: Any, method: str, rate: float) -> Any:
  """The `synthetic_gradients.run` config of one trial."""
  out = copy.deepcopy(config.model)
  with out.unlocked():
    out.methods = method
    out.learning_rate = float(rate)
    out.seeds = 1
    out.first_seed = int(config.seed)
  return out


def trial_dir(workdir: str, rate: float) -> str:
  return os.path.join(workdir, "trials", f"lr_{rate:g}")


def _fixed(config: Any, method: str) -> Dict[str, Any]:
  """What a trial's score depends on besides its rate (the store key)."""
  settings = experiment.unit_settings(
      trial_config(config, method, rates(config)[0]), method, config.seed)
  del settings["learning_rate"]
  return {"method": method, "epochs": int(config.model.epochs),
          "seed": int(config.seed),
          "settings": configs.settings_hash(settings)}


def plan(config: Any, workdir: str) -> str:
  """Checks the settings and the data; says what `tune` would do."""
  check(config)
  source = data.check_available(config.model.dataset,
                                data_dir=config.model.data_dir,
                                download=config.model.download)
  return (f"would tune {', '.join(methods(config))} over learning rates "
          f"{', '.join(f'{r:g}' for r in rates(config))} "
          f"({len(methods(config)) * len(rates(config))} trials of "
          f"{config.model.epochs} epochs, seed {config.seed}, validation "
          f"split) on {source}, into {workdir} (recorded trials are reused).")


def tune(config: Any, workdir: str, *, if_different: str = "refuse",
         log: Log = print, checked: bool = False) -> Dict[str, Any]:
  """Runs the missing trials; writes `tuning.csv`, `tuning.md`, `tuned.json`.

  Args:
    config: the tuning config (`configs/fashion_mnist_tuning.py`).
    workdir: output directory.
    if_different: 'refuse', 'fresh' or 'separate' (`workdirs`).
    log: printer of progress lines (None: quiet).
    checked: `check(config)` already ran (as the command line does).

  Returns:
    `{'best': {method: rate}, 'trials': {method: [trial rows]}}`.

  Raises:
    errors.ConfigError: for a bad setting (before anything is written).
    errors.WorkdirMismatchError: if the workdir holds another tuning.
  """
  if not checked:
    check(config)
  say = log or (lambda _: None)
  with workdirs.opened(workdir, config, ignore=("methods", "learning_rates"),
                       if_different=if_different) as opened, \
      provenance.recorded(opened, config, statuses={
          errors.UserError: lambda e: f"failed: {e}"}):
    best, trials = {}, {}
    for method in methods(config):
      chosen, rows = tuning.grid_search(
          [{"learning_rate": r} for r in rates(config)],
          evaluate=lambda c, m=method: _trial(config, m, c["learning_rate"],
                                              opened, say),
          store_path=os.path.join(opened, "tuning.csv"),
          fixed=_fixed(config, method), minimize=False)
      best[method], trials[method] = chosen["learning_rate"], rows
      say(f"{method}: best learning rate {best[method]:g} ("
          + ", ".join(f"{t['learning_rate']:g}: {_percent(t['score'])}"
                      for t in rows) + ")")
    _write(opened, config, best, trials)
  return {"best": best, "trials": trials}


def _trial(config: Any, method: str, rate: float, workdir: str,
           say: Any) -> float:
  """Trains one trial; its validation accuracy (NaN if it diverged)."""
  say(f"trial {method} at learning rate {rate:g}")
  try:
    rows = experiment.train_and_evaluate(
        trial_config(config, method, rate), trial_dir(workdir, rate), log=say)
  except errors.DivergenceError as e:
    say(f"  diverged: {e}")
    return math.nan
  return float(rows[0].test_accuracy)


def _percent(score: float) -> str:
  return f"{score * 100:.2f}%" if math.isfinite(score) else "diverged"


def method_learning_rates(best: Dict[str, float]) -> str:
  """`{method: rate}` as a preset's `method_learning_rates` string."""
  return ",".join(f"{m}={r:g}" for m, r in best.items())


def _write(workdir: str, config: Any, best: Dict[str, float],
           trials: Dict[str, List[Dict[str, Any]]]) -> None:
  grid = rates(config)
  lines = [
      "# Per-method learning-rate tuning (validation accuracy, %)", "",
      f"{config.model.dataset}, {config.model.num_modules} SG modules, "
      f"{config.model.epochs} epochs, seed {config.seed}; one trial per "
      "cell, scored on the validation split "
      f"({config.model.validation_size} held-out training examples). "
      "Best per method in bold; the learning rate is the only knob, the "
      "same grid for every method.", "",
      "| method | " + " | ".join(f"{r:g}" for r in grid) + " |",
      "|---|" + "---|" * len(grid)]
  for method, rows in trials.items():
    score = {t["learning_rate"]: t["score"] for t in rows}
    cells = [(f"**{_percent(score[r])}**" if r == best[method]
              else _percent(score[r])) for r in grid]
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  text = method_learning_rates(best)
  lines += ["", f"`method_learning_rates = \"{text}\"`", ""]
  files.atomic_write_text(os.path.join(workdir, "tuning.md"),
                          "\n".join(lines))
  files.atomic_write_text(
      os.path.join(workdir, "tuned.json"),
      json.dumps({"best": best, "method_learning_rates": text}, indent=2)
      + "\n")


_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "fashion_mnist_tuning.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "The tuning grid and the preset "
                         "its trials train.", lock_config=True)
  cli.define_workdir_flags(default="./results/sg_tuning")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # No TensorFlow INFO lines.
  if cli.dry_run():
    cli.say_dry_run(plan(FLAGS.config, FLAGS.workdir))
    return
  check(FLAGS.config)
  out = tune(FLAGS.config, FLAGS.workdir, if_different=cli.if_different(),
             checked=True)
  print(f"tuned: {method_learning_rates(out['best'])}; "
        f"{FLAGS.workdir}/tuning.md")


if __name__ == "__main__":
  cli.run(main, define_flags)
