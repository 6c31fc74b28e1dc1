"""End-to-end smoke tests: digits, mock CIFAR-10, mock ImageNet ResNet-50, CLI."""

import csv
import os
import tempfile

from absl.testing import parameterized
import tensorflow as tf
import tensorflow_datasets as tfds

from synthetic_gradients import config as config_lib
from synthetic_gradients import experiment
from synthetic_gradients import networks
from synthetic_gradients import run


def _tiny(**kwargs) -> config_lib.Config:
  base = dict(dataset="digits", methods=("sobolev",), seeds=1, epochs=1,
              batch_size=16, widths=(4, 4, 4, 4), image_size=8,
              max_train_examples=48, max_test_examples=32)
  base.update(kwargs)
  return config_lib.Config(**base)


def _flags(**kwargs):
  values = dict(dataset="digits", methods=["sobolev"], seeds=1, first_seed=0)
  values.update(kwargs)
  return values


class ExperimentTest(parameterized.TestCase, tf.test.TestCase):

  def test_digits_writes_results_and_resumes(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    cfg = _tiny(methods=("noprop", "sobolev"), seeds=2, num_parts=2)
    logs = []
    rows = experiment.train_and_evaluate(cfg, workdir, log=logs.append)
    self.assertLen(rows, 4)
    with open(os.path.join(workdir, "results.csv")) as f:
      reader = csv.DictReader(f)
      self.assertEqual(reader.fieldnames[:4],
                       ["dataset", "method", "seed", "test_accuracy"])
      csv_rows = list(reader)
    self.assertEqual({(r["method"], r["seed"]) for r in csv_rows},
                     {("noprop", "0"), ("noprop", "1"), ("sobolev", "0"),
                      ("sobolev", "1")})
    for r in csv_rows:
      self.assertBetween(float(r["test_accuracy"]), 0.0, 1.0)
    for name in ("results.md", "curves.png"):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    with open(os.path.join(workdir, "results.md")) as f:
      md = f.read()
    self.assertIn("| ours: digits, 1 SG modules |", md)
    self.assertIn("(n=2)", md)
    # Rerun: everything is skipped, nothing is trained.
    logs.clear()
    experiment.train_and_evaluate(cfg, workdir, log=logs.append)
    self.assertLen([l for l in logs if "skipped" in l], 4)
    self.assertEmpty([l for l in logs if "epoch" in l])

  def test_reused_trainer_equals_fresh_run(self):
    cfg = _tiny(methods=("critic",), num_parts=2)
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    trainer = experiment.Trainer(cfg, "critic")
    experiment.train_one(cfg, "critic", 0, workdir, log=lambda _: None,
                         trainer=trainer)
    reused = experiment.train_one(cfg, "critic", 1, workdir,
                                  log=lambda _: None, trainer=trainer)
    fresh = experiment.train_one(cfg, "critic", 1, workdir,
                                 log=lambda _: None)
    self.assertAllClose(reused["history"]["train_ce"],
                        fresh["history"]["train_ce"], rtol=1e-4)
    self.assertEqual(reused["row"]["test_accuracy"],
                     fresh["row"]["test_accuracy"])

  def test_checkpoint_resume(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    cfg = _tiny(methods=("backprop",), checkpoint_every=1, epochs=1)
    experiment.train_one(cfg, "backprop", 0, workdir, log=lambda _: None)
    cfg2 = _tiny(methods=("backprop",), checkpoint_every=1, epochs=2)
    logs = []
    out = experiment.train_one(cfg2, "backprop", 0, workdir, log=logs.append)
    self.assertTrue(any("resumed" in l for l in logs), logs)
    self.assertEqual(out["history"]["epoch"], [1, 2])
    self.assertLen([l for l in logs if "epoch" in l and "/2" in l], 1)

  def test_cifar10_mock_data_end_to_end(self):
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    cfg = _tiny(dataset="cifar10", methods=("direct",), image_size=16,
                data_dir=tempfile.mkdtemp(dir=self.get_temp_dir()),
                max_train_examples=None, max_test_examples=None)
    with tfds.testing.mock_data(num_examples=32):
      rows = experiment.train_and_evaluate(cfg, workdir, log=lambda _: None)
    self.assertLen(rows, 1)
    self.assertEqual(rows[0]["dataset"], "cifar10")
    self.assertEqual(int(rows[0]["num_modules"]), 3)

  def test_resnet50_split_mock_imagenet_end_to_end(self):
    """The ResNet-50 split code path (4 parts, 3 modules) on mock ImageNet;
    one bottleneck per stage and 1/32 of the width to keep it fast (the
    full ResNet-50 layout is checked in `test_resnet50_has_50_layers`)."""
    num_parts = 4
    workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
    cfg = _tiny(dataset="imagenet2012", arch="resnet50", num_parts=num_parts,
                resnet_width_divisor=32, resnet_blocks=(1, 1, 1, 1),
                image_size=32, batch_size=4,
                data_dir=tempfile.mkdtemp(dir=self.get_temp_dir()),
                max_train_examples=None, max_test_examples=None)
    with tfds.testing.mock_data(num_examples=8):
      rows = experiment.train_and_evaluate(cfg, workdir, log=lambda _: None)
    self.assertLen(rows, 1)
    self.assertEqual(int(rows[0]["num_modules"]), num_parts - 1)
    self.assertNotEmpty(rows[0]["test_top5"])

  @parameterized.parameters(2, 4)
  def test_resnet50_has_50_layers(self, num_parts):
    parts = networks.resnet50_parts(num_parts, 10, width_divisor=32)
    x = tf.zeros([1, 32, 32, 3])
    h = x
    for p in parts:
      h = p(h, is_training=False)
    self.assertEqual(h.shape, (1, 10))
    kernels = [v for p in parts for v in p.trainable_variables
               if v.name.split("/")[-1].startswith("w:") and
               "proj" not in v.name]
    self.assertLen(kernels, 50)  # 49 convolutions + the linear layer.
    specs = [s for p in parts for s in p.stage_specs]
    self.assertEqual(specs, [(8, False), (16, True), (32, True), (64, True)])
    self.assertLen(parts, num_parts)


class FlagsTest(parameterized.TestCase):

  def test_good_flags(self):
    cfg = run.config_from_flags(_flags(
        methods=["noprop", "backprop"], seeds=3, epochs=5, num_modules=1,
        widths=["4", "8"], sobolev_weights=["1", "0.5"]))
    self.assertEqual(cfg.methods, ("noprop", "backprop"))
    self.assertEqual(cfg.num_parts, 2)
    self.assertEqual(cfg.sobolev_weights, (1.0, 0.5))
    cfg = run.config_from_flags(_flags(dataset="imagenet2012", num_modules=3))
    self.assertEqual((cfg.arch, cfg.num_parts), ("resnet50", 4))

  @parameterized.named_parameters(
      ("method", dict(methods=["sobolev", "magic"]), "method"),
      ("no_methods", dict(methods=[]), "methods"),
      ("duplicate", dict(methods=["critic", "critic"]), "duplicates"),
      ("seeds", dict(seeds=0), "seeds"),
      ("epochs", dict(epochs=-1), "epochs"),
      ("modules", dict(num_modules=7), "num_parts"),
      ("no_split", dict(num_modules=0), "num_parts"),
      ("resnet_modules", dict(dataset="imagenet2012", num_modules=2),
       "num_parts"),
      ("optimizer", dict(optimizer="sgdx"), "optimizer"),
      ("lr", dict(learning_rate=0.0), "learning_rate"),
      ("weights", dict(sobolev_weights=["1"]), "sobolev_weights"),
      ("weights_nan", dict(sobolev_weights=["a", "b"]), "sobolev_weights"),
      ("widths", dict(widths=["x"]), "widths"),
      ("value_target", dict(value_target="oracle"), "value_target"),
      ("strategy", dict(strategy="tpu_pod"), "strategy"),
  )
  def test_bad_flags_rejected(self, overrides, match):
    with self.assertRaisesRegex(ValueError, match):
      run.config_from_flags(_flags(**overrides))

  def test_cli_rejects_bad_dataset_before_training(self):
    import subprocess  # pylint: disable=g-import-not-at-top
    import sys  # pylint: disable=g-import-not-at-top
    proc = subprocess.run(
        [sys.executable, "-m", "synthetic_gradients.run", "--dataset=mnist",
         "--workdir=/tmp/unused"], capture_output=True, text=True,
        timeout=300, check=False)
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn("dataset", proc.stderr)


if __name__ == "__main__":
  tf.test.main()
