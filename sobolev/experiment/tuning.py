"""Grid search with a resumable store of trials keyed by their settings.

    best, trials = tuning.grid_search(
        [{"learning_rate": 1e-3}, {"learning_rate": 3e-3}],
        evaluate=lambda c: validation_loss(**c),
        store_path=os.path.join(workdir, "tuning.csv"),
        fixed={"method": "regular", "train_fraction": 0.01, "steps": 1000})

A trial's key hashes the candidate *and* the `fixed` settings, so a trial
is reused only for the same settings. The best is chosen within the current
grid only; a non-finite score (a diverged trial) ranks last.
"""

import math
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

from sobolev.experiment import configs
from sobolev.experiment import files


def grid_search(candidates: Sequence[Mapping[str, Any]],
                evaluate: Callable[[Mapping[str, Any]], float], *,
                store_path: str, fixed: Mapping[str, Any] = None,
                minimize: bool = True,
                on_trial: Callable[[Mapping[str, Any], float], None] = None
                ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
  """Evaluates every candidate not yet in the store; returns the best.

  Args:
    candidates: the grid, one dict of settings per trial (same keys each).
    evaluate: candidate -> score (float; NaN/inf for a diverged trial).
    store_path: CSV file of finished trials (`key`, settings, `score`).
    fixed: settings shared by all trials that a trial's score depends on.
    minimize: lower scores are better (else higher).
    on_trial: called with (candidate, score) after each new trial.

  Returns:
    `(best_candidate, trials)`: the best candidate of this grid and one row
    per candidate (its fields, `key`, `score`, `reused`).

  Raises:
    ValueError: for an empty grid or candidates with different fields.
  """
  if not candidates:
    raise ValueError("`candidates` must not be empty.")
  fields = sorted(candidates[0])
  for c in candidates:
    if sorted(c) != fields:
      raise ValueError(f"every candidate must have the fields {fields}, got "
                       f"{sorted(c)}.")
  fixed = dict(fixed or {})
  overlap = set(fields) & set(fixed)
  if overlap:
    raise ValueError(f"fields {sorted(overlap)} are both tuned and fixed.")
  stored = {r["key"]: r for r in files.read_csv(store_path)}
  trials = []
  for candidate in candidates:
    settings = {**fixed, **candidate}
    key = configs.settings_hash(settings)
    if key in stored:
      score, reused = float(stored[key]["score"]), True
    else:
      score, reused = float(evaluate(dict(candidate))), False
      row = {"key": key, **{k: _cell(v) for k, v in settings.items()},
             "score": score}
      files.append_csv(store_path, [row], fields=list(row))
      if on_trial is not None:
        on_trial(candidate, score)
    trials.append({**candidate, "key": key, "score": score, "reused": reused})

  def rank(trial):
    s = trial["score"]
    return (s if minimize else -s) if math.isfinite(s) else math.inf

  best = min(trials, key=rank)
  return {k: best[k] for k in fields}, trials


def _cell(value: Any) -> Any:
  if isinstance(value, (list, tuple, dict)):
    return repr(configs.to_dict({"v": value})["v"])
  return value
