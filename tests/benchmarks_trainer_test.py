"""Tests of the batched benchmark trainer and its protocol pieces."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from benchmarks import data
from benchmarks import protocols
from benchmarks import trainer
from benchmarks.configs import default
from sobolev import derivatives
from sobolev import sobolev_loss
from sobolev.experiment import errors


def _config(**overrides):
  config = default.get_config()
  config.update(overrides)
  return config


def _weights(group, index):
  return [w.numpy()[index] for w in group.model.weights + group.model.biases]


class TrainerTest(tf.test.TestCase, parameterized.TestCase):

  def test_ours_objective_is_the_sum_of_separate_core_losses(self):
    # 'ours' weights each model's core per-example order-1 terms by its own
    # weight: M times the group's objective is the sum over models of the
    # core SobolevLoss with order weights [1, w_m] on the model's rows.
    m, b = 3, 4
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=[m * b, 2]), tf.float32)
    y = tf.constant(rng.normal(size=[m * b, 1]), tf.float32)
    dy = tf.constant(rng.normal(size=[m * b, 2]), tf.float32)
    model = lambda z: tf.reduce_sum(z**2 + z, axis=1, keepdims=True)
    weights = np.array([0.5, 2.0, 0.0], np.float32)
    objective = trainer.make_objective(
        "sobolev", "ours", 1.0, tf.constant(np.tile(weights[:, None], [1, 2])),
        b)
    total, _ = objective(model, {"x": x, "targets": (y, dy)})
    separate = 0.0
    for i in range(m):
      sl = slice(i * b, (i + 1) * b)
      loss = sobolev_loss.SobolevLoss(order=1,
                                      weights=[1.0, float(weights[i])])
      separate += loss(model, x[sl], targets=(y[sl], dy[sl]))[0]
    self.assertAllClose(total, separate, rtol=1e-5)
    # By hand: value errors (x^2 + x summed - y), gradient errors 2x + 1 - dy.
    v = np.sum(x.numpy()**2 + x.numpy(), axis=1) - y.numpy()[:, 0]
    g = np.sum((2 * x.numpy() + 1 - dy.numpy())**2, axis=1)
    hand = sum(np.mean(v[i * b:(i + 1) * b]**2) +
               weights[i] * np.mean(g[i * b:(i + 1) * b]) for i in range(m))
    self.assertAllClose(total, hand, rtol=1e-5)

  @parameterized.parameters("raw_l2", "differential_ml")
  def test_input_weighted_objective_by_hand(self, protocol):
    # a * mean_b value error^2 + mean_b sum_j c_mj (gradient error_j)^2,
    # summed over the M models.
    m, b, d = 2, 3, 3
    rng = np.random.default_rng(1)
    x = rng.normal(size=[m * b, d]).astype(np.float32)
    y = rng.normal(size=[m * b, 1]).astype(np.float32)
    dy = rng.normal(size=[m * b, d]).astype(np.float32)
    c = rng.uniform(0.1, 2.0, size=[m, d]).astype(np.float32)
    a = 0.25
    model = lambda z: tf.reduce_sum(z**3, axis=1, keepdims=True)
    objective = trainer.make_objective("sobolev", protocol, a, tf.constant(c),
                                       b)
    total, _ = objective(model, {"x": tf.constant(x),
                                 "targets": (tf.constant(y), tf.constant(dy))})
    v = np.sum(x**3, axis=1) - y[:, 0]
    g = (3 * x**2 - dy)**2
    hand = sum(a * np.mean(v[i * b:(i + 1) * b]**2) +
               np.mean(np.sum(c[i] * g[i * b:(i + 1) * b], axis=1))
               for i in range(m))
    self.assertAllClose(total, hand, rtol=1e-5)
    # Regular models: the value MSE only, whatever the protocol.
    regular = trainer.make_objective("regular", protocol, a,
                                     tf.zeros([m, d]), b)
    total, _ = regular(model, {"x": tf.constant(x),
                               "targets": (tf.constant(y),)})
    self.assertAllClose(total, m * np.mean(v**2), rtol=1e-5)

  def test_input_weighted_l2(self):
    pred = tf.constant([[[1.0, 2.0]], [[0.0, -1.0]]])
    target = tf.constant([[[0.0, 0.0]], [[1.0, 1.0]]])
    w = tf.constant([[1.0, 10.0], [2.0, 0.5]])
    self.assertAllClose(trainer.input_weighted_l2(w)(pred, target),
                        [1.0 + 40.0, 2.0 + 2.0])

  def test_ours_weights_normalise_by_mean_squared_norm(self):
    cfg = _config(grad_weight=2.0)
    dv = tf.constant([[[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    a, c = protocols.loss_weights(cfg, "sobolev", dv, np.ones([2, 2]))
    self.assertEqual(a, 1.0)
    self.assertAllClose(c, [[2.0 / 12.5] * 2, [2.0] * 2])
    a, c = protocols.loss_weights(cfg, "regular", dv, np.ones([2, 2]))
    self.assertEqual(a, 1.0)
    self.assertAllEqual(c, np.zeros([2, 2]))
    raw = _config(grad_weight=2.0, normalize_grad_weight=False)
    self.assertAllClose(protocols.loss_weights(raw, "sobolev", dv,
                                               np.ones([2, 2]))[1],
                        [[2.0, 2.0], [2.0, 2.0]])

  def test_raw_l2_weights_undo_the_input_map(self):
    # c_j = 1 / h_j^2: the gradient error in x units.
    dv = tf.ones([1, 4, 2])
    a, c = protocols.loss_weights(_config(protocol="raw_l2"), "sobolev", dv,
                                  np.array([[5.0, 0.5]]))
    self.assertEqual(a, 1.0)
    self.assertAllClose(c, [[1 / 25.0, 4.0]])

  def test_differential_ml_weights(self):
    # Huge & Savine: alpha = 1 / (1 + lambda D), c_j = (1 - alpha) / D /
    # mean_b dt_j^2.
    dv = tf.constant([[[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]]])
    cfg = _config(protocol="differential_ml", dml_lambda=2.0)
    a, c = protocols.loss_weights(cfg, "sobolev", dv, np.ones([1, 3]))
    alpha = 1 / (1 + 2.0 * 3)
    self.assertAllClose(a, alpha)
    self.assertAllClose(c, [[(1 - alpha) / 3 / 5.0, (1 - alpha) / 3 / 2.0,
                             (1 - alpha) / 3 / 1e-12]])

  def test_learning_rate_schedule(self):
    cfg = _config(steps=100, learning_rate=1e-2, final_lr_fraction=0.1)
    self.assertAllClose(trainer.learning_rate(cfg, 0), 1e-2)
    self.assertAllClose(trainer.learning_rate(cfg, 50), 0.55e-2)
    self.assertAllClose(trainer.learning_rate(cfg, 100), 1e-3)
    const = _config(steps=100, learning_rate=1e-2, final_lr_fraction=1.0)
    self.assertAllClose(trainer.learning_rate(const, 70), 1e-2)

  def test_evaluate_in_original_units(self):
    runs = [trainer.Run("booth", 5, "sobolev", 0),
            trainer.Run("rosenbrock", 5, "sobolev", 0)]
    cfg = _config(steps=2, steps_per_call=2, hidden_sizes=(4,))
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
    cfg = _config(steps=300, steps_per_call=150, hidden_sizes=(32, 32),
                  learning_rate=1e-2)
    seen = []
    group = trainer.train_group(runs, cfg, on_progress=seen.append)
    self.assertEqual(seen, [150, 300])
    train = data.train_set("booth", 8, 0)
    mse, _ = trainer.evaluate(group, [train])[0]
    self.assertLess(mse, 1e-2 * np.var(train.y))

  def test_minibatch_path_and_bad_groups(self):
    runs = [trainer.Run("booth", 30, "sobolev", s) for s in range(2)]
    cfg = _config(steps=4, steps_per_call=2, hidden_sizes=(4,), batch_size=8)
    group = trainer.train_group(runs, cfg)
    self.assertLen(group.runs, 2)
    with self.assertRaisesRegex(ValueError, "share size and method"):
      trainer.train_group(runs + [trainer.Run("booth", 30, "regular", 0)],
                          cfg)
    with self.assertRaisesRegex(ValueError, "empty"):
      trainer.train_group([], cfg)


  def test_a_model_trains_the_same_alone_and_in_any_group(self):
    # Mini-batches (30 points, batches of 8) and full batches (6 points):
    # each model's seeds are its own, so its weights after training are
    # exactly those of the same model trained alone.
    for size in (30, 6):
      for method in ("regular", "sobolev"):
        cfg = _config(steps=6, steps_per_call=3, hidden_sizes=(8, 8),
                      batch_size=8)
        alone = trainer.train_group(
            [trainer.Run("booth", size, method, 1)], cfg)
        group = trainer.train_group(
            [trainer.Run(f, size, method, s) for f in ("beale", "booth")
             for s in (0, 1, 2)], cfg)
        for a, b in zip(_weights(alone, 0), _weights(group, 4)):
          self.assertAllEqual(a, b)
        # A different seed does get different batches and weights.
        self.assertNotAllClose(_weights(group, 3)[0], _weights(group, 4)[0])

  def test_minibatch_seeds_are_per_run(self):
    self.assertEqual(trainer.minibatch_seed("booth", 2),
                     trainer.minibatch_seed("booth", 2))
    seeds = {trainer.minibatch_seed(f, s) for f in ("ackley", "booth")
             for s in range(3)}
    self.assertLen(seeds, 6)
    self.assertNotIn(trainer.model_seed("booth", 2), seeds)

  def test_steps_per_call_does_not_change_the_numbers(self):
    runs = [trainer.Run("booth", 30, "sobolev", 0)]
    a = trainer.train_group(runs, _config(steps=6, steps_per_call=6,
                                          hidden_sizes=(8,), batch_size=8))
    b = trainer.train_group(runs, _config(steps=6, steps_per_call=4,
                                          hidden_sizes=(8,), batch_size=8))
    for wa, wb in zip(_weights(a, 0), _weights(b, 0)):
      self.assertAllEqual(wa, wb)

  def test_chunk_terms_are_each_models_training_loss(self):
    runs = [trainer.Run("booth", 12, "sobolev", 0),
            trainer.Run("mccormick", 12, "sobolev", 1)]
    seen = []
    group = trainer.train_group(
        runs, _config(steps=4, steps_per_call=2, hidden_sizes=(8,)),
        on_chunk=lambda step, terms: seen.append((step, terms)))
    self.assertEqual([s for s, _ in seen], [2, 4])
    terms = seen[-1][1]
    for i, run in enumerate(runs):
      train = data.train_set(run.function, run.size, run.seed)
      sc = group.scalers[i]
      v, dv = sc.targets(train.y, train.dy)
      pv, pdv = derivatives.value_and_gradient(
          group.mlp(i), tf.constant(sc.inputs(train.x), tf.float32))
      value = np.mean((pv.numpy()[:, 0] - v)**2)
      grad = np.mean(np.sum((pdv.numpy() - dv)**2, axis=1))
      self.assertAllClose(terms["value_mse"][i], value, rtol=1e-4)
      self.assertAllClose(terms["grad_mse"][i], grad, rtol=1e-4)
      self.assertAllClose(terms["loss"][i],
                          value + group.grad_weights[i] * grad, rtol=1e-4)
    self.assertAllClose(terms["learning_rate"],
                        [trainer.learning_rate(_config(steps=4), 3)] * 2)

  @parameterized.parameters("ours", "raw_l2", "differential_ml")
  def test_d_dimensional_protocols_log_their_own_loss(self, protocol):
    # D = 3; each model's logged loss is a * value MSE + sum_j c_j (mean
    # squared error of input j), recomputed here from the trained MLP.
    runs = [trainer.Run("styblinski_tang_3d", 10, "sobolev", 0),
            trainer.Run("rosenbrock_3d", 10, "sobolev", 1)]
    seen = []
    cfg = _config(steps=4, steps_per_call=2, hidden_sizes=(8,),
                  protocol=protocol, dml_lambda=0.5)
    group = trainer.train_group(
        runs, cfg, on_chunk=lambda step, terms: seen.append(terms))
    self.assertEqual(group.dim, 3)
    self.assertEqual(group.input_weights.shape, (2, 3))
    if protocol == "differential_ml":
      self.assertAllClose(group.value_weight, 1 / (1 + 0.5 * 3))
    else:
      self.assertEqual(group.value_weight, 1.0)
    for i, run in enumerate(runs):
      train = data.train_set(run.function, run.size, run.seed)
      sc = group.scalers[i]
      v, dv = sc.targets(train.y, train.dy)
      pv, pdv = derivatives.value_and_gradient(
          group.mlp(i), tf.constant(sc.inputs(train.x), tf.float32))
      value = np.mean((pv.numpy()[:, 0] - v)**2)
      per_input = np.mean((pdv.numpy() - dv)**2, axis=0)
      expected = (group.value_weight * value +
                  np.sum(group.input_weights[i] * per_input))
      self.assertAllClose(seen[-1]["loss"][i], expected, rtol=1e-4)
      self.assertAllClose(group.final_terms["loss"][i], expected, rtol=1e-4)
      self.assertAllClose(group.final_terms["grad_mse"][i], per_input.sum(),
                          rtol=1e-4)
      if protocol == "raw_l2":
        self.assertAllClose(group.input_weights[i], 1 / sc.half_width**2)
      pv, pdv = group.predict(i, train.x[:4])
      self.assertEqual(pdv.shape, (4, 3))

  def test_groups_must_share_the_input_dimension(self):
    runs = [trainer.Run("rosenbrock", 5, "regular", 0),
            trainer.Run("rosenbrock_3d", 5, "regular", 0)]
    with self.assertRaisesRegex(ValueError, "share the input dimension"):
      trainer.train_group(runs, _config(steps=2, hidden_sizes=(4,)))

  def test_model_seeds_of_the_published_functions_are_unchanged(self):
    self.assertEqual(trainer.model_seed("ackley", 0), 1000)
    self.assertEqual(trainer.model_seed("styblinski_tang", 2), 7002)
    self.assertLess(trainer.model_seed("styblinski_tang_16d", 999), 2**24)

  def test_mlp_copy_predicts_like_the_stack(self):
    runs = [trainer.Run("booth", 10, "regular", s) for s in range(3)]
    group = trainer.train_group(runs, _config(steps=2, steps_per_call=2,
                                              hidden_sizes=(8, 4)))
    x = data.test_set("booth", 25).x
    for i in range(3):
      v, dv = group.predict(i, x)
      sc = group.scalers[i]
      pv, pdv = derivatives.value_and_gradient(
          group.mlp(i), tf.constant(sc.inputs(x), tf.float32))
      ov, odv = sc.outputs(pv.numpy()[:, 0], pdv.numpy())
      self.assertAllClose(v, ov, rtol=1e-5)
      self.assertAllClose(dv, odv, rtol=1e-4, atol=1e-6)

  def test_divergence_stops_naming_the_model(self):
    runs = [trainer.Run("booth", 10, "sobolev", 0),
            trainer.Run("beale", 10, "sobolev", 0)]
    with self.assertRaisesRegex(errors.DivergenceError,
                                "diverged .*(booth|beale), 10 points, "
                                "sobolev, seed 0, step 5"):
      trainer.train_group(runs, _config(steps=20, steps_per_call=5,
                                        hidden_sizes=(8,),
                                        learning_rate=1e30))


class StallTest(tf.test.TestCase):

  def test_a_frozen_group_stops_with_the_setting_named(self):
    # 1e-50 is 0 in float32: no update changes any weight.
    runs = [trainer.Run("booth", 6, "sobolev", s) for s in range(2)]
    config = _config(learning_rate=1e-50, steps=50, steps_per_call=5,
                     stall_patience=2)
    with self.assertRaisesRegex(errors.DivergenceError,
                                r"stalled.*learning rate \(1e-50\)"):
      trainer.train_group(runs, config)
    config.stall_patience = 0  # Off: the run ends as it did before.
    group = trainer.train_group(runs, config)
    self.assertLen(group.runs, 2)

  def test_a_healthy_group_does_not_stall(self):
    config = _config(steps=40, steps_per_call=5, stall_patience=1)
    group = trainer.train_group([trainer.Run("booth", 6, "regular", 0)],
                                config)
    self.assertTrue(np.all(np.isfinite(group.final_terms["loss"])))


if __name__ == "__main__":
  tf.test.main()
