"""Tests for sobolev.training.make_train_step."""

import json
import os
import subprocess
import sys
import textwrap

from absl.testing import parameterized
import numpy as np
import sonnet as snt
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

  def test_unused_variables_are_reported(self):
    model = _model()
    extra = tf.Variable(1.0)
    step = training.make_train_step(
        model, snt.optimizers.SGD(0.1), sobolev_loss.SobolevLoss(order=0),
        variables=list(model.trainable_variables) + [extra])
    x, y, _, _ = _data()
    with self.assertRaisesRegex(ValueError, "does not depend on variables"):
      step({"x": x, "targets": (y,)})


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


if __name__ == "__main__":
  tf.test.main()
