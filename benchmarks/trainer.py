"""Trains a group of benchmark models together as one batched computation.

A group is M runs (function, seed) of one training-set size and one method.
Their M networks live in one `StackedMLP` and are trained by one compiled
step built with the core `sobolev.training.make_train_step`. The objective is
M times the core `SobolevLoss` on the flattened `[M * B, 2]` batch, i.e. the
*sum* over models of each model's own mean loss; since each model's weights
only enter its own term and Adam is element-wise, this is exactly training the
M models separately (each with its own Adam moments).

Several steps run inside one `tf.function` call (`train_chunk`, a `tf.range`
loop around the core step): the core step is one step per call, and at 20 or
100 points per model one step takes milliseconds, so per-call Python overhead
would otherwise dominate.
"""

import dataclasses
import math
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from benchmarks import config as config_lib
from benchmarks import data
from benchmarks import functions
from benchmarks import scaling
from benchmarks import stacked_mlp
from sobolev import derivatives
from sobolev import sobolev_loss
from sobolev import training


@dataclasses.dataclass(frozen=True)
class Run:
  """One model: a function, a training-set size, a method and a seed."""
  function: str
  size: int
  method: str
  seed: int


def model_seed(function: str, seed: int) -> int:
  """Initialisation seed of a run; shared by its regular and Sobolev models."""
  return 1000 * (functions.NAMES.index(function) + 1) + seed


@dataclasses.dataclass
class TrainedGroup:
  """Trained stacked models of a group and what is needed to evaluate them."""
  runs: List[Run]
  model: stacked_mlp.StackedMLP
  scalers: List[scaling.Scaler]
  seconds: float

  def predict(self, index: int, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Values `[P]` and gradients `[P, 2]` of model `index` at `x [P, 2]`."""
    m = len(self.runs)
    u = np.zeros([m, x.shape[0], 2], np.float32)
    u[index] = self.scalers[index].inputs(x)
    v, dv = _value_and_gradient(self.model, tf.constant(u))
    return self.scalers[index].outputs(
        v.numpy()[index, :, 0].astype(np.float64),
        dv.numpy()[index].astype(np.float64))


def _value_and_gradient(model, u):
  """`u [M, P, 2]` -> `(values [M, P, 1], gradients [M, P, 2])`."""
  fn = getattr(model, "_benchmarks_value_and_gradient", None)
  if fn is None:
    # One compiled function per model, traced once for any number of points.
    @tf.function(input_signature=[tf.TensorSpec([None, None, 2], tf.float32)])
    def fn(points):
      shape = tf.shape(points)
      v, dv = derivatives.value_and_gradient(model,
                                             tf.reshape(points, [-1, 2]))
      return (tf.reshape(v, [shape[0], shape[1], 1]), tf.reshape(dv, shape))
    model._benchmarks_value_and_gradient = fn  # pylint: disable=protected-access
  return fn(u)


def _stack_targets(runs: Sequence[Run]):
  scalers, us, vs, dvs = [], [], [], []
  for run in runs:
    train = data.train_set(run.function, run.size, run.seed)
    if not (np.all(np.isfinite(train.y)) and np.all(np.isfinite(train.dy))):
      raise ValueError(f"Non-finite targets for {run}.")
    scaler = scaling.Scaler.fit(run.function, train)
    v, dv = scaler.targets(train.y, train.dy)
    scalers.append(scaler)
    us.append(scaler.inputs(train.x))
    vs.append(v[:, None])
    dvs.append(dv)
  as32 = lambda a: tf.constant(np.stack(a).astype(np.float32))
  return scalers, as32(us), as32(vs), as32(dvs)


def grad_weights(config: config_lib.Config, dv: tf.Tensor) -> tf.Tensor:
  """Per-model gradient weights `[M]`: `grad_weight / mean_n ||dv_n||^2`.

  Args:
    config: the protocol.
    dv: scaled training gradient targets, `[M, N, 2]`.
  """
  mean_sq = tf.reduce_mean(tf.reduce_sum(tf.square(dv), axis=2), axis=1)
  return config.grad_weight / tf.maximum(mean_sq, 1e-12)


def per_model_l2(weights: tf.Tensor):
  """The core L2 loss with a weight per stacked model.

  For a model-major batch of M models (rows `[m * B, (m + 1) * B)` belong to
  model m) this returns `mean over rows of weights[m] * ||error||^2`, i.e.
  `(1 / M) sum_m weights[m] * losses.l2(model m)`: each model gets the core
  `SobolevLoss` with its own order-1 weight. (`SobolevLoss` takes one scalar
  weight per order; this per-model weighting is the workaround.)

  Args:
    weights: `[M]` weights.

  Returns:
    A loss callable `(prediction, target) -> scalar` for `SobolevLoss`.
  """
  num_models = weights.shape[0]

  def loss(prediction, target):
    err = tf.square(prediction - tf.stop_gradient(target))
    per_example = tf.reduce_sum(
        tf.reshape(err, [tf.shape(err)[0], -1]), axis=1)
    per_model = tf.reshape(per_example, [num_models, -1])
    return tf.reduce_mean(weights[:, None] * per_model)

  return loss


def learning_rate(config: config_lib.Config, step: tf.Tensor) -> tf.Tensor:
  """Cosine decay from `learning_rate` to `learning_rate * final_lr_fraction`."""
  frac = tf.minimum(tf.cast(step, tf.float32) / float(config.steps), 1.0)
  final = config.final_lr_fraction
  cosine = 0.5 * (1.0 + tf.cos(math.pi * frac))
  return config.learning_rate * (final + (1.0 - final) * cosine)


def train_group(runs: Sequence[Run],
                config: config_lib.Config,
                on_progress: Optional[Callable[[int], None]] = None
               ) -> TrainedGroup:
  """Trains the runs of one (size, method) group together.

  Args:
    runs: M runs sharing `size` and `method`.
    config: the sweep configuration (protocol hyper-parameters).
    on_progress: called with the number of steps done after each chunk.

  Returns:
    The trained group.

  Raises:
    ValueError: if runs are empty or do not share size and method.
  """
  runs = list(runs)
  if not runs:
    raise ValueError("`runs` must not be empty.")
  size, method = runs[0].size, runs[0].method
  if any(r.size != size or r.method != method for r in runs):
    raise ValueError("All runs of a group must share size and method.")
  if method not in config_lib.METHODS:
    raise ValueError(f"Unknown method {method!r}; use one of "
                     f"{config_lib.METHODS}.")
  m = len(runs)
  scalers, u, v, dv = _stack_targets(runs)
  model = stacked_mlp.StackedMLP(
      m, 2, list(config.hidden_sizes) + [1],
      seeds=[model_seed(r.function, r.seed) for r in runs])
  lr = tf.Variable(config.learning_rate, trainable=False, dtype=tf.float32)
  optimizer = snt.optimizers.Adam(learning_rate=lr)
  sobolev = method == "sobolev"
  # Targets were checked for finiteness above, once, so the per-step
  # assertion is switched off.
  if not sobolev:
    loss = sobolev_loss.SobolevLoss(order=0, validate_targets=False)
  elif config.normalize_grad_weight:
    weights = grad_weights(config, dv)
    loss = sobolev_loss.SobolevLoss(
        order=1, loss_fns=["l2", per_model_l2(weights)], weights=1.0,
        validate_targets=False)
  else:
    loss = sobolev_loss.SobolevLoss(order=1, weights=[1.0, config.grad_weight],
                                    validate_targets=False)

  def objective(net, batch):
    total, terms = loss(net, batch["x"], targets=batch["targets"])
    return float(m) * total, terms  # Sum over models of per-model losses.

  step = training.make_train_step(model, optimizer, objective)
  full_batch = size <= config.batch_size
  batch_size = size if full_batch else config.batch_size
  sampler_seed = sum(model_seed(r.function, r.seed) for r in runs) % (2**31)

  def batch_at(t):
    if full_batch:
      xs, ys, dys = u, v, dv
    else:
      idx = tf.random.stateless_uniform(
          [m, batch_size], seed=tf.stack([sampler_seed, t]), maxval=size,
          dtype=tf.int32)
      xs = tf.gather(u, idx, batch_dims=1)
      ys = tf.gather(v, idx, batch_dims=1)
      dys = tf.gather(dv, idx, batch_dims=1)
    flat_x = tf.reshape(xs, [m * batch_size, 2])
    targets = (tf.reshape(ys, [m * batch_size, 1]),)
    if sobolev:
      targets += (tf.reshape(dys, [m * batch_size, 2]),)
    return {"x": flat_x, "targets": targets}

  @tf.function(jit_compile=config.jit_compile)
  def train_chunk(start, count):
    last = tf.constant(0.0)
    for i in tf.range(count):
      t = start + i
      lr.assign(learning_rate(config, t))
      last = step(batch_at(t))["loss"]
    return last

  begin = time.time()
  done = 0
  while done < config.steps:
    count = min(config.steps_per_call, config.steps - done)
    last_loss = float(train_chunk(tf.constant(done), tf.constant(count)))
    if not np.isfinite(last_loss):
      raise FloatingPointError(f"Training diverged (loss {last_loss}) for "
                               f"size {size}, method {method}.")
    done += count
    if on_progress is not None:
      on_progress(done)
  return TrainedGroup(runs=runs, model=model, scalers=scalers,
                      seconds=time.time() - begin)


def evaluate(group: TrainedGroup, sets: Sequence[data.DataSet],
             chunk: int = 2000) -> List[Tuple[float, float]]:
  """Test MSE of values and gradients, in original units, per model.

  Args:
    group: a trained group.
    sets: one evaluation set per run of the group (same sizes).
    chunk: points per model evaluated at once.

  Returns:
    `[(mse, grad_mse)]` per model: `mean (m(x) - f(x))^2` and
    `mean ||D m(x) - D f(x)||^2` (squared Euclidean norm of the 2-D gradient
    error, averaged over points).
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
