"""Trains a group of benchmark models together as one batched computation.

A group is M runs (function, seed) of one training-set size and one method.
Their M networks live in one `StackedMLP` and are trained by one compiled
step built with the core `sobolev.training.make_train_step`. The objective is
M times the core `SobolevLoss` on the flattened `[M * B, D]` batch, i.e. the
*sum* over models of each model's own mean loss; since each model's weights
only enter its own term and Adam is element-wise, this is exactly training the
M models separately (each with its own Adam moments). Each model's loss is
that of its protocol (`benchmarks.protocols`): a value weight `a` and
per-input gradient weights `c [D]`. For 'ours' (one weight per model) the
order-1 term is the core's `LossOutput.per_example_terms['order_1']` weighted
per model; for the other protocols the order-1 loss is an input-weighted L2
(`input_weighted_l2`) given to the core loss as its order-1 `loss_fns`.
All runs of a group share the input dimension D.

Several steps run inside one `tf.function` call (`train_chunk`, a `tf.range`
loop around the core step): the core step is one step per call, and at 20 or
100 points per model one step takes milliseconds, so per-call Python overhead
would otherwise dominate.
"""

import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from benchmarks import data
from benchmarks import functions
from benchmarks import lbfgs
from benchmarks import protocols
from benchmarks import report
from benchmarks import scaling
from benchmarks import stacked_mlp
from sobolev import derivatives
from sobolev import sobolev_loss
from sobolev import training
from sobolev.experiment import errors
from sobolev.experiment import metrics
from sobolev.experiment import schedules

# Training points per model on which the loss terms are logged after every
# compiled call (all of them for sets up to this size).
MONITOR_POINTS = 1000
# The optimisers of `config.optimizer`: Adam with a cosine schedule, or
# full-batch L-BFGS (`benchmarks.lbfgs`, `steps` = its iterations).
OPTIMIZERS = ("adam", "lbfgs")
DEFAULT_OPTIMIZER = "adam"
# Chunks in a row with every model's weights bit-identical before a group
# is stopped as stalled (`config.stall_patience`; 0: off).
DEFAULT_STALL_PATIENCE = 3
# Offset between a model's initialisation seed and its mini-batch seed, so
# that the two stateless streams never share a seed (init seeds are < 2**24).
_MINIBATCH_SEED_OFFSET = 2**24


@dataclasses.dataclass(frozen=True)
class Run:
  """One model: a function, a training-set size, a method and a seed."""
  function: str
  size: int
  method: str
  seed: int


def model_seed(function: str, seed: int) -> int:
  """Initialisation seed of a run; shared by its regular and Sobolev models.

  `1000 * (index + 1) + seed` with the function's `Benchmark.index` (0-6
  for the paper's seven, as published).
  """
  return 1000 * (functions.get(function).index + 1) + seed


def minibatch_seed(function: str, seed: int) -> int:
  """Mini-batch seed of a run (its own: independent of the other runs).

  Step t of the run draws its mini-batch indices from a stateless generator
  seeded by `(minibatch_seed, t)`. Shared by the run's regular and Sobolev
  models, so both see the same batches.
  """
  return _MINIBATCH_SEED_OFFSET + model_seed(function, seed)


@dataclasses.dataclass
class TrainedGroup:
  """Trained stacked models of a group and what is needed to evaluate them.

  Attributes:
    runs: the M runs, in stack order.
    model: the stacked networks.
    scalers: one scaler per run.
    value_weight: the value-term weight `a` (shared by the group).
    input_weights: `[M, D]` per-input gradient weights `c` of each model
      (zeros for regular models).
    seconds: wall-clock training time of the whole group.
    final_terms: each model's training loss terms after the last step
      (`'loss'`, `'value_mse'`, `'grad_mse'`, each `[M]`, model units; see
      `train_group`'s `on_chunk`).
    optimizer_status: for L-BFGS, `lbfgs.StackMinimizer.status()`
      (`converged`, `failed` `[M]`, `iterations`, `evaluations`); empty
      for Adam.
  """
  runs: List[Run]
  model: stacked_mlp.StackedMLP
  scalers: List[scaling.Scaler]
  value_weight: float
  input_weights: np.ndarray
  seconds: float
  final_terms: Dict[str, np.ndarray]
  optimizer_status: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def dim(self) -> int:
    """The input dimension D of the group's models."""
    return int(self.input_weights.shape[1])

  @property
  def grad_weights(self) -> np.ndarray:
    """`[M]` mean over inputs of `input_weights` (for 'ours' THE weight)."""
    return self.input_weights.mean(axis=1)

  def predict(self, index: int, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Values `[P]` and gradients `[P, D]` of model `index` at `x [P, D]`."""
    m = len(self.runs)
    u = np.zeros([m, x.shape[0], self.dim], np.float32)
    u[index] = self.scalers[index].inputs(x)
    v, dv = _value_and_gradient(self.model, tf.constant(u))
    return self.scalers[index].outputs(
        v.numpy()[index, :, 0].astype(np.float64),
        dv.numpy()[index].astype(np.float64))

  def mlp(self, index: int) -> snt.nets.MLP:
    """Model `index` as a plain `snt.nets.MLP` (a copy of its weights).

    The MLP maps scaled inputs `[N, D]` (see `scalers[index]`) to scaled
    values `[N, 1]`.
    """
    sizes = [int(w.shape[-1]) for w in self.model.weights]
    mlp = snt.nets.MLP(sizes, activation=stacked_mlp.activation_fn(
        self.model.activation), name="mlp")
    mlp(tf.zeros([1, self.dim]))
    for layer, (w, b) in enumerate(zip(self.model.weights, self.model.biases)):
      mlp._layers[layer].w.assign(w[index])  # pylint: disable=protected-access
      mlp._layers[layer].b.assign(b[index])  # pylint: disable=protected-access
    return mlp


def _value_and_gradient(model, u):
  """`u [M, P, D]` -> `(values [M, P, 1], gradients [M, P, D])`."""
  fn = getattr(model, "_benchmarks_value_and_gradient", None)
  if fn is None:
    dim = int(model.weights[0].shape[1])

    # One compiled function per model, traced once for any number of points.
    @tf.function(input_signature=[tf.TensorSpec([None, None, dim],
                                                tf.float32)])
    def fn(points):
      shape = tf.shape(points)
      v, dv = derivatives.value_and_gradient(model,
                                             tf.reshape(points, [-1, dim]))
      return (tf.reshape(v, [shape[0], shape[1], 1]), tf.reshape(dv, shape))
    model._benchmarks_value_and_gradient = fn  # pylint: disable=protected-access
  return fn(u)


def _stack_targets(runs: Sequence[Run], protocol: str):
  scalers, us, vs, dvs = [], [], [], []
  for run in runs:
    train = data.train_set(run.function, run.size, run.seed)
    if not (np.all(np.isfinite(train.y)) and np.all(np.isfinite(train.dy))):
      raise ValueError(f"Non-finite targets for {run}.")
    scaler = scaling.Scaler.fit(run.function, train, protocol)
    v, dv = scaler.targets(train.y, train.dy)
    scalers.append(scaler)
    us.append(scaler.inputs(train.x))
    vs.append(v[:, None])
    dvs.append(dv)
  as32 = lambda a: tf.constant(np.stack(a).astype(np.float32))
  return scalers, as32(us), as32(vs), as32(dvs)


def input_weighted_l2(row_weights: tf.Tensor):
  """An order-1 loss for `SobolevLoss`: squared errors weighted per input.

  Args:
    row_weights: `[N, D]` weight of each row's (example's) input-gradient
      errors; for a model-major stacked batch, model m's `c` repeated on its
      B rows.

  Returns:
    A per-example loss `(prediction, target) -> [N]`, with prediction and
    target the Jacobians `[N, 1, D]`:
    `sum_j row_weights[n, j] (prediction[n, 0, j] - target[n, 0, j])^2`.
  """

  def loss(prediction, target):
    err = tf.square(prediction - tf.stop_gradient(target))
    err = tf.reshape(err, [tf.shape(err)[0], -1])
    return tf.reduce_sum(row_weights * err, axis=1)

  return loss


def _core_loss(method: str, protocol: str, value_weight: float,
               input_weights: tf.Tensor, batch_size: int):
  """The core `SobolevLoss` of a group, and 'ours' per-model weights `[M]`."""
  protocols.check(protocol)
  if method != "sobolev":
    return sobolev_loss.SobolevLoss(order=0, validate_targets=False), None
  if protocol == "ours":
    return (sobolev_loss.SobolevLoss(order=1, validate_targets=False),
            input_weights[:, 0])
  row_weights = tf.repeat(input_weights, batch_size, axis=0)
  return sobolev_loss.SobolevLoss(
      order=1, loss_fns=["l2", input_weighted_l2(row_weights)],
      weights=[float(value_weight), 1.0], validate_targets=False), None


def make_objective(method: str, protocol: str, value_weight: float,
                   input_weights: tf.Tensor, batch_size: int):
  """The training objective of a group: the sum over models of their losses.

  Built on the core `SobolevLoss` (order 0 for regular models, 1 for
  Sobolev). With M models of B rows each (model-major), model m's loss is
  `a * mean_b (v - t)^2 + mean_b sum_j c_mj (dv_j - dt_j)^2`:
    * 'ours' (one weight per model, `c_mj = w_m`): the core loss's
      `per_example_terms['order_1']` (squared gradient-error norms), weighted
      by model: `M * (terms['order_0'] + mean_rows(w_row * l1_row))`;
    * other protocols: the core loss with order weights `[a, 1]` and the
      order-1 loss `input_weighted_l2` (rows weighted by their model's c).
  Targets were checked for finiteness once, so the core's per-step target
  assertion is switched off.

  Args:
    method: 'regular' or 'sobolev'.
    protocol: one of `protocols.NAMES`.
    value_weight: `a` (ignored for regular models, whose loss is the value
      MSE).
    input_weights: `[M, D]` float32 `c`.
    batch_size: B, rows per model in every batch.

  Returns:
    `objective(net, batch) -> (M * mean loss, terms)` for
    `sobolev.training.make_train_step`, where `batch` holds `'x'`
    `[M * B, D]` and `'targets'` (values `[M * B, 1]`, and for Sobolev
    gradients `[M * B, D]`).
  """
  m = int(input_weights.shape[0])
  loss, model_weights = _core_loss(method, protocol, value_weight,
                                   input_weights, batch_size)

  def objective(net, batch):
    out = loss(net, batch["x"], targets=batch["targets"])
    if model_weights is not None:
      # sum_m w_m (mean over model m's rows of its order-1 errors) / M.
      per_model = tf.reshape(out.per_example_terms["order_1"], [m, -1])
      total = out.terms["order_0"] + tf.reduce_mean(
          model_weights[:, None] * per_model)
    else:
      total = out.total
    # M times the mean over the M * B rows: the sum over models of each
    # model's mean loss. The gradient reaching a model is its error terms
    # times fl(M / (M * B)) = fl(1 / B) (a correctly rounded division), the
    # same whatever M is.
    return float(m) * total, out.terms

  return objective


def make_per_model_loss(method: str, protocol: str, value_weight: float,
                        input_weights: tf.Tensor, batch_size: int):
  """Each model's own loss (the one `make_objective` sums), as `[M]`.

  For optimisers that need one value per model (batched L-BFGS). Same
  arguments as `make_objective`.

  Returns:
    `per_model(net, batch) -> [M]`: model m's
    `a * mean_b (v - t)^2 + mean_b sum_j c_mj (dv_j - dt_j)^2` over its own
    B rows.
  """
  m = int(input_weights.shape[0])
  loss, model_weights = _core_loss(method, protocol, value_weight,
                                   input_weights, batch_size)

  def per_model(net, batch):
    out = loss(net, batch["x"], targets=batch["targets"])
    rows = lambda t: tf.reduce_mean(tf.reshape(t, [m, -1]), axis=1)
    if model_weights is not None:
      return (rows(out.per_example_terms["order_0"]) +
              model_weights * rows(out.per_example_terms["order_1"]))
    return rows(out.per_example)

  return per_model


def learning_rate(config: Any, step: Any) -> Any:
  """Cosine decay from `learning_rate` to `learning_rate * final_lr_fraction`."""
  return schedules.cosine(config.learning_rate, step, config.steps,
                          config.final_lr_fraction)


def _monitor(model, u, v, dv, value_weight, input_weights):
  """A function returning each model's loss terms on its training points.

  Args:
    model: the stack.
    u, v, dv: `[M, P, D]`, `[M, P, 1]`, `[M, P, D]` scaled training inputs
      and targets (the first P points of each training set).
    value_weight: the value-term weight `a`.
    input_weights: `[M, D]` per-input gradient weights `c` (zeros for
      regular models).

  Returns:
    `() -> {'loss', 'value_mse', 'grad_mse'}`, each `[M]` numpy: the mean
    squared value error, the mean squared norm of the input-gradient error
    (both in model units) and the model's loss
    `a * value_mse + sum_j c_j * mean squared error of input j`.
  """

  def terms() -> Dict[str, np.ndarray]:
    pv, pdv = _value_and_gradient(model, u)
    value = tf.reduce_mean(tf.reduce_sum(tf.square(pv - v), axis=2), axis=1)
    per_input = tf.reduce_mean(tf.square(pdv - dv), axis=1)
    value, per_input = value.numpy(), per_input.numpy()
    return {"loss": value_weight * value +
                    np.sum(input_weights * per_input, axis=1),
            "value_mse": value, "grad_mse": per_input.sum(axis=1)}

  return terms


def describe(run: Run) -> str:
  """`'booth, 20 points, sobolev, seed 0'`."""
  return f"{run.function}, {run.size} points, {run.method}, seed {run.seed}"


def train_group(runs: Sequence[Run],
                config: Any,
                on_progress: Optional[Callable[[int], None]] = None,
                on_chunk: Optional[Callable[[int, Dict[str, np.ndarray]],
                                            None]] = None
               ) -> TrainedGroup:
  """Trains the runs of one (size, method) group together.

  Each model's numbers depend only on its own run and the protocol: its
  initial weights and mini-batches are seeded by its own function and seed,
  and its gradient is exactly that of its own loss (tested), so a model
  trained alone and the same model trained in any group agree.

  Args:
    runs: M runs sharing `size` and `method`.
    config: the protocol: `steps`, `learning_rate`, `final_lr_fraction`,
      `batch_size`, `grad_weight`, `normalize_grad_weight`, `hidden_sizes`,
      `steps_per_call`, `jit_compile`, and optionally `protocol` (default
      'ours'), `dml_lambda`, `activation` (default 'relu', see
      `stacked_mlp.ACTIVATIONS`) and `optimizer` ('adam', the default, or
      'lbfgs': full batch, `steps` iterations, no learning rate) (a
      `ConfigDict` or any object with these attributes).
    on_progress: called with the number of steps done after each chunk.
    on_chunk: called with `(steps done, terms)` after each chunk, where
      `terms` maps 'loss', 'value_mse', 'grad_mse' and 'learning_rate' to
      `[M]` arrays (training loss terms of each model, `_monitor`).

  Returns:
    The trained group.

  Raises:
    ValueError: if runs are empty or do not share size, method and input
      dimension.
    errors.DivergenceError: if a model's loss becomes NaN or infinite.
  """
  runs = list(runs)
  dim = _check_group(runs)
  size, method = runs[0].size, runs[0].method
  protocol = getattr(config, "protocol", protocols.DEFAULT)
  optimizer = getattr(config, "optimizer", DEFAULT_OPTIMIZER)
  scalers, u, v, dv = _stack_targets(runs, protocol)
  model = stacked_mlp.StackedMLP(
      len(runs), dim, list(config.hidden_sizes) + [1],
      seeds=[model_seed(r.function, r.seed) for r in runs],
      activation=getattr(config, "activation",
                         stacked_mlp.DEFAULT_ACTIVATION))
  # L-BFGS is full batch whatever the size.
  full_batch = optimizer == "lbfgs" or size <= config.batch_size
  batch_size = size if full_batch else config.batch_size
  value_weight, input_weights = protocols.loss_weights(
      config, method, dv, np.stack([sc.half_width for sc in scalers]))
  loss_args = (method, protocol, value_weight, input_weights, batch_size)
  after_chunk, terms = _chunk_hook(
      runs, config, model, (u, v, dv), value_weight,
      input_weights.numpy().astype(np.float64), on_progress, on_chunk)
  begin = time.time()
  batch = _batch_fn(u, v, dv, batch_size, full_batch, method == "sobolev",
                    [minibatch_seed(r.function, r.seed) for r in runs])
  if optimizer == "adam":
    _train_adam(model, config, make_objective(*loss_args), batch, after_chunk)
    extra = {}
  else:
    extra = _train_lbfgs(model, config, make_per_model_loss(*loss_args),
                         batch(tf.constant(0)), after_chunk)
  return TrainedGroup(runs=runs, model=model, scalers=scalers,
                      value_weight=float(value_weight),
                      input_weights=input_weights.numpy().astype(np.float64),
                      seconds=time.time() - begin,
                      final_terms={k: terms[k] for k in
                                   ("loss", "value_mse", "grad_mse")},
                      optimizer_status=extra)


def _chunk_hook(runs: Sequence[Run], config: Any, model, targets,
                value_weight: float, input_weights: np.ndarray,
                on_progress: Optional[Callable[[int], None]],
                on_chunk: Optional[Callable[[int, Dict[str, np.ndarray]],
                                            None]]):
  """What runs after every compiled chunk: the group's evaluation.

  Args:
    runs: the group's M runs.
    config: the protocol (see `train_group`).
    model: the stack.
    targets: `(u, v, dv)`, the stacked scaled training inputs and targets.
    value_weight, input_weights: the loss weights `a` and `c [M, D]`.
    on_progress, on_chunk: see `train_group`.

  Returns:
    `(after_chunk, terms)`: `after_chunk(steps done, last loss=None)`
    checks for a stall (Adam: every weight unchanged for
    `stall_patience` chunks), computes each model's loss terms on its
    training points (`_monitor`) into `terms`, raises on a non-finite term
    or loss, then calls `on_chunk` and `on_progress`.
  """
  size, method, m = runs[0].size, runs[0].method, len(runs)
  adam = getattr(config, "optimizer", DEFAULT_OPTIMIZER) == "adam"
  points = min(size, MONITOR_POINTS)
  monitor = _monitor(model, *(t[:, :points] for t in targets), value_weight,
                     input_weights)
  terms = {}
  stalls = metrics.StallDetector(
      int(getattr(config, "stall_patience", DEFAULT_STALL_PATIENCE)),
      f"{size} points, {method}, {m} models", unit="step",
      hint=f"the learning rate ({getattr(config, 'learning_rate', None)}) is "
      "likely so small that every update rounds away; raise it")

  def after_chunk(done, last_loss=None):
    if adam:
      # Every model of the group frozen: a setting, not one dead model.
      stalls.update(done, parameters=metrics.fingerprint(model.parameters))
    terms.update(monitor())
    for i, run in enumerate(runs):
      metrics.finite_or_raise({k: t[i] for k, t in terms.items()},
                              where=f"{describe(run)}, step {done}")
    if last_loss is not None and not np.isfinite(last_loss):
      raise errors.DivergenceError(
          f"Training diverged (size {size}, {method}, step {done}): the "
          f"group's loss is {last_loss}. No result was written; lower the "
          "learning rate.")
    if on_chunk is not None:
      # The learning rate of the chunk's last step (0 for L-BFGS).
      rate = learning_rate(config, done - 1) if adam else 0.0
      on_chunk(done, {**terms, "learning_rate": np.full([m], rate)})
    if on_progress is not None:
      on_progress(done)

  return after_chunk, terms


def _check_group(runs: Sequence[Run]) -> int:
  """Checks that runs share size, method and D; returns D."""
  if not runs:
    raise ValueError("`runs` must not be empty.")
  size, method = runs[0].size, runs[0].method
  if any(r.size != size or r.method != method for r in runs):
    raise ValueError("All runs of a group must share size and method.")
  if method not in report.METHODS:
    raise ValueError(f"Unknown method {method!r}; use one of "
                     f"{report.METHODS}.")
  dims = {functions.get(r.function).dim for r in runs}
  if len(dims) != 1:
    raise ValueError(f"All runs of a group must share the input dimension, "
                     f"got {sorted(dims)}.")
  return dims.pop()


def _batch_fn(u, v, dv, batch_size, full_batch, sobolev, seeds):
  """`t -> batch` of step t: `{'x': [M * B, D], 'targets': (...)}`."""
  m, size, dim = (int(n) for n in u.shape)
  seeds = tf.constant(seeds, tf.int32)

  def batch_at(t):
    if full_batch:
      xs, ys, dys = u, v, dv
    else:
      # One stateless draw per model, seeded by (its own seed, step).
      idx = tf.stack([
          tf.random.stateless_uniform([batch_size],
                                      seed=tf.stack([seeds[i], t]),
                                      maxval=size, dtype=tf.int32)
          for i in range(m)])
      xs = tf.gather(u, idx, batch_dims=1)
      ys = tf.gather(v, idx, batch_dims=1)
      dys = tf.gather(dv, idx, batch_dims=1)
    flat_x = tf.reshape(xs, [m * batch_size, dim])
    targets = (tf.reshape(ys, [m * batch_size, 1]),)
    if sobolev:
      targets += (tf.reshape(dys, [m * batch_size, dim]),)
    return {"x": flat_x, "targets": targets}

  return batch_at


def _train_adam(model, config, objective, batch_at, after_chunk) -> None:
  """Adam with the cosine schedule, `steps_per_call` steps per call."""
  lr = tf.Variable(config.learning_rate, trainable=False, dtype=tf.float32)
  optimizer = snt.optimizers.Adam(learning_rate=lr)
  step = training.make_train_step(model, optimizer, objective)

  @tf.function(jit_compile=config.jit_compile)
  def train_chunk(start, count):
    last = tf.constant(0.0)
    for i in tf.range(count):
      t = start + i
      lr.assign(learning_rate(config, t))
      last = step(batch_at(t))["loss"]
    return last

  done = 0
  while done < config.steps:
    count = min(config.steps_per_call, config.steps - done)
    last_loss = float(train_chunk(tf.constant(done), tf.constant(count)))
    done += count
    after_chunk(done, last_loss)


def _train_lbfgs(model, config, per_model_loss, batch, after_chunk
                ) -> Dict[str, Any]:
  """Batched full-batch L-BFGS (`benchmarks.lbfgs`), `steps` iterations at
  most; returns each model's optimiser status (converged/failed, and the
  group's iterations and loss evaluations)."""
  params = model.parameters

  def loss_of(values):
    weights, biases = values[0::2], values[1::2]
    return per_model_loss(lambda x: model.apply(weights, biases, x), batch)

  minimizer = lbfgs.minimize(params, loss_of, config.steps,
                             chunk=config.steps_per_call,
                             on_chunk=after_chunk)
  return minimizer.status()


def evaluate(group: TrainedGroup, sets: Sequence[data.DataSet],
             chunk: int = 2000) -> List[Tuple[float, float]]:
  """Test MSE of values and gradients, in original units, per model.

  Args:
    group: a trained group.
    sets: one evaluation set per run of the group (same sizes).
    chunk: points per model evaluated at once.

  Returns:
    `[(mse, grad_mse)]` per model: `mean (m(x) - f(x))^2` and
    `mean ||D m(x) - D f(x)||^2` (squared Euclidean norm of the D-dimensional
    gradient error, averaged over points).
  """
  m = len(group.runs)
  n = len(sets[0])
  if len(sets) != m or any(len(s) != n for s in sets):
    raise ValueError("Need one evaluation set per model, all of one size.")
  u = np.stack([sc.inputs(s.x) for sc, s in zip(group.scalers, sets)])
  preds_v, preds_dv = [], []
  for lo in range(0, n, chunk):
    v, dv = _value_and_gradient(group.model,
                                tf.constant(u[:, lo:lo + chunk], tf.float32))
    preds_v.append(v.numpy()[..., 0])
    preds_dv.append(dv.numpy())
  v = np.concatenate(preds_v, axis=1).astype(np.float64)
  dv = np.concatenate(preds_dv, axis=1).astype(np.float64)
  out = []
  for i, (sc, s) in enumerate(zip(group.scalers, sets)):
    y, dy = sc.outputs(v[i], dv[i])
    out.append((float(np.mean((y - s.y)**2)),
                float(np.mean(np.sum((dy - s.dy)**2, axis=1)))))
  return out
