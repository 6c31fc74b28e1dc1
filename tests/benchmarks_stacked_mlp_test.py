"""Tests that the stacked MLP (and its training) equals M independent MLPs."""

from absl.testing import parameterized
import numpy as np
from scipy import special
import sonnet as snt
import tensorflow as tf

from benchmarks import stacked_mlp
from sobolev import derivatives
from sobolev import sobolev_loss
from sobolev import training


def _mlps(m, sizes):
  mlps = [snt.nets.MLP(sizes) for _ in range(m)]
  for i, net in enumerate(mlps):
    tf.random.set_seed(i)
    net(tf.zeros([1, 2]))
  return mlps


class StackedMLPTest(tf.test.TestCase):

  def test_equals_independent_snt_mlps(self):
    m, n, sizes = 3, 5, [16, 16, 1]
    mlps = _mlps(m, sizes)
    stack = stacked_mlp.StackedMLP(m, 2, sizes)
    stack.assign_from_mlps(mlps)
    x = tf.random.normal([m * n, 2], seed=0)
    out = stack(x)
    self.assertEqual(out.shape, [m * n, 1])
    expected = tf.concat([mlps[i](x[i * n:(i + 1) * n]) for i in range(m)], 0)
    self.assertAllClose(out, expected, atol=1e-6)
    # Rank-3 input gives the same values.
    self.assertAllClose(stack(tf.reshape(x, [m, n, 2])),
                        tf.reshape(expected, [m, n, 1]), atol=1e-6)
    # Per-example input gradients are those of each model.
    _, g = derivatives.value_and_gradient(stack, x)
    for i in range(m):
      _, gi = derivatives.value_and_gradient(mlps[i], x[i * n:(i + 1) * n])
      self.assertAllClose(g[i * n:(i + 1) * n], gi, atol=1e-6)

  def test_initialisation_matches_snt_linear(self):
    stack = stacked_mlp.StackedMLP(4, 2, [256, 256, 1], seeds=[0, 1, 2, 3])
    w1 = stack.weights[1].numpy()
    self.assertEqual(w1.shape, (4, 256, 256))
    # snt.Linear: truncated normal (2 std), stddev 1/sqrt(fan_in); zero bias.
    stddev = 1 / np.sqrt(256)
    self.assertLessEqual(np.abs(w1).max(), 2 * stddev + 1e-6)
    # Truncated at 2 std, the std is 0.88 of the untruncated one.
    self.assertAllClose(w1.std(), 0.8796 * stddev, rtol=0.02)
    self.assertAllEqual(stack.biases[0].numpy(), np.zeros([4, 256]))
    w0 = stack.weights[0].numpy()
    self.assertAllClose(w0.std(), 0.8796 / np.sqrt(2), rtol=0.05)
    # Seeded per model: model 0's weights do not depend on the others.
    other = stacked_mlp.StackedMLP(2, 2, [256, 256, 1], seeds=[0, 9])
    self.assertAllEqual(other.weights[1][0], stack.weights[1][0])
    self.assertNotAllClose(other.weights[1][1], stack.weights[1][1])

  def test_summed_loss_training_equals_separate_training(self):
    m, n, sizes = 2, 6, [8, 8, 1]
    mlps = _mlps(m, sizes)
    stack = stacked_mlp.StackedMLP(m, 2, sizes)
    stack.assign_from_mlps(mlps)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=[m * n, 2]), tf.float32)
    y = tf.constant(rng.normal(size=[m * n, 1]), tf.float32)
    dy = tf.constant(rng.normal(size=[m * n, 2]), tf.float32)
    loss = sobolev_loss.SobolevLoss(order=1, weights=[1.0, 0.5])

    def summed(net, batch):
      total, terms = loss(net, batch["x"], targets=batch["targets"])[:2]
      return m * total, terms

    step = training.make_train_step(stack, snt.optimizers.Adam(0.01), summed)
    steps = [training.make_train_step(net, snt.optimizers.Adam(0.01), loss)
             for net in mlps]
    for _ in range(3):
      step({"x": x, "targets": (y, dy)})
      for i, s in enumerate(steps):
        sl = slice(i * n, (i + 1) * n)
        s({"x": x[sl], "targets": (y[sl], dy[sl])})
    for layer in range(3):
      for i in range(m):
        self.assertAllClose(stack.weights[layer][i], mlps[i]._layers[layer].w,
                            atol=1e-5)
        self.assertAllClose(stack.biases[layer][i], mlps[i]._layers[layer].b,
                            atol=1e-5)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "num_models"):
      stacked_mlp.StackedMLP(0, 2, [4, 1])
    with self.assertRaisesRegex(ValueError, "seeds"):
      stacked_mlp.StackedMLP(2, 2, [4, 1], seeds=[1])
    with self.assertRaisesRegex(ValueError, "output_sizes"):
      stacked_mlp.StackedMLP(2, 2, [0, 1])


def _derivative(name, z):
  """Hand-written derivative of each activation (numpy, float64)."""
  sig = 1 / (1 + np.exp(-z))
  return {"relu": (z > 0).astype(np.float64),
          "tanh": 1 - np.tanh(z)**2,
          "softplus": sig,
          "silu": sig * (1 + z * (1 - sig)),
          "gelu": 0.5 * (1 + special.erf(z / np.sqrt(2))) +
                  z * np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)}[name]


class ActivationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*stacked_mlp.ACTIVATIONS)
  def test_equals_snt_mlp_with_the_activation(self, name):
    m, n, sizes = 2, 4, [8, 8, 1]
    fn = stacked_mlp.activation_fn(name)
    mlps = [snt.nets.MLP(sizes, activation=fn) for _ in range(m)]
    for net in mlps:
      net(tf.zeros([1, 2]))
    stack = stacked_mlp.StackedMLP(m, 2, sizes, activation=name)
    stack.assign_from_mlps(mlps)
    x = tf.random.normal([m * n, 2], seed=1)
    expected = tf.concat([mlps[i](x[i * n:(i + 1) * n]) for i in range(m)], 0)
    self.assertAllClose(stack(x), expected, atol=1e-6)

  @parameterized.parameters(*stacked_mlp.ACTIVATIONS)
  def test_sobolev_loss_and_gradients_by_hand(self, name):
    # One hidden layer: m(x) = w1 . act(W0^T x + b0) + b1, so
    # dm/dx = W0 (act'(z) * w1); the order-1 Sobolev loss is
    # mean (m - t)^2 + mean ||dm/dx - dt||^2.
    stack = stacked_mlp.StackedMLP(1, 2, [6, 1], seeds=[3], activation=name)
    stack.biases[0].assign(tf.constant([[0.3, -0.2, 0.1, -0.4, 0.5, 0.05]]))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(5, 2))
    t = rng.normal(size=(5, 1))
    dt = rng.normal(size=(5, 2))
    w0, b0 = stack.weights[0].numpy()[0], stack.biases[0].numpy()[0]
    w1, b1 = stack.weights[1].numpy()[0], stack.biases[1].numpy()[0]
    z = x @ w0 + b0
    act = stacked_mlp.activation_fn(name)(tf.constant(z)).numpy()
    value = act @ w1 + b1
    grad = (_derivative(name, z) * w1[:, 0]) @ w0.T
    loss = sobolev_loss.SobolevLoss(order=1)
    x32 = tf.constant(x, tf.float32)
    targets = (tf.constant(t, tf.float32), tf.constant(dt, tf.float32))
    out = loss(stack, x32, targets=targets)
    want = np.mean((value - t)**2) + np.mean(np.sum((grad - dt)**2, axis=1))
    self.assertAllClose(out.total, want, rtol=1e-5)
    _, g = derivatives.value_and_gradient(stack, x32)
    self.assertAllClose(g, grad, rtol=1e-5, atol=1e-6)
    # The loss's parameter gradient against central finite differences.
    with tf.GradientTape() as tape:
      total = loss(stack, x32, targets=targets).total
    dw0 = tape.gradient(total, stack.weights[0]).numpy()[0]
    h = 1e-3
    for i, j in [(0, 0), (1, 3), (0, 5)]:
      base = stack.weights[0].numpy()
      vals = []
      for sign in (1, -1):
        moved = base.copy()
        moved[0, i, j] += sign * h
        stack.weights[0].assign(moved)
        vals.append(float(loss(stack, x32, targets=targets).total))
      stack.weights[0].assign(base)
      self.assertAllClose(dw0[i, j], (vals[0] - vals[1]) / (2 * h),
                          rtol=2e-2, atol=2e-3)

  def test_unknown_activation(self):
    with self.assertRaisesRegex(ValueError, "`activation` must be one of"):
      stacked_mlp.StackedMLP(1, 2, [4, 1], activation="swish")


if __name__ == "__main__":
  tf.test.main()
