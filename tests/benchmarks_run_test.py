"""Smoke, resume and bad-flag tests of `python -m benchmarks.run`."""

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import parameterized
import matplotlib.image
import tensorflow as tf

from benchmarks import report
from benchmarks import run
from benchmarks import trainer

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(**kw):
  config = run.parse_config(["booth", "styblinski_tang"], ["6"], 1, 5)
  return dataclasses.replace(config, hidden_sizes=(8, 8), steps_per_call=5,
                             test_size=50, **kw)


class RunTest(tf.test.TestCase, parameterized.TestCase):

  def _tmpdir(self):
    path = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  def test_smoke_outputs_and_resume(self):
    workdir = self._tmpdir()
    config = _tiny()
    rows = run.train_and_evaluate(config, workdir, show_progress=False)
    self.assertLen(rows, 4)
    with open(os.path.join(workdir, "results.csv"), newline="") as f:
      reader = csv.reader(f)
      self.assertEqual(next(reader), ["function", "size", "method", "seed",
                                      "test_mse", "test_grad_mse",
                                      "train_seconds"])
      body = list(reader)
    self.assertLen(body, 4)
    self.assertCountEqual([(r[0], r[2]) for r in body],
                          [("booth", "regular"), ("booth", "sobolev"),
                           ("styblinski_tang", "regular"),
                           ("styblinski_tang", "sobolev")])
    for r in body:
      self.assertEqual(r[1], "6")
      self.assertGreater(float(r[4]), 0)
      self.assertGreater(float(r[5]), 0)
      self.assertGreaterEqual(float(r[6]), 0)
    with open(os.path.join(workdir, "results.md")) as f:
      md = f.read()
    self.assertIn("| Function | 6 pts: regular | 6 pts: sobolev |", md)
    self.assertIn("| Booth |", md)
    self.assertIn("| Styblinski-Tang |", md)
    self.assertIn("+-", md)
    for name in ("figure2.png", "figure3.png"):
      image = matplotlib.image.imread(os.path.join(workdir, name))
      self.assertEqual(image.ndim, 3)
      self.assertGreater(image.shape[0], 100)
      self.assertGreater(image.shape[1], 100)
      self.assertGreater(image.std(), 0.01)  # Not blank.

    # Resume: everything is finished, so nothing is trained again.
    before = open(os.path.join(workdir, "results.csv")).read()
    with mock.patch.object(trainer, "train_group",
                           side_effect=AssertionError("retrained")):
      again = run.train_and_evaluate(config, workdir, show_progress=False)
    self.assertLen(again, 4)
    self.assertEqual(open(os.path.join(workdir, "results.csv")).read(),
                     before)

    # A killed sweep: drop two rows; only their group is trained again.
    kept = [r for r in report.read_csv(os.path.join(workdir, "results.csv"))
            if r["method"] != "sobolev"]
    report.write_csv(os.path.join(workdir, "results.csv"), kept)
    real = trainer.train_group
    calls = []

    def spy(runs, *args, **kwargs):
      calls.append([(r.function, r.method) for r in runs])
      return real(runs, *args, **kwargs)

    with mock.patch.object(trainer, "train_group", side_effect=spy):
      again = run.train_and_evaluate(config, workdir, show_progress=False)
    self.assertEqual(calls, [[("booth", "sobolev"),
                              ("styblinski_tang", "sobolev")]])
    self.assertLen(again, 4)
    kept_after = [r for r in again if r["method"] == "regular"]
    self.assertCountEqual([report.key(r) for r in kept_after],
                          [report.key(r) for r in kept])
    self.assertEqual(
        {report.key(r): r["test_mse"] for r in kept_after},
        {report.key(r): r["test_mse"] for r in kept})

    # Another protocol in the same workdir is refused.
    with self.assertRaisesRegex(ValueError, "different protocol"):
      run.train_and_evaluate(_tiny(grad_weight=3.0), workdir,
                             show_progress=False)

  @parameterized.parameters(
      (["booth", "sphere"], ["20"], "unknown function 'sphere'"),
      (["booth"], ["0"], "sizes must be > 0"),
      (["booth"], ["-5"], "sizes must be > 0"),
      (["booth"], ["ten"], "not an integer"),
  )
  def test_bad_flags(self, names, sizes, message):
    with self.assertRaisesRegex(ValueError, message):
      run.parse_config(names, sizes, 3, 10)

  def test_bad_seeds_and_steps(self):
    with self.assertRaisesRegex(ValueError, "--seeds"):
      run.parse_config(["booth"], ["20"], 0, 10)
    with self.assertRaisesRegex(ValueError, "--steps"):
      run.parse_config(["booth"], ["20"], 1, -1)

  def test_cli_rejects_unknown_function(self):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--functions=booth,sphere",
         "--workdir=" + self._tmpdir()],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=300)
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn("unknown function 'sphere'", proc.stderr)


if __name__ == "__main__":
  tf.test.main()
