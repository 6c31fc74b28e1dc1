"""Tests of sobolev.experiment.tuning.grid_search (keyed, resumable store)."""

import math
import os

from absl.testing import parameterized
import tensorflow as tf

from sobolev.experiment import files
from sobolev.experiment import tuning

_GRID = [{"learning_rate": 1e-3, "weight": 0.1},
         {"learning_rate": 3e-3, "weight": 0.1},
         {"learning_rate": 1e-2, "weight": 1.0}]
_FIXED = {"method": "sobolev", "fraction": 0.01, "steps": 100,
          "sizes": [64, 64]}


def _score(candidate):
  return abs(math.log10(candidate["learning_rate"]) + 2.5) + candidate[
      "weight"]


class Evaluator:

  def __init__(self, scores=None, fail_at=None):
    self.calls = []
    self._scores = scores or {}
    self._fail_at = fail_at

  def __call__(self, candidate):
    if self._fail_at is not None and len(self.calls) == self._fail_at:
      raise KeyboardInterrupt
    self.calls.append(dict(candidate))
    return self._scores.get(candidate["learning_rate"], _score(candidate))


class GridSearchTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.store = os.path.join(self.create_tempdir().full_path, "tuning.csv")

  def test_evaluates_all_then_reuses_all(self):
    evaluate, seen = Evaluator(), []
    best, trials = tuning.grid_search(
        _GRID, evaluate, store_path=self.store, fixed=_FIXED,
        on_trial=lambda c, s: seen.append((c["learning_rate"], s)))
    self.assertEqual(best, _GRID[1])
    self.assertEqual(evaluate.calls, _GRID)
    self.assertEqual([t["reused"] for t in trials], [False] * 3)
    self.assertEqual([t["score"] for t in trials], [_score(c) for c in _GRID])
    self.assertEqual(seen, [(c["learning_rate"], _score(c)) for c in _GRID])
    rows = files.read_csv(self.store)
    self.assertLen(rows, 3)
    self.assertEqual(rows[0]["method"], "sobolev")
    self.assertEqual(rows[0]["sizes"], "[64, 64]")
    self.assertEqual(float(rows[2]["score"]), _score(_GRID[2]))

    again = Evaluator()
    best2, trials2 = tuning.grid_search(_GRID, again, store_path=self.store,
                                        fixed=dict(reversed(list(
                                            _FIXED.items()))))
    self.assertEqual(again.calls, [])
    self.assertEqual(best2, best)
    self.assertEqual([t["reused"] for t in trials2], [True] * 3)
    self.assertEqual([t["key"] for t in trials2], [t["key"] for t in trials])

  @parameterized.parameters(("steps", 200), ("fraction", 0.05),
                            ("sizes", [64, 32]), ("method", "regular"))
  def test_other_fixed_settings_are_not_reused(self, field, value):
    tuning.grid_search(_GRID, Evaluator(), store_path=self.store,
                       fixed=_FIXED)
    evaluate = Evaluator()
    _, trials = tuning.grid_search(_GRID, evaluate, store_path=self.store,
                                   fixed={**_FIXED, field: value})
    self.assertEqual(evaluate.calls, _GRID)
    self.assertEqual([t["reused"] for t in trials], [False] * 3)
    self.assertLen(files.read_csv(self.store), 6)

  def test_chooses_within_the_current_grid(self):
    # An older grid held a far better trial; it must not win now.
    tuning.grid_search([{"learning_rate": 0.5, "weight": 0.1}],
                       Evaluator(scores={0.5: -100.0}),
                       store_path=self.store, fixed=_FIXED)
    best, trials = tuning.grid_search(_GRID[:1] + _GRID[2:], Evaluator(),
                                      store_path=self.store, fixed=_FIXED)
    self.assertEqual(best, _GRID[0])
    self.assertLen(trials, 2)

  @parameterized.parameters(True, False)
  def test_non_finite_scores_rank_last(self, minimize):
    scores = {1e-3: math.nan, 3e-3: 5.0 if minimize else 1.0,
              1e-2: math.inf if minimize else -math.inf}
    best, trials = tuning.grid_search(_GRID, Evaluator(scores),
                                      store_path=self.store, fixed=_FIXED,
                                      minimize=minimize)
    self.assertEqual(best, _GRID[1])
    self.assertTrue(math.isnan(trials[0]["score"]))
    # Reused NaN trials still rank last.
    best, trials = tuning.grid_search(_GRID, Evaluator(),
                                      store_path=self.store, fixed=_FIXED,
                                      minimize=minimize)
    self.assertEqual(best, _GRID[1])
    self.assertTrue(math.isnan(trials[0]["score"]))

  def test_maximize_picks_the_highest(self):
    best, _ = tuning.grid_search(_GRID, Evaluator(), store_path=self.store,
                                 minimize=False)
    self.assertEqual(best, _GRID[2])

  def test_interrupted_search_resumes_with_the_rest(self):
    with self.assertRaises(KeyboardInterrupt):
      tuning.grid_search(_GRID, Evaluator(fail_at=2), store_path=self.store,
                         fixed=_FIXED)
    self.assertLen(files.read_csv(self.store), 2)
    evaluate = Evaluator()
    _, trials = tuning.grid_search(_GRID, evaluate, store_path=self.store,
                                   fixed=_FIXED)
    self.assertEqual(evaluate.calls, _GRID[2:])
    self.assertEqual([t["reused"] for t in trials], [True, True, False])

  @parameterized.parameters(
      ([], {}, "`candidates` must not be empty"),
      ([{"a": 1}, {"b": 2}], {}, "every candidate must have the fields"),
      ([{"a": 1}], {"a": 2}, r"fields \['a'\] are both tuned and fixed"))
  def test_bad_grids_raise(self, grid, fixed, message):
    with self.assertRaisesRegex(ValueError, message):
      tuning.grid_search(grid, Evaluator(), store_path=self.store,
                         fixed=fixed)


if __name__ == "__main__":
  tf.test.main()
