"""Tests of sobolev.experiment.results: typed result rows in CSV."""

import dataclasses
import os
from typing import Optional

from absl.testing import parameterized
import tensorflow as tf

from sobolev.experiment import files
from sobolev.experiment import results


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  seed: int
  test_loss: float
  sobolev: bool
  steps: Optional[int]
  best_lr: float | None
  note: str = "none"


_ROWS = [
    Row("booth", 0, 0.125, True, 100, None),
    Row("beale, 2d", 1, float("inf"), False, None, 3e-3, note='say "hi"'),
]


class ResultsTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.path = os.path.join(self.create_tempdir().full_path, "results.csv")

  def test_typed_round_trip(self):
    results.write(self.path, _ROWS)
    back = results.read(self.path, Row)
    self.assertEqual(back, _ROWS)
    self.assertIs(type(back[0].seed), int)
    self.assertIs(type(back[0].test_loss), float)
    self.assertIs(back[0].sobolev, True)
    self.assertIsNone(back[1].steps)
    self.assertIsNone(back[0].best_lr)
    with open(self.path) as f:
      self.assertEqual(f.readline().strip(),
                       "name,seed,test_loss,sobolev,steps,best_lr,note")

  def test_dict_rows_and_missing_file(self):
    self.assertEqual(results.read(self.path, Row), [])
    results.write(self.path, [dataclasses.asdict(r) for r in _ROWS])
    self.assertEqual(results.read(self.path, Row), _ROWS)

  def test_missing_column_with_a_default_uses_it(self):
    files.write_csv(self.path, [{"name": "a", "seed": 1, "test_loss": 0.5,
                                 "sobolev": "1", "steps": "",
                                 "best_lr": "0.1"}])
    self.assertEqual(results.read(self.path, Row),
                     [Row("a", 1, 0.5, True, None, 0.1)])

  def test_missing_required_column_raises_naming_it(self):
    files.write_csv(self.path, [{"name": "a", "seed": 1}])
    with self.assertRaisesRegex(ValueError, "results.csv: no column "
                                "'test_loss'"):
      results.read(self.path, Row)

  @parameterized.parameters(
      ("seed", "1.5", "row 2, field 'seed'"),
      ("seed", "", "row 2, field 'seed'"),
      ("test_loss", "fast", "row 2, field 'test_loss'"),
      ("sobolev", "yes", "row 2, field 'sobolev': not a bool: 'yes'"),
      ("steps", "x", "row 2, field 'steps'"),
      ("best_lr", "1e-3?", "row 2, field 'best_lr'"),
  )
  def test_conversion_error_names_row_and_field(self, field, bad, message):
    results.write(self.path, _ROWS)
    rows = files.read_csv(self.path)
    rows[1][field] = bad
    files.write_csv(self.path, rows)
    with self.assertRaisesRegex(ValueError, "results.csv: " + message):
      results.read(self.path, Row)

  def test_non_dataclass_raises(self):
    with self.assertRaisesRegex(TypeError, "`row_type` must be a dataclass"):
      results.read(self.path, dict)


if __name__ == "__main__":
  tf.test.main()
