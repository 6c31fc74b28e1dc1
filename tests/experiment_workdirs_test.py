"""Tests of sobolev.experiment.workdirs.open_workdir."""

import os
from unittest import mock

from absl.testing import parameterized
import ml_collections
import tensorflow as tf

from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import locks
from sobolev.experiment import workdirs


def _config(**overrides):
  config = ml_collections.ConfigDict({
      "steps": 40, "batch_size": 32, "learning_rate": 1e-3,
      "seeds": 3, "teacher": {"game": "Pong", "digest": "abc"},
  })
  for name, value in overrides.items():
    node = config
    *parents, leaf = name.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


class OpenWorkdirTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = os.path.join(self.create_tempdir().full_path, "wd")

  def _result(self, workdir, text="finished"):
    files.atomic_write_text(os.path.join(workdir, "results.csv"), text)

  def _read(self, workdir):
    with open(os.path.join(workdir, "results.csv")) as f:
      return f.read()

  def test_new_workdir_records_the_config(self):
    self.assertEqual(workdirs.open_workdir(self.workdir, _config()),
                     self.workdir)
    self.assertEqual(files.read_json(os.path.join(self.workdir,
                                                  "config.json")),
                     configs.to_dict(_config()))

  def test_same_config_resumes_keeping_results(self):
    workdirs.open_workdir(self.workdir, _config())
    self._result(self.workdir)
    self.assertEqual(workdirs.open_workdir(self.workdir, _config()),
                     self.workdir)
    self.assertEqual(self._read(self.workdir), "finished")
    # 40 and 40.0 are the same setting.
    workdirs.open_workdir(self.workdir,
                          {**configs.to_dict(_config()), "steps": 40.0})
    self.assertEqual(self._read(self.workdir), "finished")

  @parameterized.parameters(
      ({"steps": 20, "batch_size": 16},
       "batch_size: 32 -> 16; steps: 40 -> 20"),
      ({"teacher.digest": "xyz"}, "teacher.digest: 'abc' -> 'xyz'"),
  )
  def test_different_config_is_refused_naming_the_fields(self, overrides,
                                                         named):
    workdirs.open_workdir(self.workdir, _config())
    self._result(self.workdir)
    with self.assertRaises(errors.WorkdirMismatchError) as cm:
      workdirs.open_workdir(self.workdir, _config(**overrides))
    message = str(cm.exception)
    self.assertIn("holds results made with other settings: " + named,
                  message)
    self.assertIn("--fresh", message)
    self.assertIn("--separate", message)
    self.assertNotIn("\n", message)
    self.assertIsInstance(cm.exception, errors.UserError)
    # Nothing changed: config.json still describes the results.
    self.assertEqual(files.read_json(os.path.join(self.workdir,
                                                  "config.json")),
                     configs.to_dict(_config()))
    self.assertEqual(self._read(self.workdir), "finished")

  def test_ignored_fields_may_change_and_config_json_follows(self):
    workdirs.open_workdir(self.workdir, _config(), ignore=("seeds",))
    self._result(self.workdir)
    workdirs.open_workdir(self.workdir, _config(seeds=5), ignore=("seeds",))
    self.assertEqual(files.read_json(os.path.join(
        self.workdir, "config.json"))["seeds"], 5)
    self.assertEqual(self._read(self.workdir), "finished")
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                r"seeds: 5 -> 7$|seeds: 5 -> 7\. Pass"):
      workdirs.open_workdir(self.workdir, _config(seeds=7))
    # A prefix ignores a whole group.
    workdirs.open_workdir(self.workdir, _config(**{"teacher.game": "x"}),
                          ignore=("teacher.", "seeds"))

  def test_fresh_moves_the_old_contents_aside(self):
    workdirs.open_workdir(self.workdir, _config())
    self._result(self.workdir, "old results")
    got = workdirs.open_workdir(self.workdir, _config(steps=20),
                                if_different="fresh")
    self.assertEqual(got, self.workdir)
    self.assertEqual(sorted(os.listdir(self.workdir)),
                     [locks.LOCK_FILE, "config.json"])
    parent = os.path.dirname(self.workdir)
    aside = [d for d in os.listdir(parent) if d.startswith("wd.old-")]
    self.assertLen(aside, 1)
    moved = os.path.join(parent, aside[0])
    self.assertEqual(self._read(moved), "old results")
    self.assertEqual(files.read_json(os.path.join(moved, "config.json"))
                     ["steps"], 40)
    # The same settings just resume: nothing more is moved.
    workdirs.open_workdir(self.workdir, _config(steps=20),
                          if_different="fresh")
    self.assertLen([d for d in os.listdir(parent) if d.startswith("wd.")], 1)

  def test_fresh_twice_in_one_second_keeps_both_old_workdirs(self):
    parent = os.path.dirname(self.workdir)
    with mock.patch.object(workdirs.time, "strftime",
                           return_value="20260101-000000"):
      for steps, text in ((40, "first"), (20, "second"), (10, "third")):
        workdirs.open_workdir(self.workdir, _config(steps=steps),
                              if_different="fresh")
        self._result(self.workdir, text)
    aside = sorted(d for d in os.listdir(parent) if d.startswith("wd."))
    self.assertEqual(aside, ["wd.old-20260101-000000",
                             "wd.old-20260101-000000-2"])
    self.assertEqual(
        sorted(self._read(os.path.join(parent, d)) for d in aside),
        ["first", "second"])
    self.assertEqual(self._read(self.workdir), "third")

  def test_separate_gives_a_run_set_per_settings(self):
    workdirs.open_workdir(self.workdir, _config())
    self._result(self.workdir, "original")
    new = _config(steps=20)
    got = workdirs.open_workdir(self.workdir, new, if_different="separate")
    self.assertEqual(got, os.path.join(self.workdir, "sets",
                                       configs.settings_hash(
                                           configs.flatten(new))))
    self.assertEqual(files.read_json(os.path.join(got, "config.json")),
                     configs.to_dict(new))
    self._result(got, "separate")
    # Reopening finds the same set; the original is untouched.
    self.assertEqual(
        workdirs.open_workdir(self.workdir, new, if_different="separate"),
        got)
    self.assertEqual(self._read(got), "separate")
    self.assertEqual(self._read(self.workdir), "original")
    self.assertEqual(files.read_json(os.path.join(
        self.workdir, "config.json"))["steps"], 40)
    # The original settings still open the top level.
    self.assertEqual(
        workdirs.open_workdir(self.workdir, _config(),
                              if_different="separate"), self.workdir)

  def test_separate_key_leaves_out_ignored_fields(self):
    workdirs.open_workdir(self.workdir, _config())
    self._result(self.workdir)
    a = workdirs.open_workdir(self.workdir, _config(steps=20, seeds=1),
                              ignore=("seeds",), if_different="separate")
    b = workdirs.open_workdir(self.workdir, _config(steps=20, seeds=9),
                              ignore=("seeds",), if_different="separate")
    self.assertEqual(a, b)

  def test_workdir_of_unknown_settings_is_refused(self):
    os.makedirs(self.workdir)
    self._result(self.workdir, "who made this?")
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "holds files but no config.json"):
      workdirs.open_workdir(self.workdir, _config())
    self.assertFalse(os.path.exists(os.path.join(self.workdir,
                                                 "config.json")))

  def test_metadata_and_hidden_files_are_not_results(self):
    os.makedirs(os.path.join(self.workdir, "sets"))
    files.write_json(os.path.join(self.workdir, "provenance.json"), {})
    files.atomic_write_text(os.path.join(self.workdir, ".x.tmp"), "")
    self.assertEqual(workdirs.open_workdir(self.workdir, _config()),
                     self.workdir)

  def test_garbled_config_json_is_refused_not_a_traceback(self):
    os.makedirs(self.workdir)
    self._result(self.workdir)
    files.atomic_write_text(os.path.join(self.workdir, "config.json"), "{")
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "unreadable config.json"):
      workdirs.open_workdir(self.workdir, _config())
    got = workdirs.open_workdir(self.workdir, _config(),
                                if_different="fresh")
    self.assertEqual(files.read_json(os.path.join(got, "config.json")),
                     configs.to_dict(_config()))

  @parameterized.parameters(
      ([],), ([".x.tmp"],), (["tb/"],), (["runs/", "runs/k/"],),
      (["sets/k/results.csv"],))
  def test_a_workdir_without_results_takes_other_settings(self, made):
    # E.g. a run that failed before any work: its config.json (and
    # provenance.json) must not block a retry with other settings.
    workdirs.open_workdir(self.workdir, _config())
    files.write_json(os.path.join(self.workdir, "provenance.json"), {})
    for name in made:
      path = os.path.join(self.workdir, name)
      if name.endswith("/"):
        os.makedirs(path, exist_ok=True)
      else:
        files.atomic_write_text(path, "x")
    self.assertEqual(workdirs.open_workdir(self.workdir, _config(steps=20)),
                     self.workdir)
    self.assertEqual(files.read_json(os.path.join(
        self.workdir, "config.json"))["steps"], 20)

  @parameterized.parameters(("results.csv",), ("runs/k/checkpoints/ckpt-1",),
                            ("tb/run/events",))
  def test_any_result_file_keeps_the_workdir_refused(self, name):
    workdirs.open_workdir(self.workdir, _config())
    files.atomic_write_text(os.path.join(self.workdir, name), "x")
    with self.assertRaises(errors.WorkdirMismatchError):
      workdirs.open_workdir(self.workdir, _config(steps=20))

  def test_locate_finds_the_settings_without_writing(self):
    self.assertIsNone(workdirs.locate(self.workdir, _config()))
    self.assertFalse(os.path.exists(self.workdir))
    workdirs.open_workdir(self.workdir, _config())
    self._result(self.workdir)
    apart = workdirs.open_workdir(self.workdir, _config(steps=20),
                                  if_different="separate")
    workdirs.release(self.workdir)  # Once per open_workdir.
    workdirs.release(self.workdir)
    self.assertEqual(workdirs.locate(self.workdir, _config(seeds=9),
                                     ignore=("seeds",)), self.workdir)
    self.assertEqual(workdirs.locate(self.workdir, _config(steps=20)), apart)
    self.assertIsNone(workdirs.locate(self.workdir, _config(steps=10)))
    self.assertEqual(workdirs.locate_or_raise(self.workdir, _config()),
                     self.workdir)
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "holds no results of these settings"):
      workdirs.locate_or_raise(self.workdir, _config(steps=10))
    self.assertFalse(locks.holds(self.workdir))

  def test_opened_releases_the_lock_after_the_block(self):
    with workdirs.opened(self.workdir, _config()) as directory:
      self.assertEqual(directory, self.workdir)
      self.assertTrue(locks.holds(self.workdir))
    self.assertFalse(locks.holds(self.workdir))

  def test_open_holds_the_lock_reentrantly_and_fresh_moves_it(self):
    workdirs.open_workdir(self.workdir, _config())
    self.assertTrue(locks.holds(self.workdir))
    self.assertEqual(locks.holder(self.workdir)["pid"], os.getpid())
    workdirs.open_workdir(self.workdir, _config())  # Same process: fine.
    self._result(self.workdir)
    workdirs.open_workdir(self.workdir, _config(steps=20),
                          if_different="fresh")
    self.assertTrue(locks.holds(self.workdir))
    workdirs.release(self.workdir)
    self.assertFalse(locks.holds(self.workdir))
    self.assertIsNone(locks.holder(self.workdir))

  @parameterized.parameters(("", "refuse", "`workdir`"),
                            (None, "refuse", "`workdir`"),
                            ("x", "overwrite", "`if_different`"))
  def test_bad_arguments(self, workdir, if_different, named):
    with self.assertRaisesRegex(ValueError, named):
      workdirs.open_workdir(workdir, _config(), if_different=if_different)


if __name__ == "__main__":
  tf.test.main()
