"""Tests of the batched L-BFGS (`benchmarks.lbfgs`) and the trainer's use."""

import numpy as np
import tensorflow as tf

from benchmarks import lbfgs
from benchmarks import stacked_mlp
from benchmarks import trainer
from benchmarks.configs import default


def _lbfgs_config(steps=60, activation="silu", hidden=(8,)):
  config = default.get_config()
  config.optimizer = "lbfgs"
  config.activation = activation
  config.hidden_sizes = hidden
  config.steps = steps
  config.steps_per_call = 20
  return config


class MinimizeTest(tf.test.TestCase):

  def test_reaches_the_minimum_of_convex_quadratics(self):
    # Model m's loss: 0.5 (x - c_m)^T A_m (x - c_m), minimum 0 at c_m.
    rng = np.random.default_rng(0)
    m, d = 3, 5
    a = np.stack([q @ np.diag(np.linspace(1, 10, d)) @ q.T for q in
                  [np.linalg.qr(rng.normal(size=(d, d)))[0]
                   for _ in range(m)]]).astype(np.float32)
    c = rng.normal(size=(m, d)).astype(np.float32)
    x = tf.Variable(tf.zeros([m, d]))

    def loss(params):
      diff = params[0] - c
      return 0.5 * tf.einsum("mi,mij,mj->m", diff, a, diff)

    initial = loss([x]).numpy()
    minimizer = lbfgs.minimize([x], loss, max_iterations=100, chunk=7)
    status = minimizer.status()
    self.assertTrue(np.all(status["converged"] | status["failed"]))
    self.assertAllClose(x.numpy(), c, atol=1e-4)
    final = loss([x]).numpy()
    self.assertAllLess(final, 1e-7)
    self.assertAllGreater(initial, 1.0)

  def test_chunks_continue_one_run(self):
    # Resuming from the optimiser's state is the same run as one call.
    def run(chunk):
      x = tf.Variable([[3.0, -2.0], [1.0, 4.0]])
      rosen = lambda p: (tf.square(1 - p[0][:, 0]) +
                         10 * tf.square(p[0][:, 1] - tf.square(p[0][:, 0])))
      lbfgs.minimize([x], rosen, max_iterations=30, chunk=chunk)
      return x.numpy()
    self.assertAllClose(run(30), run(10), rtol=1e-6, atol=1e-6)

  def test_bad_arguments(self):
    x = tf.Variable(tf.zeros([1, 2]))
    with self.assertRaisesRegex(ValueError, "`max_iterations`"):
      lbfgs.minimize([x], lambda p: tf.reduce_sum(p[0], 1), 0)
    with self.assertRaisesRegex(ValueError, "`chunk`"):
      lbfgs.minimize([x], lambda p: tf.reduce_sum(p[0], 1), 3, chunk=0)

  def test_flatten_round_trip(self):
    vs = [tf.Variable(tf.reshape(tf.range(12.0), [2, 2, 3])),
          tf.Variable(tf.reshape(tf.range(4.0), [2, 2]))]
    flat = lbfgs.flatten(vs)
    self.assertEqual(flat.shape, [2, 8])
    for v, u in zip(vs, lbfgs.unflatten(flat, vs)):
      self.assertAllEqual(v, u)


class TrainerLbfgsTest(tf.test.TestCase):

  def test_fits_training_set_and_lowers_loss(self):
    runs = [trainer.Run("booth", 10, "sobolev", s) for s in range(2)]
    short = trainer.train_group(runs, _lbfgs_config(steps=1))
    long = trainer.train_group(runs, _lbfgs_config(steps=80))
    self.assertTrue(np.all(long.final_terms["loss"] <
                           0.1 * short.final_terms["loss"]),
                    (long.final_terms["loss"], short.final_terms["loss"]))
    self.assertIn("converged", long.optimizer_status)
    self.assertLen(long.optimizer_status["failed"], 2)

  def test_model_trained_alone_equals_model_in_a_group(self):
    config = _lbfgs_config(steps=40, activation="tanh")
    alone = trainer.train_group([trainer.Run("beale", 8, "regular", 1)],
                                config)
    group = trainer.train_group([trainer.Run("booth", 8, "regular", 0),
                                 trainer.Run("beale", 8, "regular", 1)],
                                config)
    for w_alone, w_group in zip(alone.model.weights, group.model.weights):
      self.assertAllClose(w_alone[0], w_group[1], rtol=1e-5, atol=1e-6)

  def test_exported_mlp_has_the_activation(self):
    group = trainer.train_group([trainer.Run("booth", 8, "regular", 0)],
                                _lbfgs_config(steps=3, activation="gelu"))
    x = np.random.default_rng(0).uniform(-10, 10, size=(5, 2))
    v, dv = group.predict(0, x)
    mlp = group.mlp(0)
    u = tf.constant(group.scalers[0].inputs(x), tf.float32)
    self.assertAllClose(mlp(u).numpy()[:, 0],
                        group.model(tf.reshape(u, [1, 5, 2]))[0, :, 0],
                        atol=1e-6)
    self.assertEqual(v.shape, (5,))
    self.assertEqual(dv.shape, (5, 2))
    self.assertEqual(group.model.activation, "gelu")
    self.assertIs(stacked_mlp.activation_fn("gelu"), tf.nn.gelu)


if __name__ == "__main__":
  tf.test.main()
