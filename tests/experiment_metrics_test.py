"""Tests of sobolev.experiment.metrics: CSV + TensorBoard rows, divergence."""

import math
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import metrics


def _events(logdir):
  """{tag: [(step, value)]} and {tag: plugin name} read by EventAccumulator."""
  acc = event_accumulator.EventAccumulator(
      logdir, size_guidance={event_accumulator.TENSORS: 0,
                             event_accumulator.SCALARS: 0})
  acc.Reload()
  tags = acc.Tags()
  out, plugins = {}, {}
  for tag in tags["tensors"]:
    out[tag] = [(e.step, float(tf.make_ndarray(e.tensor_proto)))
                for e in acc.Tensors(tag)]
    plugins[tag] = acc.SummaryMetadata(tag).plugin_data.plugin_name
  for tag in tags["scalars"]:
    out[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    plugins[tag] = "scalars"
  return out, plugins


class MetricWriterTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path
    self.csv = os.path.join(self.dir, "metrics.csv")
    self.logdir = os.path.join(self.dir, "tb")

  def _write_three(self, writer):
    for step in (10, 20, 30):
      writer.write({"step": step, "loss/total": tf.constant(1.0 / step),
                    "loss/terms": np.float32(step / 100), "test/acc": 0.5,
                    "epochs": np.int64(step // 10), "phase": "train",
                    "diverged": False})

  def test_csv_and_events_hold_the_same_rows(self):
    with metrics.MetricWriter(self.csv, self.logdir) as writer:
      self._write_three(writer)
      # Events are flushed on every write: readable while training runs.
      live, _ = _events(self.logdir)
      self.assertLen(live["loss/total"], 3)
    rows = files.read_csv(self.csv)
    self.assertEqual([int(r["step"]) for r in rows], [10, 20, 30])
    self.assertEqual([r["phase"] for r in rows], ["train"] * 3)
    self.assertEqual(float(rows[1]["loss/total"]), float(np.float32(1 / 20)))
    events, plugins = _events(self.logdir)
    self.assertSameElements(events,
                            ["loss/total", "loss/terms", "test/acc", "epochs"])
    for tag in events:
      self.assertEqual(plugins[tag], "scalars")
    self.assertEqual([s for s, _ in events["loss/total"]], [10, 20, 30])
    for (_, value), row in zip(events["loss/total"], rows):
      self.assertAllClose(value, float(row["loss/total"]))
    self.assertEqual([v for _, v in events["epochs"]], [1.0, 2.0, 3.0])

  def test_csv_only_and_events_only(self):
    with metrics.MetricWriter(csv_path=self.csv) as writer:
      self._write_three(writer)
    self.assertFalse(os.path.exists(self.logdir))
    self.assertLen(files.read_csv(self.csv), 3)
    os.remove(self.csv)
    with metrics.MetricWriter(logdir=self.logdir) as writer:
      self._write_three(writer)
    self.assertFalse(os.path.exists(self.csv))
    self.assertLen(_events(self.logdir)[0]["test/acc"], 3)

  def test_needs_an_output_and_a_step(self):
    with self.assertRaisesRegex(ValueError, "`csv_path` or `logdir`"):
      metrics.MetricWriter()
    with metrics.MetricWriter(self.csv, step_key="frame") as writer:
      with self.assertRaisesRegex(ValueError, "must hold the step 'frame'"):
        writer.write({"step": 1, "loss": 0.1})
      writer.write({"frame": 1, "loss": 0.1})
    self.assertEqual(files.read_csv(self.csv), [{"frame": "1",
                                                 "loss": "0.1"}])

  def test_new_fields_add_columns(self):
    with metrics.MetricWriter(self.csv) as writer:
      writer.write({"step": 1, "loss": 0.5})
      writer.write({"step": 2, "loss": 0.25, "test_loss": 0.75})
    self.assertEqual(files.read_csv(self.csv), [
        {"step": "1", "loss": "0.5", "test_loss": ""},
        {"step": "2", "loss": "0.25", "test_loss": "0.75"}])

  def test_truncate_after_drops_later_rows(self):
    with metrics.MetricWriter(self.csv, self.logdir) as writer:
      self._write_three(writer)
      writer.truncate_after(20)
      self.assertEqual([int(r["step"]) for r in files.read_csv(self.csv)],
                       [10, 20])
      writer.truncate_after(25)  # Nothing to drop.
      writer.write({"step": 30, "loss/total": 0.1})
    rows = files.read_csv(self.csv)
    self.assertEqual([int(r["step"]) for r in rows], [10, 20, 30])
    self.assertEqual(rows[2]["phase"], "")
    with metrics.MetricWriter(os.path.join(self.dir, "none.csv")) as writer:
      writer.truncate_after(0)  # No file yet: nothing happens.
    # The events match the CSV: the dropped steps are gone, 30 is there once.
    events, _ = _events(self.logdir)
    self.assertEqual([s for s, _ in events["loss/total"]], [10, 20, 30])
    self.assertAllClose([v for _, v in events["loss/total"]],
                        [0.1, 0.05, 0.1])
    self.assertEqual([s for s, _ in events["test/acc"]], [10, 20])

  def test_resumed_process_truncates_events_of_the_earlier_one(self):
    sub = os.path.join(self.logdir, "other_run")
    with metrics.MetricWriter(logdir=sub, step_key="frames") as other:
      other.write({"frames": 500, "x": 1.0})
    with metrics.MetricWriter(logdir=self.logdir, step_key="frames") as w:
      for frames in (100, 200, 300):
        w.write({"frames": frames, "return": frames / 100})
    # Killed mid-write: a partial record at the end of the event file.
    (name,) = [n for n in os.listdir(self.logdir) if "tfevents" in n]
    with open(os.path.join(self.logdir, name), "ab") as f:
      f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00\x01\x02")
    with metrics.MetricWriter(logdir=self.logdir, step_key="frames") as w:
      w.truncate_after(200)
      w.write({"frames": 300, "return": 3.5})
      w.write({"frames": 400, "return": 4.0})
    events, _ = _events(self.logdir)
    self.assertEqual(events["return"], [(100, 1.0), (200, 2.0), (300, 3.5),
                                        (400, 4.0)])
    self.assertEqual(_events(sub)[0]["x"], [(500, 1.0)])  # Untouched.
    self.assertEqual(metrics.truncate_events(self.logdir, 10**6), 0)
    self.assertEqual(metrics.truncate_events(self.logdir, 300), 1)
    self.assertEqual(metrics.truncate_events(os.path.join(self.dir, "none"),
                                             0), 0)
    self.assertEmpty([n for n in os.listdir(self.logdir)
                      if n.startswith(".")])


class FiniteOrRaiseTest(parameterized.TestCase, tf.test.TestCase):

  def test_finite_values_become_plain_numbers(self):
    out = metrics.finite_or_raise(
        {"a": tf.constant(0.5), "b": np.float64(2.0), "c": 3,
         "d": np.array([1.0, 2.0]), "e": tf.constant([[1.5]]), "f": "ok",
         "g": tf.constant([1, 2])}, "step 3")
    self.assertEqual(out["a"], 0.5)
    self.assertIs(type(out["a"]), float)
    self.assertIs(type(out["b"]), float)
    self.assertEqual(out["c"], 3)
    self.assertAllEqual(out["d"], [1.0, 2.0])
    self.assertEqual(out["e"], 1.5)
    self.assertEqual(out["f"], "ok")
    self.assertAllEqual(out["g"], [1, 2])

  @parameterized.named_parameters(
      ("python_nan", math.nan), ("python_inf", math.inf),
      ("numpy_neg_inf", np.float32(-np.inf)),
      ("tensor_nan", lambda: tf.constant(np.nan)),
      ("array_nan", np.array([1.0, np.nan])),
      ("tensor_inf", lambda: tf.constant([[0.0, np.inf]])),
      ("size_one_array", np.array([np.inf])))
  def test_non_finite_raises_divergence_error(self, value):
    if callable(value):
      value = value()
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"Training diverged \(sobolev seed 2, step 300\): test/loss"):
      metrics.finite_or_raise({"ok": 1.0, "test/loss": value},
                              "sobolev seed 2, step 300")

  def test_divergence_error_is_a_user_error(self):
    self.assertTrue(issubclass(errors.DivergenceError, errors.UserError))
    self.assertTrue(issubclass(errors.DivergenceError, FloatingPointError))

  def test_hint_names_the_likely_setting(self):
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training diverged \(w\): loss = inf\. No result was written; "
        r"lower sobolev_weight\.$"):
      metrics.finite_or_raise({"loss": math.inf}, "w",
                              hint="lower sobolev_weight")


class WriterRefusesNonFiniteTest(parameterized.TestCase, tf.test.TestCase):
  """Every logged metric goes through the finiteness check."""

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path
    self.csv = os.path.join(self.dir, "metrics.csv")
    self.logdir = os.path.join(self.dir, "tb")

  @parameterized.named_parameters(
      ("nan", math.nan), ("inf", math.inf),
      ("numpy_neg_inf", np.float32(-np.inf)),
      ("tensor_nan", lambda: tf.constant(np.nan)))
  def test_non_finite_metric_raises_and_writes_nothing(self, value):
    if callable(value):
      value = value()
    with metrics.MetricWriter(self.csv, self.logdir, step_key="epoch",
                              where="sobolev seed 0",
                              hint="lower learning_rate (1e+06)") as writer:
      writer.write({"epoch": 1, "test/accuracy": 0.5})
      with self.assertRaisesRegex(
          errors.DivergenceError,
          r"^Training diverged \(sobolev seed 0, epoch 2\): sg_cosine = "
          r"-?(nan|inf)\. No result was written; lower learning_rate "
          r"\(1e\+06\)\.$"):
        writer.write({"epoch": 2, "test/accuracy": 0.0625,
                      "sg_cosine": value})
    self.assertEqual([r["epoch"] for r in files.read_csv(self.csv)], ["1"])
    events, _ = _events(self.logdir)
    self.assertEqual(events["test/accuracy"], [(1, 0.5)])

  def test_default_message_and_step_key(self):
    writer = metrics.MetricWriter(self.csv)
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training diverged \(step 7\): train/loss = nan\. No result was "
        r"written; lower the learning rate or check the inputs\.$"):
      writer.write({"step": 7, "train/loss": math.nan})

  def test_allowed_nan_is_written(self):
    # E.g. a mean return over no finished episodes yet.
    writer = metrics.MetricWriter(self.csv, self.logdir,
                                  allow_nan=("mean_return",))
    writer.write({"step": 1, "mean_return": math.nan, "loss": 1.0})
    writer.close()
    self.assertEqual(files.read_csv(self.csv)[0]["mean_return"], "nan")
    with self.assertRaisesRegex(TypeError, "`allow_nan` must be a sequence"):
      metrics.MetricWriter(self.csv, allow_nan="mean_return")

  def test_strings_and_bools_are_not_checked(self):
    writer = metrics.MetricWriter(self.csv)
    writer.write({"step": 1, "note": "nan", "flag": True})
    self.assertEqual(files.read_csv(self.csv)[0]["note"], "nan")


class FiniteResultTest(tf.test.TestCase):

  def test_nested_non_finite_entry_is_named(self):
    result = {"test_accuracy": 0.0625, "sg_cosine": None,
              "sg_cosine_per_module": [0.5, math.nan], "note": "x"}
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training diverged \(sobolev seed 0\): the result's "
        r"sg_cosine_per_module\[1\] = nan\. No result was written; lower "
        r"learning_rate\.$"):
      metrics.finite_result_or_raise(result, "sobolev seed 0",
                                     hint="lower learning_rate")
    with self.assertRaisesRegex(errors.DivergenceError,
                                r"the result's history\.loss\[0\] = inf"):
      metrics.finite_result_or_raise({"history": {"loss": [math.inf]}}, "w")

  def test_finite_and_allowed_results_pass(self):
    result = {"a": 1.0, "b": [1, 2.5], "c": {"d": np.float32(3.0)},
              "e": None, "f": True, "why_nan": math.nan}
    self.assertIs(metrics.finite_result_or_raise(result, "w",
                                                 allow_nan=("why_nan",)),
                  result)


class ParametersTest(tf.test.TestCase):

  def test_non_finite_parameter_is_named(self):
    good = tf.Variable([1.0, 2.0], name="w")
    bad = tf.Variable([[1.0, np.nan]], name="head/b")
    metrics.check_parameters([good], "sobolev seed 0, epoch 1")
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training diverged \(sobolev seed 0, epoch 1\): parameter "
        r"head/b:0 has non-finite values\. No result was written; lower "
        r"learning_rate\.$"):
      metrics.check_parameters([good, bad], "sobolev seed 0, epoch 1",
                               hint="lower learning_rate")

  def test_fingerprint_is_bit_exact(self):
    v = tf.Variable([1.0, 2.0])
    before = metrics.fingerprint([v])
    self.assertEqual(metrics.fingerprint([v]), before)
    v.assign([1.0, np.nextafter(np.float32(2.0), np.float32(3.0))])
    self.assertNotEqual(metrics.fingerprint([v]), before)
    # Same bytes, other shape or dtype: different.
    self.assertNotEqual(metrics.fingerprint([np.zeros([2, 1])]),
                        metrics.fingerprint([np.zeros([1, 2])]))
    self.assertNotEqual(metrics.fingerprint([np.zeros([2], np.float32)]),
                        metrics.fingerprint([np.zeros([1], np.float64)]))


class StallDetectorTest(tf.test.TestCase):

  def test_unchanged_parameters_raise_after_patience_evaluations(self):
    stalls = metrics.StallDetector(3, "sobolev student, seed 0",
                                   hint="sobolev_weight (1e+30) is likely "
                                   "too large; change it")
    for step in (0, 100, 200):
      stalls.update(step, parameters="abc", train_loss=float(step))
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training stalled \(sobolev student, seed 0\): the parameters did "
        r"not change from step 0 to step 300 \(3 evaluations in a row\)\. No "
        r"result was written; sobolev_weight \(1e\+30\) is likely too "
        r"large; change it \(or set stall_patience=0 to turn this check "
        r"off\)\.$"):
      stalls.update(300, parameters="abc", train_loss=1.5)

  def test_unchanged_loss_raises_and_names_its_value(self):
    stalls = metrics.StallDetector(2, "sobolev seed 1", unit="epoch",
                                   setting="config.stall_patience")
    stalls.update(1, loss=np.float32(1.2e31))
    stalls.update(2, loss=np.float32(1.2e31))
    with self.assertRaisesRegex(
        errors.DivergenceError,
        r"^Training stalled \(sobolev seed 1\): loss stayed exactly "
        r"1\.\d+e\+31 from epoch 1 to epoch 3 \(2 evaluations in a row\)\. "
        r".*\(or set config\.stall_patience=0 to turn this check off\)\.$"):
      stalls.update(3, loss=np.float32(1.2e31))

  def test_changes_reset_the_count_and_last_bit_changes_count(self):
    stalls = metrics.StallDetector(2, "w")
    value = 1e-10
    for step in range(50):
      # A plateau at float precision: the value moves by one ulp at a time
      # every other evaluation, so it never stays put twice in a row.
      if step % 2:
        value = float(np.nextafter(value, 1.0))
      stalls.update(step, loss=value, parameters=str(step // 2))

  def test_zero_patience_disables_and_bad_patience_is_refused(self):
    stalls = metrics.StallDetector(0, "w")
    for step in range(10):
      stalls.update(step, parameters="same")
    for bad in (-1, 1.5, True, "3"):
      with self.assertRaisesRegex(ValueError, "`patience` must be an int"):
        metrics.StallDetector(bad, "w")


if __name__ == "__main__":
  tf.test.main()
