"""Tests of the model-class presets (issue 22): they validate and hold the
class the study chose."""

import tensorflow as tf

from benchmarks import settings
from benchmarks import study_runner
from benchmarks.configs import default
from benchmarks.configs import dimension
from benchmarks.configs import dimension_smooth
from benchmarks.configs import smooth


class ModelClassPresetsTest(tf.test.TestCase):

  def test_smooth_validates_and_differs_from_default_only_in_its_class(self):
    config = settings.resolve(smooth.get_config())
    settings.check(config)
    base = default.get_config().to_dict()
    changed = {k for k, v in smooth.get_config().to_dict().items()
               if base.get(k) != v}
    self.assertEqual(changed, {"sizes", "activation", "hidden_sizes",
                               "optimizer", "steps"})
    self.assertEqual((config.activation, tuple(config.hidden_sizes),
                      config.optimizer, config.steps),
                     ("silu", (64, 64), "lbfgs", 500))

  def test_default_keeps_the_published_class(self):
    config = default.get_config()
    self.assertEqual((config.activation, tuple(config.hidden_sizes),
                      config.optimizer, config.steps),
                     ("relu", (256, 256), "adam", 4000))

  def test_dimension_smooth_validates_and_changes_only_the_class(self):
    config = study_runner.resolve(dimension_smooth.get_config())
    study_runner.check(config)
    base = dimension.get_config().to_dict()
    changed = {k for k, v in dimension_smooth.get_config().to_dict().items()
               if base.get(k) != v}
    self.assertEqual(changed, {"activation", "hidden_sizes", "optimizer",
                               "budgets"})
    self.assertEqual(study_runner.study_functions(config),
                     study_runner.study_functions(
                         study_runner.resolve(dimension.get_config())))


if __name__ == "__main__":
  tf.test.main()
