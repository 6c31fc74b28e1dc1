"""The synthetic-gradients experiment: workdirs, resume, checks, outputs.

Tiny digits configs (8x8 images, widths 4) in temporary directories; the
mock CIFAR-10 and ImageNet runs exercise the tfds code paths.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from sobolev.experiment import errors
from sobolev.experiment import results
from synthetic_gradients import data
from synthetic_gradients import experiment
from synthetic_gradients import networks
from synthetic_gradients.configs import cifar10
from synthetic_gradients.configs import digits
from synthetic_gradients.configs import fashion_mnist
from synthetic_gradients.configs import fashion_mnist_converged
from synthetic_gradients.configs import fashion_mnist_tuned
from synthetic_gradients.configs import imagenet2012


def _tiny(**overrides):
  """A digits config that trains in about a second per epoch."""
  config = digits.get_config()
  config.update(dict(methods="sobolev", seeds=1, epochs=1, batch_size=16,
                     widths=(4, 4, 4, 4), image_size=8, num_modules=1,
                     max_train_examples=48, max_test_examples=32,
                     export_saved_model=False))
  config.update(overrides)
  return config


def _quiet(_):
  pass


class FinishedSweepTest(tf.test.TestCase):
  """One finished sweep (backprop and sobolev, seed 0), checked many ways."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.workdir = os.path.join(cls.root, "sweep")
    cls.config = _tiny(methods="backprop,sobolev", epochs=2,
                       export_saved_model=True)
    cls.logs = []
    cls.rows = experiment.train_and_evaluate(cls.config, cls.workdir,
                                             log=cls.logs.append)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _copy(self, name):
    path = os.path.join(self.create_tempdir().full_path, name)
    shutil.copytree(self.workdir, path)
    return path

  def test_results_files_and_typed_rows(self):
    self.assertEqual([(r.method, r.seed) for r in self.rows],
                     [("sobolev", 0), ("backprop", 0)])
    rows = results.read(os.path.join(self.workdir, "results.csv"),
                        experiment.Row)
    self.assertEqual(rows, self.rows)
    for r in rows:
      self.assertBetween(r.test_accuracy, 0.0, 1.0)
      self.assertEqual((r.epochs, r.num_modules, r.dataset), (2, 1, "digits"))
      unit = os.path.join(self.workdir, "runs", r.key)
      with open(os.path.join(unit, "result.json")) as f:
        result = json.load(f)
      self.assertEqual(result["history"]["epoch"], [1, 2])
      self.assertEqual(result["test_accuracy"], r.test_accuracy)
    self.assertIsNone(rows[1].sg_cosine)
    self.assertIsNotNone(rows[0].sg_cosine)
    with open(os.path.join(self.workdir, "results.md")) as f:
      md = f.read()
    self.assertIn("| ours: digits, 1 SG modules |", md)
    self.assertIn("(n=1)", md)
    self.assertTrue(os.path.exists(os.path.join(self.workdir, "curves.png")))

  def test_same_settings_resume_without_training(self):
    workdir = self._copy("same")
    before = {p: os.path.getmtime(p) for p in self._results(workdir)}
    logs = []
    rows = experiment.train_and_evaluate(self.config, workdir,
                                         log=logs.append)
    self.assertEqual(rows, self.rows)
    self.assertLen([l for l in logs if "done, skipped" in l], 2)
    self.assertEqual(before,
                     {p: os.path.getmtime(p) for p in self._results(workdir)})

  def _results(self, workdir):
    root = os.path.join(workdir, "runs")
    return [os.path.join(root, k, "result.json") for k in os.listdir(root)]

  def test_changed_settings_refused_naming_the_fields(self):
    workdir = self._copy("refuse")
    changed = _tiny(methods="backprop", epochs=3, learning_rate=0.01,
                    batch_size=8)
    with self.assertRaises(errors.WorkdirMismatchError) as ctx:
      experiment.train_and_evaluate(changed, workdir, log=_quiet)
    message = str(ctx.exception)
    self.assertNotIn("\n", message)
    for field in ("epochs: 2 -> 3", "learning_rate: 0.002 -> 0.01",
                  "batch_size: 16 -> 8"):
      self.assertIn(field, message)
    with open(os.path.join(workdir, "config.json")) as f:
      self.assertEqual(json.load(f)["epochs"], 2)

  def test_changed_settings_kept_apart_with_separate(self):
    workdir = self._copy("separate")
    changed = _tiny(methods="backprop", epochs=1)
    rows = experiment.train_and_evaluate(changed, workdir, log=_quiet,
                                         if_different="separate")
    self.assertLen(rows, 1)
    self.assertEqual(rows[0].epochs, 1)
    sets = os.listdir(os.path.join(workdir, "sets"))
    self.assertLen(sets, 1)
    kept = results.read(os.path.join(workdir, "results.csv"), experiment.Row)
    self.assertEqual(kept, self.rows)  # The old run set is untouched.
    apart = results.read(os.path.join(workdir, "sets", sets[0],
                                      "results.csv"), experiment.Row)
    self.assertEqual(apart, rows)
    # What `synthetic_gradients.run` prints as the results' place.
    self.assertEqual(experiment.results_dir(changed, workdir),
                     os.path.join(workdir, "sets", sets[0]))
    self.assertEqual(experiment.results_dir(self.config, workdir), workdir)

  def test_fresh_moves_old_results_aside(self):
    workdir = self._copy("fresh")
    changed = _tiny(methods="noprop", epochs=1)
    rows = experiment.train_and_evaluate(changed, workdir, log=_quiet,
                                         if_different="fresh")
    self.assertEqual([r.method for r in rows], ["noprop"])
    parent = os.path.dirname(workdir)
    aside = [d for d in os.listdir(parent) if d.startswith("fresh.old-")]
    self.assertLen(aside, 1)
    self.assertEqual(
        results.read(os.path.join(parent, aside[0], "results.csv"),
                     experiment.Row), self.rows)
    self.assertLen(os.listdir(os.path.join(workdir, "runs")), 1)

  def test_provenance(self):
    with open(os.path.join(self.workdir, "provenance.json")) as f:
      record = json.load(f)["invocations"][0]
    self.assertEqual(record["status"], "finished")
    self.assertEqual(record["config"]["epochs"], 2)
    self.assertEqual(record["config"]["methods"], "backprop,sobolev")
    self.assertIsNotNone(record["versions"]["tensorflow"])
    self.assertIsNotNone(record["versions"]["numpy"])
    self.assertIn("commit", record["git"])
    self.assertGreaterEqual(record["machine"]["cores"], 1)
    self.assertIn("cpu", record["machine"])
    self.assertLessEqual(record["start"], record["end"])
    self.assertTrue(record["command"])

  def test_tensorboard_events_readable(self):
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    acc = event_accumulator.EventAccumulator(
        os.path.join(self.workdir, "tb", "sobolev_seed0"),
        size_guidance={event_accumulator.TENSORS: 0})  # 0: keep all.
    acc.Reload()
    # TensorBoard 2 scalar summaries: tensors with the scalars plugin.
    tags = acc.Tags()["tensors"]
    for tag in ("test/accuracy", "train/ce", "train/sg0_loss",
                "train/sg0_order_0", "train/sg0_order_1", "learning_rate"):
      self.assertIn(tag, tags)
    events = acc.Tensors("test/accuracy")
    self.assertEqual(acc.SummaryMetadata("test/accuracy").plugin_data
                     .plugin_name, "scalars")
    self.assertEqual([e.step for e in events], [1, 2])
    self.assertAllClose([float(tf.make_ndarray(e.tensor_proto))
                         for e in events],
                        self._history("sobolev")["test_accuracy"])

  def _history(self, method):
    row = [r for r in self.rows if r.method == method][0]
    with open(os.path.join(self.workdir, "runs", row.key,
                           "result.json")) as f:
      return json.load(f)["history"]

  def test_final_weights_and_saved_model_round_trip(self):
    row = [r for r in self.rows if r.method == "sobolev"][0]
    unit = os.path.join(self.workdir, "runs", row.key)
    images = next(iter(data.load("digits", "test", 8, image_size=8)))["image"]
    model = experiment.build_model(self.config, "sobolev", 10)
    model.build(tf.zeros([2, 8, 8, 1]))
    tf.train.Checkpoint(model=model).read(
        os.path.join(unit, "model", "weights")).assert_existing_objects_matched()
    expected = model(images, is_training=False).numpy()
    loaded = tf.saved_model.load(os.path.join(unit, "saved_model"))
    self.assertAllClose(loaded(images).numpy(), expected, atol=1e-5)
    out = loaded.signatures["serving_default"](images=images)
    self.assertAllClose(out["logits"].numpy(), expected, atol=1e-5)
    # Plain TensorFlow in a fresh process loads it without this project.
    np_path = os.path.join(self.create_tempdir().full_path, "images.npy")
    np.save(np_path, images.numpy())
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1])\n"
        "out = f.signatures['serving_default'](images=tf.constant("
        "np.load(sys.argv[2])))['logits'].numpy()\n"
        "assert not {'sobolev', 'synthetic_gradients'} & set(sys.modules)\n"
        "np.save(sys.argv[2], out)\n")
    proc = subprocess.run(
        [sys.executable, "-c", script, os.path.join(unit, "saved_model"),
         np_path], cwd=self.create_tempdir().full_path, capture_output=True,
        text=True, timeout=600, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertAllClose(np.load(np_path), expected, atol=1e-5)
    # The saved network is the trained one: its test accuracy is the row's.
    test = data.load("digits", "test", 16, image_size=8, max_examples=32)
    acc = experiment.evaluate(lambda x: loaded(x), test)
    self.assertEqual(acc["top1"], row.test_accuracy)


class ResumeTest(tf.test.TestCase):

  def test_reused_trainer_equals_fresh_run(self):
    cfg = _tiny(methods="critic")
    trainer = experiment.Trainer(cfg, "critic")
    run_dir = self.create_tempdir().full_path
    experiment.train_one(cfg, "critic", 0, os.path.join(run_dir, "a"),
                         trainer=trainer)
    reused = experiment.train_one(cfg, "critic", 1,
                                  os.path.join(run_dir, "b"), trainer=trainer)
    fresh = experiment.train_one(cfg, "critic", 1,
                                 os.path.join(run_dir, "c"))
    self.assertEqual(reused["history"]["train_ce"],
                     fresh["history"]["train_ce"])
    self.assertEqual(reused["history"]["test_accuracy"],
                     fresh["history"]["test_accuracy"])

  def test_corrupt_latest_checkpoint_falls_back_to_older_one(self):
    # A constant learning rate makes an epochs=2 run a prefix of an
    # epochs=3 run, so resuming the first gives exactly the second.
    cfg2 = _tiny(methods="backprop", epochs=2, schedule="constant")
    cfg3 = _tiny(methods="backprop", epochs=3, schedule="constant")
    tmp = self.create_tempdir().full_path
    run_dir = os.path.join(tmp, "resumed")
    experiment.train_one(cfg2, "backprop", 0, run_dir)
    ckpts = os.path.join(run_dir, "checkpoints")
    data_file = os.path.join(ckpts, "ckpt-2.data-00000-of-00001")
    with open(data_file, "r+b") as f:
      f.truncate(os.path.getsize(data_file) // 2)
    logs = []
    resumed = experiment.train_one(cfg3, "backprop", 0, run_dir,
                                   log=logs.append)
    self.assertTrue(any("resumed backprop seed 0 at epoch 1" in l
                        for l in logs), logs)
    self.assertLen([l for l in logs if "epoch" in l and "/3" in l], 2)
    fresh = experiment.train_one(cfg3, "backprop", 0,
                                 os.path.join(tmp, "fresh"))
    self.assertEqual(resumed["history"]["epoch"], [1, 2, 3])
    self.assertEqual(resumed["history"]["train_ce"],
                     fresh["history"]["train_ce"])
    self.assertEqual(resumed["history"]["test_accuracy"],
                     fresh["history"]["test_accuracy"])
    # Every checkpoint unreadable: an error, never a silent restart.
    for name in os.listdir(ckpts):
      if name.startswith("ckpt-") and ".data-" in name:
        with open(os.path.join(ckpts, name), "r+b") as f:
          f.truncate(4)
    with self.assertRaises(errors.CheckpointError):
      experiment.train_one(cfg3, "backprop", 0, run_dir)


class SettingsTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.named_parameters(
      ("lr_nan", dict(learning_rate=float("nan")), "learning_rate"),
      ("lr_inf", dict(learning_rate=float("inf")), "learning_rate"),
      ("wd_inf", dict(weight_decay=float("inf")), "weight_decay"),
      ("wd_nan", dict(weight_decay=float("nan")), "weight_decay"),
      ("weights_nan", dict(sobolev_weights=(1.0, float("nan"))),
       "sobolev_weights"),
      ("critic_width_ninf", dict(critic_width_multiplier=float("-inf")),
       "critic_width_multiplier"),
  )
  def test_nonfinite_settings_rejected_before_work(self, overrides, field):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    with self.assertRaisesRegex(errors.ConfigError,
                                f"`{field}(\\[1\\])?` must be finite"):
      experiment.train_and_evaluate(_tiny(**overrides), workdir, log=_quiet)
    self.assertFalse(os.path.exists(workdir))

  @parameterized.named_parameters(
      ("dataset", dict(dataset="mnist"), "dataset"),
      ("method", dict(methods="sobolev,magic"), "methods"),
      ("no_methods", dict(methods=" , "), "methods"),
      ("duplicate", dict(methods="critic,critic"), "duplicates"),
      ("seeds", dict(seeds=0), "seeds"),
      ("epochs", dict(epochs=-1), "epochs"),
      ("batch", dict(batch_size=0), "batch_size"),
      ("modules", dict(num_modules=7), "num_modules"),
      ("no_split", dict(num_modules=0), "num_modules"),
      ("resnet_modules", dict(arch="resnet50", num_modules=2),
       "num_modules"),
      ("widths", dict(widths=(4, 0)), "widths"),
      ("optimizer", dict(optimizer="sgdx"), "optimizer"),
      ("lr", dict(learning_rate=0.0), "learning_rate"),
      ("weights", dict(sobolev_weights=(1.0,)), "sobolev_weights"),
      ("negative_weight", dict(sobolev_weights=(1.0, -1.0)),
       "sobolev_weights"),
      ("value_target", dict(value_target="oracle"), "value_target"),
      ("strategy", dict(strategy="tpu_pod"), "strategy"),
      ("image_size", dict(image_size=4), "image_size"),
      ("checkpoint_every", dict(checkpoint_every=-1), "checkpoint_every"),
      ("eval_split", dict(eval_split="train"), "eval_split"),
      ("no_validation", dict(eval_split="validation"), "validation_size"),
      ("validation_size", dict(validation_size=-1), "validation_size"),
      ("augment_digits", dict(augment=True), "augment"),
      ("stall_patience", dict(stall_patience=-1), "stall_patience"),
  )
  def test_bad_settings_rejected(self, overrides, field):
    with self.assertRaisesRegex(errors.ConfigError, field):
      experiment.check(_tiny(**overrides))

  def test_presets_are_valid(self):
    for module in (digits, fashion_mnist, cifar10, imagenet2012):
      experiment.check(module.get_config())
    self.assertEqual(imagenet2012.get_config().arch, "resnet50")

  def test_run_key_ignores_only_infrastructure_and_sweep(self):
    base = experiment.unit_settings(_tiny(), "sobolev", 0)
    same = experiment.unit_settings(
        _tiny(seeds=5, methods="noprop,sobolev", checkpoint_every=0,
              data_dir="/elsewhere", export_saved_model=True,
              stall_patience=0), "sobolev", 0)
    self.assertEqual(base, same)
    for change in (dict(epochs=2), dict(learning_rate=1e-3),
                   dict(batch_size=8), dict(sobolev_weights=(1.0, 0.5)),
                   dict(max_train_examples=40), dict(strategy="replicator")):
      self.assertNotEqual(
          experiment.unit_settings(_tiny(**change), "sobolev", 0), base,
          change)
    self.assertNotEqual(experiment.unit_settings(_tiny(), "sobolev", 1),
                        base)

  def test_diverging_run_stops_without_result_row(self):
    workdir = self.create_tempdir().full_path
    cfg = _tiny(methods="backprop", learning_rate=1e30, epochs=2)
    with self.assertRaisesRegex(errors.DivergenceError,
                                "backprop seed 0, epoch 1"):
      experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))
    for key in os.listdir(os.path.join(workdir, "runs")):
      self.assertFalse(os.path.exists(
          os.path.join(workdir, "runs", key, "result.json")))
    with open(os.path.join(workdir, "provenance.json")) as f:
      status = json.load(f)["invocations"][-1]["status"]
    self.assertStartsWith(status, "failed: Training diverged")

  def _assert_no_result(self, workdir):
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))
    for key in os.listdir(os.path.join(workdir, "runs")):
      self.assertFalse(os.path.exists(
          os.path.join(workdir, "runs", key, "result.json")))

  def test_nan_in_the_result_stops_without_result_row(self):
    # Weights that become NaN in an epoch's last update show in no step's
    # loss; the accuracy looks finite and the SG cosine is NaN.
    workdir = self.create_tempdir().full_path
    cfg = _tiny()
    with mock.patch.object(experiment.decoupled, "sg_alignment",
                           lambda *args: [float("nan")]):
      with self.assertRaisesRegex(
          errors.DivergenceError,
          r"^Training diverged \(sobolev seed 0\): the result's "
          r"sg_cosine = nan\. No result was written; lower "
          r"learning_rate \(0\.002\) or check the inputs\.$"):
        experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self._assert_no_result(workdir)

  def test_nan_parameters_stop_the_run_at_the_epoch(self):
    # The epoch's last update makes a weight NaN: every step's loss was
    # finite (each precedes its update), yet the run must stop there.
    run_dir = self.create_tempdir().full_path
    cfg = _tiny(methods="backprop", epochs=2)
    trainer = experiment.Trainer(cfg, "backprop")
    real_step, calls = trainer.step, []

    def step(batch):
      out = real_step(batch)
      calls.append(1)
      if len(calls) == 3:  # 48 examples, batch 16: the epoch's last step.
        weight = trainer.model.trainable_variables[0]
        weight.assign(tf.fill(weight.shape, np.nan))
      return out

    trainer.step = step
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training diverged \(backprop seed 0, epoch 1\): parameter .+ has "
        r"non-finite values\. No result was written; lower learning_rate "
        r"\(0\.002\) or check the inputs\.$"):
      experiment.train_one(cfg, "backprop", 0, run_dir, trainer=trainer)
    self.assertLen(calls, 3)
    # No epoch row was logged.
    self.assertFalse(os.path.exists(os.path.join(run_dir, "metrics.csv")))

  def test_stalled_run_stops_without_result_row(self):
    # A learning rate that is 0 in float32: no parameter ever changes.
    workdir = self.create_tempdir().full_path
    cfg = _tiny(methods="backprop", learning_rate=1e-50, epochs=3,
                stall_patience=2, schedule="constant")
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training stalled \(backprop seed 0\): the parameters did not "
        r"change from epoch 1 to epoch 3 \(2 evaluations in a row\)\. No "
        r"result was written; the learning rate \(1e-50\) is likely so "
        r"large that the network's units died \(zero gradients\) or so "
        r"small that the updates round away; change learning_rate \(or set "
        r"stall_patience=0 to turn this check off\)\.$"):
      experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self._assert_no_result(workdir)

  def test_healthy_run_does_not_stall_and_old_workdirs_resume(self):
    workdir = self.create_tempdir().full_path
    cfg = _tiny(methods="backprop", epochs=3, stall_patience=1)
    rows = experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self.assertLen(rows, 1)
    # A config.json from before the field: the same run set, reused.
    path = os.path.join(workdir, "config.json")
    with open(path) as f:
      recorded = json.load(f)
    del recorded["stall_patience"]
    with open(path, "w") as f:
      json.dump(recorded, f)
    logs = []
    again = experiment.train_and_evaluate(_tiny(methods="backprop", epochs=3),
                                          workdir, log=logs.append)
    self.assertEqual(again, rows)
    self.assertLen([l for l in logs if "done, skipped" in l], 1)


class DatasetsTest(parameterized.TestCase, tf.test.TestCase):

  def test_validation_split_is_held_out_and_measured(self):
    workdir = self.create_tempdir().full_path
    cfg = _tiny(methods="backprop", validation_size=7,
                eval_split="validation", max_test_examples=None)
    row, = experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self.assertEqual(row.eval_split, "validation")
    for acc in (row.test_accuracy, row.test_top5):  # Over 7 images.
      self.assertAlmostEqual(acc * 7, round(acc * 7), places=9)
    self.assertEqual(results.read(os.path.join(workdir, "results.csv"),
                                  experiment.Row), [row])
    with open(os.path.join(workdir, "results.md")) as f:
      self.assertIn("validation split (7 held-out", f.read())

  def test_cifar10_mock_data_end_to_end(self):
    workdir = self.create_tempdir().full_path
    cfg = _tiny(dataset="cifar10", methods="direct", image_size=16,
                num_modules=3, data_dir=self.create_tempdir().full_path,
                max_train_examples=None, max_test_examples=None)
    with tfds.testing.mock_data(num_examples=32):
      rows = experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self.assertLen(rows, 1)
    self.assertEqual((rows[0].dataset, rows[0].num_modules), ("cifar10", 3))

  @parameterized.parameters(3, 1)
  def test_fashion_mnist_preset_end_to_end_on_mock_data(self, num_modules):
    """The Table 1 preset itself (its validation split, learning rate and
    schedule), shrunk to a tiny network and subset, on mock Fashion-MNIST."""
    workdir = self.create_tempdir().full_path
    cfg = fashion_mnist.get_config()
    cfg.update(dict(methods="critic,sobolev", seeds=1, epochs=1,
                    batch_size=8, widths=(4, 4, 4, 4), num_modules=num_modules,
                    max_train_examples=24, max_test_examples=16,
                    export_saved_model=False,
                    data_dir=self.create_tempdir().full_path))
    with tfds.testing.mock_data(num_examples=32):
      rows = experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self.assertLen(rows, 2)
    for row in rows:
      self.assertEqual((row.dataset, row.num_modules),
                       ("fashion_mnist", num_modules))
      self.assertBetween(row.test_accuracy, 0.0, 1.0)
    self.assertTrue(os.path.exists(os.path.join(workdir, "results.md")))

  def test_converged_preset_differs_from_fashion_mnist_only_in_epochs(self):
    base = fashion_mnist.get_config().to_dict()
    converged = fashion_mnist_converged.get_config()
    experiment.check(converged)
    changed = {k: v for k, v in converged.to_dict().items()
               if base.get(k) != v}
    self.assertEqual(changed, {"epochs": 20})

  def test_tuned_preset_is_fashion_mnist_at_the_recorded_rates(self):
    """The per-method preset differs from the Fashion-MNIST one only in
    `method_learning_rates`, which is the committed tuning's choice."""
    base = fashion_mnist.get_config().to_dict()
    tuned = fashion_mnist_tuned.get_config()
    experiment.check(tuned)
    changed = {k: v for k, v in tuned.to_dict().items()
               if base.get(k) != v}
    with open(os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "docs",
                           "sg_fashion_mnist_tuning_per_method.json")) as f:
      recorded = json.load(f)
    self.assertEqual(changed, {"method_learning_rates":
                               recorded["method_learning_rates"]})
    rates = experiment.method_learning_rates(tuned)
    self.assertCountEqual(rates, digits.ALL_METHODS.split(","))
    self.assertEqual(rates, {m: float(r) for m, r in
                             recorded["best"].items()})
    self.assertEqual(experiment.tuning(tuned), "per_method")

  def test_resnet50_split_mock_imagenet_end_to_end(self):
    """The ResNet-50 split code path (4 parts, 3 modules) on mock ImageNet;
    one bottleneck per stage and 1/32 of the width to keep it fast (the
    full ResNet-50 layout is checked in `test_resnet50_has_50_layers`)."""
    workdir = self.create_tempdir().full_path
    cfg = _tiny(dataset="imagenet2012", arch="resnet50", num_modules=3,
                resnet_width_divisor=32, resnet_blocks=(1, 1, 1, 1),
                image_size=32, batch_size=4,
                data_dir=self.create_tempdir().full_path,
                max_train_examples=None, max_test_examples=None)
    with tfds.testing.mock_data(num_examples=8):
      rows = experiment.train_and_evaluate(cfg, workdir, log=_quiet)
    self.assertLen(rows, 1)
    self.assertEqual(rows[0].num_modules, 3)
    self.assertBetween(rows[0].test_top5, 0.0, 1.0)

  @parameterized.parameters(2, 4)
  def test_resnet50_has_50_layers(self, num_parts):
    parts = networks.resnet50_parts(num_parts, 10, width_divisor=32)
    h = tf.zeros([1, 32, 32, 3])
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


if __name__ == "__main__":
  tf.test.main()
