r"""Protocol tuning on VALIDATION data (never the test set).

Trains regular and Sobolev models with candidate protocol settings on
training sets drawn with tuning seeds (100, 101, ...; the sweep uses 0, 1,
...) and scores them on the validation sets of `benchmarks.data` (a separate
uniform draw). Results are appended to `<workdir>/tuning.csv` (resumable:
finished (candidate, size, method) groups are skipped) and summarised in
`<workdir>/tuning.md`: mean over functions of log10 validation MSE, per
candidate, size and method. PROTOCOL.md records what was tried.

  python -m benchmarks.tune --candidates=base,lr1e-3 --sizes=20,100
"""

import csv
import dataclasses
import os
import time
from typing import Dict, List

from absl import app
from absl import flags
import numpy as np

from benchmarks import config as config_lib
from benchmarks import data
from benchmarks import functions
from benchmarks import trainer

# The tuning reference ("base"); candidates override some of its fields.
# Fixed here (not the sweep defaults) so the candidates keep their meaning.
_BASE = config_lib.Config(steps=5000, learning_rate=3e-3,
                          final_lr_fraction=0.01, batch_size=100,
                          grad_weight=1.0, normalize_grad_weight=True)

# Candidate protocols (field overrides of `Config`).
CANDIDATES: Dict[str, Dict] = {
    # Unit weight, no normalisation, constant learning rate.
    "naive": dict(learning_rate=1e-3, final_lr_fraction=1.0, steps=5000,
                  normalize_grad_weight=False, grad_weight=1.0),
    "base": dict(),
    "raw_w1": dict(normalize_grad_weight=False, grad_weight=1.0),
    "raw_w0.01": dict(normalize_grad_weight=False, grad_weight=0.01),
    "nw0.3": dict(grad_weight=0.3),
    "nw3": dict(grad_weight=3.0),
    "nw0.1": dict(grad_weight=0.1),
    "nw0.3_lr1e-2": dict(grad_weight=0.3, learning_rate=1e-2),
    "nw0.3_steps4000": dict(grad_weight=0.3, steps=4000),
    "lr1e-3": dict(learning_rate=1e-3),
    "lr1e-2": dict(learning_rate=1e-2),
    "steps3000": dict(steps=3000),
    "steps4000": dict(steps=4000),
    "final0.1": dict(final_lr_fraction=0.1),
}
# Fields that only affect Sobolev models: candidates differing from another
# only in these share that candidate's regular models.
_SOBOLEV_ONLY = ("grad_weight", "normalize_grad_weight")


def _regular_key(cfg: config_lib.Config):
  fields = dataclasses.asdict(cfg)
  for f in _SOBOLEV_ONLY:
    fields.pop(f)
  return tuple(sorted((k, str(v)) for k, v in fields.items()))


FIELDS = ["candidate", "function", "size", "method", "seed", "val_mse",
          "val_grad_mse", "train_seconds"]

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags.

  Called only when the module runs as a program: the CLIs share flag names,
  so importing the module must not define them.
  """
  flags.DEFINE_list("candidates", ["naive", "base"],
                    f"Candidates: {', '.join(CANDIDATES)}.")
  flags.DEFINE_list("sizes", ["20", "100"], "Training-set sizes.")
  flags.DEFINE_integer("seeds", 1, "Tuning seeds (100, 101, ...).")
  flags.DEFINE_string("workdir", "./results/tuning", "Output dir.")


def _read(path: str) -> List[Dict[str, str]]:
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _write(path: str, rows: List[Dict]) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=FIELDS)
    w.writeheader()
    w.writerows(rows)
  os.replace(tmp, path)


def summary(rows: List[Dict]) -> str:
  """Markdown: mean over functions and seeds of log10 val MSE."""
  keys = sorted({(r["candidate"], int(r["size"])) for r in rows},
                key=lambda k: (k[1], k[0]))
  names = list(functions.NAMES)
  lines = [
      "| candidate | size | method | mean log10 val MSE | mean log10 val "
      "grad MSE | " + " | ".join(names) + " |",
      "|" + "---|" * (5 + len(names))
  ]
  for cand, size in keys:
    for method in config_lib.METHODS:
      sel = [r for r in rows if r["candidate"] == cand and
             int(r["size"]) == size and r["method"] == method]
      if not sel:
        continue
      per_fn = []
      for name in names:
        vals = [np.log10(float(r["val_mse"])) for r in sel
                if r["function"] == name]
        per_fn.append(f"{np.mean(vals):.2f}" if vals else "-")
      mse = np.mean([np.log10(float(r["val_mse"])) for r in sel])
      gmse = np.mean([np.log10(float(r["val_grad_mse"])) for r in sel])
      lines.append(f"| {cand} | {size} | {method} | {mse:.2f} | {gmse:.2f} | " +
                   " | ".join(per_fn) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  os.makedirs(FLAGS.workdir, exist_ok=True)
  path = os.path.join(FLAGS.workdir, "tuning.csv")
  rows = _read(path)
  sizes = [int(s) for s in FLAGS.sizes]
  seeds = [100 + i for i in range(FLAGS.seeds)]
  for cand in FLAGS.candidates:
    if cand not in CANDIDATES:
      raise ValueError(f"Unknown candidate {cand!r}.")
    cfg = dataclasses.replace(_BASE, **CANDIDATES[cand])
    for size in sizes:
      for method in config_lib.METHODS:
        if any(r["candidate"] == cand and int(r["size"]) == size and
               r["method"] == method for r in rows):
          continue
        if method == "regular":
          twin = [c for c in CANDIDATES if c != cand and _regular_key(
              dataclasses.replace(_BASE, **CANDIDATES[c])) == _regular_key(
                  cfg) and any(r["candidate"] == c and int(r["size"]) == size
                               and r["method"] == method for r in rows)]
          if twin:  # Same regular protocol already trained: reuse it.
            rows.extend(dict(r, candidate=cand) for r in list(rows)
                        if r["candidate"] == twin[0] and
                        int(r["size"]) == size and r["method"] == method)
            _write(path, rows)
            continue
        runs = [trainer.Run(f, size, method, s) for f in functions.NAMES
                for s in seeds]
        t0 = time.time()
        group = trainer.train_group(runs, cfg)
        res = trainer.evaluate(
            group, [data.validation_set(r.function, r.seed) for r in runs])
        for r, (mse, gmse) in zip(runs, res):
          rows.append(dict(candidate=cand, function=r.function, size=size,
                           method=method, seed=r.seed, val_mse=mse,
                           val_grad_mse=gmse,
                           train_seconds=group.seconds / len(runs)))
        _write(path, rows)
        print(f"{cand} size={size} {method}: {time.time() - t0:.0f}s, mean "
              f"log10 val MSE "
              f"{np.mean([np.log10(m) for m, _ in res]):.2f}", flush=True)
  with open(os.path.join(FLAGS.workdir, "tuning.md"), "w") as f:
    f.write(summary(rows))
  print(summary(rows))


if __name__ == "__main__":
  define_flags()
  app.run(main)
