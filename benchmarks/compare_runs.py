r"""How much do two runs of the same models differ? (machines, kernels, seeds)

    python -m benchmarks.compare_runs --a=docs/benchmarks_results.csv \
        --b=results/study_budget/study.csv --steps=4000 --out=results/compare.md

Reads two per-model CSVs (a sweep's `results.csv` or a study's `study.csv`),
keeps the models present in both (same function, size, method and seed, and
for study rows the given `--steps` and protocol 'ours'; D = 2 only when a
file has no `dim` column), and reports per (size, method): how many models
are bit-identical, the median and largest `|log10 MSE_a - log10 MSE_b|`,
and per (function, size) the mean log10 gap (regular minus Sobolev) over
the common seeds in each run. Nothing is trained.
"""

import collections
import csv
import dataclasses
import math
import os
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from sobolev.experiment import cli

cli.quiet()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from sobolev.experiment import errors
from sobolev.experiment import files
# pylint: enable=g-import-not-at-top,wrong-import-position

Key = Tuple[str, int, str, int]  # (function, size, method, seed)

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  flags.DEFINE_string("a", None, "First per-model CSV.", required=True)
  flags.DEFINE_string("b", None, "Second per-model CSV.", required=True)
  flags.DEFINE_integer("steps", 0, "Keep study rows of these steps (0: all).")
  flags.DEFINE_string("out", "", "Markdown output file (optional).")
  cli.define_dry_run_flag()


@dataclasses.dataclass
class Difference:
  """Per (size, method): how far the common models moved between runs."""
  size: int
  method: str
  models: int
  identical: int
  median_abs_dlog10: float
  max_abs_dlog10: float
  worst: str  # 'function seed k' of the largest change.


def load(path: str, steps: Optional[int] = None,
         protocol: str = "ours") -> Dict[Key, float]:
  """`{(function, size, method, seed): test MSE}` of a per-model CSV.

  Rows of other `steps` (if given and the file has the column), other
  protocols, or input dimension other than 2 (if the file has `dim`) are
  left out.

  Raises:
    ValueError: if the file is missing or lacks the needed columns.
  """
  if not os.path.exists(path):
    raise ValueError(f"No such file: {path!r}.")
  out = {}
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    need = {"function", "size", "method", "seed", "test_mse"}
    if not need <= set(reader.fieldnames or ()):
      raise ValueError(f"{path!r} lacks columns {sorted(need)}.")
    for r in reader:
      if steps is not None and r.get("steps") and int(r["steps"]) != steps:
        continue
      if r.get("protocol") and r["protocol"] != protocol:
        continue
      if r.get("dim") and int(r["dim"]) != 2:
        continue
      key = (r["function"], int(r["size"]), r["method"], int(r["seed"]))
      out[key] = float(r["test_mse"])
  return out


def differences(a: Dict[Key, float], b: Dict[Key, float]) -> List[Difference]:
  """Per (size, method) statistics of the common models' log10 changes."""
  groups = collections.defaultdict(list)
  for k in sorted(set(a) & set(b)):
    d = abs(math.log10(a[k]) - math.log10(b[k]))
    groups[(k[1], k[2])].append((d, f"{k[0]} seed {k[3]}", a[k] == b[k]))
  out = []
  for (size, method), rows in sorted(groups.items()):
    ds = [r[0] for r in rows]
    worst = max(rows, key=lambda r: r[0])
    out.append(Difference(size=size, method=method, models=len(rows),
                          identical=sum(r[2] for r in rows),
                          median_abs_dlog10=float(statistics.median(ds)),
                          max_abs_dlog10=float(max(ds)), worst=worst[1]))
  return out


def mean_gaps(a: Dict[Key, float], b: Dict[Key, float]
              ) -> Dict[Tuple[str, int], Tuple[float, float, int]]:
  """`{(function, size): (mean gap in a, mean gap in b, seeds)}` over the
  seeds with both methods in both runs."""
  seeds = collections.defaultdict(list)
  for f, size, method, seed in set(a) & set(b):
    if method == "regular" and (f, size, "sobolev", seed) in a and (
        f, size, "sobolev", seed) in b:
      seeds[(f, size)].append(seed)
  out = {}
  for (f, size), ss in sorted(seeds.items()):
    def gap(run, s, f=f, size=size):
      return (math.log10(run[(f, size, "regular", s)]) -
              math.log10(run[(f, size, "sobolev", s)]))
    out[(f, size)] = (statistics.mean(gap(a, s) for s in ss),
                      statistics.mean(gap(b, s) for s in ss), len(ss))
  return out


def markdown(a_name: str, b_name: str, diffs: List[Difference],
             gaps: Dict[Tuple[str, int], Tuple[float, float, int]]) -> str:
  lines = [f"# {a_name} vs {b_name}", "",
           "| size | method | common models | bit-identical | median abs "
           "d log10 MSE | max | largest change |", "|---|---|---|---|---|---|---|"]
  for d in diffs:
    lines.append(f"| {d.size} | {d.method} | {d.models} | {d.identical} | "
                 f"{d.median_abs_dlog10:.3f} | {d.max_abs_dlog10:.3f} | "
                 f"{d.worst} |")
  lines += ["", "| function | size | seeds | mean log10 gap (a) | (b) | b - a |",
            "|---|---|---|---|---|---|"]
  for (f, size), (ga, gb, n) in gaps.items():
    lines.append(f"| {f} | {size} | {n} | {ga:+.2f} | {gb:+.2f} | "
                 f"{gb - ga:+.2f} |")
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  steps = FLAGS.steps or None
  try:
    a, b = load(FLAGS.a, steps), load(FLAGS.b, steps)
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  if not set(a) & set(b):
    raise errors.ConfigError("The two files have no model in common.")
  if cli.dry_run():
    cli.say_dry_run(
        f"would compare the {len(set(a) & set(b))} models common to "
        f"{FLAGS.a} and {FLAGS.b}" +
        (f" and write {FLAGS.out}." if FLAGS.out else "."))
    return
  text = markdown(FLAGS.a, FLAGS.b, differences(a, b), mean_gaps(a, b))
  if FLAGS.out:
    files.atomic_write_text(FLAGS.out, text)
  print(text)


if __name__ == "__main__":
  cli.run(main, define_flags)
