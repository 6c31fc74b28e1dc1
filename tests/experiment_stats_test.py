"""Tests of sobolev.experiment.stats: one std convention and 95% intervals."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev.experiment import stats

# Two-sided 95% Student-t quantiles from printed tables (3 decimals).
_T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 20: 2.086,
            29: 2.045, 30: 2.042, 31: 2.040, 40: 2.021, 50: 2.009,
            60: 2.000, 80: 1.990, 100: 1.984, 120: 1.980, 1000: 1.962}


class MeanStdTest(parameterized.TestCase, tf.test.TestCase):

  def test_sample_std_ddof_1(self):
    mean, std = stats.mean_std([1.0, 2.0, 3.0, 4.0])
    self.assertEqual(mean, 2.5)
    self.assertAlmostEqual(std, math.sqrt(5 / 3), places=12)
    values = np.random.default_rng(0).normal(size=7)
    self.assertAlmostEqual(stats.mean_std(values)[1],
                           float(np.std(values, ddof=1)), places=12)
    self.assertNotAlmostEqual(stats.mean_std(values)[1],
                              float(np.std(values)), places=6)

  def test_single_value_has_zero_spread(self):
    self.assertEqual(stats.mean_std([3.5]), (3.5, 0.0))
    self.assertEqual(stats.mean_std(np.array([[3.5]])), (3.5, 0.0))

  def test_empty_raises(self):
    with self.assertRaisesRegex(ValueError, "`values` must not be empty"):
      stats.mean_std([])

  def test_format(self):
    self.assertEqual(stats.format_mean_std([1.0, 2.0, 3.0, 4.0]),
                     "2.5 +- 1.29")
    self.assertEqual(stats.format_mean_std([1.0, 2.0], with_n=True),
                     "1.5 +- 0.707 (n=2)")
    self.assertEqual(stats.format_mean_std([1.0, 2.0], fmt=".2f"),
                     "1.50 +- 0.71")


class TQuantileTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*sorted(_T_TABLE.items()))
  def test_against_tables(self, df, expected):
    self.assertAlmostEqual(stats.t_quantile_975(df), expected, delta=5e-4)

  def test_decreases_towards_the_normal_quantile(self):
    values = [stats.t_quantile_975(df) for df in range(1, 500)]
    self.assertTrue(all(a > b for a, b in zip(values, values[1:])))
    self.assertGreater(values[-1], 1.959964)
    self.assertAlmostEqual(stats.t_quantile_975(10**6), 1.959966, places=5)

  def test_rounds_to_the_three_decimal_table(self):
    table = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
             2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
             2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
             2.048, 2.045, 2.042)
    for df, tabled in enumerate(table, 1):
      self.assertEqual(round(stats.t_quantile_975(df), 3), tabled, msg=df)

  @parameterized.parameters(0, -1)
  def test_df_below_one_raises(self, df):
    with self.assertRaisesRegex(ValueError, "`df` must be >= 1"):
      stats.t_quantile_975(df)


class IntervalTest(parameterized.TestCase, tf.test.TestCase):

  def test_mean_interval_by_hand(self):
    mean, low, high = stats.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # t_{0.975, 4} = 2.776445105 (tables give 2.776).
    half = 2.776445105 * math.sqrt(2.5) / math.sqrt(5)
    self.assertEqual(mean, 3.0)
    self.assertAlmostEqual(low, 3.0 - half, places=9)
    self.assertAlmostEqual(high, 3.0 + half, places=9)

  def test_mean_interval_of_one_value_is_undefined(self):
    mean, low, high = stats.mean_interval([2.0])
    self.assertEqual(mean, 2.0)
    self.assertTrue(math.isnan(low) and math.isnan(high))

  def test_bootstrap_is_deterministic_per_seed(self):
    values = np.random.default_rng(1).exponential(size=12)
    a = stats.bootstrap_interval(values, samples=2000, seed=3)
    b = stats.bootstrap_interval(values, samples=2000, seed=3)
    c = stats.bootstrap_interval(values, samples=2000, seed=4)
    self.assertEqual(a, b)
    self.assertNotEqual(a, c)
    self.assertEqual(a[0], float(np.mean(values)))
    self.assertLess(a[1], a[0])
    self.assertLess(a[0], a[2])

  def test_bootstrap_resamples_rows_of_the_seeded_generator(self):
    # The percentile interval of `statistic` over the resamples
    # `default_rng(seed).integers(0, n, (samples, n))`, one per row.
    values = np.random.default_rng(2).normal(size=9)
    idx = np.random.default_rng(5).integers(0, 9, size=(500, 9))
    means = np.array([np.mean(values[i]) for i in idx])
    _, low, high = stats.bootstrap_interval(values, samples=500, seed=5)
    self.assertAllClose([low, high], np.quantile(means, [0.025, 0.975]),
                        rtol=1e-12, atol=0)

  def test_bootstrap_of_one_value(self):
    self.assertEqual(stats.bootstrap_interval([4.0]), (4.0, 4.0, 4.0))

  def test_bootstrap_other_statistic_and_level(self):
    values = np.arange(20.0)
    stat, low, high = stats.bootstrap_interval(values, np.median,
                                               samples=1000, level=0.5)
    self.assertEqual(stat, 9.5)
    wide = stats.bootstrap_interval(values, np.median, samples=1000,
                                    level=0.99)
    self.assertLessEqual(wide[1], low)
    self.assertGreaterEqual(wide[2], high)

  @parameterized.parameters(0.0, 1.0, 95)
  def test_bootstrap_bad_level_raises(self, level):
    with self.assertRaisesRegex(ValueError, "`level` must be in"):
      stats.bootstrap_interval([1.0, 2.0], level=level)

  @parameterized.parameters(0, -5, 2.5)
  def test_bootstrap_bad_samples_raise(self, samples):
    with self.assertRaisesRegex(ValueError, "`samples` must be an integer"):
      stats.bootstrap_interval([1.0, 2.0], samples=samples)



class PairedIntervalsTest(tf.test.TestCase):

  def test_by_hand(self):
    diffs = [2.0, 2.0, 1.0]
    mean, t_low, t_high, b_low, b_high = stats.paired_intervals(
        diffs, samples=500)
    self.assertAllClose(mean, 5 / 3)
    half = 4.302652729911275 * np.std(diffs, ddof=1) / np.sqrt(3)
    self.assertAllClose([t_low, t_high], [mean - half, mean + half],
                        rtol=1e-3)
    self.assertBetween(b_low, 1.0, mean)
    self.assertBetween(b_high, mean, 2.0)

  def test_one_pair_has_no_intervals(self):
    out = stats.paired_intervals([0.5])
    self.assertEqual(out[0], 0.5)
    self.assertTrue(all(np.isnan(v) for v in out[1:]))


if __name__ == "__main__":
  tf.test.main()
