"""Tests for sobolev.training.make_train_step."""

import json
import os
import socket
import subprocess
import sys
import textwrap

from absl.testing import parameterized
import keras
import numpy as np
import sonnet as snt
from sonnet.src.optimizers import optimizer_utils as snt_optimizer_utils
import tensorflow as tf

from sobolev import derivatives
from sobolev import sobolev_loss
from sobolev import training


def _data(n=16, seed=0):
  rng = np.random.RandomState(seed)
  x = tf.constant(rng.uniform(-1, 1, (n, 2)), tf.float32)
  f = lambda z: tf.sin(2.0 * z[:, 0]) * z[:, 1]
  y, g = derivatives.value_and_gradient(f, x)
  return x, y, g, f


def _model(seed=0):
  tf.random.set_seed(seed)
  model = snt.nets.MLP([16, 16, 1], activation=tf.nn.softplus)
  model(tf.zeros([1, 2]))
  return model


def _keras_model(seed=0):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([keras.Input((2,)),
                           keras.layers.Dense(16, activation="softplus"),
                           keras.layers.Dense(16, activation="softplus"),
                           keras.layers.Dense(1)])


def _copy_keras_to_sonnet(keras_model, sonnet_model):
  """Copies Dense kernels/biases into the MLP's Linear w/b; returns pairs."""
  linears = sorted((m for m in sonnet_model.submodules
                    if isinstance(m, snt.Linear)), key=lambda m: m.name)
  pairs = []
  for linear, dense in zip(linears, keras_model.layers):
    for sonnet_var, keras_var in ((linear.w, dense.kernel),
                                  (linear.b, dense.bias)):
      sonnet_var.assign(keras_var.numpy())
      pairs.append((sonnet_var, keras_var))
  return pairs


class TrainStepTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((0, None), (1, None), (1, True))
  def test_loss_decreases_without_retracing(self, order, jit):
    x, y, g, _ = _data()
    model = _model()
    step = training.make_train_step(
        model, snt.optimizers.Adam(1e-2),
        sobolev_loss.SobolevLoss(order=order), jit_compile=jit)
    targets = (y, g)[:order + 1]
    first = step({"x": x, "targets": targets})
    self.assertEqual(set(first), {"loss"} | {f"order_{j}"
                                             for j in range(order + 1)})
    traces = step.experimental_get_tracing_count()
    for _ in range(50):
      last = step({"x": x, "targets": targets})
    self.assertLess(float(last["loss"]), 0.5 * float(first["loss"]))
    self.assertEqual(step.experimental_get_tracing_count(), traces)

  def test_matches_a_hand_written_step(self):
    x, y, g, _ = _data()
    loss = sobolev_loss.SobolevLoss(order=1)
    model_a, model_b = _model(3), _model(3)
    opt_a, opt_b = snt.optimizers.Adam(1e-2), snt.optimizers.Adam(1e-2)
    step = training.make_train_step(model_a, opt_a, loss)
    for _ in range(3):
      out = step({"x": x, "targets": (y, g)})
      with tf.GradientTape() as tape:
        total, _ = loss(model_b, x, targets=(y, g))[:2]
      grads = tape.gradient(total, model_b.trainable_variables)
      opt_b.apply(grads, model_b.trainable_variables)
      self.assertAllClose(out["loss"], total)
    for a, b in zip(model_a.trainable_variables, model_b.trainable_variables):
      self.assertAllClose(a, b, atol=1e-6)

  @parameterized.parameters(None, True)
  def test_steps_per_call_matches_single_steps(self, jit):
    x, y, g, _ = _data()
    loss = sobolev_loss.SobolevLoss(order=1)
    model_a, model_b = _model(5), _model(5)
    opt_a, opt_b = snt.optimizers.Adam(1e-2), snt.optimizers.Adam(1e-2)
    multi = training.make_train_step(model_a, opt_a, loss, steps_per_call=4,
                                     jit_compile=jit)
    single = training.make_train_step(model_b, opt_b, loss)
    # Four different minibatches, stacked on a leading axis.
    xs = tf.stack([tf.roll(x, k, axis=0) for k in range(4)])
    ys = tf.stack([tf.roll(y, k, axis=0) for k in range(4)])
    gs = tf.stack([tf.roll(g, k, axis=0) for k in range(4)])
    out = multi({"x": xs, "targets": (ys, gs)})
    losses = [single({"x": xs[k], "targets": (ys[k], gs[k])})["loss"]
              for k in range(4)]
    self.assertAllClose(out["loss"], np.mean(losses), rtol=1e-5)
    for a, b in zip(model_a.trainable_variables, model_b.trainable_variables):
      self.assertAllClose(a, b, atol=1e-5)
    self.assertEqual(int(opt_a.step), 4)

  def test_target_fn_objective_and_callable_objective(self):
    x, y, g, f = _data()
    model = _model()
    objective = training.sobolev_objective(
        sobolev_loss.SobolevLoss(order=1, mode="stochastic", seed=0),
        target_fn=f)
    step = training.make_train_step(model, snt.optimizers.SGD(0.05), objective)
    out = step({"x": x})
    self.assertIn("order_1", out)
    plain = lambda m, batch: tf.reduce_mean((m(batch["x"]) - batch["y"])**2)
    step2 = training.make_train_step(model, snt.optimizers.SGD(0.05), plain)
    self.assertEqual(set(step2({"x": x, "y": y})), {"loss"})
    del g

  def test_bad_arguments(self):
    model = _model()
    with self.assertRaisesRegex(TypeError, "`optimizer` must have an `apply"):
      training.make_train_step(model, object(), sobolev_loss.SobolevLoss())
    with self.assertRaisesRegex(TypeError, "`objective` must be a SobolevLoss"):
      training.make_train_step(model, snt.optimizers.SGD(0.1), "l2")
    with self.assertRaisesRegex(ValueError, "`steps_per_call` must be an int"):
      training.make_train_step(model, snt.optimizers.SGD(0.1),
                               sobolev_loss.SobolevLoss(), steps_per_call=0)
    with self.assertRaisesRegex(TypeError, "`model` must be callable"):
      training.make_train_step(3, snt.optimizers.SGD(0.1),
                               sobolev_loss.SobolevLoss())
    step = training.make_train_step(model, snt.optimizers.SGD(0.1),
                                    sobolev_loss.SobolevLoss())
    with self.assertRaisesRegex(TypeError, "mapping with key 'x'"):
      step((tf.zeros([2, 2]),))

  def test_unbuilt_sonnet_model_trains(self):
    # The variables of a lazily built module exist only after its first
    # call; the step collects them then (Sonnet's `trainable_variables`
    # raises a ValueError before, which `hasattr` does not catch).
    tf.random.set_seed(0)
    model = snt.nets.MLP([16, 1])
    optimizer = snt.optimizers.Adam(1e-3)
    step = training.make_train_step(model, optimizer,
                                    sobolev_loss.SobolevLoss(order=1))
    x, y, g, _ = _data()
    metrics = step({"x": x, "targets": (y, g)})
    self.assertEqual(set(metrics), {"loss", "order_0", "order_1"})
    self.assertLen(model.trainable_variables, 4)
    before = [v.numpy() for v in model.trainable_variables]
    step({"x": x, "targets": (y, g)})
    after = [v.numpy() for v in model.trainable_variables]
    self.assertTrue(any(np.any(a != b) for a, b in zip(after, before)))
    self.assertEqual(int(step.counter.numpy()), 2)

  def test_unused_variables_are_reported(self):
    model = _model()
    extra = tf.Variable(1.0)
    step = training.make_train_step(
        model, snt.optimizers.SGD(0.1), sobolev_loss.SobolevLoss(order=0),
        variables=list(model.trainable_variables) + [extra])
    x, y, _, _ = _data()
    with self.assertRaisesRegex(ValueError, "does not depend on variables"):
      step({"x": x, "targets": (y,)})


class KerasTrainStepTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(("keras", "keras"), ("keras", "sonnet"),
                            ("sonnet", "keras"))
  def test_model_and_optimizer_kinds_match_the_sonnet_step(self, model_kind,
                                                           optimizer_kind):
    x, y, g, _ = _data()
    loss = sobolev_loss.SobolevLoss(order=1)
    keras_model = _keras_model(1)
    reference = _model(0)
    pairs = _copy_keras_to_sonnet(keras_model, reference)
    if model_kind == "keras":
      model, trained = keras_model, [k for _, k in pairs]
    else:
      model = _model(0)
      for a, b in zip(model.trainable_variables,
                      reference.trainable_variables):
        a.assign(b)
      trained = None
    optimizer = (keras.optimizers.SGD(0.05) if optimizer_kind == "keras"
                 else snt.optimizers.SGD(0.05))
    step = training.make_train_step(model, optimizer, loss)
    ref_step = training.make_train_step(reference, snt.optimizers.SGD(0.05),
                                        loss)
    self.assertIsInstance(step, training.TrainStep)
    for _ in range(3):
      out = step({"x": x, "targets": (y, g)})
      ref = ref_step({"x": x, "targets": (y, g)})
      self.assertAllClose(out["loss"], ref["loss"], rtol=1e-5)
    if trained is not None:
      for (ref_var, _), var in zip(pairs, trained):
        self.assertAllClose(ref_var, var.numpy(), atol=1e-6)
    else:
      for a, b in zip(model.trainable_variables,
                      reference.trainable_variables):
        self.assertAllClose(a, b, atol=1e-6)
    self.assertEqual(int(step.counter), 3)

  def test_keras_model_is_called_in_training_mode(self):
    x, y, _, _ = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8),
                              keras.layers.Dropout(0.999),
                              keras.layers.Dense(1)])
    plain = lambda m, batch: tf.reduce_mean((m(batch["x"]) - batch["y"])**2)
    step = training.make_train_step(model, keras.optimizers.SGD(0.0), plain)
    trained = float(step({"x": x, "y": y})["loss"])
    inference = float(plain(model, {"x": x, "y": y}))
    # Dropout of almost every unit changes the outputs in training mode.
    self.assertNotAllClose(trained, inference)

  def test_same_object_with_and_without_a_strategy(self):
    x, y, g, _ = _data()
    loss = sobolev_loss.SobolevLoss(order=1)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
      model_d = _model(2)
      opt_d = snt.optimizers.Adam(1e-2)
    model_s, opt_s = _model(2), snt.optimizers.Adam(1e-2)
    step_d = training.make_train_step(model_d, opt_d, loss, strategy=strategy)
    step_s = training.make_train_step(model_s, opt_s, loss)
    self.assertIsInstance(step_d, training.TrainStep)
    self.assertIsInstance(step_s, training.TrainStep)
    for _ in range(3):
      out_d = step_d({"x": x, "targets": (y, g)})
      out_s = step_s({"x": x, "targets": (y, g)})
      self.assertAllClose(out_d["loss"], out_s["loss"], rtol=1e-5)
    self.assertEqual(int(step_d.counter), 3)
    self.assertEqual(int(step_s.counter), 3)
    self.assertEqual(step_d.experimental_get_tracing_count(), 1)

  def test_transform_grads_clips_the_update(self):
    x, y, g, _ = _data()
    model = _model(3)
    before = [v.numpy() for v in model.trainable_variables]
    clip = lambda grads: tf.clip_by_global_norm(grads, 1e-3)[0]
    step = training.make_train_step(model, snt.optimizers.SGD(1.0),
                                    sobolev_loss.SobolevLoss(order=1),
                                    transform_grads=clip)
    step({"x": x, "targets": (y, g)})
    delta = np.sqrt(sum(np.sum((v.numpy() - b)**2)
                        for v, b in zip(model.trainable_variables, before)))
    self.assertAllClose(delta, 1e-3, rtol=1e-4)
    bad = training.make_train_step(model, snt.optimizers.SGD(1.0),
                                   sobolev_loss.SobolevLoss(order=1),
                                   transform_grads=lambda grads: grads[:1])
    with self.assertRaisesRegex(ValueError, "must return a list of"):
      bad({"x": x, "targets": (y, g)})

  @parameterized.parameters(1, 3)
  def test_on_step_learning_rate_schedule(self, steps_per_call):
    x, y, g, _ = _data()
    loss = sobolev_loss.SobolevLoss(order=1)
    lr = tf.Variable(0.0)
    schedule = lambda s: 0.1 * tf.pow(0.5, tf.cast(s, tf.float32))

    def on_step(s):
      lr.assign(schedule(s))
      return {"learning_rate": lr.read_value()}

    model, reference = _model(4), _model(4)
    step = training.make_train_step(model, snt.optimizers.SGD(lr), loss,
                                    steps_per_call=steps_per_call,
                                    on_step=on_step)
    ref_lr = tf.Variable(0.0)
    ref_step = training.make_train_step(reference, snt.optimizers.SGD(ref_lr),
                                        loss)
    stack = lambda t: tf.stack([t] * steps_per_call)
    batch = ({"x": x, "targets": (y, g)} if steps_per_call == 1 else
             {"x": stack(x), "targets": (stack(y), stack(g))})
    rates = []
    for _ in range(2):
      out = step(batch)
      call_rates = []
      for _ in range(steps_per_call):
        rate = 0.1 * 0.5**len(rates)
        ref_lr.assign(rate)
        ref_step({"x": x, "targets": (y, g)})
        rates.append(rate)
        call_rates.append(rate)
      self.assertAllClose(out["learning_rate"], np.mean(call_rates))
    self.assertEqual(int(step.counter), 2 * steps_per_call)
    for a, b in zip(model.trainable_variables, reference.trainable_variables):
      self.assertAllClose(a, b, atol=1e-6)

  def test_plain_function_needs_variables(self):
    x, y, _, _ = _data()
    w = tf.Variable([[1.0], [1.0]])
    fn = lambda z: tf.matmul(z, w)
    with self.assertRaisesRegex(TypeError, "has no `trainable_variables`"):
      training.make_train_step(fn, snt.optimizers.SGD(0.1),
                               sobolev_loss.SobolevLoss(order=0))
    step = training.make_train_step(fn, snt.optimizers.SGD(0.1),
                                    sobolev_loss.SobolevLoss(order=0),
                                    variables=[w])
    first = float(step({"x": x, "targets": (y,)})["loss"])
    for _ in range(5):
      last = float(step({"x": x, "targets": (y,)})["loss"])
    self.assertLess(last, first)
    with self.assertRaisesRegex(TypeError, "`on_step` must be callable"):
      training.make_train_step(fn, snt.optimizers.SGD(0.1),
                               sobolev_loss.SobolevLoss(order=0),
                               variables=[w], on_step=3)

  def test_sonnet_optimizer_under_an_unsupported_strategy(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
      model = _model()
    with self.assertRaisesRegex(ValueError, "Use a Keras optimiser"):
      training.make_train_step(model, snt.optimizers.SGD(0.1),
                               sobolev_loss.SobolevLoss(), strategy=strategy)

  def test_the_sonnet_strategy_patch_still_applies(self):
    # Fails when Sonnet changes the private tuple the patch extends.
    supported = snt_optimizer_utils._SUPPORTED_STRATEGIES  # pylint: disable=protected-access
    self.assertIsInstance(supported, tuple)
    self.assertIn(snt.distribute.Replicator, supported)

    class ProbeStrategy(tf.distribute.MirroredStrategy):
      pass

    strategy = ProbeStrategy(["/cpu:0"])
    self.assertFalse(training.sonnet_supports_strategy(strategy))
    with strategy.scope():
      with self.assertRaisesRegex(ValueError, "not compatible"):
        snt_optimizer_utils.check_distribution_strategy()
    training.allow_strategy_for_sonnet_optimizers(ProbeStrategy)
    self.assertTrue(training.sonnet_supports_strategy(strategy))
    with strategy.scope():
      snt_optimizer_utils.check_distribution_strategy()
    with self.assertRaisesRegex(TypeError, "`strategy_cls` must be"):
      training.allow_strategy_for_sonnet_optimizers(strategy)


_DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    import sonnet as snt
    from sobolev import derivatives, sobolev_loss, training

    rng = np.random.RandomState(0)
    x = tf.constant(rng.uniform(-1, 1, (8, 2)), tf.float32)
    y, g = derivatives.value_and_gradient(
        lambda z: tf.sin(2.0 * z[:, 0]) * z[:, 1], x)

    def build(scope):
      with scope:
        model = snt.nets.MLP([16, 16, 1], activation=tf.nn.softplus)
        model(x[:1])
        opt = snt.optimizers.Adam(1e-2)
      return model, opt

    tf.random.set_seed(0)
    model_s, opt_s = build(tf.name_scope("single"))
    strategy = snt.distribute.Replicator(["/cpu:0", "/cpu:1"])
    model_d, opt_d = build(strategy.scope())
    for a, b in zip(model_d.trainable_variables, model_s.trainable_variables):
      a.assign(b)
    step_d = training.make_train_step(
        model_d, opt_d, sobolev_loss.SobolevLoss(order=1), strategy=strategy)
    ds = tf.data.Dataset.from_tensor_slices(
        {"x": x, "targets": (y, g)}).batch(8).repeat()
    it = iter(strategy.experimental_distribute_dataset(ds))
    losses_d = [float(step_d(next(it))["loss"]) for _ in range(3)]

    step_s = training.make_train_step(
        model_s, opt_s, sobolev_loss.SobolevLoss(order=1))
    losses_s = [float(step_s({"x": x, "targets": (y, g)})["loss"])
                for _ in range(3)]
    diff = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(
        model_d.trainable_variables, model_s.trainable_variables))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "losses_d": losses_d, "losses_s": losses_s,
                      "max_param_diff": diff}))
""")


class DistributedTrainStepTest(tf.test.TestCase):

  def test_replicator_over_two_cpu_devices_matches_single_device(self):
    # Logical devices must be configured before TF initialises, hence the
    # fresh process.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", _DISTRIBUTED_SCRIPT],
                         capture_output=True, text=True, env=env, timeout=600,
                         check=False)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    self.assertEqual(result["replicas"], 2)
    # Each replica sees half the batch; the all-reduced mean gradient equals
    # the full-batch gradient, so training is identical.
    self.assertAllClose(result["losses_d"], result["losses_s"], rtol=1e-4)
    self.assertLess(result["max_param_diff"], 1e-5)


_MULTI_WORKER_SCRIPT = r"""
import json, os, sys
idx, ports = int(sys.argv[1]), sys.argv[2].split(",")
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"localhost:{p}" for p in ports]},
    "task": {"type": "worker", "index": idx}})
import numpy as np
import tensorflow as tf
import keras
from sobolev import derivatives, sobolev_loss, training

strategy = tf.distribute.MultiWorkerMirroredStrategy()
rng = np.random.RandomState(0)
x = tf.constant(rng.uniform(-1, 1, (8, 2)), tf.float32)
y, g = derivatives.value_and_gradient(
    lambda z: tf.sin(2.0 * z[:, 0]) * z[:, 1], x)

def build():
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((2,)),
                            keras.layers.Dense(8, activation="softplus"),
                            keras.layers.Dense(1)])
  return model, keras.optimizers.SGD(0.1)

with strategy.scope():
  model_d, opt_d = build()
model_s, opt_s = build()
step_d = training.make_train_step(model_d, opt_d,
                                  sobolev_loss.SobolevLoss(order=1),
                                  strategy=strategy)
# Each worker trains on its half of the batch; the all-reduced mean
# gradient is the full-batch gradient.
half = slice(4 * idx, 4 * idx + 4)
batch = {"x": x[half], "targets": (y[half], g[half])}
losses_d = [float(step_d(batch)["loss"]) for _ in range(3)]
step_s = training.make_train_step(model_s, opt_s,
                                  sobolev_loss.SobolevLoss(order=1))
losses_s = [float(step_s({"x": x, "targets": (y, g)})["loss"])
            for _ in range(3)]
diff = max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(
    model_d.trainable_variables, model_s.trainable_variables))
print("RESULT" + json.dumps({
    "replicas": strategy.num_replicas_in_sync, "type": type(step_d).__name__,
    "losses_d": losses_d, "losses_s": losses_s, "max_param_diff": diff,
    "counter": int(step_d.counter.numpy()),
    # Sonnet's optimisers were not patched to accept the strategy.
    "sonnet_accepts": training.sonnet_supports_strategy(strategy)}),
    flush=True)
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


class MultiWorkerTrainStepTest(tf.test.TestCase):

  def test_keras_optimizer_two_workers_without_patching_sonnet(self):
    """MultiWorkerMirroredStrategy over two processes on localhost.

    Each worker trains on its half of the batch; the result equals
    single-process full-batch training, with no change to Sonnet.
    """
    ports = f"{_free_port()},{_free_port()}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    procs = [subprocess.Popen(
        [sys.executable, "-c", _MULTI_WORKER_SCRIPT, str(i), ports],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    results = []
    for proc in procs:
      try:
        stdout, stderr = proc.communicate(timeout=600)
      except subprocess.TimeoutExpired:
        for p in procs:
          p.kill()
        raise
      line = [l for l in stdout.splitlines() if l.startswith("RESULT")]
      # A worker may exit non-zero after printing its result when its peer
      # shuts down first (coordination service), so only the result counts.
      self.assertLen(line, 1, stderr[-3000:])
      results.append(json.loads(line[0][len("RESULT"):]))
    for r in results:
      self.assertEqual(r["replicas"], 2)
      self.assertEqual(r["type"], "TrainStep")
      self.assertEqual(r["counter"], 3)
      self.assertAllClose(r["losses_d"], r["losses_s"], rtol=1e-5)
      self.assertLess(r["max_param_diff"], 1e-5)
    self.assertEqual(results[0]["losses_d"], results[1]["losses_d"])
    self.assertFalse(any(r["sonnet_accepts"] for r in results))


if __name__ == "__main__":
  tf.test.main()
