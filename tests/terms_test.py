"""Tests for sobolev.terms, the Sobolev loss as pure functions."""

import numpy as np
import tensorflow as tf

from sobolev import derivatives
from sobolev import losses
from sobolev import terms


def _quadratic(x):
  """m_o(x) = sum_d a_o d x_d^2 + x_0 x_1: Hessians known in closed form."""
  a = tf.constant([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], tf.float64)
  return tf.einsum("od,bd->bo", a, x**2) + (x[:, 0] * x[:, 1])[:, None]


class TermsTest(tf.test.TestCase):

  def test_exact_derivatives_up_to_the_order(self):
    x = tf.constant(np.random.RandomState(0).normal(size=(4, 3)))
    for order in (0, 1, 2):
      out = terms.exact_derivatives(_quadratic, x, order)
      self.assertLen(out, order + 1)
    y, jac, hess = terms.exact_derivatives(_quadratic, x, 2)
    self.assertAllClose(y, _quadratic(x))
    self.assertEqual(jac.shape, [4, 2, 3])
    expected = np.zeros([2, 3, 3])
    expected[0] = np.diag([2.0, 4.0, 6.0])
    expected[1] = np.diag([-2.0, 1.0, 0.0])
    expected[:, 0, 1] = expected[:, 1, 0] = 1.0
    self.assertAllClose(hess, np.broadcast_to(expected, [4, 2, 3, 3]))

  def test_projections_equal_projected_full_derivatives(self):
    # The identity stochastic mode rests on: the model's projections equal
    # the full derivatives contracted with the same directions.
    x = tf.constant(np.random.RandomState(1).normal(size=(5, 3)))
    rng = tf.random.Generator.from_seed(0)
    v1, v2 = terms.random_directions(rng, x, 10, order=2)
    preds, used_v1 = terms.projected_derivatives(_quadratic, x, 2, 2, v1, v2)
    self.assertEqual(used_v1.shape, [10, 2])
    self.assertAllClose(tf.norm(used_v1, axis=1), tf.ones([10], tf.float64))
    full = terms.exact_derivatives(_quadratic, x, 2)
    projected = terms.project_targets(full, used_v1, v2, 2)
    self.assertAllClose(preds[0], full[0])
    self.assertAllClose(projected[0], full[0])
    for got, want in zip(preds[1:], projected[1:]):
      self.assertEqual(got.shape, [10, 3])
      self.assertAllClose(got, want)

  def test_projection_scale_and_mean_over_projections(self):
    values, x = tf.zeros([2, 4]), tf.zeros([2, 3, 5])
    self.assertEqual(float(terms.projection_scale(1, values, x)), 4.0)
    self.assertEqual(float(terms.projection_scale(2, values, x)), 60.0)
    # Rows are projection-major: row p * B + b is draw p of example b.
    per_row = tf.constant([1.0, 2.0, 3.0, 5.0, 6.0, 7.0])
    self.assertAllClose(terms.mean_over_projections(per_row, 2, 3),
                        [3.0, 4.0, 5.0])
    self.assertAllClose(terms.mean_over_projections(per_row, 1, 6), per_row)

  def test_order_losses_stop_the_target_gradient(self):
    pred, target = tf.constant([[1.0, 2.0]]), tf.Variable([[0.0, 0.0]])
    with tf.GradientTape() as tape:
      value = terms.order_losses(losses.l2, losses.l2_per_example, pred,
                                 target)
    self.assertAllClose(value, [5.0])
    self.assertIsNone(tape.gradient(value, target))
    scalar = terms.order_losses(losses.l1, None, pred, target)
    self.assertEqual(scalar.shape.rank, 0)

  def test_combine_hand_computed(self):
    l0 = tf.constant([1.0, 2.0, 3.0])
    l1 = tf.constant([10.0, 20.0, 30.0])
    s = tf.constant([1.0, 1.0, 2.0])
    m1 = tf.constant([True, False, True])
    masks = [None, m1]
    weights = terms.example_weights([s, s], masks, tf.float32)
    self.assertAllClose(weights[1], [1.0, 0.0, 2.0])
    total, terms_, weighted, per_example, per_example_terms = terms.combine(
        [l0, l1], [1.0, 0.5], weights, masks, tf.float32)
    t0 = (1.0 + 2.0 + 6.0) / 4.0
    t1 = (10.0 + 60.0) / 3.0
    self.assertAllClose(terms_["order_0"], t0)
    self.assertAllClose(terms_["order_1"], t1)
    self.assertAllClose(weighted["order_1"], 0.5 * t1)
    self.assertAllClose(total, t0 + 0.5 * t1)
    self.assertAllClose(per_example_terms["order_1"], [10.0, 0.0, 30.0])
    self.assertAllClose(per_example, [6.0, 2.0, 18.0])

  def test_combine_plain_means_and_scalar_orders(self):
    l0, l1 = tf.constant([1.0, 3.0]), tf.constant(7.0)
    total, terms_, _, per_example, per_example_terms = terms.combine(
        [l0, l1], [1.0, 2.0], [None, None], [None, None], tf.float32)
    self.assertAllClose(terms_["order_0"], 2.0)
    self.assertAllClose(total, 2.0 + 14.0)
    self.assertIsNone(per_example)
    self.assertEqual(list(per_example_terms), ["order_0"])

  def test_tile_is_projection_major(self):
    t = tf.constant([[1.0], [2.0]])
    self.assertAllClose(terms.tile(t, 3), [[1.0], [2.0]] * 3)
    self.assertIs(terms.tile(t, 1), t)
    tiled = terms.tile_structure({"a": t, "b": tf.constant([3, 4])}, 2)
    self.assertAllEqual(tiled["b"], [3, 4, 3, 4])

  def test_shared_directions_draw_v2_first(self):
    x = tf.zeros([2, 3])
    v1, v2 = terms.random_directions(tf.random.Generator.from_seed(5), x, 2,
                                     order=2)
    rng = tf.random.Generator.from_seed(5)
    first = rng.normal([2, 3])
    self.assertAllClose(v2, first / tf.norm(first, axis=1, keepdims=True))
    self.assertEqual(v1(4).shape, [2, 4])
    v1_only, none = terms.random_directions(rng, x, 2, order=1)
    self.assertIsNone(none)
    self.assertEqual(v1_only(1).shape, [2, 1])


if __name__ == "__main__":
  tf.test.main()
