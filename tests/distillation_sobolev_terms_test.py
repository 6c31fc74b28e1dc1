"""Tests of the Sobolev term variants (`distillation.sobolev_terms`) by hand.

The toy policies are linear softmax policies on image-shaped inputs
`[B, 2, 2, 1]` (D = 4) with A = 3 actions, whose log-policy Jacobian is
known in closed form: for `logits = x W + b`,

    d log pi_a / d x_d = W[d, a] - sum_c pi_c W[d, c].
"""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from distillation import distill
from distillation import sobolev_terms

A = 3


class LinearPolicy(tf.Module):
  """log softmax(flatten(x) W + b)."""

  def __init__(self, w, b):
    super().__init__()
    self.w = tf.Variable(w, dtype=tf.float32)
    self.b = tf.Variable(b, dtype=tf.float32)

  def __call__(self, x):
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    return tf.nn.log_softmax(flat @ self.w + self.b)


def _numpy_log_policy(x, w, b):
  logits = x.reshape(x.shape[0], -1) @ w + b
  logits -= logits.max(axis=1, keepdims=True)
  return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def _numpy_jacobian(x, w, b):
  """`[B, A, D]`: W^T - pi^T W^T per state."""
  p = np.exp(_numpy_log_policy(x, w, b))  # [B, A]
  mean_row = p @ w.T  # [B, D]: sum_c p_c W[:, c]
  return w.T[None, :, :] - mean_row[:, None, :]


def _numpy_kl(x, ws, bs, wt, bt):
  ls, lt = _numpy_log_policy(x, ws, bs), _numpy_log_policy(x, wt, bt)
  return float(np.mean(np.sum(np.exp(ls) * (ls - lt), axis=1)))


class SobolevTermsTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(3)
    self.x = rng.uniform(0, 1, (5, 2, 2, 1)).astype(np.float32)
    self.wt = rng.normal(size=(4, A)).astype(np.float32)
    self.bt = rng.normal(size=A).astype(np.float32)
    self.ws = rng.normal(size=(4, A)).astype(np.float32)
    self.bs = rng.normal(size=A).astype(np.float32)
    self.teacher = LinearPolicy(self.wt, self.bt)
    self.student = LinearPolicy(self.ws, self.bs)

  def _hand_jacobians(self):
    return (_numpy_jacobian(self.x.astype(np.float64), self.ws, self.bs),
            _numpy_jacobian(self.x.astype(np.float64), self.wt, self.bt))

  @parameterized.parameters("stochastic_p1", "stochastic_p16", "exact",
                            "stochastic_p4_per_state", "exact_initial")
  def test_names_round_trip(self, name):
    self.assertEqual(sobolev_terms.parse(name).name, name)

  @parameterized.parameters("stochastic", "stochastic_p0", "exact_p2",
                            "exact_scaled", "")
  def test_bad_names_are_refused(self, name):
    with self.assertRaisesRegex(ValueError, "Unknown Sobolev variant"):
      sobolev_terms.parse(name)

  def test_hand_jacobian_matches_autodiff(self):
    x = tf.constant(self.x)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = self.teacher(x)
    auto = tape.jacobian(y, x)  # [B, A, B, 2, 2, 1]
    auto = np.stack([auto[i, :, i].numpy().reshape(A, 4)
                     for i in range(self.x.shape[0])])
    self.assertAllClose(auto, self._hand_jacobians()[1], atol=1e-5)

  def test_exact_term_is_the_rms_over_directions_by_hand(self):
    lam = 0.7
    loss = sobolev_terms.make_loss(sobolev_terms.parse("exact"), lam)
    out = loss(self.student, tf.constant(self.x), target_fn=self.teacher)
    js, jt = self._hand_jacobians()
    per_state = np.sqrt(((js - jt)**2).sum(axis=(1, 2)) / A)
    kl = _numpy_kl(self.x, self.ws, self.bs, self.wt, self.bt)
    self.assertAllClose(out.terms["order_1"], per_state.mean(), rtol=1e-5)
    self.assertAllClose(out.terms["order_0"], kl, rtol=1e-5)
    self.assertAllClose(out.total, kl + lam * per_state.mean(), rtol=1e-5)
    # ||dJ||_F^2 / A = E_v ||dJ^T v||^2 for v uniform on the sphere.
    v = np.random.default_rng(0).normal(size=(200_000, A))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    dj = js[0] - jt[0]
    mc = np.mean(np.sum((v @ dj)**2, axis=1))
    self.assertAllClose(mc, per_state[0]**2, rtol=1e-2)

  def test_exact_term_gradient_reaches_the_student_only(self):
    loss = sobolev_terms.make_loss(sobolev_terms.parse("exact"), 1.0)
    with tf.GradientTape() as tape:
      total = loss(self.student, tf.constant(self.x),
                   target_fn=self.teacher).total
    grads = tape.gradient(total, [self.student.w, self.teacher.w])
    self.assertIsNotNone(grads[0])
    self.assertIsNone(grads[1])

  def test_initial_weight_by_hand(self):
    lam = 0.3
    variant = sobolev_terms.parse("exact_initial")
    _, jt = self._hand_jacobians()
    m = np.mean(np.sqrt((jt**2).sum(axis=(1, 2)) / A))
    scale = sobolev_terms.initial_scale(self.teacher, self.x, variant)
    self.assertAllClose(scale, m, rtol=1e-5)
    loss = sobolev_terms.make_loss(variant, lam, scale=scale)
    self.assertAllClose(loss.weights[1], lam / m, rtol=1e-5)
    out = loss(self.student, tf.constant(self.x), target_fn=self.teacher)
    self.assertAllClose(out.weighted_terms["order_1"],
                        lam / m * out.terms["order_1"], rtol=1e-6)

  def test_stochastic_initial_scale_is_the_mean_projection_norm(self):
    variant = sobolev_terms.parse("stochastic_p2_initial")
    sizes = sobolev_terms.teacher_term_sizes(self.teacher, self.x, variant,
                                             seed=1)
    _, jt = self._hand_jacobians()
    frob = np.sqrt((jt**2).sum(axis=(1, 2)))
    # ||J^T v|| lies between the smallest and largest singular value, and
    # is at most the Frobenius norm.
    self.assertEqual(sizes.shape, (self.x.shape[0],))
    self.assertTrue(np.all(sizes > 0))
    self.assertTrue(np.all(sizes <= frob + 1e-6))

  def test_per_state_normalisation_by_hand(self):
    v = np.random.default_rng(1).normal(size=(5, A)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    loss = sobolev_terms.make_loss(
        sobolev_terms.parse("stochastic_p1_per_state"), 2.0)
    out = loss(self.student, tf.constant(self.x), target_fn=self.teacher,
               vectors=(tf.constant(v), None))
    js, jt = self._hand_jacobians()
    ps = np.einsum("ba,bad->bd", v, js)
    pt = np.einsum("ba,bad->bd", v, jt)
    rel = np.linalg.norm(ps - pt, axis=1) / (np.linalg.norm(pt, axis=1) +
                                              1e-8)
    self.assertAllClose(out.terms["order_1"], rel.mean(), rtol=1e-4)
    exact = sobolev_terms.make_loss(sobolev_terms.parse("exact_per_state"),
                                    2.0)
    out = exact(self.student, tf.constant(self.x), target_fn=self.teacher)
    rel = (np.sqrt(((js - jt)**2).sum(axis=(1, 2))) /
           (np.sqrt((jt**2).sum(axis=(1, 2))) + 1e-8))
    self.assertAllClose(out.terms["order_1"], rel.mean(), rtol=1e-4)

  @parameterized.parameters(1, 4)
  def test_stochastic_variant_is_the_published_loss(self, projections):
    ours = sobolev_terms.make_loss(
        sobolev_terms.parse(f"stochastic_p{projections}"), 0.5, seed=7)
    published = distill.make_loss("sobolev", 0.5, seed=7,
                                  num_projections=projections)
    x = tf.constant(self.x)
    a = ours(self.student, x, target_fn=self.teacher)
    b = published(self.student, x, target_fn=self.teacher)
    self.assertAllEqual(a.total, b.total)
    self.assertAllEqual(a.terms["order_1"], b.terms["order_1"])

  def test_scale_only_for_initial(self):
    with self.assertRaisesRegex(ValueError, "initial"):
      sobolev_terms.make_loss(sobolev_terms.parse("exact"), 1.0, scale=2.0)
    with self.assertRaisesRegex(ValueError, "scale"):
      sobolev_terms.make_loss(sobolev_terms.parse("exact_initial"), 1.0,
                              scale=math.nan)


if __name__ == "__main__":
  tf.test.main()
