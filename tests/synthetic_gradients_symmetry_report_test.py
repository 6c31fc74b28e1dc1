"""Proposition 4 on trained runs: `synthetic_gradients.symmetry_report`."""

import dataclasses
import os
import shutil
import tempfile

import tensorflow as tf

from sobolev.experiment import configs
from sobolev.experiment import files
from sobolev.experiment import results
from synthetic_gradients import experiment
from synthetic_gradients import symmetry_report
from synthetic_gradients.configs import digits


def _tiny(**overrides):
  config = digits.get_config()
  config.update(dict(methods="direct,critic,backprop", seeds=1, epochs=1,
                     batch_size=16, widths=(4, 4, 4, 4), image_size=8,
                     num_modules=3, max_train_examples=64,
                     max_test_examples=32, export_saved_model=False))
  config.update(overrides)
  return config


class SymmetryReportTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.config = _tiny()
    experiment.train_and_evaluate(cls.config, cls.root, log=None)
    cls.rows = symmetry_report.report(cls.config, cls.root, num_examples=8,
                                      num_vectors=3, log=None)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_one_row_per_sg_run_and_module(self):
    got = sorted((r.method, r.seed, r.module) for r in self.rows)
    self.assertEqual(got, [(m, 0, k) for m in ("critic", "direct")
                           for k in range(3)])
    self.assertTrue(all(r.num_examples == 8 and r.num_vectors == 3
                        for r in self.rows))

  def test_critic_is_a_gradient_field_direct_is_not(self):
    for r in self.rows:
      self.assertLess(r.true_gradient_asymmetry, 1e-3)
      self.assertGreater(r.jacobian_norm, 0.0)
      if r.method == "critic":
        self.assertLess(r.asymmetry_mean, 1e-3)
      else:
        self.assertGreater(r.asymmetry_mean, 1e-2)
      self.assertBetween(r.cosine, -1.0, 1.0)

  def test_files_written(self):
    rows = results.read(os.path.join(self.root, "symmetry.csv"),
                        symmetry_report.SymmetryRow)
    self.assertLen(rows, len(self.rows))
    with open(os.path.join(self.root, "symmetry.md")) as f:
      text = f.read()
    self.assertIn("| critic | 0 (", text)
    self.assertIn("| direct | 2 (", text)
    self.assertIn("3 SG modules, 1 epochs;", text)  # Paper protocol.
    tuned = [dataclasses.replace(r, tuning="per_method") for r in rows]
    self.assertIn("3 SG modules, 1 epochs, per-method lr;",
                  symmetry_report.markdown_table(tuned))

  def test_settings_come_from_the_workdirs_config_json(self):
    # The preset's defaults differ from the runs' settings: config.json wins;
    # --config.<field> overrides on the command line apply on top.
    preset = digits.get_config()
    got = symmetry_report.workdir_config(self.root, preset, ["prog"])
    self.assertEqual(configs.to_dict(got), files.read_json(
        os.path.join(self.root, "config.json")))
    self.assertEqual(experiment.finished_runs(self.root, got),
                     experiment.finished_runs(self.root, self.config))
    preset.epochs = 7
    got = symmetry_report.workdir_config(
        self.root, preset, ["prog", "--config.epochs=7", "--workdir=x"])
    self.assertEqual(got.epochs, 7)
    self.assertEqual(got.image_size, 8)
    missing = os.path.join(self.root, "nothing")
    self.assertIs(symmetry_report.workdir_config(missing, preset, []), preset)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "num_vectors"):
      symmetry_report.report(self.config, self.root, num_vectors=0, log=None)
    with self.assertRaisesRegex(ValueError, "num_examples"):
      symmetry_report.report(self.config, self.root, num_examples=0, log=None)
    with self.assertRaisesRegex(ValueError, "No finished SG run"):
      symmetry_report.report(_tiny(epochs=2), self.root, log=None)


if __name__ == "__main__":
  tf.test.main()
