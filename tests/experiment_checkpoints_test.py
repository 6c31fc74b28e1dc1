"""Tests of sobolev.experiment.checkpoints.Manager (fault-tolerant restore)."""

import contextlib
import glob
import io
import os

from absl.testing import parameterized
import tensorflow as tf

from sobolev.experiment import checkpoints
from sobolev.experiment import errors


class ManagerTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.directory = os.path.join(self.create_tempdir().full_path, "ckpt")

  def _state(self):
    weights = tf.Variable(tf.zeros([64, 16]))
    step = tf.Variable(0, dtype=tf.int64)
    return weights, step, tf.train.Checkpoint(weights=weights, step=step)

  def _save_three(self):
    weights, step, ckpt = self._state()
    manager = checkpoints.Manager(ckpt, self.directory, max_to_keep=3)
    paths = []
    for i in (1, 2, 3):
      weights.assign(tf.fill([64, 16], float(i)))
      step.assign(i * 100)
      paths.append(manager.save(i * 100))
    return paths

  def _restore(self):
    """A new process's view: fresh variables, a new manager, restore."""
    weights, step, ckpt = self._state()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      path = checkpoints.Manager(ckpt, self.directory).restore_or_initialize()
    return path, float(weights[0, 0]), int(step), out.getvalue()

  def _data_file(self, path):
    (data,) = glob.glob(path + ".data-*")
    return data

  def test_no_checkpoints_is_a_fresh_start(self):
    path, weight, step, printed = self._restore()
    self.assertIsNone(path)
    self.assertEqual((weight, step, printed), (0.0, 0, ""))

  def test_restores_the_newest(self):
    paths = self._save_three()
    self.assertEqual([os.path.basename(p) for p in paths],
                     ["ckpt-100", "ckpt-200", "ckpt-300"])
    path, weight, step, printed = self._restore()
    self.assertEqual((path, weight, step, printed), (paths[2], 3.0, 300, ""))
    for p in paths:
      self.assertTrue(checkpoints.is_intact(p))

  @parameterized.parameters("data", "index")
  def test_truncated_newest_falls_back_and_says_so(self, which):
    paths = self._save_three()
    victim = (self._data_file(paths[2]) if which == "data" else
              paths[2] + ".index")
    with open(victim, "r+b") as f:
      f.truncate(os.path.getsize(victim) // 2)
    self.assertFalse(checkpoints.is_intact(paths[2]))
    with self.assertLogs(level="WARNING") as logs:
      path, weight, step, printed = self._restore()
    self.assertEqual((path, weight, step), (paths[1], 2.0, 200))
    self.assertIn(f"checkpoint {paths[2]} is unreadable; resumed from the "
                  f"older {paths[1]}", printed)
    self.assertIn("ckpt-300 is unreadable", "\n".join(logs.output))

  def test_two_broken_fall_back_to_the_oldest(self):
    paths = self._save_three()
    for p in paths[1:]:
      with open(self._data_file(p), "wb") as f:
        f.write(b"garbage")
    path, weight, _, printed = self._restore()
    self.assertEqual((path, weight), (paths[0], 1.0))
    self.assertIn(f"checkpoint {paths[2]} is unreadable", printed)

  @parameterized.parameters(b"model_checkpoint_path: \x00\xff{{{", b"",
                            b"all_model_checkpoint_paths: 7\n")
  def test_garbled_index_is_repaired(self, garbage):
    paths = self._save_three()
    index = os.path.join(self.directory, "checkpoint")
    with open(index, "wb") as f:
      f.write(garbage)
    with self.assertLogs(level="WARNING") as logs:
      path, weight, step, _ = self._restore()
    self.assertEqual((path, weight, step), (paths[2], 3.0, 300))
    self.assertIn("rebuilt it from 3 checkpoint files",
                  "\n".join(logs.output))
    with open(index + ".corrupt", "rb") as f:
      self.assertEqual(f.read(), garbage)
    state = tf.train.get_checkpoint_state(self.directory)
    self.assertEqual(state.model_checkpoint_path, paths[2])
    self.assertEqual(list(state.all_model_checkpoint_paths), paths)

  def test_repaired_index_survives_moving_the_directory(self):
    paths = self._save_three()
    with open(os.path.join(self.directory, "checkpoint"), "w") as f:
      f.write("garbled {")
    with self.assertLogs(level="WARNING"):
      self._restore()  # Repairs the index.
    moved = self.directory + "-moved"
    os.rename(self.directory, moved)
    self.directory = moved
    path, weight, step, printed = self._restore()
    self.assertEqual((path, weight, step, printed),
                     (os.path.join(moved, "ckpt-300"), 3.0, 300, ""))
    del paths

  def test_missing_index_is_rebuilt(self):
    paths = self._save_three()
    os.remove(os.path.join(self.directory, "checkpoint"))
    path, weight, _, _ = self._restore()
    self.assertEqual((path, weight), (paths[2], 3.0))

  def test_index_naming_deleted_files_falls_back(self):
    paths = self._save_three()
    for f in glob.glob(paths[2] + ".*"):
      os.remove(f)
    path, weight, _, printed = self._restore()
    self.assertEqual((path, weight), (paths[1], 2.0))
    self.assertIn("resumed from the older", printed)

  def test_all_unreadable_raises_instead_of_restarting(self):
    paths = self._save_three()
    for p in paths:
      with open(self._data_file(p), "r+b") as f:
        f.truncate(3)
    weights, step, ckpt = self._state()
    manager = checkpoints.Manager(ckpt, self.directory)
    with self.assertRaisesRegex(
        errors.CheckpointError,
        r"None of the checkpoints in .* can be read \(ckpt-300, ckpt-200, "
        r"ckpt-100\); move the directory aside"):
      manager.restore_or_initialize()
    self.assertEqual((float(weights[0, 0]), int(step)), (0.0, 0))
    self.assertTrue(issubclass(errors.CheckpointError, errors.UserError))

  def test_saving_after_a_fallback_continues_from_it(self):
    paths = self._save_three()
    with open(self._data_file(paths[2]), "r+b") as f:
      f.truncate(10)
    weights, step, ckpt = self._state()
    manager = checkpoints.Manager(ckpt, self.directory, max_to_keep=3)
    with contextlib.redirect_stdout(io.StringIO()):
      self.assertEqual(manager.restore_or_initialize(), paths[1])
    weights.assign_add(tf.ones_like(weights) * 0.5)
    step.assign(300)
    new = manager.save(300)
    self.assertEqual(manager.latest, new)
    self.assertTrue(checkpoints.is_intact(new))
    path, weight, restored_step, printed = self._restore()
    self.assertEqual((path, weight, restored_step, printed),
                     (new, 2.5, 300, ""))


if __name__ == "__main__":
  tf.test.main()
