"""Tests for sobolev.keras (Sobolev training with Keras 3 `Model.fit`)."""

import glob
import json
import os
import subprocess
import sys

from absl.testing import parameterized
import keras
import numpy as np
import sonnet as snt
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from sobolev import derivatives
from sobolev import keras as sobolev_keras
from sobolev import sobolev_loss
from sobolev import training


def _booth(u: np.ndarray):
  """Booth (a Figure-2 function) on [-1, 1]^2: booth(10 u) / 1000.

  Returns values `[N, 1]` and the analytic gradient `[N, 2]` (float32).
  """
  x, y = 10.0 * u[:, 0], 10.0 * u[:, 1]
  value = ((x + 2 * y - 7)**2 + (2 * x + y - 5)**2) / 1000.0
  grad = np.stack([10 * x + 8 * y - 34, 8 * x + 10 * y - 38], axis=1) / 100.0
  return value[:, None].astype(np.float32), grad.astype(np.float32)


def _booth_tf(u: tf.Tensor) -> tf.Tensor:
  x, y = 10.0 * u[:, 0], 10.0 * u[:, 1]
  return ((x + 2 * y - 7)**2 + (2 * x + y - 5)**2)[:, None] / 1000.0


def _points(n, seed):
  return np.random.RandomState(seed).uniform(-1, 1, (n, 2)).astype(np.float32)


def _net(seed=0, widths=(32, 32)):
  keras.utils.set_random_seed(seed)
  layers = [keras.Input((2,))]
  layers += [keras.layers.Dense(w, activation="softplus") for w in widths]
  layers += [keras.layers.Dense(1)]
  return keras.Sequential(layers)


class FitTest(tf.test.TestCase, parameterized.TestCase):

  def test_fit_lowers_value_and_gradient_test_error(self):
    x = _points(20, 0)
    y, dy = _booth(x)
    xt = _points(500, 1)
    yt, dyt = _booth(xt)
    model = sobolev_keras.SobolevModel(_net(), order=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(xt, (yt, dyt), verbose=0, return_dict=True)
    history = model.fit(np.tile(x, (40, 1)), (np.tile(y, (40, 1)),
                                             np.tile(dy, (40, 1))),
                        batch_size=20, epochs=5, shuffle=False, verbose=0)
    after = model.evaluate(xt, (yt, dyt), verbose=0, return_dict=True)
    self.assertEqual(set(history.history), {"loss", "order_0", "order_1"})
    self.assertEqual(set(after), {"loss", "order_0", "order_1", "value_mse",
                                  "jacobian_mse"})
    self.assertLess(after["value_mse"], 0.2 * before["value_mse"])
    self.assertLess(after["jacobian_mse"], 0.2 * before["jacobian_mse"])
    # Exact mode with the L2 loss: the terms are the errors.
    self.assertAllClose(after["order_0"], after["value_mse"], rtol=1e-5)
    self.assertAllClose(after["order_1"], after["jacobian_mse"], rtol=1e-5)

  @parameterized.parameters((0, False), (1, False), (1, True))
  def test_fit_matches_the_sonnet_path_step_by_step(self, order, jit):
    x = _points(16, 2)
    y, dy = _booth(x)
    keras_net = _net(3, widths=(8, 8))
    sonnet_net = snt.nets.MLP([8, 8, 1], activation=tf.nn.softplus)
    sonnet_net(tf.zeros([1, 2]))
    pairs = [(pair, keras_layer.weights[i])
             for sonnet_layer, keras_layer in zip(
                 sorted((m for m in sonnet_net.submodules
                         if isinstance(m, snt.Linear)), key=lambda m: m.name),
                 keras_net.layers)
             for i, pair in enumerate((sonnet_layer.w, sonnet_layer.b))]
    for s, k in pairs:
      s.assign(k.numpy())
    model = sobolev_keras.SobolevModel(keras_net, order=order)
    # jit_compile is what Keras picks by default on GPUs ("auto").
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=jit)
    history = model.fit(x, (y, dy), batch_size=16, epochs=4, shuffle=False,
                        verbose=0)
    step = training.make_train_step(sonnet_net, snt.optimizers.SGD(0.05),
                                    sobolev_loss.SobolevLoss(order=order))
    losses = [float(step({"x": x, "targets": (y, dy)[:order + 1]})["loss"])
              for _ in range(4)]
    self.assertAllClose(history.history["loss"], losses, rtol=1e-4)
    for s, k in pairs:
      self.assertAllClose(s, k.numpy(), atol=1e-5)

  def test_evaluate_errors_match_hand_computation(self):
    x = _points(12, 4)
    y, dy = _booth(x)
    net = _net(5, widths=(8,))
    model = sobolev_keras.SobolevModel(net, order=0)
    model.compile(optimizer="adam")
    out = model.evaluate(x, (y, dy), batch_size=5, verbose=0,
                         return_dict=True)
    pred, grad = derivatives.value_and_gradient(net, tf.constant(x))
    self.assertAllClose(out["value_mse"], np.mean((pred.numpy() - y)**2),
                        rtol=1e-5)
    self.assertAllClose(out["jacobian_mse"],
                        np.mean(np.sum((grad.numpy() - dy)**2, axis=1)),
                        rtol=1e-5)
    self.assertNotIn("order_1", out)

  def test_sample_weights_select_examples(self):
    x = _points(8, 5)
    y, dy = _booth(x)
    model = sobolev_keras.SobolevModel(_net(6, widths=(8,)), order=1)
    model.compile(optimizer="adam")
    weights = np.array([2.0] * 5 + [0.0] * 3, np.float32)
    weighted = model.evaluate(x, (y, dy), sample_weight=weights, verbose=0,
                              return_dict=True)
    subset = model.evaluate(x[:5], (y[:5], dy[:5]), verbose=0,
                            return_dict=True)
    self.assertAllClose(weighted, subset, rtol=1e-5)
    # Per-target weights: no derivative targets for the last 3 examples.
    has_grad = np.array([1.0] * 5 + [0.0] * 3, np.float32)
    per_order = model.evaluate(x, (y, dy),
                               sample_weight=(np.ones(8, np.float32),
                                              has_grad),
                               verbose=0, return_dict=True)
    full = model.evaluate(x, (y, dy), verbose=0, return_dict=True)
    for name in ("order_0", "value_mse"):
      self.assertAllClose(per_order[name], full[name], rtol=1e-5)
    for name in ("order_1", "jacobian_mse"):
      self.assertAllClose(per_order[name], subset[name], rtol=1e-5)
    # Training on zero-weight examples changes nothing.
    before = [w.numpy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x[5:], (y[5:], dy[5:]), sample_weight=np.zeros(3, np.float32),
              epochs=1, verbose=0)
    for a, b in zip(before, model.trainable_weights):
      self.assertAllClose(a, b.numpy())

  def test_order_2_reports_the_hessian_error(self):
    x = _points(8, 6)
    y, dy = _booth(x)
    xt = tf.constant(x)
    _, _, hess = derivatives.value_and_hessian(_booth_tf, xt)
    model = sobolev_keras.SobolevModel(_net(7, widths=(8,)), order=2)
    model.compile(optimizer="adam")
    model.fit(x, (y, dy, hess.numpy()), epochs=1, verbose=0)
    out = model.evaluate(x, (y, dy, hess.numpy()), verbose=0,
                         return_dict=True)
    _, _, model_hess = derivatives.value_and_hessian(model.model, xt)
    self.assertAllClose(
        out["hessian_mse"],
        np.mean(np.sum((model_hess.numpy() - hess.numpy())**2,
                       axis=(1, 2, 3))), rtol=1e-4)

  def test_target_fn_stochastic(self):
    x = _points(20, 8)
    model = sobolev_keras.SobolevModel(
        _net(9), order=1, target_fn=_booth_tf,
        loss_options={"mode": "stochastic", "seed": 0})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(x, verbose=0, return_dict=True)
    history = model.fit(np.tile(x, (20, 1)), batch_size=20, epochs=3,
                        verbose=0)
    after = model.evaluate(x, verbose=0, return_dict=True)
    self.assertIn("order_1", history.history)
    self.assertLess(after["value_mse"], before["value_mse"])
    self.assertLess(after["jacobian_mse"], before["jacobian_mse"])


class CallbacksTest(tf.test.TestCase):

  def _model(self, order=1):
    model = sobolev_keras.SobolevModel(_net(0, widths=(8,)), order=order)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model

  def test_tensorboard_writes_per_order_metrics(self):
    x = _points(16, 0)
    y, dy = _booth(x)
    log_dir = self.create_tempdir().full_path
    history = self._model().fit(
        x, (y, dy), validation_data=(x, (y, dy)), epochs=2, verbose=0,
        callbacks=[keras.callbacks.TensorBoard(log_dir)])
    for split, prefix, names in (
        ("train", "", ("loss", "order_0", "order_1")),
        ("validation", "val_",
         ("loss", "order_0", "order_1", "value_mse", "jacobian_mse"))):
      files = glob.glob(os.path.join(log_dir, split, "events.out.tfevents*"))
      self.assertLen(files, 1)
      acc = event_accumulator.EventAccumulator(
          files[0], size_guidance={event_accumulator.TENSORS: 0})
      acc.Reload()
      for name in names:
        events = acc.Tensors(f"epoch_{name}")
        self.assertEqual([e.step for e in events], [0, 1])
        self.assertAllClose(
            [float(tf.make_ndarray(e.tensor_proto)) for e in events],
            history.history[prefix + name], rtol=1e-6)

  def test_model_checkpoint_and_early_stopping(self):
    x = _points(16, 1)
    y, dy = _booth(x)
    path = os.path.join(self.create_tempdir().full_path, "best.keras")
    model = self._model()
    history = model.fit(
        x, (y, dy), validation_data=(x, (y, dy)), epochs=10, verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(path, monitor="val_jacobian_mse",
                                            save_best_only=True, mode="min"),
            # No improvement can reach min_delta: stops after patience + 1.
            keras.callbacks.EarlyStopping(monitor="val_jacobian_mse",
                                          min_delta=1e9, patience=1,
                                          mode="min"),
        ])
    self.assertLen(history.history["loss"], 2)
    self.assertTrue(os.path.exists(path))
    restored = keras.models.load_model(path)
    self.assertIsInstance(restored, sobolev_keras.SobolevModel)
    self.assertEqual(restored.order, 1)

  def test_save_and_load_round_trip(self):
    x = _points(16, 2)
    y, dy = _booth(x)
    model = sobolev_keras.SobolevModel(
        _net(1, widths=(8,)), order=1,
        loss_options={"weights": [1.0, 0.5], "loss_fns": "l1"})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, (y, dy), epochs=2, verbose=0)
    path = os.path.join(self.create_tempdir().full_path, "m.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    self.assertEqual(restored.loss_module.weights, (1.0, 0.5))
    self.assertAllClose(restored.predict(x, verbose=0),
                        model.predict(x, verbose=0))
    ours = model.evaluate(x, (y, dy), verbose=0, return_dict=True)
    theirs = restored.evaluate(x, (y, dy), verbose=0, return_dict=True)
    self.assertAllClose(ours, theirs)
    # Training resumes with the restored optimiser state.
    self.assertEqual(int(restored.optimizer.iterations),
                     int(model.optimizer.iterations))
    restored.fit(x, (y, dy), epochs=1, verbose=0)


class BadInputTest(tf.test.TestCase):

  def test_errors(self):
    x = _points(4, 0)
    y, dy = _booth(x)
    with self.assertRaisesRegex(TypeError, "`model` must be a Keras model"):
      sobolev_keras.SobolevModel(lambda z: z, order=1)
    with self.assertRaisesRegex(TypeError, "`target_fn` must be callable"):
      sobolev_keras.SobolevModel(_net(), target_fn=3)
    with self.assertRaisesRegex(TypeError, "Give the order as `order=`"):
      sobolev_keras.SobolevModel(_net(), loss_options={"order": 1})
    with self.assertRaisesRegex(ValueError, "`weights` must have one entry"):
      sobolev_keras.SobolevModel(_net(), loss_options={"weights": [1.0]})
    model = sobolev_keras.SobolevModel(_net(), order=1)
    with self.assertRaisesRegex(ValueError, "does not take \\['loss'\\]"):
      model.compile(optimizer="adam", loss="mse")
    with self.assertRaisesRegex(ValueError, "does not take \\['metrics'\\]"):
      model.compile(optimizer="adam", metrics=["mae"])
    model.compile(optimizer="adam")
    with self.assertRaisesRegex(ValueError, "at least 2 entries"):
      model.fit(x, y, epochs=1, verbose=0)
    with self.assertRaisesRegex(TypeError, "one input tensor"):
      model.fit({"a": x}, (y, dy), epochs=1, verbose=0)
    diverging = sobolev_keras.SobolevModel(_net(), order=1)
    diverging.compile(optimizer=keras.optimizers.SGD(1e30))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "training diverged"):
      diverging.fit(np.tile(x, (10, 1)), (np.tile(y, (10, 1)),
                                          np.tile(dy, (10, 1))),
                    batch_size=4, epochs=1, verbose=0)
    with_fn = sobolev_keras.SobolevModel(_net(), target_fn=_booth_tf)
    with_fn.compile(optimizer="adam")
    with self.assertRaisesRegex(ValueError, "without `y`"):
      with_fn.fit(x, (y, dy), epochs=1, verbose=0)


class DtypeTest(tf.test.TestCase):

  def tearDown(self):
    keras.mixed_precision.set_global_policy("float32")
    super().tearDown()

  def _float64_net(self, with_input=True):
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(8, activation="softplus", dtype="float64"),
              keras.layers.Dense(1, dtype="float64")]
    if with_input:
      layers = [keras.Input((2,), dtype="float64")] + layers
    return keras.Sequential(layers)

  def test_float64_network_trains_without_a_dtype_argument(self):
    x = _points(8, 0).astype(np.float64)
    y, dy = (a.astype(np.float64) for a in _booth(x.astype(np.float32)))
    for with_input in (True, False):
      model = sobolev_keras.SobolevModel(self._float64_net(with_input),
                                         order=1)
      model.compile(optimizer=keras.optimizers.Adam(1e-3))
      history = model.fit(x, (y, dy), epochs=2, verbose=0).history
      self.assertTrue(np.all(np.isfinite(history["loss"])))
      self.assertEqual(model.input_dtype, "float64")
      self.assertEqual(model.predict(x, verbose=0).dtype, np.float64)
      scores = model.evaluate(x, (y, dy), verbose=0, return_dict=True)
      self.assertIn("jacobian_mse", scores)

  def test_explicit_dtype_wins_and_float32_is_unchanged(self):
    self.assertEqual(sobolev_keras.SobolevModel(_net(), order=1).input_dtype,
                     "float32")
    model = sobolev_keras.SobolevModel(self._float64_net(), order=1,
                                       dtype="float32")
    self.assertEqual(model.input_dtype, "float32")
    self.assertIn("dtype", model.get_config())
    model.compile(optimizer="adam")
    x = _points(4, 0)
    y, dy = _booth(x)
    with self.assertRaisesRegex(
        TypeError, r"^`x` would be cast to float32 \(the dtype given to "
        r"SobolevModel\) but the wrapped model's weights compute in float64: "
        r"drop `dtype=` \(SobolevModel then takes the wrapped model's dtype\) "
        r"or build the model in float32\.$"):
      model.fit(x, (y, dy), epochs=1, verbose=0)
    self.assertNotIn(
        "dtype", sobolev_keras.SobolevModel(_net(), order=1).get_config())

  def test_dict_y_is_refused_with_the_forms_y_may_take(self):
    x = _points(4, 0)
    y, dy = _booth(x)
    model = sobolev_keras.SobolevModel(_net(), order=1)
    model.compile(optimizer="adam")
    with self.assertRaisesRegex(
        TypeError, r"^SobolevModel takes `y` as the values \[B, O\] \(or "
        r"\[B\]\) or a tuple \(values, jacobians\[, hessians\]\) of arrays, "
        r"in that order; got a dict with keys \['d', 'v'\]\."):
      model.fit(x, {"v": y, "d": dy}, epochs=1, verbose=0)

  def test_targets_overflowing_float32_are_named(self):
    x = _points(4, 0)
    y, dy = _booth(x)
    model = sobolev_keras.SobolevModel(_net(), order=1)
    model.compile(optimizer="adam")
    with self.assertRaisesRegex(
        ValueError, r"^`y\[0\]` overflows float32: it holds magnitudes up to "
        r"1e\+39, above float32's largest finite value 3\.4e\+38"):
      model.fit(x, (np.full([4, 1], 1e39), dy), epochs=1, verbose=0)
    with self.assertRaisesRegex(ValueError, r"^`y\[1\]` overflows float32"):
      model.evaluate(x, (y, np.full(dy.shape, -1e40)), verbose=0)

  def test_dataset_targets_overflowing_the_dtype_are_named(self):
    # tf.data batches reach train_step uncast: the cast asserts instead.
    x = _points(4, 0)
    y, dy = _booth(x)
    model = sobolev_keras.SobolevModel(_net(), order=1)
    model.compile(optimizer="adam")
    data = tf.data.Dataset.from_tensor_slices(
        (x.astype(np.float64), (np.full([4, 1], 1e39),
                                dy.astype(np.float64)))).batch(4)
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        "SobolevModel: `y\\[0\\]` overflows float32: it holds magnitudes "
        "above the largest finite float32 value 3.4e\\+38"):
      model.fit(data, epochs=1, verbose=0)

  def test_float16_overflow_is_named(self):
    keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((2,)),
                            keras.layers.Dense(8, activation="relu"),
                            keras.layers.Dense(1),
                            keras.layers.Rescaling(1000.0)])
    model = sobolev_keras.SobolevModel(net, order=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = _points(8, 0) * 10.0
    y, dy = _booth(x / 10.0)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "the training loss is NaN or Inf in float16, "
                                "whose largest finite value is 65504: most "
                                "likely a float16 overflow"):
      model.fit(x, (y * 1000.0, dy * 1000.0), epochs=1, verbose=0)

  def test_data_overflowing_float16_is_named(self):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = sobolev_keras.SobolevModel(_net(), order=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = _points(8, 0)
    y, dy = _booth(x)
    with self.assertRaisesRegex(ValueError,
                                r"^`y\[0\]` overflows float16: it holds "
                                r"magnitudes up to 1e\+05, above float16's "
                                r"largest finite value 6\.55e\+04"):
      model.fit(x, (np.full_like(y, 1e5), dy), epochs=1, verbose=0)


_MIRRORED_SCRIPT = r"""
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from sobolev import keras as sobolev_keras

rng = np.random.RandomState(0)
x = rng.uniform(-1, 1, (8, 2)).astype(np.float32)
y = (np.sin(2 * x[:, :1]) * x[:, 1:]).astype(np.float32)
dy = np.concatenate([2 * np.cos(2 * x[:, :1]) * x[:, 1:],
                     np.sin(2 * x[:, :1])], axis=1).astype(np.float32)

def build():
  keras.utils.set_random_seed(0)
  net = keras.Sequential([keras.Input((2,)),
                          keras.layers.Dense(8, activation="softplus"),
                          keras.layers.Dense(1)])
  model = sobolev_keras.SobolevModel(net, order=1)
  model.compile(optimizer=keras.optimizers.SGD(0.1))
  return model

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
  model_d = build()
model_s = build()
hist_d = model_d.fit(x, (y, dy), batch_size=8, epochs=3, shuffle=False,
                     verbose=0).history
hist_s = model_s.fit(x, (y, dy), batch_size=8, epochs=3, shuffle=False,
                     verbose=0).history
diff = max(float(np.abs(a.numpy() - b.numpy()).max())
           for a, b in zip(model_d.trainable_weights, model_s.trainable_weights))
print("RESULT" + json.dumps({"replicas": strategy.num_replicas_in_sync,
                             "loss_d": hist_d["loss"], "loss_s": hist_s["loss"],
                             "order_1_d": hist_d["order_1"],
                             "order_1_s": hist_s["order_1"],
                             "max_param_diff": diff}))
"""


class DistributedFitTest(tf.test.TestCase):

  def test_mirrored_fit_over_two_cpus_matches_one_device(self):
    # Logical devices must be configured before TF initialises, hence the
    # fresh process. Each replica sees half the batch; the per-replica loss
    # scaling makes the summed gradient the full-batch mean gradient.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT],
                         capture_output=True, text=True, env=env, timeout=600,
                         check=False)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT")]
    self.assertLen(line, 1, out.stdout[-2000:])
    result = json.loads(line[0][len("RESULT"):])
    self.assertEqual(result["replicas"], 2)
    self.assertAllClose(result["loss_d"], result["loss_s"], rtol=1e-5)
    self.assertAllClose(result["order_1_d"], result["order_1_s"], rtol=1e-5)
    self.assertLess(result["max_param_diff"], 1e-5)


if __name__ == "__main__":
  tf.test.main()
