"""Tests of the decoupled SG objective: which variables move, and the targets."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

import sobolev
from synthetic_gradients import decoupled
from synthetic_gradients import networks


def _batch(seed=0, batch=4, size=8):
  rng = np.random.RandomState(seed)
  return {"image": tf.constant(rng.randn(batch, size, size, 1), tf.float32),
          "label": tf.constant(rng.randint(0, 10, batch), tf.int32)}


def _model(method, num_parts=4, seed=0):
  tf.random.set_seed(seed)
  parts = networks.conv_net_parts((4, 4, 4, 4), num_parts, 10)
  model = decoupled.SplitModel(parts, method, 10)
  model.build(_batch()["image"])
  return model


def _values(variables):
  return [v.numpy().copy() for v in variables]


class DecoupledUpdateTest(parameterized.TestCase, tf.test.TestCase):

  def setUp(self):
    super().setUp()
    tf.config.run_functions_eagerly(True)  # Tiny models: skip tracing.

  def tearDown(self):
    tf.config.run_functions_eagerly(False)
    super().tearDown()

  @parameterized.parameters(*decoupled.METHODS)
  def test_update_changes_exactly_the_right_variables(self, method):
    model = _model(method)
    # Direct SG's zero-initialised output layer would give zero SGs (and a
    # zero update of the lower parts) at step 0: make it non-zero.
    for m in model.sg_modules:
      for v in m.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.1, seed=1))
    step = sobolev.training.make_train_step(
        model, snt.optimizers.SGD(0.1), decoupled.make_objective(model),
        variables=decoupled.train_variables(model))
    before = _values(model.trainable_variables)
    metrics = step(_batch())
    self.assertTrue(np.isfinite(metrics["loss"].numpy()))
    moved = {v.name: not np.allclose(b, v.numpy())
             for v, b in zip(model.trainable_variables, before)}
    top = {v.name for v in model.parts[-1].trainable_variables}
    lower = {v.name for p in model.parts[:-1] for v in p.trainable_variables}
    modules = {v.name for m in model.sg_modules for v in m.trainable_variables}
    self.assertTrue(all(moved[n] for n in top))
    if method == "noprop":
      self.assertFalse(any(moved[n] for n in lower))
      self.assertEmpty(modules)
    else:
      # Every lower part moves (each has a BN offset that always changes).
      for p in model.parts[:-1]:
        self.assertTrue(any(moved[v.name] for v in p.trainable_variables),
                        p.name)
    if method in decoupled.SG_METHODS:
      self.assertLen(model.sg_modules, 3)
      for m in model.sg_modules:
        self.assertTrue(any(moved[v.name] for v in m.trainable_variables),
                        m.name)
    else:
      self.assertEmpty(model.sg_modules)

  @parameterized.parameters(*decoupled.SG_METHODS)
  def test_gradients_are_local(self, method):
    """Each module's loss only reaches its own variables (targets are cut),
    and each part's surrogate only reaches that part."""
    model = _model(method)
    objective = decoupled.make_objective(model)
    main_vars = [v for p in model.parts for v in p.trainable_variables]
    with tf.GradientTape(persistent=True) as tape:
      _, metrics = objective(model, _batch())
    for k, module in enumerate(model.sg_modules):
      grads = tape.gradient(metrics[f"sg{k}_loss"], main_vars)
      self.assertTrue(all(g is None for g in grads), module.name)
      others = [v for j, m in enumerate(model.sg_modules) if j != k
                for v in m.trainable_variables]
      self.assertTrue(all(g is None for g in tape.gradient(
          metrics[f"sg{k}_loss"], others)))
    # The top part's loss reaches the top part only.
    grads = tape.gradient(metrics["ce"], main_vars)
    top = {v.name for v in model.parts[-1].trainable_variables}
    for v, g in zip(main_vars, grads):
      self.assertEqual(g is not None, v.name in top, v.name)

  def test_joint_update_equals_separate_updates(self):
    """One optimiser step on the summed losses == a step per local loss."""
    batch = _batch()
    model_a = _model("sobolev", seed=3)
    model_b = _model("sobolev", seed=3)
    for a, b in zip(model_a.trainable_variables, model_b.trainable_variables):
      b.assign(a)
    opt = snt.optimizers.Adam(1e-2)
    step = sobolev.training.make_train_step(
        model_a, opt, decoupled.make_objective(model_a))
    step(batch)
    # Separate updates: each part/module with its own optimiser and loss.
    objective = decoupled.make_objective(model_b)
    with tf.GradientTape(persistent=True) as tape:
      total, _ = objective(model_b, batch)
    groups = list(model_b.parts) + list(model_b.sg_modules)
    grads = [tape.gradient(total, g.trainable_variables) for g in groups]
    for g, gr in zip(groups, grads):
      snt.optimizers.Adam(1e-2).apply(gr, g.trainable_variables)
    for a, b in zip(model_a.trainable_variables, model_b.trainable_variables):
      self.assertAllClose(a, b, atol=1e-6, msg=a.name)

  def test_top_module_targets_are_the_true_loss_and_gradient(self):
    """With one split the module learns the true l_b and dl_b/dh."""
    model = _model("sobolev", num_parts=2)
    batch = _batch()
    captured = {}

    def spy(module, h, y, value_target, grad_target):
      captured.update(h=h, value=value_target, grad=grad_target)
      return tf.constant(0.0), {}

    objective = decoupled.make_objective(model)
    # Replace the module loss with a spy (the targets are its arguments).
    real = decoupled.make_module_loss
    decoupled.make_module_loss = lambda *a, **k: spy
    try:
      objective = decoupled.make_objective(model)
      objective(model, batch)
    finally:
      decoupled.make_module_loss = real
    h = model.parts[0](batch["image"], is_training=True)
    with tf.GradientTape() as tape:
      tape.watch(h)
      per_ex = tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=batch["label"],
          logits=model.parts[1](h, is_training=True))
      total = tf.reduce_sum(per_ex)
    self.assertAllClose(captured["value"], per_ex, atol=1e-5)
    self.assertAllClose(captured["grad"], tape.gradient(total, h), atol=1e-5)

  def test_intermediate_targets_are_bootstrapped(self):
    """Module k's targets: m_{k+1}(f_{k+1}(h_k)) and its gradient wrt h_k."""
    model = _model("critic", num_parts=3)
    batch = _batch()
    captured = []

    def spy(module, h, y, value_target, grad_target):
      captured.append((module.name, h, value_target, grad_target))
      return tf.constant(0.0), {}

    real = decoupled.make_module_loss
    decoupled.make_module_loss = lambda *a, **k: spy
    try:
      decoupled.make_objective(model)(model, batch)
    finally:
      decoupled.make_module_loss = real
    name, h0, value, grad = captured[-1]
    self.assertEqual(name, "sg_0")
    with tf.GradientTape() as tape:
      tape.watch(h0)
      m1 = model.sg_modules[1](model.parts[1](h0, is_training=True),
                               batch["label"])
      total = tf.reduce_sum(m1)
    self.assertAllClose(value, m1, atol=1e-5)
    self.assertAllClose(grad, tape.gradient(total, h0), atol=1e-5)

  def test_true_loss_value_targets(self):
    """value_target='true_loss': every module's value target is l_b."""
    model = _model("sobolev", num_parts=3)
    batch = _batch()
    captured = []

    def spy(module, h, y, value_target, grad_target):
      captured.append(value_target)
      return tf.constant(0.0), {}

    real = decoupled.make_module_loss
    decoupled.make_module_loss = lambda *a, **k: spy
    try:
      decoupled.make_objective(model, value_target="true_loss")(model, batch)
    finally:
      decoupled.make_module_loss = real
    per_ex = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=batch["label"], logits=model(batch["image"], is_training=True))
    self.assertLen(captured, 2)
    for value in captured:
      self.assertAllClose(value, per_ex, atol=1e-5)

  def test_part_surrogate_gradient_is_the_synthetic_gradient_update(self):
    """d/dtheta_0 of the objective == J^T SG_0 / B for the bottom part."""
    model = _model("critic", num_parts=2)
    batch = _batch()
    objective = decoupled.make_objective(model)
    params = model.parts[0].trainable_variables
    with tf.GradientTape() as tape:
      total, _ = objective(model, batch)
    got = tape.gradient(total, params)
    with tf.GradientTape() as tape:
      h = model.parts[0](batch["image"], is_training=True)
    sg = model.sg_modules[0].synthetic_gradient(tf.stop_gradient(h),
                                                batch["label"])
    want = tape.gradient(h, params, output_gradients=sg / 4.0)
    for g, w in zip(got, want):
      self.assertAllClose(g, w, atol=1e-5)

  def test_sg_alignment_is_one_for_the_true_gradient(self):
    model = _model("critic", num_parts=2)
    batch = _batch()

    def true_sg(h, y):
      with tf.GradientTape() as tape:
        tape.watch(h)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=model.parts[1](h, is_training=False)))
      return tape.gradient(loss, h)

    (cos,) = decoupled.sg_alignment(model, batch["image"], batch["label"])
    self.assertBetween(float(cos), -1.0, 1.0)
    model.sg_modules[0].synthetic_gradient = true_sg
    (cos,) = decoupled.sg_alignment(model, batch["image"], batch["label"])
    self.assertAllClose(cos, 1.0, atol=1e-5)
    with self.assertRaisesRegex(ValueError, "no SG modules"):
      decoupled.sg_alignment(_model("noprop", num_parts=2), batch["image"],
                             batch["label"])

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "method"):
      decoupled.SplitModel(networks.conv_net_parts((4, 4), 2, 10), "foo", 10)
    model = _model("sobolev", num_parts=2)
    with self.assertRaisesRegex(ValueError, "value_target"):
      decoupled.make_objective(model, value_target="nope")
    with self.assertRaisesRegex(ValueError, "num_parts"):
      networks.conv_net_parts((4, 4), 3, 10)
    with self.assertRaisesRegex(ValueError, "num_parts"):
      networks.resnet50_parts(3)


class CriticLossShapeTest(parameterized.TestCase, tf.test.TestCase):
  """The critic loss on `[B, H, W, C]` activations vs the old flattened path."""

  @parameterized.product(method=("critic", "vfbn", "sobolev"),
                         compiled=(False, True))
  def test_loss_and_gradients_equal_the_flattened_path(self, method,
                                                       compiled):
    model = _model(method, num_parts=2)
    batch = _batch(seed=3)
    y = batch["label"]
    h = model.parts[0](batch["image"], is_training=True)
    self.assertEqual(h.shape.rank, 4)  # Image-shaped activations.
    module = model.sg_modules[0]
    rng = np.random.RandomState(4)
    value_target = tf.constant(rng.rand(4), tf.float32)
    grad_target = tf.constant(rng.randn(*h.shape), tf.float32)
    weights = (0.3, 1.7)
    variables = module.trainable_variables

    def new_path(h):
      with tf.GradientTape() as tape:
        total, terms = decoupled.make_module_loss(method, weights)(
            module, h, y, value_target, grad_target)
      return total, terms, tape.gradient(total, variables)

    def old_path(h):
      # The reshape adapter the critic loss had until commit 1b41540.
      core = {"critic": lambda: sobolev.SobolevLoss(order=0),
              "vfbn": lambda: sobolev.SobolevLoss(order=1,
                                                  weights=[0.0, 1.0]),
              "sobolev": lambda: sobolev.SobolevLoss(
                  order=1, weights=list(weights))}[method]()
      flat = tf.reshape(h, [-1, h.shape[1:].num_elements()])
      critic = lambda hf: module(tf.reshape(hf, tf.shape(h)), y)
      targets = [value_target]
      if core.order >= 1:
        targets.append(tf.reshape(grad_target, tf.shape(flat)))
      with tf.GradientTape() as tape:
        total, terms = core(critic, flat, targets=tuple(targets))[:2]
      return total, terms, tape.gradient(total, variables)

    if compiled:
      new_path, old_path = tf.function(new_path), tf.function(old_path)
    new, old = new_path(h), old_path(h)
    self.assertAllClose(new[0], old[0], rtol=1e-6, atol=1e-7)
    self.assertAllClose(new[1], old[1], rtol=1e-6, atol=1e-7)
    self.assertNotEmpty(variables)
    for got, want in zip(new[2], old[2]):
      self.assertAllClose(got, want, rtol=1e-5, atol=1e-7)
    # Not vacuous: every term and the gradient are non-zero.
    for value in new[1].values():
      self.assertGreater(float(value), 0.0)
    self.assertGreater(float(tf.linalg.global_norm(new[2])), 0.0)

  def test_gradient_term_is_the_squared_error_of_dm_dh(self):
    # order_1 = mean_b ||dm/dh_b - grad_target_b||^2 over all of h's axes.
    model = _model("vfbn", num_parts=2)
    batch = _batch(seed=5)
    h = model.parts[0](batch["image"], is_training=True)
    module = model.sg_modules[0]
    grad_target = tf.constant(np.random.RandomState(6).randn(*h.shape),
                              tf.float32)
    _, terms = decoupled.make_module_loss("vfbn")(
        module, h, batch["label"], tf.zeros([4]), grad_target)
    dm = module.synthetic_gradient(h, batch["label"])
    want = tf.reduce_mean(tf.reduce_sum(tf.square(dm - grad_target),
                                        axis=[1, 2, 3]))
    self.assertAllClose(terms["order_1"], want, rtol=1e-5)


if __name__ == "__main__":
  tf.test.main()
