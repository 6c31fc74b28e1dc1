"""Tests of the batched benchmark trainer and its protocol pieces."""

import dataclasses

import numpy as np
import tensorflow as tf

from benchmarks import config as config_lib
from benchmarks import data
from benchmarks import trainer
from sobolev import sobolev_loss


class TrainerTest(tf.test.TestCase):

  def test_per_model_l2_equals_separate_sobolev_losses(self):
    m, b = 3, 4
    rng = np.random.default_rng(0)
    pred = tf.constant(rng.normal(size=[m * b, 1, 2]), tf.float32)
    target = tf.constant(rng.normal(size=[m * b, 1, 2]), tf.float32)
    weights = tf.constant([0.5, 2.0, 0.0])
    got = trainer.per_model_l2(weights)(pred, target)
    sq = np.sum((pred.numpy() - target.numpy())**2, axis=(1, 2))
    expected = np.mean(np.repeat(weights.numpy(), b) * sq)
    self.assertAllClose(got, expected)
    # M times it is the sum of per-model weighted core losses.
    x = tf.constant(rng.normal(size=[m * b, 2]), tf.float32)
    y = tf.constant(rng.normal(size=[m * b, 1]), tf.float32)
    dy = tf.constant(rng.normal(size=[m * b, 2]), tf.float32)
    model = lambda z: tf.reduce_sum(z**2, axis=1, keepdims=True)
    stacked = sobolev_loss.SobolevLoss(
        order=1, loss_fns=["l2", trainer.per_model_l2(weights)])
    total, _ = stacked(model, x, targets=(y, dy))
    separate = 0.0
    for i in range(m):
      sl = slice(i * b, (i + 1) * b)
      loss = sobolev_loss.SobolevLoss(order=1,
                                      weights=[1.0, float(weights[i])])
      separate += loss(model, x[sl], targets=(y[sl], dy[sl]))[0]
    self.assertAllClose(m * total, separate, rtol=1e-5)

  def test_grad_weights_normalise_by_mean_squared_norm(self):
    cfg = config_lib.Config(grad_weight=2.0)
    dv = tf.constant([[[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    self.assertAllClose(trainer.grad_weights(cfg, dv), [2.0 / 12.5, 2.0])

  def test_learning_rate_schedule(self):
    cfg = config_lib.Config(steps=100, learning_rate=1e-2,
                            final_lr_fraction=0.1)
    self.assertAllClose(trainer.learning_rate(cfg, 0), 1e-2)
    self.assertAllClose(trainer.learning_rate(cfg, 50), 0.55e-2)
    self.assertAllClose(trainer.learning_rate(cfg, 100), 1e-3)
    const = dataclasses.replace(cfg, final_lr_fraction=1.0)
    self.assertAllClose(trainer.learning_rate(const, 70), 1e-2)

  def test_evaluate_in_original_units(self):
    runs = [trainer.Run("booth", 5, "sobolev", 0),
            trainer.Run("rosenbrock", 5, "sobolev", 0)]
    cfg = config_lib.Config(steps=2, steps_per_call=2, hidden_sizes=(4,))
    group = trainer.train_group(runs, cfg)
    for w in group.model.weights + group.model.biases:
      w.assign(tf.zeros_like(w))  # The model predicts 0 in model units.
    sets = [data.test_set(r.function, 30) for r in runs]
    results = trainer.evaluate(group, sets, chunk=7)
    for (mse, gmse), sc, s in zip(results, group.scalers, sets):
      # 0 in model units is the training mean, with a zero gradient.
      self.assertAllClose(mse, np.mean((s.y - sc.mean)**2), rtol=1e-6)
      self.assertAllClose(gmse, np.mean(np.sum(s.dy**2, axis=1)), rtol=1e-6)

  def test_training_fits_a_tiny_problem(self):
    runs = [trainer.Run("booth", 8, m, 0) for m in ("regular",)]
    cfg = config_lib.Config(steps=300, steps_per_call=150,
                            hidden_sizes=(32, 32), learning_rate=1e-2)
    seen = []
    group = trainer.train_group(runs, cfg, on_progress=seen.append)
    self.assertEqual(seen, [150, 300])
    train = data.train_set("booth", 8, 0)
    mse, _ = trainer.evaluate(group, [train])[0]
    self.assertLess(mse, 1e-2 * np.var(train.y))

  def test_minibatch_path_and_bad_groups(self):
    runs = [trainer.Run("booth", 30, "sobolev", s) for s in range(2)]
    cfg = config_lib.Config(steps=4, steps_per_call=2, hidden_sizes=(4,),
                            batch_size=8)
    group = trainer.train_group(runs, cfg)
    self.assertLen(group.runs, 2)
    with self.assertRaisesRegex(ValueError, "share size and method"):
      trainer.train_group(runs + [trainer.Run("booth", 30, "regular", 0)],
                          cfg)
    with self.assertRaisesRegex(ValueError, "empty"):
      trainer.train_group([], cfg)


if __name__ == "__main__":
  tf.test.main()
