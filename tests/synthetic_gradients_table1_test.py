"""`synthetic_gradients.table1`: orderings by hand, and files from real runs."""

import dataclasses
import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from sobolev.experiment import results
from synthetic_gradients import experiment
from synthetic_gradients import reporting
from synthetic_gradients import symmetry_report
from synthetic_gradients import table1
from synthetic_gradients.configs import digits


def _row(method, seed, acc, modules=3, wall=10.0):
  return experiment.Row(dataset="d", method=method, seed=seed,
                        test_accuracy=acc, test_top5=1.0, train_ce=0.1,
                        epochs=2, num_modules=modules, wall_s=wall)


class OrderingsTest(tf.test.TestCase):

  def test_paired_differences_by_hand(self):
    rows = [_row("noprop", 0, 0.50), _row("noprop", 1, 0.60),
            _row("noprop", 2, 0.55),
            _row("direct", 0, 0.70), _row("direct", 1, 0.72),
            _row("direct", 2, 0.71),
            _row("vfbn", 0, 0.69), _row("vfbn", 1, 0.73),
            _row("vfbn", 2, 0.71)]
    got = {o.claim: o for o in table1.orderings(rows)}
    self.assertCountEqual(got, ["noprop < direct", "direct < vfbn"])
    o = got["noprop < direct"]
    diffs = np.array([20.0, 12.0, 16.0])  # Points, per seed.
    self.assertAllClose(o.mean_difference, diffs.mean())
    half = 4.3026527297 * diffs.std(ddof=1) / np.sqrt(3)  # t(2) 97.5%.
    self.assertAllClose([o.low, o.high],
                        [diffs.mean() - half, diffs.mean() + half])
    self.assertEqual((o.seeds_holding, o.seeds, o.verdict), (3, 3, "holds"))
    o = got["direct < vfbn"]  # Differences -1, +1, 0: not resolved.
    self.assertAllClose(o.mean_difference, 0.0, atol=1e-9)
    self.assertEqual((o.seeds_holding, o.verdict), (1, "not resolved"))

  def test_reversed_and_non_strict(self):
    rows = [_row("critic", s, 0.9) for s in range(3)]
    rows += [_row("sobolev", 0, 0.9), _row("sobolev", 1, 0.9),
             _row("sobolev", 2, 0.9)]
    rows += [_row("backprop", 0, 0.80), _row("backprop", 1, 0.81),
             _row("backprop", 2, 0.79)]
    got = {o.claim: o for o in table1.orderings(rows)}
    self.assertEqual(got["critic <= sobolev"].seeds_holding, 3)  # Ties hold.
    self.assertEqual(got["sobolev <= backprop"].verdict, "reversed")

  def test_gap_widening_and_timing(self):
    rows = [_row("noprop", 0, 0.8, 3), _row("backprop", 0, 0.9, 3, 20.0),
            _row("noprop", 0, 0.85, 1, 5.0), _row("backprop", 0, 0.9, 1)]
    lines = table1.gap_widening(rows)
    self.assertLen(lines, 1)
    self.assertIn("+5.00 points with 1 module, +10.00 points with 3 modules",
                  lines[0])
    self.assertIn("wider with 3 modules", lines[0])
    text = table1.timing_table(rows)
    self.assertIn("| noprop | 10 s (0.5x) | 5 s (0.5x) |", text)


class PlotTest(tf.test.TestCase):

  def test_panels_and_curves_follow_the_setting_not_the_key(self):
    """A per-method run at the backprop-tuned rate shares its key with the
    paper-protocol run; its curve must not appear in the protocol panel,
    and a setting without histories (a results table) gets no panel."""
    protocol = [dataclasses.replace(_row("vfbn", s, 0.9), key=f"k{s}")
                for s in range(2)]
    tuned = [dataclasses.replace(r, tuning="per_method") for r in protocol]
    table_only = [dataclasses.replace(_row("vfbn", 0, 0.8, modules=1),
                                      key="m1")]
    histories = {(reporting.setting(r), r.key): [0.5, 0.9] for r in tuned}
    drawn = []
    path = os.path.join(self.get_temp_dir(), "c.png")
    with mock.patch.object(reporting, "draw_curves",
                           lambda ax, curves, label, **_: drawn.append(
                               (label, {m: len(c) for m, c in
                                        curves.items()}))):
      table1.plot(protocol + tuned + table_only, histories, path)
    self.assertEqual(drawn, [("d, 3 SG modules, per-method lr", {"vfbn": 2})])
    self.assertTrue(os.path.exists(path))
    os.remove(path)
    drawn.clear()
    with mock.patch.object(reporting, "draw_curves",
                           lambda ax, curves, label, **_: drawn.append(
                               (label, dict(curves)))):
      table1.plot(protocol, {}, path)  # No histories: empty panels, a file.
    self.assertEqual(drawn, [("d, 3 SG modules", {})])
    self.assertTrue(os.path.exists(path))


class WriteTest(tf.test.TestCase):
  """Two tiny real workdirs (1 and 3 SG modules) combined."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.workdirs = []
    for modules in (3, 1):
      config = digits.get_config()
      config.update(dict(methods="direct,backprop", seeds=2, epochs=2,
                         batch_size=16, widths=(4, 4, 4, 4), image_size=8,
                         num_modules=modules, max_train_examples=48,
                         max_test_examples=32, export_saved_model=False))
      w = os.path.join(cls.root, f"m{modules}")
      experiment.train_and_evaluate(config, w, log=None)
      symmetry_report.report(config, w, num_examples=4, num_vectors=2,
                             log=None)
      cls.workdirs.append(w)
    cls.out = os.path.join(cls.root, "out")
    cls.result = table1.write(cls.workdirs, cls.out, "t1")

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_files(self):
    rows = results.read(os.path.join(self.out, "t1_results.csv"),
                        experiment.Row)
    self.assertLen(rows, 8)  # 2 settings x 2 methods x 2 seeds.
    self.assertTrue(os.path.getsize(os.path.join(self.out, "t1_curves.png")))
    with open(os.path.join(self.out, "t1_results.md")) as f:
      text = f.read()
    self.assertIn("| ours: digits, 3 SG modules |", text)
    self.assertIn("| ours: digits, 1 SG modules |", text)
    self.assertIn("Proposition 4", text)
    self.assertIn("| cifar10, 3 SG modules | 54.5 +- 1.15 | 79.2 +- 0.01 |",
                  text)  # The paper's rows, for reference.
    self.assertIn("| direct | 2 (", text)  # Third module of the 3-module run.
    self.assertIn("Training wall time per run (2 epochs", text)
    self.assertLen(self.result["symmetry"], 8)  # (3 + 1 modules) x 2 seeds.

  def test_a_results_csv_joins_without_curves(self):
    out = os.path.join(self.root, "out_csv")
    csv_path = os.path.join(self.workdirs[1], "results.csv")
    got = table1.write([self.workdirs[0], csv_path], out, "t2")
    self.assertLen(got["rows"], 8)
    self.assertLen(got["symmetry"], 6)  # Only the workdir's (3 x 2 seeds).
    with open(os.path.join(out, "t2_results.md")) as f:
      self.assertIn("| ours: digits, 1 SG modules |", f.read())
    with self.assertRaisesRegex(ValueError, "no file"):
      table1.write([self.workdirs[0], csv_path + ".missing.csv"], out, "t3")

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "workdirs"):
      table1.write([], self.out, "x")
    with self.assertRaisesRegex(ValueError, "prefix"):
      table1.write(self.workdirs, self.out, "a/b")
    with self.assertRaisesRegex(ValueError, "results.csv"):
      table1.write([self.out + "/none"], self.out, "x")
    with self.assertRaisesRegex(ValueError, "twice"):
      table1.write(self.workdirs[:1] * 2, self.out, "x")


if __name__ == "__main__":
  tf.test.main()
