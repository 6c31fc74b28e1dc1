"""Tests for sobolev.sobolev_loss.SobolevLoss against hand computations."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev import derivatives
from sobolev import sampling
from sobolev import sobolev_loss

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


if __name__ == "__main__":
  tf.test.main()
