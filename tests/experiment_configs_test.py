"""Tests of sobolev.experiment.configs: canonical dicts, hashes, diffs, checks."""

import hashlib
import json
import math
import os
import subprocess
import sys

from absl.testing import parameterized
import ml_collections
import numpy as np
import tensorflow as tf

from sobolev.experiment import configs
from sobolev.experiment import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _settings():
  return {
      "learning_rate": 3e-3,
      "steps": 1000,
      "method": "sobolev",
      "use_bias": True,
      "sizes": [64, 64],
      "optimizer": {"name": "adam", "beta": 0.9, "grid": [1e-3, 1e-2]},
  }


def _config():
  config = ml_collections.ConfigDict()
  config.learning_rate = 3e-3
  config.steps = 1000
  config.method = "sobolev"
  config.use_bias = True
  config.sizes = (64, 64)
  config.optimizer = ml_collections.ConfigDict(
      {"name": "adam", "beta": 0.9, "grid": (1e-3, 1e-2)})
  return config


def _replace(settings, dotted, value):
  out = json.loads(json.dumps(settings))
  *parents, leaf = dotted.split(".")
  node = out
  for p in parents:
    node = node[p]
  node[leaf] = value
  return out


class ToDictTest(tf.test.TestCase):

  def test_config_dict_equals_its_json_round_trip(self):
    d = configs.to_dict(_config())
    self.assertEqual(d, _settings())
    self.assertEqual(json.loads(json.dumps(d)), d)
    self.assertEqual(list(d), sorted(d))

  def test_numpy_values_become_python_numbers(self):
    d = configs.to_dict({"a": np.float32(0.5), "b": np.int64(3),
                         "c": (np.float64(1.5),)})
    self.assertEqual(d, {"a": 0.5, "b": 3, "c": [1.5]})
    self.assertIs(type(d["b"]), int)

  def test_rejects_non_mappings(self):
    with self.assertRaisesRegex(TypeError, "`config` must be a ConfigDict"):
      configs.to_dict([("a", 1)])


class SettingsHashTest(parameterized.TestCase, tf.test.TestCase):

  def test_format_is_sha256_of_canonical_json(self):
    # Stored run keys depend on this format; changing it orphans every
    # finished unit in existing workdirs.
    text = '{"a":1,"b":[1,2.5],"c":{"d":"x"}}'
    self.assertEqual(
        configs.settings_hash({"c": {"d": "x"}, "b": (1.0, 2.5), "a": 1.0}),
        hashlib.sha256(text.encode()).hexdigest()[:16])

  def test_config_dict_dict_and_key_order_hash_the_same(self):
    reordered = dict(reversed(list(_settings().items())))
    self.assertEqual(configs.settings_hash(_config()),
                     configs.settings_hash(_settings()))
    self.assertEqual(configs.settings_hash(reordered),
                     configs.settings_hash(_settings()))

  @parameterized.parameters(
      ({"a": 1}, {"a": 1.0}),
      ({"a": [2, 3]}, {"a": (2.0, 3.0)}),
      ({"a": {"b": 0}}, {"a": {"b": -0.0}}),
      ({"a": np.int64(4)}, {"a": 4.0}),
  )
  def test_equal_values_of_other_types_hash_the_same(self, a, b):
    self.assertEqual(configs.settings_hash(a), configs.settings_hash(b))

  @parameterized.parameters(
      ("learning_rate", 3.0001e-3), ("steps", 1001), ("steps", "1000"),
      ("method", "regular"), ("use_bias", False), ("use_bias", 1),
      ("sizes", [64, 32]), ("sizes", [64]), ("optimizer.name", "sgd"),
      ("optimizer.beta", 0.99), ("optimizer.grid", [1e-2, 1e-3]),
      ("optimizer.extra", None), ("learning_rate", math.nan))
  def test_any_changed_field_changes_the_hash(self, field, value):
    self.assertNotEqual(configs.settings_hash(_settings()),
                        configs.settings_hash(_replace(_settings(), field,
                                                       value)))

  def test_a_removed_field_changes_the_hash(self):
    settings = _settings()
    del settings["optimizer"]["beta"]
    self.assertNotEqual(configs.settings_hash(settings),
                        configs.settings_hash(_settings()))

  def test_stable_across_processes(self):
    # Sets iterate in another order under another hash seed; the digest
    # must not depend on that, nor on dict order.
    code = ("import ml_collections; from sobolev.experiment import configs; "
            f"s = {dict(reversed(list(_settings().items())))!r}; "
            "print(configs.settings_hash(ml_collections.ConfigDict(s)))")
    digests = set()
    for seed in ("1", "2"):
      env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=ROOT)
      out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300,
                           check=True)
      digests.add(out.stdout.strip().splitlines()[-1])
    self.assertEqual(digests, {configs.settings_hash(_settings())})

  def test_length(self):
    self.assertLen(configs.settings_hash(_settings(), length=8), 8)
    self.assertTrue(configs.settings_hash(_settings(), length=64).startswith(
        configs.settings_hash(_settings())))


class DiffTest(parameterized.TestCase, tf.test.TestCase):

  def test_equal_settings_have_no_diff(self):
    self.assertEqual(configs.diff(_config(), _settings()), [])
    self.assertEqual(configs.diff({"a": 1, "b": [1, 2]},
                                  {"a": 1.0, "b": (1.0, 2.0)}), [])
    self.assertEqual(configs.diff({"a": math.nan}, {"a": math.nan}), [])

  def test_names_every_changed_field_sorted(self):
    new = _replace(_replace(_settings(), "steps", 20), "optimizer.beta", 0.5)
    new["added"] = 1
    del new["method"]
    self.assertEqual(configs.diff(_settings(), new), [
        "added: (unset) -> 1",
        "method: 'sobolev' -> (unset)",
        "optimizer.beta: 0.9 -> 0.5",
        "steps: 1000 -> 20",
    ])

  def test_bool_and_int_differ(self):
    self.assertEqual(configs.diff({"a": 1}, {"a": True}), ["a: 1 -> True"])

  @parameterized.parameters(
      (("steps",), ["optimizer.beta: 0.9 -> 0.5"]),
      (("optimizer.",), ["steps: 1000 -> 20"]),
      (("optimizer.beta", "steps"), []),
      (("optimizer",), ["optimizer.beta: 0.9 -> 0.5", "steps: 1000 -> 20"]),
  )
  def test_ignore_exact_names_and_prefixes(self, ignore, expected):
    new = _replace(_replace(_settings(), "steps", 20), "optimizer.beta", 0.5)
    self.assertEqual(configs.diff(_settings(), new, ignore=ignore), expected)

  def test_flatten(self):
    self.assertEqual(configs.flatten({"a": {"b": 1, "c": {"d": [1, 2]}},
                                      "e": "x"}),
                     {"a.b": 1, "a.c.d": [1, 2], "e": "x"})


class CheckTest(parameterized.TestCase, tf.test.TestCase):

  def test_errors_are_value_and_user_errors(self):
    self.assertTrue(issubclass(errors.ConfigError, ValueError))
    self.assertTrue(issubclass(errors.ConfigError, errors.UserError))

  def test_finite_config_passes(self):
    configs.check_finite(_config())
    configs.check_finite({"flag": True, "name": "nan", "none": None})

  @parameterized.parameters(
      ("learning_rate", math.nan, r"`learning_rate` must be finite, got nan"),
      ("optimizer.beta", math.inf, r"`optimizer.beta` must be finite, got "
       r"inf"),
      ("optimizer.grid", [1e-3, -math.inf],
       r"`optimizer.grid\[1\]` must be finite, got -inf"),
      ("sizes", [64, np.float32("nan")], r"`sizes\[1\]` must be finite"),
  )
  def test_non_finite_raises_naming_the_nested_field(self, field, value,
                                                     message):
    with self.assertRaisesRegex(errors.ConfigError, message):
      configs.check_finite(_replace(_settings(), field, value))

  def test_non_finite_in_config_dict_and_list_of_dicts(self):
    config = _config()
    config.optimizer.beta = float("nan")
    with self.assertRaisesRegex(errors.ConfigError, "`optimizer.beta`"):
      configs.check_finite(config)
    with self.assertRaisesRegex(errors.ConfigError, r"`grid\[1\]\.lr`"):
      configs.check_finite({"grid": [{"lr": 1.0}, {"lr": math.inf}]})

  @parameterized.parameters(
      (3, 1, 5, None), (1, 1, None, None), (True, None, None, "an integer"),
      (3.0, None, None, "an integer"), (0, 1, None, ">= 1"),
      (6, None, 5, "<= 5"), ("3", None, None, "an integer"),
      (np.int64(4), 0, 10, None))
  def test_check_int(self, value, low, high, error):
    if error is None:
      configs.check_int("steps", value, low, high)
    else:
      with self.assertRaisesRegex(errors.ConfigError, f"`steps` must be "
                                  f"{error}"):
        configs.check_int("steps", value, low, high)

  @parameterized.parameters(
      (0.5, 0, 1, {}, None), (0, 0, 1, {}, None),
      (0, 0, 1, {"low_inclusive": False}, "> 0"),
      (1, 0, 1, {"high_inclusive": False}, "< 1"),
      (2, 0, 1, {}, "<= 1"), (-1, 0, None, {}, ">= 0"),
      (math.nan, None, None, {}, "finite"), (math.inf, 0, None, {}, "finite"),
      (False, None, None, {}, "a number"), ("0.1", None, None, {},
                                             "a number"))
  def test_check_number(self, value, low, high, kwargs, error):
    if error is None:
      configs.check_number("lr", value, low, high, **kwargs)
    else:
      with self.assertRaisesRegex(errors.ConfigError, f"`lr` must be "
                                  f"{error}"):
        configs.check_number("lr", value, low, high, **kwargs)

  @parameterized.parameters(
      ("booth", ("booth",)), (("booth,beale",), ("booth", "beale")),
      (["a, b", "c", ""], ("a", "b", "c")), ((), ()), (" ,", ()))
  def test_split_names(self, value, expected):
    self.assertEqual(configs.split_names("functions", value), expected)

  @parameterized.parameters((3,), (("a", 1),), (None,))
  def test_split_names_rejects_non_names(self, value):
    with self.assertRaisesRegex(errors.ConfigError,
                                "`functions` must be names"):
      configs.split_names("functions", value)

  def test_check_choice(self):
    configs.check_choice("method", "sobolev", ("regular", "sobolev"))
    with self.assertRaisesRegex(
        errors.ConfigError,
        r"`method` must be one of \('regular', 'sobolev'\), got 'sob'"):
      configs.check_choice("method", "sob", ["regular", "sobolev"])


if __name__ == "__main__":
  tf.test.main()
