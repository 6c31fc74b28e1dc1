"""`benchmarks.compare_runs`: per-model differences between two runs."""

import os
import tempfile

import tensorflow as tf

from benchmarks import compare_runs


def _write(path, rows, header):
  with open(path, "w") as f:
    f.write(",".join(header) + "\n")
    for r in rows:
      f.write(",".join(str(v) for v in r) + "\n")


class CompareRunsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    d = tempfile.mkdtemp()
    self.a = os.path.join(d, "a.csv")
    self.b = os.path.join(d, "b.csv")
    _write(self.a, [("booth", 20, "regular", 0, 100.0),
                    ("booth", 20, "sobolev", 0, 10.0),
                    ("booth", 20, "regular", 1, 1000.0),
                    ("booth", 20, "sobolev", 1, 1.0)],
           ["function", "size", "method", "seed", "test_mse"])
    # A study file: other steps, protocols and D are left out.
    _write(self.b, [("booth", 20, "regular", 0, 4000, "ours", 2, 100.0),
                    ("booth", 20, "sobolev", 0, 4000, "ours", 2, 100.0),
                    ("booth", 20, "regular", 1, 4000, "ours", 2, 1000.0),
                    ("booth", 20, "sobolev", 1, 4000, "ours", 2, 0.1),
                    ("booth", 20, "sobolev", 2, 4000, "ours", 2, 5.0),
                    ("booth", 20, "sobolev", 0, 16000, "ours", 2, 7.0),
                    ("booth", 20, "sobolev", 0, 4000, "raw_l2", 2, 7.0),
                    ("booth", 20, "sobolev", 0, 4000, "ours", 4, 7.0)],
           ["function", "size", "method", "seed", "steps", "protocol", "dim",
            "test_mse"])

  def test_differences_by_hand(self):
    a, b = compare_runs.load(self.a), compare_runs.load(self.b, steps=4000)
    self.assertLen(b, 5)
    diffs = {d.method: d for d in compare_runs.differences(a, b)}
    self.assertEqual((diffs["regular"].models, diffs["regular"].identical),
                     (2, 2))
    self.assertEqual(diffs["regular"].max_abs_dlog10, 0.0)
    s = diffs["sobolev"]  # |log10 10 - log10 100| = 1, |0 - (-1)| = 1.
    self.assertEqual((s.models, s.identical), (2, 0))
    self.assertAllClose([s.median_abs_dlog10, s.max_abs_dlog10], [1.0, 1.0])

  def test_mean_gaps_by_hand(self):
    a, b = compare_runs.load(self.a), compare_runs.load(self.b, steps=4000)
    gaps = compare_runs.mean_gaps(a, b)
    ga, gb, n = gaps[("booth", 20)]
    self.assertEqual(n, 2)
    self.assertAllClose(ga, (1.0 + 3.0) / 2)   # Gaps 1 and 3 in run a.
    self.assertAllClose(gb, (0.0 + 4.0) / 2)   # Gaps 0 and 4 in run b.
    text = compare_runs.markdown("a", "b", compare_runs.differences(a, b),
                                 gaps)
    self.assertIn("| booth | 20 | 2 | +2.00 | +2.00 | +0.00 |", text)

  def test_bad_files(self):
    with self.assertRaisesRegex(ValueError, "No such file"):
      compare_runs.load(self.a + ".none")
    bad = self.a + ".bad"
    _write(bad, [(1, 2)], ["x", "y"])
    with self.assertRaisesRegex(ValueError, "lacks columns"):
      compare_runs.load(bad)


if __name__ == "__main__":
  tf.test.main()
