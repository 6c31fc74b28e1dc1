"""Tests of a study's workdir session (`sobolev.experiment.studies`)."""

import os

import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import locks
from sobolev.experiment import studies


class SessionTest(tf.test.TestCase):

  def test_holds_records_and_reports_read_only(self):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    config = {"steps": 3, "seeds": 2}
    with self.assertRaisesRegex(errors.WorkdirMismatchError,
                                "holds no results of these settings"):
      with studies.session(workdir, config, report_only=True):
        pass
    with studies.session(workdir, config) as directory:
      self.assertEqual(directory, workdir)
      self.assertTrue(locks.holds(workdir))
    self.assertFalse(locks.holds(workdir))
    record = files.read_json(os.path.join(workdir, "provenance.json"))
    self.assertEqual(record["invocations"][-1]["status"], "finished")
    # Report-only: located without the lock; nothing recorded.
    with studies.session(workdir, {"steps": 3, "seeds": 9}, ignore=("seeds",),
                         report_only=True) as directory:
      self.assertEqual(directory, workdir)
      self.assertFalse(locks.holds(workdir))
    record = files.read_json(os.path.join(workdir, "provenance.json"))
    self.assertLen(record["invocations"], 1)
    self.assertEqual(studies.report_dir(workdir, True),
                     os.path.join(workdir, "report_only"))
    self.assertEqual(studies.report_dir(workdir, False), workdir)

  def test_divergence_is_recorded_as_diverged(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaises(errors.DivergenceError):
      with studies.session(workdir, {"steps": 3}):
        raise errors.DivergenceError("nan")
    record = files.read_json(os.path.join(workdir, "provenance.json"))
    self.assertEqual(record["invocations"][-1]["status"], "diverged")


if __name__ == "__main__":
  tf.test.main()
