"""Tests of a command that measures one table (`sobolev.experiment.tables`)."""

import dataclasses
import os

import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import locks
from sobolev.experiment import results
from sobolev.experiment import tables


@dataclasses.dataclass
class Row:
  variant: str
  median_us: float


def _measure(config):
  return [Row("a", 1.5 * config["scale"]), Row("b", 2.0 * config["scale"])]


def _markdown(rows, config):
  return f"# {config['scale']}\n" + "".join(
      f"| {r.variant} | {r.median_us} |\n" for r in rows)


class MeasureIntoTest(tf.test.TestCase):

  def test_writes_csv_markdown_and_provenance(self):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    rows = tables.measure_into(workdir, {"scale": 2, "tf_threads": 1},
                               _measure, _markdown)
    self.assertEqual(rows, [Row("a", 3.0), Row("b", 4.0)])
    self.assertEqual(results.read(os.path.join(workdir, "speed.csv"), Row),
                     rows)
    with open(os.path.join(workdir, "speed.md")) as f:
      self.assertEqual(f.read(), "# 2\n| a | 3.0 |\n| b | 4.0 |\n")
    record = files.read_json(os.path.join(workdir, "provenance.json"))
    self.assertEqual(record["invocations"][-1]["status"], "finished")
    self.assertFalse(locks.holds(workdir))
    # `tf_threads` may change; other settings are refused, or kept apart.
    tables.measure_into(workdir, {"scale": 2, "tf_threads": 4}, _measure,
                        _markdown)
    with self.assertRaises(errors.WorkdirMismatchError):
      tables.measure_into(workdir, {"scale": 3, "tf_threads": 1}, _measure,
                          _markdown)
    tables.measure_into(workdir, {"scale": 3, "tf_threads": 1}, _measure,
                        _markdown, name="profile", if_different="separate")
    sets = os.listdir(os.path.join(workdir, "sets"))
    self.assertLen(sets, 1)
    self.assertTrue(os.path.exists(os.path.join(workdir, "sets", sets[0],
                                                "profile.csv")))


if __name__ == "__main__":
  tf.test.main()
