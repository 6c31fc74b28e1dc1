"""Tests of the benchmarks sweep (`benchmarks.experiment`) and tuning:
units, resume, settings, outputs."""

import glob
import os
from unittest import mock

from absl.testing import parameterized
import matplotlib.image
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from benchmarks import data
from benchmarks import experiment
from benchmarks import functions
from benchmarks import models
from benchmarks import protocol_tuning
from benchmarks import report
from benchmarks import settings
from benchmarks import trainer
from benchmarks import units
from benchmarks.configs import default
from benchmarks.configs import tune as tune_config
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import runs


def _tiny(**overrides):
  config = default.get_config()
  config.functions = ("booth", "styblinski_tang")
  config.sizes = (6,)
  config.seeds = 1
  config.steps = 6
  config.steps_per_call = 3
  config.hidden_sizes = (8, 8)
  config.test_size = 50
  config.update(overrides)
  return config


def _numbers(rows):
  return {r.key: (r.test_mse, r.test_grad_mse) for r in rows}


def _spy():
  """A spy on `trainer.train_group` recording each group's runs."""
  real = trainer.train_group
  calls = []

  def spy(runs, *args, **kwargs):
    calls.append(sorted((r.function, r.size, r.method, r.seed) for r in runs))
    return real(runs, *args, **kwargs)

  return calls, mock.patch.object(trainer, "train_group", side_effect=spy)


class ExperimentTest(tf.test.TestCase, parameterized.TestCase):

  def test_outputs_units_and_resume(self):
    workdir = self.create_tempdir().full_path
    out = experiment.train_and_evaluate(_tiny(), workdir, show_progress=False)
    self.assertEqual(out.workdir, workdir)
    self.assertLen(out.rows, 4)
    rows = report.read(os.path.join(workdir, "results.csv"))
    self.assertEqual(rows, out.rows)
    with open(os.path.join(workdir, "results.csv")) as f:
      self.assertEqual(f.readline().strip(),
                       "function,size,method,seed,test_mse,test_grad_mse,"
                       "train_seconds")
    self.assertCountEqual([(r.function, r.method) for r in rows],
                          [("booth", "regular"), ("booth", "sobolev"),
                           ("styblinski_tang", "regular"),
                           ("styblinski_tang", "sobolev")])
    for r in rows:
      self.assertGreater(r.test_mse, 0)
      self.assertGreater(r.test_grad_mse, 0)
    with open(os.path.join(workdir, "results.md")) as f:
      md = f.read()
    self.assertIn("| Function | 6 pts: regular | 6 pts: sobolev |", md)
    self.assertIn("| Styblinski-Tang |", md)
    self.assertIn("sample std (ddof=1)", md)
    for name in ("figure2.png", "figure3.png"):
      image = matplotlib.image.imread(os.path.join(workdir, name))
      self.assertGreater(image.shape[0], 100)
      self.assertGreater(image.std(), 0.01)  # Not blank.
    # One unit per model, each with settings, result, weights and curves.
    unit_dirs = sorted(glob.glob(os.path.join(workdir, "runs", "*")))
    self.assertLen(unit_dirs, 4)
    for unit in unit_dirs:
      unit_settings = files.read_json(os.path.join(unit, "settings.json"))
      self.assertEqual(unit_settings["steps"], 6)
      self.assertEqual(unit_settings["evaluation"], {"set": "test", "size": 50})
      self.assertEqual("grad_weight" in unit_settings,
                       unit_settings["method"] == "sobolev")
      self.assertTrue(os.path.exists(os.path.join(unit, "result.json")))
      self.assertTrue(os.path.exists(os.path.join(unit, "model",
                                                  "weights.index")))
      curves = files.read_csv(os.path.join(unit, "curves.csv"))
      self.assertEqual([int(c["step"]) for c in curves], [3, 6, 6])

    # Resume with the same settings: nothing is trained again.
    before = open(os.path.join(workdir, "results.csv")).read()
    with mock.patch.object(trainer, "train_group",
                           side_effect=AssertionError("retrained")):
      again = experiment.train_and_evaluate(_tiny(), workdir,
                                            show_progress=False)
    self.assertEqual(_numbers(again.rows), _numbers(rows))
    self.assertEqual(open(os.path.join(workdir, "results.csv")).read(),
                     before)

    # An interrupted sweep (one unit without its result): only its group
    # is trained again, and it gets the same numbers.
    sobolev_unit = [u for u in unit_dirs if files.read_json(
        os.path.join(u, "settings.json"))["method"] == "sobolev"][0]
    os.remove(os.path.join(sobolev_unit, "result.json"))
    calls, patch = _spy()
    with patch:
      again = experiment.train_and_evaluate(_tiny(), workdir,
                                            show_progress=False)
    self.assertLen(calls, 1)
    self.assertLen(calls[0], 1)
    self.assertEqual(calls[0][0][2], "sobolev")
    self.assertEqual(_numbers(again.rows), _numbers(rows))
    curves = files.read_csv(os.path.join(sobolev_unit, "curves.csv"))
    self.assertEqual([int(c["step"]) for c in curves], [3, 6, 6])

    # More seeds and another function: only the new models are trained.
    calls, patch = _spy()
    with patch:
      more = experiment.train_and_evaluate(
          _tiny(seeds=2, functions=("booth", "styblinski_tang", "beale")),
          workdir, show_progress=False)
    self.assertLen(more.rows, 12)
    self.assertLen(calls, 2)  # One group per method, new models only.
    for call in calls:
      self.assertLen(call, 4)
      self.assertNotIn(("booth", 6, call[0][2], 0), call)
    self.assertEqual({k: v for k, v in _numbers(more.rows).items()
                      if k in _numbers(rows)}, _numbers(rows))
    # results.csv holds exactly the current sweep: back to the first one.
    experiment.train_and_evaluate(_tiny(), workdir, show_progress=False)
    self.assertLen(report.read(os.path.join(workdir, "results.csv")), 4)

  def test_changed_settings_are_refused_or_kept_apart(self):
    workdir = self.create_tempdir().full_path
    first = experiment.train_and_evaluate(_tiny(), workdir,
                                          show_progress=False)
    with self.assertRaises(errors.WorkdirMismatchError) as cm:
      experiment.train_and_evaluate(_tiny(grad_weight=3.0, steps=9), workdir,
                                    show_progress=False)
    message = str(cm.exception)
    self.assertNotIn("\n", message)
    self.assertIn("grad_weight: 0.3 -> 3", message)
    self.assertIn("steps: 6 -> 9", message)
    self.assertIn("--fresh", message)
    self.assertIn("--separate", message)
    self.assertEqual(files.read_json(os.path.join(workdir,
                                                  "config.json"))["steps"], 6)

    separate = experiment.train_and_evaluate(
        _tiny(grad_weight=3.0), workdir, if_different="separate",
        show_progress=False)
    self.assertStartsWith(separate.workdir, os.path.join(workdir, "sets"))
    self.assertEqual(files.read_json(os.path.join(
        separate.workdir, "config.json"))["grad_weight"], 3.0)
    # The old results stay; regular models (grad_weight does not affect
    # them) have the same numbers, Sobolev models new ones.
    self.assertEqual(report.read(os.path.join(workdir, "results.csv")),
                     first.rows)
    old, new = _numbers(first.rows), _numbers(separate.rows)
    for key in old:
      if key[2] == "regular":
        self.assertEqual(old[key], new[key])
      else:
        self.assertNotEqual(old[key], new[key])

    fresh = experiment.train_and_evaluate(_tiny(steps=3), workdir,
                                          if_different="fresh",
                                          show_progress=False)
    self.assertEqual(fresh.workdir, workdir)
    self.assertLen(glob.glob(workdir + ".old-*"), 1)
    self.assertEqual(files.read_json(os.path.join(workdir,
                                                  "config.json"))["steps"], 3)

  @parameterized.parameters(
      ({"learning_rate": float("nan")}, "`learning_rate` must be finite"),
      ({"grad_weight": float("inf")}, "`grad_weight` must be finite"),
      ({"final_lr_fraction": float("nan")}, "`final_lr_fraction` must be"),
      ({"learning_rate": 0.0}, "`learning_rate` must be > 0"),
      ({"final_lr_fraction": 1.5}, "`final_lr_fraction` must be <= 1"),
      ({"grad_weight": -1.0}, "`grad_weight` must be >= 0"),
      ({"functions": ("booth", "sphere")}, "`functions` must be one of"),
      ({"functions": ("booth,booth",)}, "`functions` has duplicates"),
      ({"sizes": (0,)}, "`sizes` must be >= 1"),
      ({"sizes": ("ten",)}, "`sizes` must be an integer"),
      ({"seeds": 0}, "`seeds` must be >= 1"),
      ({"hidden_sizes": ()}, "`hidden_sizes` must hold"),
      ({"test_size": -5}, "`test_size` must be >= 1"),
      ({"figure3_function": "sphere"}, "`figure3_function` must be one of"),
      ({"protocol": "magic"}, "`protocol` must be one of"),
      ({"dml_lambda": -0.5}, "`dml_lambda` must be >= 0"),
  )
  def test_bad_settings_are_rejected_before_any_work(self, overrides,
                                                     message):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    with self.assertRaisesRegex(errors.ConfigError, message):
      experiment.train_and_evaluate(_tiny(**overrides), workdir,
                                    show_progress=False)
    self.assertFalse(os.path.exists(workdir))

  def test_name_lists_with_commas_are_split(self):
    config = settings.resolve(_tiny(functions=("booth, beale",)))
    self.assertEqual(tuple(config.functions), ("booth", "beale"))
    config = tune_config.get_config()
    config.candidates = ("naive,base", "nw0.3")
    self.assertEqual(tuple(settings.resolve(config).candidates),
                     ("naive", "base", "nw0.3"))

  def test_divergence_stops_without_a_result_row(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.DivergenceError,
                                "Training diverged .* No result"):
      experiment.train_and_evaluate(_tiny(learning_rate=1e30), workdir,
                                    show_progress=False)
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.csv")))
    self.assertEmpty(glob.glob(os.path.join(workdir, "runs", "*",
                                            "result.json")))
    record = files.read_json(os.path.join(
        workdir, "provenance.json"))["invocations"][-1]
    self.assertEqual(record["status"], "diverged")

  def test_a_model_is_the_same_alone_and_in_a_sweep(self):
    # 150 points: mini-batches of 100 (the case); 6: full batch.
    alone = experiment.train_and_evaluate(
        _tiny(functions=("booth",), sizes=(6, 150)),
        self.create_tempdir().full_path, show_progress=False)
    sweep = experiment.train_and_evaluate(
        _tiny(functions=("beale", "booth", "rosenbrock"), sizes=(6, 150),
              seeds=2), self.create_tempdir().full_path,
        show_progress=False)
    alone_numbers = _numbers(alone.rows)
    sweep_numbers = _numbers(sweep.rows)
    self.assertLen(alone_numbers, 4)
    for key, value in alone_numbers.items():
      self.assertEqual(sweep_numbers[key], value)

  def _unit(self, workdir, config, method):
    unit_settings = settings.unit_settings(
        trainer.Run("booth", 6, method, 0),
        settings.protocol(config), {"set": "test", "size": 50})
    return os.path.join(workdir, "runs", runs.RunStore.key(unit_settings))

  def test_provenance_tensorboard_and_saved_weights(self):
    workdir = self.create_tempdir().full_path
    config = _tiny(functions=("booth",))
    out = experiment.train_and_evaluate(config, workdir, show_progress=False)
    experiment.train_and_evaluate(config, workdir, show_progress=False)
    records = files.read_json(os.path.join(workdir,
                                           "provenance.json"))["invocations"]
    self.assertLen(records, 2)  # One per invocation.
    record = records[0]
    self.assertEqual(record["status"], "finished")
    self.assertEqual(record["config"]["functions"], ["booth"])
    self.assertEqual(record["config"]["steps"], 6)
    self.assertEqual(record["versions"]["tensorflow"], tf.__version__)
    self.assertEqual(record["versions"]["numpy"], np.__version__)
    self.assertRegex(record["git"]["commit"] or "", "^[0-9a-f]{40}$")
    self.assertGreaterEqual(record["machine"]["cores"], 1)
    self.assertTrue(record["machine"]["cpu"])
    self.assertLessEqual(record["start"], record["end"])
    self.assertTrue(record["command"])

    # TensorBoard: loss terms during training, test metrics at the end.
    logdir = os.path.join(workdir, "tb",
                          units.tb_name(trainer.Run("booth", 6, "sobolev",
                                                    0)))
    acc = event_accumulator.EventAccumulator(logdir)
    acc.Reload()
    tags = acc.Tags()["tensors"]  # Scalars as written by tensorboard.summary.
    for tag in ("train/loss", "train/value_mse", "train/grad_mse",
                "train/learning_rate", "test/mse", "test/grad_mse"):
      self.assertIn(tag, tags)
    self.assertEqual([e.step for e in acc.Tensors("train/loss")], [3, 6])
    curves = files.read_csv(os.path.join(self._unit(workdir, config, "sobolev"),
                                         "curves.csv"))
    self.assertAllClose(
        [tensor_util.make_ndarray(e.tensor_proto)
         for e in acc.Tensors("train/loss")],
        [float(c["train/loss"]) for c in curves[:2]])
    row = [r for r in out.rows if r.method == "sobolev"][0]
    self.assertAllClose(
        tensor_util.make_ndarray(acc.Tensors("test/mse")[0].tensor_proto),
        row.test_mse, rtol=1e-6)

    # The saved weights reproduce the model's test numbers.
    for r in out.rows:
      unit = self._unit(workdir, config, r.method)
      test = data.test_set(r.function, 50)
      v, dv = models.predict(unit, test.x)
      self.assertAllClose(np.mean((v - test.y)**2), r.test_mse, rtol=1e-4)
      self.assertAllClose(np.mean(np.sum((dv - test.dy)**2, axis=1)),
                          r.test_grad_mse, rtol=1e-4)

  def test_unit_keys_of_the_default_protocol_are_unchanged(self):
    # 'ours' units have exactly the settings they had before protocols,
    # dimensions and user functions existed, so old workdirs resume.
    protocol = settings.protocol(_tiny())
    evaluation = {"set": "test", "size": 50}
    common = {"function": "booth", "size": 6, "seed": 0, "version": 2,
              "evaluation": evaluation, "steps": 6, "learning_rate": 3e-3,
              "final_lr_fraction": 0.01, "batch_size": 100,
              "hidden_sizes": [8, 8], "jit_compile": False}
    self.assertEqual(
        settings.unit_settings(trainer.Run("booth", 6, "regular", 0),
                                 protocol, evaluation),
        {**common, "method": "regular"})
    self.assertEqual(
        settings.unit_settings(trainer.Run("booth", 6, "sobolev", 0),
                                 protocol, evaluation),
        {**common, "method": "sobolev", "grad_weight": 0.3,
         "normalize_grad_weight": True})
    recorded = settings.recorded(settings.resolve(_tiny()))
    self.assertNotIn("protocol", recorded)
    self.assertNotIn("dml_lambda", recorded)

  def test_unit_keys_carry_the_protocol_and_its_fields(self):
    evaluation = {"set": "test", "size": 50}

    def unit(method, **overrides):
      return settings.unit_settings(
          trainer.Run("booth", 6, method, 0),
          settings.protocol(_tiny(**overrides)), evaluation)

    dml = unit("sobolev", protocol="differential_ml", dml_lambda=2.0)
    self.assertEqual(dml["protocol"], "differential_ml")
    self.assertEqual(dml["dml_lambda"], 2.0)
    self.assertNotIn("grad_weight", dml)
    self.assertNotEqual(runs.RunStore.key(dml), runs.RunStore.key(
        unit("sobolev", protocol="differential_ml", dml_lambda=1.0)))
    # Fields of other protocols do not split units.
    self.assertEqual(
        unit("sobolev", protocol="differential_ml", grad_weight=5.0),
        unit("sobolev", protocol="differential_ml"))
    self.assertEqual(unit("sobolev", dml_lambda=7.0),
                     unit("sobolev"))
    raw = unit("regular", protocol="raw_l2")
    self.assertEqual(raw["protocol"], "raw_l2")
    self.assertNotIn("dml_lambda", raw)
    self.assertNotEqual(runs.RunStore.key(raw),
                        runs.RunStore.key(unit("regular")))
    self.assertNotEqual(runs.RunStore.key(unit("sobolev", steps=12)),
                        runs.RunStore.key(unit("sobolev")))

  def test_a_registered_function_of_any_dimension_sweeps(self):
    plane = functions.register(functions.Benchmark(
        "plane3", "Plane 3-D",
        lambda p: tf.reduce_sum(p * [1.0, -2.0, 0.5], axis=1) + p[:, 0]**2,
        (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)))
    self.addCleanup(functions.unregister, "plane3")
    workdir = self.create_tempdir().full_path
    config = _tiny(functions=("booth", "plane3"), steps=1, steps_per_call=1,
                   protocol="raw_l2")
    out = experiment.train_and_evaluate(config, workdir, show_progress=False)
    self.assertLen(out.rows, 4)
    with open(os.path.join(workdir, "results.md")) as f:
      self.assertIn("| Plane 3-D |", f.read())
    unit_settings = settings.unit_settings(
        trainer.Run("plane3", 6, "sobolev", 0), settings.protocol(
            settings.resolve(config)), {"set": "test", "size": 50})
    self.assertEqual(unit_settings["function_domain"],
                     {"low": [-1.0, -1.0, -1.0], "high": [1.0, 1.0, 1.0]})
    unit = os.path.join(workdir, "runs", runs.RunStore.key(unit_settings))
    result = files.read_json(os.path.join(unit, "result.json"))
    for field in ("train_loss", "train_value_mse", "train_grad_mse",
                  "train_set_mse", "train_set_grad_mse"):
      self.assertGreater(result[field], 0)
    # raw_l2: model units are the function's units for values, so the
    # training value MSE is the same number both ways.
    self.assertAllClose(result["train_value_mse"], result["train_set_mse"],
                        rtol=1e-4)
    train = data.train_set("plane3", 6, 0)
    v, dv = models.predict(unit, train.x)
    self.assertAllClose(result["train_set_mse"], np.mean((v - train.y)**2),
                        rtol=1e-4)
    test = data.test_set("plane3", 50)
    v, dv = models.predict(unit, test.x)
    self.assertEqual(dv.shape, (50, plane.dim))
    row = [r for r in out.rows if r.key == ("plane3", 6, "sobolev", 0)][0]
    self.assertAllClose(np.mean((v - test.y)**2), row.test_mse, rtol=1e-4)

  def test_figure3_needs_a_two_dimensional_function(self):
    workdir = os.path.join(self.create_tempdir().full_path, "w")
    with self.assertRaisesRegex(errors.ConfigError,
                                "`figure3_function` must be a 2-D"):
      experiment.train_and_evaluate(
          _tiny(figure3_function="rosenbrock_3d"), workdir,
          show_progress=False)

  def test_tuning(self):
    workdir = self.create_tempdir().full_path
    config = tune_config.get_config()
    config.functions = ("booth",)
    config.sizes = (6,)
    config.steps = 4
    config.steps_per_call = 2
    config.hidden_sizes = (8,)
    config.validation_size = 40
    config.candidates = ("base", "nw0.3", "lr1e-2")
    out = protocol_tuning.tune(config, workdir, show_progress=False)
    rows = out.rows
    self.assertLen(rows, 6)
    # base and nw0.3 differ only in the gradient weight: one regular model.
    unit_dirs = glob.glob(os.path.join(workdir, "runs", "*"))
    self.assertLen(unit_dirs, 5)
    by = {(r.candidate, r.method): r for r in rows}
    self.assertEqual(by["base", "regular"].val_mse,
                     by["nw0.3", "regular"].val_mse)
    self.assertNotEqual(by["base", "sobolev"].val_mse,
                        by["nw0.3", "sobolev"].val_mse)
    for unit in unit_dirs:
      unit_settings = files.read_json(os.path.join(unit, "settings.json"))
      self.assertEqual(unit_settings["seed"], settings.TUNING_SEED)
      self.assertEqual(unit_settings["evaluation"],
                       {"set": "validation", "size": 40})
    trials = files.read_csv(os.path.join(workdir, "trials.csv"))
    self.assertLen(trials, 3)
    scores = {t["grad_weight"] + "/" + t["learning_rate"]: float(t["score"])
              for t in trials}
    best = min(scores, key=scores.get)
    with open(os.path.join(workdir, "tuning.md")) as f:
      md = f.read()
    names = {"1.0/0.003": "base", "0.3/0.003": "nw0.3", "1.0/0.01": "lr1e-2"}
    self.assertIn(f"Best: **{names[best]}**", md)
    self.assertIn("| nw0.3 | grad_weight=0.3 |", md)
    val = data.validation_set("booth", settings.TUNING_SEED, 40)
    self.assertLen(val, 40)
    # Same settings again: trials and models are reused.
    with mock.patch.object(trainer, "train_group",
                           side_effect=AssertionError("retrained")):
      again = protocol_tuning.tune(config, workdir, show_progress=False)
    self.assertEqual(again.rows, rows)
    # Unknown candidates are rejected before any work.
    config.candidates = ("base", "best")
    with self.assertRaisesRegex(errors.ConfigError,
                                "`candidates` must be one of"):
      protocol_tuning.tune(config, workdir, show_progress=False)


if __name__ == "__main__":
  tf.test.main()
