"""Tests for sobolev.sobolev_loss.SobolevLoss against hand computations."""

import collections
import inspect
from unittest import mock

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import forward_mode
from sobolev import sampling
from sobolev import sobolev_loss
from sobolev import strided_conv

SobolevLoss = sobolev_loss.SobolevLoss


class Linear(snt.Module):
  """m(x) = x W + b, whose Jacobian is W^T everywhere."""

  def __init__(self, w, b):
    super().__init__()
    self.w = tf.Variable(w)
    self.b = tf.Variable(b)

  def __call__(self, x):
    return x @ self.w + self.b


class Quadratic(snt.Module):
  """m_o(x) = 0.5 x^T A_o x + c_o . x: Jacobian A_o x + c_o, Hessian A_o."""

  def __init__(self, a, c):
    super().__init__()
    a = np.asarray(a)
    self.a = tf.Variable(0.5 * (a + np.transpose(a, (0, 2, 1))))  # [O, D, D]
    self.c = tf.Variable(c)  # [O, D]

  def __call__(self, x):
    return (0.5 * tf.einsum("bd,ode,be->bo", x, self.a, x) +
            tf.einsum("bd,od->bo", x, self.c))


def _rng(seed=0):
  return np.random.RandomState(seed)


def _linear(d, o, seed=0):
  r = _rng(seed)
  return Linear(r.normal(size=(d, o)), r.normal(size=(o,)))


def _quadratic(d, o, seed=0):
  r = _rng(seed)
  return Quadratic(r.normal(size=(o, d, d)), r.normal(size=(o, d)))


class ExactLossTest(tf.test.TestCase, parameterized.TestCase):

  def test_order0_is_mean_squared_error_summed_over_outputs(self):
    model = _linear(3, 2)
    x = _rng(1).normal(size=(5, 3))
    t = _rng(2).normal(size=(5, 2))
    total, terms = SobolevLoss(order=0)(model, x, targets=(t,))[:2]
    expected = np.mean(np.sum((x @ model.w.numpy() + model.b.numpy() - t)**2,
                              axis=1))
    self.assertAllClose(total, expected)
    self.assertEqual(list(terms), ["order_0"])

  def test_order1_exact_hand_computed(self):
    model = _linear(3, 2)
    x = _rng(1).normal(size=(4, 3))
    t = _rng(2).normal(size=(4, 2))
    tj = _rng(3).normal(size=(4, 2, 3))
    total, terms = SobolevLoss(order=1, weights=[0.5, 2.0])(
        model, x, targets=(t, tj))[:2]
    y = x @ model.w.numpy() + model.b.numpy()
    value = np.mean(np.sum((y - t)**2, axis=1))
    jac = np.mean(np.sum((model.w.numpy().T[None] - tj)**2, axis=(1, 2)))
    self.assertAllClose(terms["order_0"], value)
    self.assertAllClose(terms["order_1"], jac)
    self.assertAllClose(total, 0.5 * value + 2.0 * jac)

  def test_order2_exact_hand_computed_with_l1(self):
    model = _quadratic(3, 2)
    x = _rng(1).normal(size=(4, 3))
    t = _rng(2).normal(size=(4, 2))
    tj = _rng(3).normal(size=(4, 2, 3))
    th = _rng(4).normal(size=(4, 2, 3, 3))
    total, terms = SobolevLoss(order=2, loss_fns=["l2", "l1", "l2"])(
        model, x, targets=(t, tj, th))[:2]
    a, c = model.a.numpy(), model.c.numpy()
    y = 0.5 * np.einsum("bd,ode,be->bo", x, a, x) + x @ c.T
    jac = np.einsum("ode,be->bod", a, x) + c[None]
    self.assertAllClose(terms["order_0"], np.mean(np.sum((y - t)**2, 1)))
    self.assertAllClose(terms["order_1"],
                        np.mean(np.sum(np.abs(jac - tj), (1, 2))))
    self.assertAllClose(terms["order_2"],
                        np.mean(np.sum((a[None] - th)**2, (1, 2, 3))))
    self.assertAllClose(total, sum(terms.values()))

  @parameterized.parameters(1, 2)
  def test_target_fn_matches_tensor_targets(self, order):
    student, teacher = _quadratic(3, 2, seed=0), _quadratic(3, 2, seed=5)
    x = tf.constant(_rng(1).normal(size=(6, 3)))
    targets = [teacher(x)]
    _, jac, hess = derivatives.value_and_hessian(teacher, x)
    targets += [jac, hess][:order]
    loss = SobolevLoss(order=order)
    a, _ = loss(student, x, targets=targets)[:2]
    b, _ = loss(student, x, target_fn=teacher)[:2]
    self.assertAllClose(a, b)

  def test_scalar_output_shorthand_targets(self):
    model = _linear(3, 1)
    x = _rng(1).normal(size=(4, 3))
    t, tg = _rng(2).normal(size=(4,)), _rng(3).normal(size=(4, 3))
    a, _ = SobolevLoss(order=1)(model, x, targets=(t, tg))[:2]
    b, _ = SobolevLoss(order=1)(model, x, targets=(t[:, None], tg[:, None]))[:2]
    self.assertAllClose(a, b)


class StochasticLossTest(tf.test.TestCase, parameterized.TestCase):

  def test_given_vectors_hand_computed(self):
    model = _linear(3, 4)
    x = _rng(1).normal(size=(5, 3))
    t, tj = _rng(2).normal(size=(5, 4)), _rng(3).normal(size=(5, 4, 3))
    v1 = sampling.unit_sphere([5], 4, dtype=tf.float64, seed=[1, 2])
    loss = SobolevLoss(order=1, mode="stochastic", unbiased_scaling=False)
    _, terms = loss(model, x, targets=(t, tj), vectors=(v1, None))[:2]
    proj_m = np.einsum("bo,do->bd", v1, model.w.numpy())
    proj_t = np.einsum("bo,bod->bd", v1, tj)
    self.assertAllClose(terms["order_1"],
                        np.mean(np.sum((proj_m - proj_t)**2, 1)))
    loss_scaled = SobolevLoss(order=1, mode="stochastic")
    _, scaled = loss_scaled(model, x, targets=(t, tj), vectors=(v1, None))[:2]
    self.assertAllClose(scaled["order_1"], 4.0 * terms["order_1"])

  def test_order1_estimator_is_unbiased(self):
    # E_v ||J^T v - J_f^T v||^2 = ||J - J_f||_F^2 / O for v on S^{O-1}.
    out_dim, in_dim, draws = 6, 3, 4000
    model = _linear(in_dim, out_dim)
    x = _rng(1).normal(size=(1, in_dim))
    t, tj = _rng(2).normal(size=(1, out_dim)), _rng(3).normal(
        size=(1, out_dim, in_dim))
    delta = model.w.numpy().T - tj[0]  # [O, D]
    v = sampling.unit_sphere([draws], out_dim, tf.float64, seed=[4, 5]).numpy()
    samples = np.sum((v @ delta)**2, axis=1)
    expected = np.sum(delta**2) / out_dim
    tolerance = 4.0 * samples.std() / np.sqrt(draws)
    self.assertLess(abs(samples.mean() - expected), tolerance)
    # The loss with these draws is exactly O * their mean, and so it is an
    # unbiased estimate of the exact order-1 loss.
    stochastic = SobolevLoss(order=1, weights=[0.0, 1.0], mode="stochastic",
                             num_projections=draws)
    total, _ = stochastic(model, x, targets=(t, tj), vectors=(v, None))[:2]
    self.assertAllClose(total, out_dim * samples.mean())
    exact, _ = SobolevLoss(order=1, weights=[0.0, 1.0])(model, x,
                                                        targets=(t, tj))[:2]
    self.assertLess(abs(total - exact), out_dim * tolerance)

  def test_order2_estimator_is_unbiased(self):
    # E ||(H_v1 - H_f,v1) v2||^2 = sum_o ||H_o - H_f,o||_F^2 / (O * D).
    out_dim, in_dim, draws = 3, 4, 4000
    model = _quadratic(in_dim, out_dim)
    x = _rng(1).normal(size=(1, in_dim))
    t = _rng(2).normal(size=(1, out_dim))
    tj = _rng(3).normal(size=(1, out_dim, in_dim))
    th = _rng(4).normal(size=(1, out_dim, in_dim, in_dim))
    delta = model.a.numpy() - th[0]
    v1 = sampling.unit_sphere([draws], out_dim, tf.float64, seed=[1, 1])
    v2 = sampling.unit_sphere([draws], in_dim, tf.float64, seed=[2, 2])
    samples = np.sum(np.einsum("no,ode,ne->nd", v1, delta, v2)**2, axis=1)
    expected = np.sum(delta**2) / (out_dim * in_dim)
    tolerance = 4.0 * samples.std() / np.sqrt(draws)
    self.assertLess(abs(samples.mean() - expected), tolerance)
    loss = SobolevLoss(order=2, weights=[0.0, 0.0, 1.0], mode="stochastic",
                       num_projections=draws)
    total, _ = loss(model, x, targets=(t, tj, th), vectors=(v1, v2))[:2]
    self.assertAllClose(total, out_dim * in_dim * samples.mean())

  def test_single_output_stochastic_equals_exact(self):
    # On S^0 = {-1, +1} the projection loses nothing.
    model = _linear(3, 1)
    x = _rng(1).normal(size=(5, 3))
    t, tg = _rng(2).normal(size=(5, 1)), _rng(3).normal(size=(5, 3))
    exact, _ = SobolevLoss(order=1)(model, x, targets=(t, tg))[:2]
    stoch, _ = SobolevLoss(order=1, mode="stochastic", seed=0)(
        model, x, targets=(t, tg))[:2]
    self.assertAllClose(exact, stoch)

  def test_target_fn_uses_the_same_vectors(self):
    # A teacher equal to the student gives exactly zero derivative terms.
    model = _quadratic(3, 4)
    x = tf.constant(_rng(1).normal(size=(6, 3)))
    loss = SobolevLoss(order=2, mode="stochastic", num_projections=3, seed=1)
    total, terms = loss(model, x, target_fn=model)[:2]
    self.assertAllEqual(total, 0.0)
    # And tensor targets projected with the same seed match the target_fn.
    teacher = _quadratic(3, 4, seed=7)
    _, jac, hess = derivatives.value_and_hessian(teacher, x)
    a, _ = SobolevLoss(order=2, mode="stochastic", num_projections=3, seed=2)(
        model, x, target_fn=teacher)[:2]
    b, _ = SobolevLoss(order=2, mode="stochastic", num_projections=3, seed=2)(
        model, x, targets=(teacher(x), jac, hess))[:2]
    self.assertAllClose(a, b)
    del terms

  def test_deterministic_under_seed(self):
    model, teacher = _linear(3, 5), _linear(3, 5, seed=3)
    x = _rng(1).normal(size=(4, 3))
    run = lambda seed: SobolevLoss(order=1, mode="stochastic", seed=seed)(
        model, x, target_fn=teacher)[0]
    self.assertAllEqual(run(7), run(7))
    self.assertNotAllClose(run(7), run(8))

  @parameterized.named_parameters(("graph", False), ("xla", True))
  def test_compiled_matches_eager(self, jit):
    model, teacher = _quadratic(3, 4), _quadratic(3, 4, seed=9)
    x = tf.constant(_rng(1).normal(size=(5, 3)))
    v1 = sampling.unit_sphere([10], 4, tf.float64, seed=[0, 3])
    v2 = sampling.unit_sphere([10], 3, tf.float64, seed=[0, 4])
    loss = SobolevLoss(order=2, mode="stochastic", num_projections=2)
    fn = lambda: loss(model, x, target_fn=teacher, vectors=(v1, v2))[0]
    self.assertAllClose(tf.function(fn, jit_compile=jit)(), fn())


class GradientFlowTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(("exact", 1), ("stochastic", 1), ("exact", 2),
                            ("stochastic", 2))
  def test_model_gets_gradients_target_does_not(self, mode, order):
    student = snt.nets.MLP([8, 3], activation=tf.nn.softplus)
    teacher = snt.nets.MLP([8, 3], activation=tf.nn.tanh)
    x = tf.random.stateless_normal([4, 2], seed=[1, 1])
    teacher(x)
    loss = SobolevLoss(order=order, mode=mode,
                       seed=0 if mode == "stochastic" else None)
    with tf.GradientTape(persistent=True) as tape:
      total, _ = loss(student, x, target_fn=teacher)[:2]
    grads = tape.gradient(total, student.trainable_variables)
    self.assertNotEmpty(grads)
    for g in grads:
      self.assertIsNotNone(g)
      self.assertGreater(float(tf.reduce_sum(tf.abs(g))), 0.0)
    for g in tape.gradient(total, teacher.trainable_variables):
      self.assertIsNone(g)
    self.assertIsNone(tape.gradient(total, x))

  def test_target_tensors_get_no_gradient(self):
    model = _linear(3, 2)
    x = tf.constant(_rng(1).normal(size=(4, 3)))
    t = tf.Variable(_rng(2).normal(size=(4, 2)))
    tj = tf.Variable(_rng(3).normal(size=(4, 2, 3)))
    for mode in ("exact", "stochastic"):
      with tf.GradientTape() as tape:
        total, _ = SobolevLoss(
            order=1, mode=mode, seed=0 if mode == "stochastic" else None)(
                model, x, targets=(t, tj))[:2]
      g_t, g_tj, g_w = tape.gradient(total, [t, tj, model.w])
      self.assertIsNone(g_t)
      self.assertIsNone(g_tj)
      self.assertIsNotNone(g_w)


class Proposition1Test(tf.test.TestCase):
  """A ReLU net can fit values and gradients on a finite set exactly."""

  def test_relu_net_fits_values_and_gradients_of_five_points(self):
    tf.random.set_seed(0)
    x = tf.constant(_rng(0).uniform(-1, 1, (5, 2)), tf.float32)
    # f(x) = sin(2 x0) + x1^2 and its gradient.
    y = tf.sin(2.0 * x[:, :1]) + x[:, 1:]**2
    g = tf.stack([2.0 * tf.cos(2.0 * x[:, 0]), 2.0 * x[:, 1]], axis=1)
    model = snt.nets.MLP([128, 128, 1])
    loss = SobolevLoss(order=1)
    opt = snt.optimizers.Adam(3e-4)

    @tf.function
    def train(steps):
      for _ in tf.range(steps):
        with tf.GradientTape() as tape:
          total, terms = loss(model, x, targets=(y, g))[:2]
        grads = tape.gradient(total, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
      return terms

    initial = loss(model, x, targets=(y, g))[1]
    self.assertGreater(float(initial["order_1"]), 0.1)
    terms = train(tf.constant(3000))
    # Zero training loss up to float32 round-off (targets are O(1)).
    self.assertLess(float(terms["order_0"]), 1e-6)
    self.assertLess(float(terms["order_1"]), 1e-6)


class BadInputTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("order_too_high", dict(order=3), ValueError, "`order` must be between"),
      ("order_negative", dict(order=-1), ValueError, "`order` must be between"),
      ("order_type", dict(order=1.0), TypeError, "`order` must be an int"),
      ("weights_length", dict(order=1, weights=[1.0]), ValueError,
       "`weights` must have one entry per order"),
      ("weights_negative", dict(order=1, weights=[1.0, -1.0]), ValueError,
       r"`weights\[1\]` must be finite and >= 0"),
      ("weights_type", dict(order=0, weights=["a"]), TypeError,
       r"`weights\[0\]` must be a number"),
      ("loss_name", dict(loss_fns="huber"), ValueError, "unknown loss"),
      ("loss_length", dict(order=2, loss_fns=["l2", "l1"]), ValueError,
       "`loss_fns` must have one entry per order"),
      ("loss_type", dict(loss_fns=3), TypeError, "`loss_fns"),
      ("mode", dict(mode="random"), ValueError, "`mode` must be one of"),
      ("projections", dict(mode="stochastic", num_projections=0), ValueError,
       "`num_projections` must be an int >= 1"),
  )
  def test_constructor(self, kwargs, error, regex):
    with self.assertRaisesRegex(error, regex):
      SobolevLoss(**kwargs)

  def _call(self, targets, order=1, model=None, x=None, **kwargs):
    model = model or _linear(3, 2)
    x = _rng(1).normal(size=(4, 3)) if x is None else x
    return SobolevLoss(order=order, **kwargs)(model, x, targets=targets)

  def test_targets_count(self):
    with self.assertRaisesRegex(ValueError, "`targets` must hold 2 tensors"):
      self._call((np.zeros((4, 2)),))

  def test_target_batch_mismatch(self):
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` has batch size 5"):
      self._call((np.zeros((4, 2)), np.zeros((5, 2, 3))))

  def test_target_input_dim_mismatch(self):
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` has input dim"):
      self._call((np.zeros((4, 2)), np.zeros((4, 2, 4))))

  def test_target_output_dim_mismatch(self):
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` has output dim"):
      self._call((np.zeros((4, 2)), np.zeros((4, 3, 3))))
    with self.assertRaisesRegex(ValueError, "model's output dimension is 2"):
      self._call((np.zeros((4, 3)), np.zeros((4, 3, 3))))

  def test_target_rank(self):
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` must have rank 3"):
      self._call((np.zeros((4, 2)), np.zeros((4, 2, 3, 1))))

  def test_non_finite_targets(self):
    bad = np.zeros((4, 2, 3))
    bad[1, 0, 2] = np.nan
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` contains NaN"):
      self._call((np.zeros((4, 2)), bad))
    model = _linear(3, 2)
    fn = tf.function(lambda t: SobolevLoss(order=1)(
        model, tf.zeros([4, 3], tf.float64), targets=(tf.zeros([4, 2],
                                                               tf.float64), t)))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r"`targets\[1\]` contains NaN"):
      fn(tf.constant(bad))

  def test_exactly_one_target_source(self):
    model = _linear(3, 2)
    x = np.zeros((4, 3))
    with self.assertRaisesRegex(ValueError, "exactly one of `targets`"):
      SobolevLoss()(model, x)
    with self.assertRaisesRegex(ValueError, "exactly one of `targets`"):
      SobolevLoss()(model, x, targets=(np.zeros((4, 2)), np.zeros((4, 2, 3))),
                    target_fn=model)

  def test_model_not_depending_on_input(self):
    const = lambda x: tf.zeros([4, 2], tf.float64)
    for mode in ("exact", "stochastic"):
      with self.assertRaisesRegex(ValueError, "does not depend on its input"):
        self._call((np.zeros((4, 2)), np.zeros((4, 2, 3))), model=const,
                   mode=mode)

  @parameterized.named_parameters(("eager", None), ("graph", False))
  def test_order2_on_relu_network(self, jit):
    relu_net = snt.nets.MLP([8, 1])
    teacher = _quadratic(3, 1)
    x = tf.constant(_rng(1).normal(size=(4, 3)), tf.float32)
    loss = SobolevLoss(order=2, mode="stochastic", seed=0)
    fn = lambda: loss(relu_net, x, target_fn=lambda z: tf.cast(
        teacher(tf.cast(z, tf.float64)), tf.float32))
    if jit is not None:
      fn = tf.function(fn)
    with self.assertRaisesRegex(ValueError, "Hessian .* identically zero"):
      fn()

  def test_order2_on_smooth_network_passes_the_check(self):
    net = snt.nets.MLP([8, 1], activation=tf.nn.softplus)
    x = tf.constant(_rng(1).normal(size=(4, 3)), tf.float32)
    total, _ = tf.function(lambda: SobolevLoss(order=2)(
        net, x, target_fn=lambda z: tf.reduce_sum(z**3, 1))[:2])()
    self.assertTrue(np.isfinite(total.numpy()))



def _conv_net(seed, strided=False):
  """A small smooth conv net `[B, 4, 4, 2] -> [B, 3]`."""
  tf.random.set_seed(seed)
  conv = (strided_conv.Conv2D(3, 2, stride=2, name="conv") if strided else
          snt.Conv2D(3, 3, name="conv"))
  head = snt.Linear(3, name="head")

  def net(x):
    h = tf.nn.softplus(conv(x))
    return head(tf.reshape(h, [tf.shape(x)[0], -1]))

  net(tf.zeros([1, 4, 4, 2]))
  net.variables = list(conv.trainable_variables) + list(
      head.trainable_variables)
  return net


class LossOutputTest(tf.test.TestCase, parameterized.TestCase):
  """The structured result, per-example values, sample weights and masks."""

  def _problem(self, batch=5):
    model = _linear(3, 2)
    x = _rng(1).normal(size=(batch, 3))
    t = _rng(2).normal(size=(batch, 2))
    tj = _rng(3).normal(size=(batch, 2, 3))
    y = x @ model.w.numpy() + model.b.numpy()
    l0 = np.sum((y - t)**2, axis=1)                          # [B]
    l1 = np.sum((model.w.numpy().T[None] - tj)**2, axis=(1, 2))  # [B]
    return model, x, t, tj, y, l0, l1

  def test_fields_hand_computed(self):
    model, x, t, tj, y, l0, l1 = self._problem()
    out = SobolevLoss(order=1, weights=[0.5, 2.0])(model, x, targets=(t, tj))
    self.assertIsInstance(out, sobolev_loss.LossOutput)
    self.assertEqual(out._fields[:2], ("total", "terms"))
    total, terms = out[:2]
    self.assertAllClose(terms["order_0"], l0.mean())
    self.assertAllClose(terms["order_1"], l1.mean())
    self.assertAllClose(out.weighted_terms["order_0"], 0.5 * l0.mean())
    self.assertAllClose(out.weighted_terms["order_1"], 2.0 * l1.mean())
    self.assertAllClose(total, 0.5 * l0.mean() + 2.0 * l1.mean())
    self.assertAllClose(out.per_example_terms["order_0"], l0)
    self.assertAllClose(out.per_example_terms["order_1"], l1)
    self.assertAllClose(out.per_example, 0.5 * l0 + 2.0 * l1)
    self.assertAllClose(tf.reduce_mean(out.per_example), total)
    self.assertAllClose(out.values, y)

  def test_sample_weights_hand_computed(self):
    model, x, t, tj, _, l0, l1 = self._problem()
    s = np.array([0.5, 1.0, 0.0, 2.0, 3.0])
    loss = SobolevLoss(order=1, weights=[1.0, 3.0])
    out = loss(model, x, targets=(t, tj), sample_weights=s)
    self.assertAllClose(out.terms["order_0"], np.sum(s * l0) / np.sum(s))
    self.assertAllClose(out.terms["order_1"], np.sum(s * l1) / np.sum(s))
    self.assertAllClose(out.total, np.sum(s * (l0 + 3.0 * l1)) / np.sum(s))
    # per_example carries no sample weights, so without masks the total is
    # their normalised weighted mean; scaling the weights changes nothing.
    self.assertAllClose(out.per_example, l0 + 3.0 * l1)
    self.assertAllClose(
        out.total, np.sum(s * out.per_example.numpy()) / np.sum(s))
    self.assertAllClose(
        loss(model, x, targets=(t, tj), sample_weights=7.0 * s).total,
        out.total)
    # Unit weights give the unweighted loss.
    self.assertAllClose(
        loss(model, x, targets=(t, tj), sample_weights=np.ones(5)).total,
        loss(model, x, targets=(t, tj)).total)

  def test_per_order_sample_weights(self):
    model, x, t, tj, _, l0, l1 = self._problem()
    s1 = np.array([1.0, 0.0, 2.0, 0.0, 1.0])
    out = SobolevLoss(order=1)(model, x, targets=(t, tj),
                               sample_weights=[None, s1])
    self.assertAllClose(out.terms["order_0"], l0.mean())
    self.assertAllClose(out.terms["order_1"], np.sum(s1 * l1) / np.sum(s1))

  def test_masks_hand_computed_and_against_the_unmasked_loss(self):
    model, x, t, tj, _, l0, l1 = self._problem()
    has_grad = np.array([True, False, True, True, False])
    tj_missing = tj.copy()
    tj_missing[~has_grad] = np.nan  # Missing derivative targets.
    loss = SobolevLoss(order=1, weights=[1.0, 2.0])
    out = loss(model, x, targets=(t, tj_missing), masks=[None, has_grad])
    self.assertAllClose(out.terms["order_0"], l0.mean())
    self.assertAllClose(out.terms["order_1"], l1[has_grad].mean())
    self.assertAllClose(out.per_example_terms["order_1"],
                        np.where(has_grad, l1, 0.0))
    self.assertAllClose(out.per_example, l0 + 2.0 * np.where(has_grad, l1,
                                                              0.0))
    # The order-1 term is the unmasked loss on the examples that have
    # derivative targets, the order-0 term the unmasked loss on all.
    subset = loss(model, x[has_grad], targets=(t[has_grad], tj[has_grad]))
    full = loss(model, x, targets=(t, tj))
    self.assertAllClose(out.terms["order_1"], subset.terms["order_1"])
    self.assertAllClose(out.terms["order_0"], full.terms["order_0"])
    # An all-True mask is no mask.
    self.assertAllClose(
        loss(model, x, targets=(t, tj), masks=[None, np.ones(5, bool)]).total,
        full.total)

  def test_masked_nan_targets_give_finite_gradients(self):
    model, x, t, tj, _, _, _ = self._problem()
    has_grad = tf.constant([True, False, True, True, False])
    tj_missing = tj.copy()
    tj_missing[1] = np.nan
    tj_missing[4] = np.inf
    loss = SobolevLoss(order=1)
    with tf.GradientTape() as tape:
      total = loss(model, x, targets=(t, tj_missing),
                   masks=[None, has_grad]).total
    grads = tape.gradient(total, [model.w, model.b])
    with tf.GradientTape() as tape:
      keep = has_grad.numpy()
      sub = loss(model, x[keep], targets=(t[keep], tj[keep]))
      # Order 0 over all examples, order 1 over the kept ones.
      expected = (loss(model, x, targets=(t, tj)).terms["order_0"] +
                  sub.terms["order_1"])
    for g, e in zip(grads, tape.gradient(expected, [model.w, model.b])):
      self.assertTrue(np.all(np.isfinite(g.numpy())))
      self.assertAllClose(g, e)

  def test_mask_with_no_examples_gives_zero_term(self):
    model, x, t, tj, _, l0, _ = self._problem()
    out = SobolevLoss(order=1)(model, x, targets=(t, tj),
                               masks=[None, np.zeros(5, bool)])
    self.assertAllClose(out.terms["order_1"], 0.0)
    self.assertAllClose(out.total, l0.mean())

  def test_masks_and_weights_combine(self):
    model, x, t, tj, _, l0, l1 = self._problem()
    s = np.array([0.5, 1.0, 2.0, 2.0, 3.0])
    m = np.array([True, True, False, True, False])
    out = SobolevLoss(order=1)(model, x, targets=(t, tj), sample_weights=s,
                               masks=[m, None])
    self.assertAllClose(out.terms["order_0"],
                        np.sum(s * m * l0) / np.sum(s * m))
    self.assertAllClose(out.terms["order_1"], np.sum(s * l1) / np.sum(s))

  @parameterized.parameters(1, 3)
  def test_stochastic_per_example_is_mean_over_projections(self, draws):
    model = _linear(3, 4)
    x = _rng(1).normal(size=(5, 3))
    t, tj = _rng(2).normal(size=(5, 4)), _rng(3).normal(size=(5, 4, 3))
    v1 = sampling.unit_sphere([draws * 5], 4, tf.float64, seed=[1, 2]).numpy()
    loss = SobolevLoss(order=1, mode="stochastic", num_projections=draws)
    m = np.array([True, False, True, True, True])
    out = loss(model, x, targets=(t, tj), vectors=(v1, None),
               masks=[None, m])
    rows = np.tile(np.arange(5), draws)
    err = (np.einsum("no,do->nd", v1, model.w.numpy()) -
           np.einsum("no,nod->nd", v1, tj[rows]))
    per_example = 4.0 * np.sum(err**2, 1).reshape(draws, 5).mean(0)
    self.assertAllClose(out.per_example_terms["order_1"],
                        np.where(m, per_example, 0.0))
    self.assertAllClose(out.terms["order_1"], per_example[m].mean())

  def test_xla_weights_and_masks_match_eager(self):
    model, x, t, tj, _, _, _ = self._problem()
    loss = SobolevLoss(order=1, mode="stochastic", seed=0)
    v1 = sampling.unit_sphere([5], 2, tf.float64, seed=3)
    s = tf.constant([0.5, 1.0, 0.0, 2.0, 3.0], tf.float64)
    m = tf.constant([True, False, True, True, False])
    fn = lambda: loss(model, x, targets=(t, tj), vectors=(v1, None),
                      sample_weights=s, masks=[None, m])
    eager, xla = fn(), tf.function(fn, jit_compile=True)()
    self.assertAllClose(xla.total, eager.total)
    self.assertAllClose(xla.per_example, eager.per_example)

  def test_compiled_weights_and_masks_match_eager(self):
    model, x, t, tj, _, _, _ = self._problem()
    loss = SobolevLoss(order=1)
    s = tf.constant([0.5, 1.0, 0.0, 2.0, 3.0], tf.float64)
    m = tf.constant([True, False, True, True, False])
    fn = lambda x, s, m: loss(model, x, targets=(t, tj), sample_weights=s,
                              masks=[None, m])
    signature = [tf.TensorSpec([None, 3], tf.float64),
                 tf.TensorSpec([None], tf.float64),
                 tf.TensorSpec([None], tf.bool)]
    compiled = tf.function(fn, input_signature=signature)
    eager, graph = fn(tf.constant(x), s, m), compiled(tf.constant(x), s, m)
    self.assertAllClose(graph.total, eager.total)
    self.assertAllClose(graph.per_example, eager.per_example)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "sample_weights` must be >= 0"):
      compiled(tf.constant(x), -s, m)

  def test_user_losses_scalar_or_per_example(self):
    model, x, t, tj, _, l0, l1 = self._problem()
    scalar = lambda p, q: tf.reduce_mean(tf.reduce_sum((p - q)**2, axis=1))
    per_example = lambda p, q: tf.reduce_sum(
        tf.reshape((p - q)**2, [tf.shape(p)[0], -1]), axis=1)
    out = SobolevLoss(order=1, loss_fns=[scalar, "l2"])(
        model, x, targets=(t, tj))
    self.assertIsNone(out.per_example)
    self.assertEqual(list(out.per_example_terms), ["order_1"])
    self.assertAllClose(out.terms["order_0"], l0.mean())
    with self.assertRaisesRegex(ValueError,
                                r"`loss_fns\[0\]` returns a scalar"):
      SobolevLoss(order=1, loss_fns=[scalar, "l2"])(
          model, x, targets=(t, tj), sample_weights=np.ones(5))
    out = SobolevLoss(order=1, loss_fns=per_example)(
        model, x, targets=(t, tj), masks=[None, np.arange(5) < 2])
    self.assertAllClose(out.terms["order_1"], l1[:2].mean())
    self.assertAllClose(out.per_example_terms["order_0"], l0)
    bad = lambda p, q: tf.reduce_sum((p - q)**2, axis=0)
    with self.assertRaisesRegex(ValueError, r"`loss_fns\[0\]` returned 2 per"):
      SobolevLoss(order=0, loss_fns=bad)(model, x, targets=(t,))

  @parameterized.named_parameters(
      ("negative", dict(sample_weights=-np.ones(5)), ValueError,
       "`sample_weights` must be >= 0"),
      ("nan", dict(sample_weights=np.full(5, np.nan)), ValueError,
       "`sample_weights` contains NaN"),
      ("batch", dict(sample_weights=np.ones(4)), ValueError,
       "`sample_weights` has batch size 4 but `x` has 5"),
      ("rank", dict(sample_weights=np.ones((5, 1))), ValueError,
       r"`sample_weights` must have shape \[B\]"),
      ("per_order_length", dict(sample_weights=[None, None, None]),
       ValueError, "must have 2 entries"),
      ("mask_type", dict(masks=[None, np.ones(5)]), TypeError,
       r"`masks\[1\]` must be a bool tensor"),
      ("mask_length", dict(masks=[None]), ValueError,
       "`masks` must have 2 entries"),
      ("mask_not_sequence", dict(masks=np.ones(5, bool)), TypeError,
       "`masks` must be a sequence of 2 entries"),
      ("mask_batch", dict(masks=[None, np.ones(3, bool)]), ValueError,
       r"`masks\[1\]` has batch size 3"),
  )
  def test_bad_weights_and_masks(self, kwargs, error, regex):
    model, x, t, tj, _, _, _ = self._problem()
    with self.assertRaisesRegex(error, regex):
      SobolevLoss(order=1)(model, x, targets=(t, tj), **kwargs)


class InputShapeTest(tf.test.TestCase, parameterized.TestCase):
  """Inputs of any shape `[B, ...]`, and dict inputs."""

  def test_help_shows_the_call_docstring(self):
    self.assertIn("LossOutput", SobolevLoss.__call__.__doc__)
    self.assertIn("sample_weights", SobolevLoss.__call__.__doc__)
    self.assertIn("wrt", str(inspect.signature(SobolevLoss.__call__)))

  @parameterized.named_parameters(
      ("exact_1", dict(order=1)),
      ("exact_2", dict(order=2)),
      ("stochastic_1", dict(order=1, mode="stochastic", seed=3)),
      ("stochastic_2", dict(order=2, mode="stochastic", seed=3,
                            num_projections=2)),
      ("strided_conv", dict(order=1, mode="stochastic", seed=3,
                            loss_fns=["l2", "l2_norm"]), True),
  )
  def test_images_match_the_flattened_path(self, kwargs, strided=False):
    model, teacher = _conv_net(0, strided), _conv_net(1, strided)
    x = tf.random.stateless_normal([3, 4, 4, 2], seed=[1, 2])
    flat_x = tf.reshape(x, [3, 32])
    flat = lambda net: lambda z: net(tf.reshape(z, [-1, 4, 4, 2]))

    def loss_and_grads(net, inputs, target):
      with tf.GradientTape() as tape:
        out = SobolevLoss(**kwargs)(net, inputs, target_fn=target)
      return out, tape.gradient(out.total, model.variables)

    image, grads = loss_and_grads(model, x, teacher)
    flattened, flat_grads = loss_and_grads(flat(model), flat_x, flat(teacher))
    self.assertAllClose(image.total, flattened.total, rtol=1e-5)
    self.assertAllClose(image.per_example, flattened.per_example, rtol=1e-5)
    self.assertGreater(float(image.terms[f"order_{kwargs['order']}"]), 0.0)
    for a, b in zip(grads, flat_grads):
      self.assertAllClose(a, b, rtol=1e-4, atol=1e-6)

  @parameterized.parameters("exact", "stochastic")
  def test_image_targets_are_image_shaped(self, mode):
    model, teacher = _conv_net(0), _conv_net(1)
    x = tf.random.stateless_normal([3, 4, 4, 2], seed=[3, 4])
    y, jac, hess = derivatives.value_and_hessian(teacher, x)
    self.assertEqual(jac.shape, (3, 3, 4, 4, 2))
    self.assertEqual(hess.shape, (3, 3, 4, 4, 2, 4, 4, 2))
    seed = 5 if mode == "stochastic" else None
    by_tensors = SobolevLoss(order=2, mode=mode, seed=seed)(
        model, x, targets=(y, jac, hess))
    by_fn = SobolevLoss(order=2, mode=mode, seed=seed)(
        model, x, target_fn=teacher)
    self.assertAllClose(by_tensors.total, by_fn.total, rtol=1e-5)
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` must have rank 5"):
      SobolevLoss(order=1)(model, x, targets=(y, tf.reshape(jac, [3, 3, 32])))

  @parameterized.parameters("exact", "stochastic")
  def test_dict_inputs_with_wrt(self, mode):
    model, teacher = _conv_net(0), _conv_net(1)
    image = tf.random.stateless_normal([3, 4, 4, 2], seed=[5, 6])
    scale = tf.constant([[1.0], [2.0], [0.5]])
    inputs = {"image": image, "scale": scale}
    on_dict = lambda net: lambda d: net(d["image"]) * d["scale"]
    kwargs = dict(mode=mode, seed=1, num_projections=2) if (
        mode == "stochastic") else {}
    out = SobolevLoss(order=1, **kwargs)(
        on_dict(model), inputs, target_fn=on_dict(teacher), wrt="image")
    closed = lambda net: lambda z: net(z) * _tile_like(scale, z)
    expected = SobolevLoss(order=1, **kwargs)(
        closed(model), image, target_fn=closed(teacher))
    self.assertAllClose(out.total, expected.total, rtol=1e-5)
    # Tuples take an index.
    on_tuple = lambda net: lambda d: net(d[0]) * d[1]
    out = SobolevLoss(order=1, **kwargs)(
        on_tuple(model), (image, scale), target_fn=on_tuple(teacher), wrt=0)
    self.assertAllClose(out.total, expected.total, rtol=1e-5)

  @parameterized.parameters("exact", "stochastic")
  def test_nested_inputs_with_a_path(self, mode):
    model, teacher = _conv_net(0), _conv_net(1)
    image = tf.random.stateless_normal([3, 4, 4, 2], seed=[5, 7])
    scale = tf.constant([[1.0], [2.0], [0.5]])
    pair = collections.namedtuple("Pair", ["image", "scale"])
    inputs = {"obs": pair(image, scale), "step": 3}
    on_nested = lambda net: lambda d: net(d["obs"].image) * d["obs"].scale
    kwargs = dict(mode=mode, seed=2, num_projections=2) if (
        mode == "stochastic") else {}
    out = SobolevLoss(order=1, **kwargs)(
        on_nested(model), inputs, target_fn=on_nested(teacher),
        wrt=("obs", "image"))
    closed = lambda net: lambda z: net(z) * _tile_like(scale, z)
    expected = SobolevLoss(order=1, **kwargs)(
        closed(model), image, target_fn=closed(teacher))
    self.assertAllClose(out.total, expected.total, rtol=1e-5)
    with self.assertRaisesRegex(TypeError, r"selects `x\['obs'\]`, itself a "
                                r"Pair: give the path to one tensor"):
      SobolevLoss(order=1)(on_nested(model), inputs,
                           target_fn=on_nested(teacher), wrt="obs")
    with self.assertRaisesRegex(ValueError, "must be an index into it"):
      SobolevLoss(order=1)(on_nested(model), inputs,
                           target_fn=on_nested(teacher), wrt=("obs", 2))

  def test_dict_inputs_without_wrt(self):
    model = _conv_net(0)
    inputs = {"image": tf.zeros([2, 4, 4, 2]), "scale": tf.ones([2, 1])}
    fn = lambda d: model(d["image"])
    with self.assertRaisesRegex(TypeError, r"pass `wrt=`.*wrt='image'"):
      SobolevLoss(order=1)(fn, inputs, target_fn=fn)
    with self.assertRaisesRegex(ValueError, "'images' is not a key"):
      SobolevLoss(order=1)(fn, inputs, target_fn=fn, wrt="images")
    with self.assertRaisesRegex(TypeError, r"pass `wrt=` the index"):
      SobolevLoss(order=1)(fn, (inputs["image"], inputs["scale"]),
                           target_fn=fn)
    with self.assertRaisesRegex(TypeError, "only for inputs given as a dict"):
      SobolevLoss(order=1)(model, inputs["image"], target_fn=model,
                           wrt="image")


def _tile_like(t, z):
  """Repeats `t [B, ...]` to the batch of `z` (projection-major tiling)."""
  return tf.tile(t, [tf.shape(z)[0] // tf.shape(t)[0], 1])


class ProjectionPathTest(tf.test.TestCase, parameterized.TestCase):
  """The loss uses the public `derivatives` projections; projected targets."""

  @parameterized.parameters(1, 2)
  def test_pre_projected_targets(self, order):
    model, teacher = _quadratic(3, 4, seed=0), _quadratic(3, 4, seed=6)
    x = tf.constant(_rng(1).normal(size=(5, 3)))
    draws = 2
    v1 = sampling.unit_sphere([draws * 5], 4, tf.float64, seed=[7, 1])
    v2 = (sampling.unit_sphere([draws * 5], 3, tf.float64, seed=[7, 2])
          if order == 2 else None)
    x_rep = tf.tile(x, [draws, 1])
    if order == 1:
      projections = [derivatives.vjp(teacher, x_rep, v1)]
    else:
      _, p1, p2 = derivatives.value_and_hvp(teacher, x_rep, v1, v2)
      projections = [p1, p2]
    loss = SobolevLoss(order=order, mode="stochastic", num_projections=draws)
    pre = loss(model, x, targets=[teacher(x)] + projections,
               vectors=(v1, v2), projected_targets=True)
    by_fn = loss(model, x, target_fn=teacher, vectors=(v1, v2))
    self.assertAllClose(pre.total, by_fn.total)
    self.assertAllClose(pre.per_example, by_fn.per_example)
    # And equal to the hand-made loss on `derivatives.vjp` of both models.
    model_p1 = derivatives.vjp(model, x_rep, v1)
    err = tf.reduce_sum((model_p1 - projections[0])**2, axis=1)
    self.assertAllClose(pre.per_example_terms["order_1"],
                        4.0 * tf.reduce_mean(tf.reshape(err, [draws, 5]), 0))

  def test_loss_calls_the_public_projections(self):
    model, teacher = _quadratic(3, 4, seed=0), _quadratic(3, 4, seed=6)
    x = tf.constant(_rng(1).normal(size=(5, 3)))
    calls = []
    original = derivatives.value_and_hvp

    def counting(*args, **kwargs):
      calls.append(args[0])
      return original(*args, **kwargs)

    with mock.patch.object(derivatives, "value_and_hvp", counting):
      SobolevLoss(order=2, mode="stochastic", seed=0)(model, x,
                                                      target_fn=teacher)
    self.assertEqual(calls, [model, teacher])

  @parameterized.named_parameters(
      ("exact", dict(), dict(projected_targets=True),
       "`projected_targets` applies to mode='stochastic'"),
      ("no_vectors", dict(mode="stochastic"), dict(projected_targets=True),
       "needs `targets` .* and the `vectors`"),
  )
  def test_projected_targets_errors(self, init, call, regex):
    model = _linear(3, 2)
    x = np.zeros((4, 3))
    with self.assertRaisesRegex(ValueError, regex):
      SobolevLoss(order=1, **init)(
          model, x, targets=(np.zeros((4, 2)), np.zeros((4, 3))), **call)

  def test_projected_target_shape(self):
    model = _linear(3, 2)
    x = np.zeros((4, 3))
    v1 = np.ones((8, 2)) / np.sqrt(2.0)
    loss = SobolevLoss(order=1, mode="stochastic", num_projections=2)
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` has batch size 4"
                                r" but num_projections \* batch"):
      loss(model, x, targets=(np.zeros((4, 2)), np.zeros((4, 3))),
           vectors=(v1, None), projected_targets=True)
    with self.assertRaisesRegex(ValueError, r"`targets\[1\]` must have rank 2"):
      loss(model, x, targets=(np.zeros((4, 2)), np.zeros((8, 2, 3))),
           vectors=(v1, None), projected_targets=True)


class ArgumentsThatDoNotApplyTest(tf.test.TestCase, parameterized.TestCase):
  """Every option given where it does not apply raises (issue 14, Why)."""

  @parameterized.named_parameters(
      ("unbiased_scaling_exact", dict(unbiased_scaling=True),
       "`unbiased_scaling` applies to mode='stochastic' only"),
      ("unbiased_scaling_false_exact", dict(unbiased_scaling=False),
       "`unbiased_scaling` applies to mode='stochastic' only"),
      ("num_projections_exact", dict(num_projections=4),
       "`num_projections` applies to mode='stochastic' only"),
      ("seed_exact", dict(seed=0),
       "`seed` applies to mode='stochastic' only"),
      ("jacobian_mode_order2", dict(order=2, jacobian_mode="reverse"),
       "`jacobian_mode` applies to mode='exact' with order=1 only"),
      ("jacobian_mode_order0", dict(order=0, jacobian_mode="auto"),
       "`jacobian_mode` applies to mode='exact' with order=1 only"),
      ("jacobian_mode_stochastic", dict(mode="stochastic",
                                        jacobian_mode="forward"),
       "`jacobian_mode` applies to mode='exact' with order=1 only"),
      ("check_curvature_order1", dict(check_curvature=False),
       "`check_curvature` applies to order=2 only"),
      ("stochastic_order0", dict(order=0, mode="stochastic"),
       "order=0 has none"),
      ("unbiased_scaling_l1", dict(mode="stochastic", loss_fns=["l2", "l1"],
                                   unbiased_scaling=True),
       r"unbiased_scaling=True is defined for the 'l2' loss only"),
  )
  def test_raises(self, kwargs, regex):
    kwargs.setdefault("order", 1)
    with self.assertRaisesRegex(ValueError, regex):
      SobolevLoss(**kwargs)

  def test_seed_type(self):
    with self.assertRaisesRegex(TypeError, "`seed` must be an int or None"):
      SobolevLoss(mode="stochastic", seed="abc")
    with self.assertRaisesRegex(TypeError, "`unbiased_scaling` must be a bool"):
      SobolevLoss(mode="stochastic", unbiased_scaling="yes")

  def test_unbiased_scaling_applies_to_l2_orders_only(self):
    model = _linear(3, 4)
    x = _rng(1).normal(size=(5, 3))
    t, tj = _rng(2).normal(size=(5, 4)), _rng(3).normal(size=(5, 4, 3))
    v1 = sampling.unit_sphere([5], 4, dtype=tf.float64, seed=[1, 2])
    run = lambda **kw: SobolevLoss(order=1, mode="stochastic", **kw)(
        model, x, targets=(t, tj), vectors=(v1, None)).terms["order_1"]
    self.assertEqual(SobolevLoss(mode="stochastic").unbiased_scaling,
                     (False, True))
    self.assertEqual(SobolevLoss(mode="stochastic",
                                 loss_fns="l1").unbiased_scaling,
                     (False, False))
    # Default: L2 scaled by O = 4; L1 not scaled (no unbiasedness to keep).
    self.assertAllClose(run(), 4.0 * run(unbiased_scaling=False))
    self.assertAllClose(run(loss_fns="l1"),
                        run(loss_fns="l1", unbiased_scaling=False))
    proj = np.einsum("bo,do->bd", v1, model.w.numpy()) - np.einsum(
        "bo,bod->bd", v1, tj)
    self.assertAllClose(run(loss_fns="l1"), np.mean(np.sum(np.abs(proj), 1)))


class _Doubled(snt.nets.MLP):
  """An MLP subclass whose __call__ is not its layers' computation."""

  def __call__(self, inputs, is_training=None):
    return 2.0 * super().__call__(inputs) + tf.reduce_sum(inputs**2, axis=1,
                                                          keepdims=True)


class _Plain(snt.nets.MLP):
  """An MLP subclass that does not override __call__."""


class ForwardModeSelectionTest(tf.test.TestCase):

  def _data(self):
    x = tf.constant(_rng(1).normal(size=(4, 2)), tf.float32)
    targets = (tf.zeros([4, 3]), tf.zeros([4, 3, 2]))
    return x, targets

  def test_subclass_overriding_call_gets_its_true_jacobian(self):
    tf.random.set_seed(0)
    model = _Doubled([8, 3], activation=tf.nn.tanh)
    x, targets = self._data()
    with mock.patch.object(forward_mode, "mlp_value_and_jacobian",
                           side_effect=AssertionError("forward mode used")):
      auto = SobolevLoss(order=1)(model, x, targets=targets)
    reverse = SobolevLoss(order=1, jacobian_mode="reverse")(
        model, x, targets=targets)
    self.assertAllClose(auto.total, reverse.total)
    _, jac = derivatives.value_and_jacobian(model, x)
    self.assertAllClose(auto.terms["order_1"],
                        tf.reduce_mean(tf.reduce_sum(jac**2, [1, 2])))
    with self.assertRaisesRegex(ValueError, "_Doubled.* overrides __call__"):
      SobolevLoss(order=1, jacobian_mode="forward")(model, x, targets=targets)

  def test_auto_uses_forward_mode_for_the_exact_type_only(self):
    tf.random.set_seed(0)
    x, targets = self._data()
    plain = _Plain([8, 3], activation=tf.nn.tanh)
    with mock.patch.object(forward_mode, "mlp_value_and_jacobian",
                           side_effect=AssertionError("forward mode used")):
      auto = SobolevLoss(order=1)(plain, x, targets=targets)
    # Explicit opt-in accepts the subclass (it does not override __call__).
    forward = SobolevLoss(order=1, jacobian_mode="forward")(
        plain, x, targets=targets)
    self.assertAllClose(auto.total, forward.total)
    mlp = snt.nets.MLP([8, 3], activation=tf.nn.tanh)
    calls = []
    original = forward_mode.mlp_value_and_jacobian

    def counting(*args, **kwargs):
      calls.append(args[0])
      return original(*args, **kwargs)

    with mock.patch.object(forward_mode, "mlp_value_and_jacobian", counting):
      SobolevLoss(order=1)(mlp, x, targets=targets)
    self.assertEqual(calls, [mlp])


class CheckedInputsTest(tf.test.TestCase, parameterized.TestCase):
  """Clear errors instead of raw TensorFlow errors or silent wrong numbers."""

  def test_float64_target_tensor_with_float32_model(self):
    model = snt.nets.MLP([4, 2])
    x = tf.zeros([3, 2])
    with self.assertRaisesRegex(
        TypeError, r"`targets\[0\]` has dtype float64 but the model computes "
        "in float32"):
      SobolevLoss(order=0)(model, x, targets=(tf.zeros([3, 2], tf.float64),))

  def test_integer_targets(self):
    model = snt.nets.MLP([4, 2])
    with self.assertRaisesRegex(TypeError, r"`targets\[0\]` has dtype int32 "
                                "but the model computes in float32"):
      SobolevLoss(order=0)(model, tf.zeros([3, 2]),
                           targets=(tf.zeros([3, 2], tf.int32),))
    with self.assertRaisesRegex(TypeError, r"`targets\[0\]` has dtype int64 "
                                "but the model computes in float32"):
      SobolevLoss(order=0)(model, tf.zeros([3, 2]),
                           targets=(np.zeros([3, 2], np.int64),))

  def test_numpy_float64_targets_are_converted(self):
    model = snt.nets.MLP([4, 2])
    x = tf.zeros([3, 2])
    a = SobolevLoss(order=0)(model, x, targets=(np.ones([3, 2]),)).total
    b = SobolevLoss(order=0)(model, x, targets=(tf.ones([3, 2]),)).total
    self.assertEqual(a.dtype, tf.float32)
    self.assertAllClose(a, b)

  def test_x_of_another_dtype_than_the_weights_names_x(self):
    model = snt.nets.MLP([4, 1])
    model(tf.zeros([1, 2]))  # float32 weights.
    x = tf.zeros([3, 2], tf.float64)
    message = (r"^`x` has dtype float64 but the model's weights compute in "
               r"float32: give `x` \(and the targets\) as float32, e\.g\. "
               r"tf\.cast\(x, tf\.float32\), or build the model in "
               r"float64\.$")
    for targets in ((tf.zeros([3, 1], tf.float32),
                     tf.zeros([3, 1, 2], tf.float32)),
                    (tf.zeros([3, 1], tf.float64),
                     tf.zeros([3, 1, 2], tf.float64)),
                    (np.zeros([3, 1]), np.zeros([3, 1, 2]))):
      with self.assertRaisesRegex(TypeError, message):
        SobolevLoss(order=1)(model, x, targets=targets)

  def test_keras_layer_of_another_dtype_names_x(self):
    import keras  # pylint: disable=g-import-not-at-top
    layer = keras.layers.Dense(1, dtype="float64")
    with self.assertRaisesRegex(TypeError, "^`x` has dtype float32 but the "
                                "model's weights compute in float64"):
      SobolevLoss(order=0)(layer, tf.zeros([3, 2]),
                           targets=(tf.zeros([3, 1]),))

  def test_float64_model_and_x_train(self):
    model = snt.nets.MLP([4, 1], activation=tf.tanh)
    x = tf.ones([3, 2], tf.float64)
    out = SobolevLoss(order=1)(model, x, targets=(np.zeros([3, 1]),
                                                  np.zeros([3, 1, 2])))
    self.assertEqual(out.total.dtype, tf.float64)

  def test_numpy_targets_that_overflow_float32_are_named(self):
    model = snt.nets.MLP([4, 1])
    with self.assertRaisesRegex(
        ValueError, r"^`targets\[0\]` overflows float32: it holds magnitudes "
        r"up to 1e\+39, above float32's largest finite value 3\.4e\+38, so "
        r"they would become Inf\. Scale `targets\[0\]` down or compute in "
        r"a wider dtype \(`x` and the model in float64\)\.$"):
      SobolevLoss(order=1)(model, tf.zeros([3, 2]),
                           targets=(np.full([3, 1], 1e39),
                                    np.zeros([3, 1, 2])))
    with self.assertRaisesRegex(ValueError, r"^`targets\[1\]` overflows "
                                "float32"):
      SobolevLoss(order=1)(model, tf.zeros([3, 2]),
                           targets=(np.zeros([3, 1]),
                                    np.full([3, 1, 2], -4e38)))
    # Infinity given as such is not an overflow.
    with self.assertRaisesRegex(ValueError, r"^`targets\[0\]` contains NaN "
                                "or Inf values"):
      SobolevLoss(order=1)(model, tf.zeros([3, 2]),
                           targets=(np.full([3, 1], np.inf),
                                    np.zeros([3, 1, 2])))

  @parameterized.named_parameters(
      ("gradient_shorthand", (4, 3), (4, 2)),
      ("full_jacobian", (4, 3), (4, 1, 2)),
  )
  def test_values_of_the_wrong_width_blame_targets_0(self, values, jacobians):
    model = snt.nets.MLP([4, 1])
    with self.assertRaisesRegex(
        ValueError, r"^`targets\[0\]` \(the values\) has width 3 \(shape "
        r"\(4, 3\)\) but the model's output dimension is 1: give values of "
        r"shape \[B, 1\] \(or \[B\]\)\.$"):
      SobolevLoss(order=1)(model, tf.zeros([4, 2]),
                           targets=(np.zeros(values), np.zeros(jacobians)))

  def test_target_fn_of_the_wrong_width_is_named(self):
    model = snt.nets.MLP([4, 1])
    with self.assertRaisesRegex(ValueError, "^`target_fn`'s output has width "
                                "2"):
      SobolevLoss(order=1)(model, tf.zeros([4, 2]),
                           target_fn=lambda z: tf.concat([z, z], 1)[:, :2])

  def test_model_returning_float64_for_float32_inputs(self):
    model = lambda x: tf.cast(x, tf.float64) ** 2
    with self.assertRaisesRegex(TypeError, "The model returned dtype float64 "
                                "for inputs `x` of dtype float32"):
      SobolevLoss(order=1)(model, tf.ones([3, 2]),
                           targets=(np.zeros([3, 2]), np.zeros([3, 2, 2])))

  @parameterized.named_parameters(
      ("v1_rows", (np.ones((3, 4)), None),
       r"`vectors\[0\] \(v1\)` has batch size 3 but num_projections \* batch"),
      ("v1_out_dim", (np.ones((5, 2)), None),
       r"`v1` must have shape \[4\] or \[batch\] \+ \[4\]"),
      ("v1_rank", (np.ones(4), None),
       r"`vectors\[0\]` \(v1\) must have shape \[P\*B, O\]"),
      ("v2_for_order1", (np.ones((5, 4)), np.ones((5, 3))),
       r"`vectors\[1\]` \(v2\) is for order 2"),
      ("not_a_pair", np.ones((5, 4)), "`vectors` must be a pair"),
      ("v1_dtype", (tf.ones([5, 4], tf.float32), None),
       r"`vectors\[0\] \(v1\)` has dtype float32 but the model computes in "
       "float64"),
  )
  def test_bad_vectors(self, vectors, regex):
    model = _linear(3, 4)
    x = _rng(1).normal(size=(5, 3))
    loss = SobolevLoss(order=1, mode="stochastic", unbiased_scaling=False)
    with self.assertRaisesRegex((ValueError, TypeError), regex):
      loss(model, x, target_fn=model, vectors=vectors)

  def test_bad_v2(self):
    model = _quadratic(3, 4)
    x = _rng(1).normal(size=(5, 3))
    loss = SobolevLoss(order=2, mode="stochastic")
    v1 = np.ones((5, 4)) / 2.0
    with self.assertRaisesRegex(ValueError, r"`vectors\[1\]` \(v2\) must have "
                                r"shape \[P\*B\] \+ \[3\]"):
      loss(model, x, target_fn=model, vectors=(v1, np.ones((5, 2))))
    with self.assertRaisesRegex(ValueError, "must give v2 for order 2"):
      loss(model, x, target_fn=model, vectors=(v1, None))

  def test_nan_in_x(self):
    model = _linear(3, 2)
    x = _rng(1).normal(size=(4, 3))
    x[2, 1] = np.nan
    targets = (np.zeros((4, 2)), np.zeros((4, 2, 3)))
    with self.assertRaisesRegex(ValueError, "`x` contains NaN or Inf"):
      SobolevLoss(order=1)(model, x, targets=targets)
    fn = tf.function(lambda x: SobolevLoss(order=1)(model, x,
                                                   targets=targets).total)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "`x` contains NaN or Inf"):
      fn(tf.constant(x))

  def test_empty_batch(self):
    model = _linear(3, 2)
    with self.assertRaisesRegex(ValueError, "`x` has batch size 0"):
      SobolevLoss(order=0)(model, np.zeros((0, 3)),
                           targets=(np.zeros((0, 2)),))
    fn = tf.function(
        lambda x, t: SobolevLoss(order=0)(model, x, targets=(t,)).total,
        input_signature=[tf.TensorSpec([None, 3], tf.float64),
                         tf.TensorSpec([None, 2], tf.float64)])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "`x` has batch size 0"):
      fn(np.zeros((0, 3)), np.zeros((0, 2)))

  @parameterized.parameters(0, 1)
  def test_batch_one_targets_do_not_broadcast_in_tf_function(self, order):
    # Before: inside tf.function with an unknown batch, targets of batch 1
    # broadcast against x of batch 4 (loss 17.02 instead of 10.21).
    model = _linear(3, 2)
    loss = SobolevLoss(order=order)
    signature = [tf.TensorSpec([None, 3], tf.float64)] + [
        tf.TensorSpec([None, 2] + [3] * j, tf.float64)
        for j in range(order + 1)]
    fn = tf.function(lambda x, *t: loss(model, x, targets=t).total,
                     input_signature=signature)
    x = _rng(1).normal(size=(4, 3))
    targets = [_rng(2).normal(size=[4, 2] + [3] * j) for j in
               range(order + 1)]
    self.assertAllClose(fn(x, *targets),
                        loss(model, x, targets=targets).total)
    bad = list(targets)
    bad[order] = bad[order][:1]
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                rf"`targets\[{order}\]` and `x` must have the "
                                "same batch size"):
      fn(x, *bad)

  def test_model_output_batch_is_checked(self):
    model = lambda x: tf.reduce_sum(x, axis=0, keepdims=True)
    with self.assertRaisesRegex(ValueError, "the model's output` has batch "
                                "size 1 but `x` has 4"):
      SobolevLoss(order=0)(model, np.ones((4, 3)), targets=(np.ones((4, 3)),))

  def test_integer_x(self):
    with self.assertRaisesRegex(TypeError, "`x` must be a floating point"):
      SobolevLoss(order=0)(_linear(3, 2), np.ones((4, 3), np.int32),
                           targets=(np.ones((4, 2)),))


if __name__ == "__main__":
  tf.test.main()
