"""Tests of sobolev.experiment.runs.RunStore: finished units keyed by settings."""

import os

import tensorflow as tf

from sobolev.experiment import configs
from sobolev.experiment import files
from sobolev.experiment import runs

_SETTINGS = {"method": "sobolev", "learning_rate": 3e-3, "seed": 2,
             "teacher": {"digest": "abc", "frames": 320}}


class RunStoreTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = self.create_tempdir().full_path
    self.store = runs.RunStore(self.workdir)

  def test_round_trip(self):
    self.assertIsNone(self.store.result(_SETTINGS))
    path = self.store.save(_SETTINGS, {"test_loss": 0.25, "steps": 100,
                                       "diverged": False})
    self.assertEqual(path, os.path.join(self.workdir, "runs",
                                        configs.settings_hash(_SETTINGS)))
    self.assertEqual(self.store.result(_SETTINGS),
                     {"test_loss": 0.25, "steps": 100, "diverged": False})
    self.assertEqual(files.read_json(os.path.join(path, "settings.json")),
                     _SETTINGS)
    # A new store on the same workdir (a resumed process) finds it.
    self.assertEqual(runs.RunStore(self.workdir).result(dict(_SETTINGS)),
                     {"test_loss": 0.25, "steps": 100, "diverged": False})

  def test_equal_settings_share_a_unit_other_settings_do_not(self):
    self.store.save(_SETTINGS, {"x": 1})
    self.assertEqual(self.store.result({**_SETTINGS, "seed": 2.0}), {"x": 1})
    for changed in ({**_SETTINGS, "seed": 3},
                    {**_SETTINGS, "teacher": {"digest": "abd",
                                              "frames": 320}},
                    {**_SETTINGS, "extra": None}):
      self.assertIsNone(self.store.result(changed))
      self.assertNotEqual(runs.RunStore.key(changed),
                          runs.RunStore.key(_SETTINGS))

  def test_unit_without_result_is_not_finished(self):
    unit = self.store.unit_dir(_SETTINGS)
    self.assertTrue(os.path.isdir(unit))
    files.atomic_write_text(os.path.join(unit, "model", "weights"), "w")
    self.assertIsNone(self.store.result(_SETTINGS))

  def test_unit_dir_create_false_does_not_create(self):
    unit = self.store.unit_dir(_SETTINGS, create=False)
    self.assertFalse(os.path.exists(unit))
    self.assertIsNone(self.store.result(_SETTINGS))
    self.assertFalse(os.path.exists(unit))

  def test_recorded_settings_that_do_not_match_the_key_raise(self):
    path = self.store.save(_SETTINGS, {"x": 1})
    files.write_json(os.path.join(path, "settings.json"),
                     {**_SETTINGS, "seed": 5})
    with self.assertRaisesRegex(ValueError, "records other settings than its "
                                "key says; delete that directory"):
      self.store.result(_SETTINGS)
    os.remove(os.path.join(path, "settings.json"))
    with self.assertRaisesRegex(ValueError, "records other settings"):
      self.store.result(_SETTINGS)

  def test_subdir(self):
    store = runs.RunStore(self.workdir, subdir="rollouts")
    self.assertEqual(store.root, os.path.join(self.workdir, "rollouts"))
    store.save({"a": 1}, {"n": 3})
    self.assertIsNone(self.store.result({"a": 1}))
    self.assertEqual(store.result({"a": 1}), {"n": 3})

  def test_finished_and_load_read_back_only_finished_units(self):
    self.assertEqual(list(self.store.finished()), [])  # No runs/ yet.
    other = {**_SETTINGS, "seed": 3}
    self.store.save(_SETTINGS, {"x": 1})
    self.store.save(other, {"x": 2})
    unfinished = self.store.unit_dir({**_SETTINGS, "seed": 4})
    units = list(self.store.finished())
    self.assertEqual([u.key for u in units],
                     sorted([runs.RunStore.key(_SETTINGS),
                             runs.RunStore.key(other)]))
    by_seed = {u.settings["seed"]: u.result for u in units}
    self.assertEqual(by_seed, {2: {"x": 1}, 3: {"x": 2}})
    key = runs.RunStore.key(_SETTINGS)
    self.assertEqual(self.store.load(key),
                     runs.Unit(key, _SETTINGS, {"x": 1}))
    self.assertIsNone(runs.read_unit(unfinished))
    self.assertIsNone(self.store.load("no-such-key"))

  def test_read_unit_names_a_garbled_file(self):
    path = self.store.save(_SETTINGS, {"x": 1})
    files.atomic_write_text(os.path.join(path, "result.json"), "{garbled")
    with self.assertRaisesRegex(Exception, "result.json"):
      runs.read_unit(path)


if __name__ == "__main__":
  tf.test.main()
