"""Tests of a study's worker processes (`sobolev.experiment.workers`)."""

import os

from absl.testing import parameterized
import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import workdirs
from sobolev.experiment import workers

# A stand-in study command: records its flags, fails for worker 1 of 3.
_MODULE = """
import sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
with open(args["workdir"] + "/worker-" + args["worker"].replace("/", "-"),
          "w") as f:
  f.write(args["stage"] + " " + __import__("os").environ["SOME_VAR"])
sys.exit(3 if args["worker"] == "1/3" else 0)
"""


class ParseAndCheckTest(parameterized.TestCase):

  @parameterized.parameters(("0/2", (0, 2)), ("3/4", (3, 4)))
  def test_parse(self, text, share):
    self.assertEqual(workers.parse(text), share)

  @parameterized.parameters("2", "a/b", "1/2/3", "")
  def test_parse_refuses(self, text):
    with self.assertRaisesRegex(errors.UserError, "`--worker` must be I/N"):
      workers.parse(text)

  def test_check(self):
    workers.check("final", ("screen", "final"), 1, 2)
    with self.assertRaisesRegex(errors.UserError, "`--stage` must be one of"):
      workers.check("tune", ("screen", "final"), 0, 2)
    for index, count in ((2, 2), (-1, 2)):
      with self.assertRaisesRegex(errors.UserError, "0 <= I < N"):
        workers.check("final", ("screen", "final"), index, count)

  def test_recorded_config(self):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    with self.assertRaisesRegex(errors.UserError, "holds no study"):
      workers.recorded_config(workdir)
    with workdirs.opened(workdir, {"steps": 4}):
      pass
    self.assertEqual(workers.recorded_config(workdir), {"steps": 4})


class BalanceTest(parameterized.TestCase):

  def test_largest_first_to_the_least_loaded(self):
    costs = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 3.0, "e": 1.0}
    parts = workers.balance(list(costs), 2, costs.get, order=str)
    # Loads after each: a (5, 0), b (5, 4), c (5, 7), d (8, 7), e (8, 8).
    self.assertEqual(parts, [["a", "d"], ["b", "c", "e"]])

  def test_ties_break_by_order_and_the_first_least_loaded(self):
    parts = workers.balance(["y", "x", "z"], 3, lambda _: 1.0, order=str)
    self.assertEqual(parts, [["x"], ["y"], ["z"]])

  def test_deterministic_and_complete(self):
    items = list(range(40))
    cost = lambda i: float((i * 7) % 11)
    a = workers.balance(items, 3, cost, order=int)
    b = workers.balance(list(reversed(items)), 3, cost, order=int)
    self.assertEqual(a, b)
    self.assertCountEqual(sum(a, []), items)
    self.assertEqual(workers.balance([], 2, cost, order=int), [[], []])


class StartTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.package = self.create_tempdir().full_path
    with open(os.path.join(self.package, "fake_study.py"), "w") as f:
      f.write(_MODULE)
    self.path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([self.package] + (
        [self.path] if self.path else []))

  def tearDown(self):
    os.environ["PYTHONPATH"] = self.path
    super().tearDown()

  def test_every_worker_runs_with_its_share_and_env(self):
    workdir = self.create_tempdir().full_path
    workers.start("fake_study", workdir, "final", 2, env={"SOME_VAR": "v"})
    for i in range(2):
      with open(os.path.join(workdir, f"worker-{i}-2")) as f:
        self.assertEqual(f.read(), "final v")

  def test_a_failed_worker_is_one_user_error(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(
        errors.UserError, r"A tune worker failed \(exit codes \[0, 3, 0\]\)"
        r".*Finished models are kept"):
      workers.start("fake_study", workdir, "tune", 3, env={"SOME_VAR": "v"},
                    what="models")
    self.assertLen([n for n in os.listdir(workdir) if n.startswith("worker")],
                   3)


if __name__ == "__main__":
  tf.test.main()
