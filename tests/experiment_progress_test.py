"""Tests of sobolev.experiment.progress.Progress (tqdm with ETA)."""

import contextlib
import io
import re

import tensorflow as tf

from sobolev.experiment import progress


class ProgressTest(tf.test.TestCase):

  def test_bar_shows_count_eta_rate_and_postfix(self):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      with progress.Progress(total=40, desc="booth/sobolev", unit="step",
                             disable=False) as bar:
        for _ in range(4):
          bar.update(10, loss=0.123456, lr=3)
    text = err.getvalue()
    self.assertIn("booth/sobolev", text)
    self.assertIn("40/40", text)
    # tqdm's [elapsed<remaining, rate]: the ETA.
    self.assertRegex(text, r"\[\d\d:\d\d<\d\d:\d\d, .*step/s")
    self.assertIn("loss=0.1235", text)
    self.assertIn("lr=3", text)

  def test_not_a_terminal_prints_one_summary_line(self):
    err = io.StringIO()  # Not a TTY: disable=None turns the bar off.
    with contextlib.redirect_stderr(err):
      with progress.Progress(total=10, desc="teacher", unit="frame",
                             initial=2) as bar:
        bar.update(3)
        bar.set_description("teacher (eval)")
        bar.update(5)
    lines = err.getvalue().splitlines()
    self.assertLen(lines, 1)
    self.assertRegex(lines[0], r"^teacher \(eval\): 10/10 frame in "
                     r"\d+\.\d s$")

  def test_nothing_done_prints_nothing(self):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      with progress.Progress(total=10, desc="resumed", initial=10):
        pass
    self.assertEqual(err.getvalue(), "")

  def test_partial_progress_is_reported(self):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      bar = progress.Progress(total=100, desc="x")
      bar.update(2.5)
      bar.close()
    self.assertTrue(re.match(r"x: 2\.5/100 it in ", err.getvalue()))


if __name__ == "__main__":
  tf.test.main()
