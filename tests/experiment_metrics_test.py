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


if __name__ == "__main__":
  tf.test.main()
