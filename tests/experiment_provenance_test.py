"""Tests of sobolev.experiment.provenance (provenance.json in each workdir)."""

import datetime
import os
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import tensorflow as tf

from sobolev.experiment import cli
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import provenance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _time(text):
  return datetime.datetime.fromisoformat(text)


def _git(*args, cwd):
  return subprocess.run(["git", *args], cwd=cwd, capture_output=True,
                        text=True, check=True).stdout.strip()


class ProvenanceTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = os.path.join(self.create_tempdir().full_path, "wd")
    self.config = ml_collections.ConfigDict({"steps": 40, "lr": 1e-3,
                                             "sizes": (8, 8)})

  def test_start_records_everything_and_finish_closes_it(self):
    argv = [os.path.join(ROOT, "benchmarks", "run.py"), "--workdir=/tmp/a b",
            "--config.steps=40"]
    record = provenance.start(self.workdir, self.config, argv=argv)
    data = files.read_json(os.path.join(self.workdir, "provenance.json"))
    self.assertLen(data["invocations"], 1)
    entry = data["invocations"][0]
    self.assertEqual(entry, record)
    self.assertEqual(
        entry["command"],
        f"{os.path.basename(sys.executable)} -m benchmarks.run "
        "'--workdir=/tmp/a b' --config.steps=40")
    self.assertEqual(entry["argv"], argv)
    self.assertEqual(entry["cwd"], os.getcwd())
    self.assertEqual(entry["config"], {"lr": 1e-3, "sizes": [8, 8],
                                       "steps": 40})
    versions = entry["versions"]
    self.assertEqual(versions["tensorflow"], tf.__version__)
    self.assertEqual(versions["numpy"], np.__version__)
    self.assertEqual(versions["python"], sys.version.split()[0])
    for name in ("dm-sonnet", "absl-py", "ml-collections", "tensorboard"):
      self.assertIn(name, versions)
    self.assertEqual(set(entry["environment"]),
                     set(provenance.THREAD_ENV))
    machine = entry["machine"]
    self.assertEqual(machine["cores"], os.cpu_count())
    self.assertTrue(machine["cpu"])
    self.assertTrue(machine["platform"])
    self.assertEqual(entry["status"], "running")
    self.assertIsNone(entry["end"])
    self.assertIsNotNone(_time(entry["start"]).tzinfo)
    self.assertIn("commit", entry["git"])
    self.assertIn("dirty", entry["git"])

    provenance.finish(self.workdir, record, status="finished")
    entry = files.read_json(os.path.join(
        self.workdir, "provenance.json"))["invocations"][0]
    self.assertEqual(entry["status"], "finished")
    self.assertGreaterEqual(_time(entry["end"]), _time(entry["start"]))

  def test_git_commit_of_this_checkout(self):
    if shutil.which("git") is None or not os.path.isdir(
        os.path.join(ROOT, ".git")):
      self.skipTest("not a git checkout")
    record = provenance.start(self.workdir, self.config, argv=["x"])
    self.assertEqual(record["git"]["commit"], _git("rev-parse", "HEAD",
                                                   cwd=ROOT))
    self.assertIsInstance(record["git"]["dirty"], bool)

  def test_git_state_of_a_repository_and_of_no_repository(self):
    if shutil.which("git") is None:
      self.skipTest("git is not installed")
    repo = self.create_tempdir().full_path
    self.assertEqual(provenance.git_state(repo),
                     {"commit": None, "dirty": None})
    _git("init", "-q", cwd=repo)
    with open(os.path.join(repo, "f.txt"), "w") as f:
      f.write("1")
    _git("add", "f.txt", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m",
         cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    self.assertEqual(provenance.git_state(repo),
                     {"commit": head, "dirty": False})
    with open(os.path.join(repo, "f.txt"), "w") as f:
      f.write("2")
    self.assertEqual(provenance.git_state(repo),
                     {"commit": head, "dirty": True})

  def test_resumed_runs_append_records_and_finish_the_right_one(self):
    first = provenance.start(self.workdir, self.config, argv=["run", "--a"])
    provenance.finish(self.workdir, first, status="failed")
    second = provenance.start(self.workdir, self.config, argv=["run", "--b"])
    provenance.finish(self.workdir, second)
    entries = files.read_json(os.path.join(
        self.workdir, "provenance.json"))["invocations"]
    self.assertEqual([e["command"] for e in entries], ["run --a", "run --b"])
    self.assertEqual([e["status"] for e in entries], ["failed", "finished"])

  def test_recorded_sets_the_status_of_how_the_block_ends(self):
    statuses = {errors.DivergenceError: "diverged",
                KeyboardInterrupt: "interrupted",
                errors.UserError: lambda e: f"failed: {e}"}
    with provenance.recorded(self.workdir, self.config, statuses=statuses,
                             argv=["run", "--ok"]) as record:
      self.assertEqual(record["status"], "running")
    raised = [errors.DivergenceError("nan"), KeyboardInterrupt(),
              errors.ConfigError("bad steps"), RuntimeError("boom")]
    for i, exc in enumerate(raised):
      with self.assertRaises(type(exc)):
        with provenance.recorded(self.workdir, self.config,
                                 statuses=statuses, argv=["run", str(i)]):
          raise exc
    with self.assertRaises(errors.DivergenceError):
      with provenance.recorded(self.workdir, self.config,
                               argv=["run", "plain"]):
        raise errors.DivergenceError("nan")
    entries = files.read_json(os.path.join(
        self.workdir, "provenance.json"))["invocations"]
    # The first matching entry wins: a DivergenceError is also a UserError.
    self.assertEqual([e["status"] for e in entries],
                     ["finished", "diverged", "interrupted",
                      "failed: bad steps", "failed", "failed"])
    self.assertTrue(all(e["end"] for e in entries))

  def test_ctrl_c_and_sigterm_are_interrupted_without_statuses(self):
    statuses = {errors.UserError: lambda e: f"failed: {e}"}
    for exc, given in ((KeyboardInterrupt(), None),
                       (cli.Terminated(), None),
                       (KeyboardInterrupt(), statuses),
                       (KeyboardInterrupt(), {KeyboardInterrupt: "stopped"})):
      with self.assertRaises(KeyboardInterrupt):
        with provenance.recorded(self.workdir, self.config, statuses=given,
                                 argv=["run"]):
          raise exc
    entries = files.read_json(os.path.join(
        self.workdir, "provenance.json"))["invocations"]
    self.assertEqual([e["status"] for e in entries],
                     ["interrupted", "interrupted", "interrupted", "stopped"])

  def test_versions_of_missing_packages_are_none(self):
    self.assertEqual(
        provenance.versions(("numpy", "surely-not-installed-pkg")),
        {"python": sys.version.split()[0], "numpy": np.__version__,
         "surely-not-installed-pkg": None})


if __name__ == "__main__":
  tf.test.main()
