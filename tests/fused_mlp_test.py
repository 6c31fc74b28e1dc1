"""Tests for sobolev.fused_mlp: the fused order-1 pass equals the tapes'."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import fused_mlp
from sobolev import sobolev_loss
from sobolev import training

ACTIVATIONS = {"relu": tf.nn.relu, "leaky_relu": tf.nn.leaky_relu}


def _rng(seed: int) -> np.random.RandomState:
  return np.random.RandomState(seed)


def _mlp(sizes, activation="relu", with_bias=True, seed=0) -> snt.nets.MLP:
  tf.random.set_seed(seed)
  return snt.nets.MLP(sizes, activation=ACTIVATIONS[activation],
                      with_bias=with_bias)


def _loss_and_grads(mlp, x, t, dt, fused: bool, jit=None):
  """A value-and-gradient loss (also using x) and its gradients."""

  def run(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      if fused:
        y, g = fused_mlp.mlp_value_and_gradient(mlp, x)
      else:
        y, jac = derivatives.value_and_jacobian(mlp, x)
        g = jac[:, 0]
      loss = (tf.reduce_mean(tf.square(y - t)) +
              tf.reduce_mean(tf.reduce_sum(tf.square(g - dt), -1)) +
              0.3 * tf.reduce_sum(y * tf.reduce_sum(x, -1, keepdims=True)))
    return y, g, loss, tape.gradient(loss, mlp.trainable_variables + (x,))

  if jit is not None:
    run = tf.function(run, jit_compile=jit)
  return run(x)


class FusedMlpTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(activation=sorted(ACTIVATIONS),
                         sizes=[(256, 256, 1), (7, 5, 1), (1,)],
                         with_bias=[True, False],
                         dtype=["float32", "float64"])
  def test_matches_tapes_eagerly(self, activation, sizes, with_bias, dtype):
    mlp = _mlp(list(sizes), activation, with_bias)
    x = tf.constant(_rng(0).normal(size=(9, 3)), dtype)
    t = tf.constant(_rng(1).normal(size=(9, 1)), dtype)
    dt = tf.constant(_rng(2).normal(size=(9, 3)), dtype)
    y_r, g_r, loss_r, grads_r = _loss_and_grads(mlp, x, t, dt, False)
    y_f, g_f, loss_f, grads_f = _loss_and_grads(mlp, x, t, dt, True)
    # Values and input gradients: the same ops as the tapes.
    self.assertAllEqual(y_f, y_r)
    self.assertAllEqual(g_f, g_r)
    self.assertAllEqual(loss_f, loss_r)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(grads_f, grads_r):
      self.assertAllClose(a, b, rtol=tol, atol=tol)

  @parameterized.parameters(None, True)
  def test_matches_tapes_compiled(self, jit):
    mlp = _mlp([64, 32, 1], seed=3)
    x = tf.constant(_rng(3).normal(size=(20, 2)), tf.float32)
    t = tf.constant(_rng(4).normal(size=(20, 1)), tf.float32)
    dt = tf.constant(_rng(5).normal(size=(20, 2)), tf.float32)
    _, g_r, loss_r, grads_r = _loss_and_grads(mlp, x, t, dt, False, jit)
    _, g_f, loss_f, grads_f = _loss_and_grads(mlp, x, t, dt, True, jit)
    self.assertAllClose(g_f, g_r, rtol=1e-6, atol=1e-6)
    self.assertAllClose(loss_f, loss_r, rtol=1e-6)
    for a, b in zip(grads_f, grads_r):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-5)

  def test_supports(self):
    self.assertTrue(fused_mlp.supports(_mlp([4, 1])))
    self.assertFalse(fused_mlp.supports(_mlp([4, 2])))
    self.assertFalse(fused_mlp.supports(
        snt.nets.MLP([4, 1], activation=tf.nn.tanh)))
    self.assertFalse(fused_mlp.supports(
        snt.nets.MLP([4, 1], activate_final=True)))
    self.assertFalse(fused_mlp.supports(snt.nets.MLP([4, 1], dropout_rate=.5)))
    self.assertFalse(fused_mlp.supports(lambda x: x))
    with self.assertRaisesRegex(ValueError, "one output"):
      fused_mlp.mlp_value_and_gradient(_mlp([4, 2]), tf.ones([3, 2]))
    with self.assertRaisesRegex(ValueError, "static D"):
      fused_mlp.mlp_value_and_gradient(_mlp([4, 1]), tf.ones([3, 2, 2]))


class FusedSobolevLossTest(tf.test.TestCase, parameterized.TestCase):

  def _grads(self, mlp, x, targets, mode, **kwargs):
    loss = sobolev_loss.SobolevLoss(order=1, jacobian_mode=mode,
                                    weights=(1.0, 0.5))
    with tf.GradientTape() as tape:
      out = loss(mlp, x, targets=targets, **kwargs)
    return out, tape.gradient(out.total, mlp.trainable_variables)

  @parameterized.parameters(
      {"kwargs": {}},
      {"kwargs": {"sample_weights": [0.5, 1.0, 2.0, 0.0, 1.0, 3.0]}},
      {"kwargs": {"masks": [None, [True, False, True, True, False, True]]}})
  def test_loss_matches_reverse_mode(self, kwargs):
    mlp = _mlp([32, 16, 1], "leaky_relu", seed=4)
    x = tf.constant(_rng(6).normal(size=(6, 3)), tf.float32)
    targets = (tf.constant(_rng(7).normal(size=(6, 1)), tf.float32),
               tf.constant(_rng(8).normal(size=(6, 1, 3)), tf.float32))
    if "sample_weights" in kwargs:
      kwargs = {"sample_weights": tf.constant(kwargs["sample_weights"])}
    if "masks" in kwargs:
      kwargs = {"masks": [None, tf.constant(kwargs["masks"][1])]}
    out_f, grads_f = self._grads(mlp, x, targets, "fused", **kwargs)
    out_r, grads_r = self._grads(mlp, x, targets, "reverse", **kwargs)
    self.assertAllEqual(out_f.total, out_r.total)
    self.assertAllEqual(out_f.per_example, out_r.per_example)
    for a, b in zip(grads_f, grads_r):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)

  def test_target_fn_is_differentiated_by_tapes(self):
    mlp = _mlp([16, 1], seed=5)
    teacher = snt.nets.MLP([8, 1], activation=tf.nn.tanh)
    x = tf.constant(_rng(9).normal(size=(5, 2)), tf.float32)
    totals = [sobolev_loss.SobolevLoss(order=1, jacobian_mode=mode)(
        mlp, x, target_fn=teacher).total for mode in ("fused", "reverse")]
    self.assertAllEqual(totals[0], totals[1])

  def test_unsupported_models_raise(self):
    x = tf.ones([3, 2])
    loss = sobolev_loss.SobolevLoss(order=1, jacobian_mode="fused")
    targets = (tf.zeros([3, 2]), tf.zeros([3, 2, 2]))
    with self.assertRaisesRegex(ValueError, "jacobian_mode='fused'"):
      loss(_mlp([4, 2]), x, targets=targets)
    conv = snt.Sequential([snt.Conv2D(2, 3), snt.Flatten(), snt.Linear(1)])
    images = tf.ones([3, 4, 4, 1])
    with self.assertRaisesRegex(ValueError, "jacobian_mode='fused'"):
      loss(conv, images, targets=(tf.zeros([3, 1]), tf.zeros([3, 4, 4, 1])))
    with self.assertRaisesRegex(ValueError, "order=1 only"):
      sobolev_loss.SobolevLoss(order=2, jacobian_mode="fused")

  @parameterized.parameters(False, True)
  def test_train_steps_match_reverse_mode(self, jit):
    x = tf.constant(_rng(10).uniform(-1, 1, size=(3, 16, 2)), tf.float32)
    batch = {"x": x, "targets": (tf.reduce_sum(x**2, -1, keepdims=True),
                                 (2 * x)[:, :, None, :])}
    params = {}
    for mode in ("fused", "reverse"):
      mlp = _mlp([32, 32, 1], seed=6)
      mlp(x[0])
      step = training.make_train_step(
          mlp, snt.optimizers.Adam(1e-2),
          sobolev_loss.SobolevLoss(order=1, jacobian_mode=mode),
          jit_compile=jit, steps_per_call=3)
      step(batch)
      params[mode] = [v.numpy() for v in mlp.trainable_variables]
    for a, b in zip(params["fused"], params["reverse"]):
      self.assertAllClose(a, b, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
  tf.test.main()
