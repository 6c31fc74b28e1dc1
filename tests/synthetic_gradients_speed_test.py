"""The SG step-time script runs shrunk end to end (`synthetic_gradients.speed`)."""

import math
import os

import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files
from synthetic_gradients import speed
from synthetic_gradients.configs import digits
from synthetic_gradients.configs import speed as speed_config


def _tiny():
  config = speed_config.get_config()
  model = digits.get_config()
  model.widths = (4, 4, 4, 4)
  model.batch_size = 8
  model.image_size = 8
  config.model = model
  config.methods = "sobolev,backprop,direct"
  config.repeats = 2
  config.calls = 2
  config.warmup_calls = 1
  return config


class SpeedTest(tf.test.TestCase):

  def test_runs_shrunk_end_to_end(self):
    workdir = self.create_tempdir().full_path
    rows = speed.run(_tiny(), workdir)
    self.assertEqual([r.method for r in rows],
                     ["backprop", "sobolev", "direct"])
    self.assertEqual(rows[0].ratio, 1.0)
    for r in rows:
      self.assertGreater(r.median_us, 0)
      self.assertLessEqual(r.min_us, r.median_us)
      self.assertAllClose(r.ratio, r.median_us / rows[0].median_us)
      self.assertEqual(r.num_modules, 3)
      self.assertEqual(r.batch, 8)
    csv_rows = files.read_csv(os.path.join(workdir, "speed.csv"))
    self.assertLen(csv_rows, 3)
    with open(os.path.join(workdir, "speed.md")) as f:
      self.assertIn("| sobolev | 3 | 8 |", f.read())

  def test_no_backprop_gives_nan_ratio(self):
    config = _tiny()
    config.methods = "noprop"
    rows = speed.measure(config)
    self.assertTrue(math.isnan(rows[0].ratio))

  def test_bad_method(self):
    config = _tiny()
    config.methods = "backprop,magic"
    with self.assertRaisesRegex(errors.ConfigError, "`methods` must be one"):
      speed.check(config)


if __name__ == "__main__":
  tf.test.main()
