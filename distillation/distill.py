"""Policy distillation objectives, metrics and the student training loop.

Regular distillation minimises the paper's

    D_KL(pi_student(.|s) || pi_teacher(.|s))
        = sum_a pi_student(a|s) (log pi_student(a|s) - log pi_teacher(a|s))

averaged over recorded states (note the direction: the student's policy is
the first argument). Sobolev distillation adds

    lambda * E_v || D_s<log pi_teacher(s), v> - D_s<log pi_student(s), v> ||

with v uniform on the unit sphere of the action space R^A and s the float
input in [0, 1], image-shaped `[B, 84, 84, 4]` (the core differentiates with
respect to inputs of any shape, so the projections `D_s<log pi, v>` are
shaped like s; no flattening). It uses the core
`sobolev.SobolevLoss(order=1, mode='stochastic', loss_fns=[kl, 'l2_norm'],
unbiased_scaling=False)` on the student's log-policy
(`StudentNet.log_policy`) with `target_fn=` the teacher's
(`TeacherNet.log_policy`), so the teacher's projections are computed by autodiff through the teacher with the
same v as the student's (one v per state and step, `num_projections` to
average more). Both methods train with the core `make_train_step`.

The student loop keeps the training states on the device and gathers each
minibatch inside the compiled step, running `eval_every` steps per call
(`make_train_step(steps_per_call=...)`), so nothing crosses between Python
and TensorFlow between evaluations. `StudentConfig(device_loop=False)` runs
the straightforward loop instead (a host-side minibatch and one call per
step); both draw the same minibatches and random directions and give the
same numbers (tested).
"""

import dataclasses
from typing import (Any, Callable, Dict, Iterator, Mapping, Optional,
                    Sequence, Tuple)

import numpy as np
import sonnet as snt
import tensorflow as tf

import sobolev
from sobolev import training
from sobolev.experiment import metrics
from distillation import networks

METHODS = ("regular", "sobolev")


def kl_student_teacher(student_log_probs: tf.Tensor,
                       teacher_log_probs: tf.Tensor) -> tf.Tensor:
  """Mean over states of D_KL(pi_student || pi_teacher).

  Usable as the order-0 loss of `SobolevLoss` (prediction = student,
  target = teacher; the target gets no gradient).

  Args:
    student_log_probs: `[B, A]` log pi_student.
    teacher_log_probs: `[B, A]` log pi_teacher.

  Returns:
    A scalar.
  """
  teacher_log_probs = tf.stop_gradient(teacher_log_probs)
  per_state = tf.reduce_sum(
      tf.exp(student_log_probs) * (student_log_probs - teacher_log_probs),
      axis=-1)
  return tf.reduce_mean(per_state)


def action_error(student_log_probs: tf.Tensor,
                 teacher_log_probs: tf.Tensor) -> tf.Tensor:
  """Fraction of states where the student's argmax action differs."""
  return tf.reduce_mean(tf.cast(
      tf.not_equal(tf.argmax(student_log_probs, -1),
                   tf.argmax(teacher_log_probs, -1)), tf.float32))


def make_loss(method: str, sobolev_weight: float = 1.0, seed: int = 0,
              num_projections: int = 1) -> sobolev.SobolevLoss:
  """The distillation loss of `method` as a core `SobolevLoss`.

  Args:
    method: 'regular' (order 0: the KL only) or 'sobolev' (KL + lambda *
      projected input-gradient error).
    sobolev_weight: lambda (>= 0), used by 'sobolev'.
    seed: seed of the random directions v.
    num_projections: Monte Carlo draws of v per state.

  Returns:
    A `SobolevLoss`; terms are `order_0` (KL) and, for 'sobolev', `order_1`.

  Raises:
    ValueError: for an unknown method or a negative weight.
  """
  if method not in METHODS:
    raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
  if method == "regular":
    return sobolev.SobolevLoss(order=0, loss_fns=kl_student_teacher)
  return sobolev.SobolevLoss(
      order=1, loss_fns=[kl_student_teacher, "l2_norm"],
      weights=[1.0, float(sobolev_weight)], mode="stochastic",
      num_projections=num_projections, unbiased_scaling=False, seed=seed)


@dataclasses.dataclass
class StudentConfig:
  """Hyper-parameters of one student run."""
  method: str = "regular"
  learning_rate: float = 1e-3
  sobolev_weight: float = 1.0
  batch_size: int = 32
  steps: int = 2000
  eval_every: int = 100
  seed: int = 0
  num_projections: int = 1
  hidden: int = 128
  channels: tuple = (16, 32)
  device_loop: bool = True
  # Evaluations in a row with bit-identical student parameters (or an
  # identical training loss) after which the run stops as stalled; 0: never.
  stall_patience: int = 3

  def __post_init__(self):
    """Checks the fields when the config is made.

    Raises:
      ValueError: naming the first bad field.
    """
    if self.method not in METHODS:
      raise ValueError(f"`method` must be one of {METHODS}, got "
                       f"{self.method!r}.")
    for name in ("batch_size", "steps", "eval_every", "num_projections",
                 "hidden"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
    if (isinstance(self.stall_patience, bool) or
        not isinstance(self.stall_patience, int) or self.stall_patience < 0):
      raise ValueError("`stall_patience` must be an int >= 0, got "
                       f"{self.stall_patience!r}.")
    if not self.learning_rate > 0:
      raise ValueError(f"`learning_rate` must be > 0, got "
                       f"{self.learning_rate}.")
    if not self.sobolev_weight >= 0:
      raise ValueError(f"`sobolev_weight` must be >= 0, got "
                       f"{self.sobolev_weight}.")


def to_float(states: np.ndarray) -> np.ndarray:
  """uint8 `[B, 84, 84, 4]` -> float32 `[B, 84, 84, 4]` in [0, 1]."""
  return states.astype(np.float32) / 255.0


def device_objective(loss: sobolev.SobolevLoss, method: str,
                     teacher_fn: Callable[[tf.Tensor], tf.Tensor],
                     states: tf.Tensor, log_probs: tf.Tensor):
  """A `loss_fn(student, batch)` whose batch is `{'idx': [B] int32}`.

  The minibatch is gathered from device-resident `states` `[N, 84, 84, 4]`
  uint8 (and, for 'regular', the recorded `log_probs` `[N, A]`) inside the
  compiled step, and scaled exactly as `to_float` does. `student` is a
  `StudentNet`; the loss differentiates `student.log_policy` (and, for
  'sobolev', `teacher_fn`) with respect to the image-shaped float states.
  """

  def loss_fn(student, batch):
    idx = batch["idx"]
    x = tf.cast(tf.gather(states, idx), tf.float32) / 255.0
    if method == "regular":
      return loss(student.log_policy, x,
                  targets=(tf.gather(log_probs, idx),))[:2]
    return loss(student.log_policy, x, target_fn=teacher_fn)[:2]

  return loss_fn


def host_objective(loss: sobolev.SobolevLoss, method: str,
                   teacher_fn: Callable[[tf.Tensor], tf.Tensor]):
  """A `loss_fn(student, batch)` for host-side batches.

  'regular' batches are `{'x': [B, 84, 84, 4] float in [0, 1], 'targets':
  ([B, A] teacher log-probabilities,)}`; 'sobolev' batches `{'x': [B, 84,
  84, 4]}` (`teacher_fn`, `[B, 84, 84, 4] -> [B, A]` log-probabilities, is
  differentiated through). `student` is a `StudentNet` (anything with a
  `log_policy` method); its `log_policy` is the loss's model.
  """

  def loss_fn(student, batch):
    if method == "regular":
      return loss(student.log_policy, batch["x"],
                  targets=batch["targets"])[:2]
    return loss(student.log_policy, batch["x"], target_fn=teacher_fn)[:2]

  return loss_fn


def evaluate(model: Callable[[tf.Tensor], tf.Tensor], states: np.ndarray,
             teacher_log_probs: np.ndarray,
             batch_size: int = 500) -> Dict[str, float]:
  """Action error and D_KL(student || teacher) of `model` on states.

  Args:
    model: student log-policy, `[B, 84, 84, 4]` float in [0, 1] -> `[B, A]`
      (e.g. `StudentNet.log_policy`).
    states: `[N, 84, 84, 4]` uint8.
    teacher_log_probs: `[N, A]` recorded teacher log-probabilities.
    batch_size: evaluation batch size.

  Returns:
    `{'action_error': ..., 'kl': ...}` (means over the N states).
  """
  errors, kls = [], []
  for i in range(0, states.shape[0], batch_size):
    x = tf.constant(to_float(states[i:i + batch_size]))
    t = tf.constant(teacher_log_probs[i:i + batch_size])
    s = model(x)
    n = float(x.shape[0])
    errors.append(float(action_error(s, t)) * n)
    kls.append(float(kl_student_teacher(s, t)) * n)
  n = float(states.shape[0])
  return {"action_error": sum(errors) / n, "kl": sum(kls) / n}


def check_data(train_states: np.ndarray, train_log_probs: np.ndarray
               ) -> None:
  """Raises ValueError unless the training arrays are non-empty and match."""
  if train_states.shape[0] != train_log_probs.shape[0]:
    raise ValueError("`train_states` and `train_log_probs` differ in length.")
  if train_states.shape[0] < 1:
    raise ValueError("`train_states` is empty.")


def build_student(config: StudentConfig, num_actions: int,
                  state_shape) -> networks.StudentNet:
  """A `StudentNet` of `config`'s sizes, initialised from `config.seed`."""
  tf.random.set_seed(config.seed)
  student = networks.StudentNet(num_actions, channels=config.channels,
                                hidden=config.hidden)
  student(tf.zeros([1, *state_shape]))  # Builds the variables.
  return student


def intervals(steps: int, eval_every: int) -> Iterator[int]:
  """The step counts between evaluations: evaluations fall on multiples of
  `eval_every` and on the last step."""
  step = 0
  while step < steps:
    k = min(eval_every - step % eval_every, steps - step)
    yield k
    step += k


class DeviceSteps:
  """`k` training steps per call on device-resident states.

  Each call draws `[k, batch_size]` indices from `rng` (the same sequence as
  `k` single draws) and runs `make_train_step(steps_per_call=k)`, compiled
  once per `k` (at most two sizes: `eval_every` and a last remainder).
  """

  def __init__(self, student: snt.Module, optimizer, objective,
               rng: np.random.Generator, num_states: int, batch_size: int):
    self._make = lambda k: training.make_train_step(
        student, optimizer, objective, steps_per_call=k)
    self._rng, self._n, self._batch_size = rng, num_states, batch_size
    self._fns = {}

  def compiled(self, k: int) -> bool:
    """Whether the `k`-step call is already compiled."""
    return k in self._fns

  def __call__(self, k: int) -> Dict[str, tf.Tensor]:
    """Runs `k` steps; returns their mean metrics."""
    if k not in self._fns:
      self._fns[k] = self._make(k)
    idx = self._rng.integers(0, self._n, size=(k, self._batch_size))
    batch = {"idx": tf.constant(idx.astype(np.int32))}
    if k == 1:
      batch = {"idx": batch["idx"][0]}
    return self._fns[k](batch)


class IntervalMeans:
  """Means of the training metrics over the steps since the last reset.

  `terms` maps a row name to a key of the step's output (`loss`,
  `order_0`, `order_1`); missing keys are skipped.
  """

  def __init__(self, terms: Sequence[Tuple[str, str]]):
    self._terms = terms
    self._sums: Dict[str, float] = {}
    self._count = 0

  def add(self, out: Mapping[str, Any], num_steps: int) -> None:
    """Adds `out`, means over `num_steps` steps."""
    for name, key in self._terms:
      if key in out:
        self._sums[name] = self._sums.get(name, 0.0) + float(
            out[key]) * num_steps
    self._count += num_steps

  def pop(self) -> Dict[str, float]:
    """`{'train_<name>': mean}` since the last `pop`; resets."""
    means = {f"train_{k}": v / max(self._count, 1)
             for k, v in self._sums.items()}
    self._sums, self._count = {}, 0
    return means


def train_student(config: StudentConfig,
                  teacher: snt.Module,
                  train_states: np.ndarray,
                  train_log_probs: np.ndarray,
                  eval_states: np.ndarray,
                  eval_log_probs: np.ndarray,
                  num_actions: int,
                  log: Optional[Callable[[str], None]] = None,
                  on_record: Optional[Callable[[Dict[str, float]],
                                               None]] = None,
                  return_model: bool = False):
  """Trains one student and evaluates it every `eval_every` steps.

  The minibatch sequence depends only on `config.seed`, so regular and
  Sobolev students with the same seed see the same batches and start from
  the same initial weights.

  Args:
    config: the run's hyper-parameters.
    teacher: a `TeacherNet` (differentiated through by 'sobolev').
    train_states: `[N, 84, 84, 4]` uint8 training states.
    train_log_probs: `[N, A]` the teacher's recorded log-probabilities.
    eval_states: `[M, 84, 84, 4]` uint8 held-out states.
    eval_log_probs: `[M, A]` the teacher's log-probabilities there.
    num_actions: A.
    log: optional progress printer (one line per evaluation).
    on_record: optional callback with each evaluation's row, as it is made
      (progress bars, TensorBoard).
    return_model: also return the trained student.

  Returns:
    One dict per evaluation (step 0, eval_every, ..., steps) with `step`,
    `test_action_error`, `test_kl`, `train_loss` (mean over the interval)
    and, for 'sobolev', `train_sobolev_term`; with `return_model`,
    `(history, student)` where `student` is the trained `StudentNet`
    (`student.log_policy`: `[B, 84, 84, 4]` uint8 or float in [0, 1] ->
    `[B, A]` log-probabilities).

  Raises:
    ValueError: for a bad config or mismatched data.
    errors.DivergenceError: (from `sobolev.experiment`) if the loss or a
      test metric becomes NaN or inf, or the student's parameters (or its
      training loss) stay exactly unchanged for `stall_patience`
      evaluations in a row; nothing is returned.
  """
  check_data(train_states, train_log_probs)
  student = build_student(config, num_actions, train_states.shape[1:])
  loss = make_loss(config.method, config.sobolev_weight, seed=config.seed,
                   num_projections=config.num_projections)
  optimizer = snt.optimizers.Adam(config.learning_rate)
  rng = np.random.default_rng(config.seed)
  means = IntervalMeans((("loss", "loss"), ("sobolev_term", "order_1")))
  evaluate_fn = _evaluator(config, student, eval_states, eval_log_probs, log)
  history = []

  def record(step):
    history.append(evaluate_fn(step, means.pop()))
    if on_record is not None:
      on_record(history[-1])

  record(0)
  steps = (_device_steps if config.device_loop else _host_steps)(
      config, student, optimizer, loss, teacher.log_policy, rng,
      train_states, train_log_probs)
  for step, k, out in steps:
    means.add(out, k)
    if step % config.eval_every == 0 or step == config.steps:
      record(step)
  return (history, student) if return_model else history


def _device_steps(config: StudentConfig, student, optimizer, loss, teacher_fn,
                  rng, train_states, train_log_probs):
  """Yields `(step, k, means of the k steps)` at every evaluation: the
  states stay on the device, `DeviceSteps` runs `k` steps per call."""
  objective = device_objective(loss, config.method, teacher_fn,
                               tf.constant(train_states),
                               tf.constant(train_log_probs, tf.float32))
  run = DeviceSteps(student, optimizer, objective, rng, train_states.shape[0],
                    config.batch_size)
  step = 0
  for k in intervals(config.steps, config.eval_every):
    out = run(k)
    step += k
    yield step, k, out


def _host_steps(config: StudentConfig, student, optimizer, loss, teacher_fn,
                rng, train_states, train_log_probs):
  """Yields `(step, 1, metrics)` after every step: one host-side minibatch
  (the indices `DeviceSteps` draws) and one call per step."""
  step_fn = training.make_train_step(
      student, optimizer, host_objective(loss, config.method, teacher_fn))
  for step in range(1, config.steps + 1):
    idx = rng.integers(0, train_states.shape[0], size=config.batch_size)
    batch = {"x": to_float(train_states[idx])}
    if config.method == "regular":
      batch["targets"] = (train_log_probs[idx],)
    yield step, 1, step_fn(batch)


def _evaluator(config: StudentConfig, student: snt.Module,
               eval_states: np.ndarray, eval_log_probs: np.ndarray,
               log: Optional[Callable[[str], None]]):
  """`evaluate(step, train_means) -> row` of `train_student`: test scores,
  finite and stall checks, the optional log line."""
  where = f"{config.method} student, seed {config.seed}"
  setting = f"the learning rate ({config.learning_rate:g})"
  if config.method == "sobolev":
    setting += f" or sobolev_weight ({config.sobolev_weight:g})"
  stalls = metrics.StallDetector(
      config.stall_patience, where,
      hint=f"{setting} is likely so large that every update is lost, or the "
      "learning rate so small that it rounds away; change it")

  def evaluate_at(step: int, train_means: Dict[str, float]):
    scores = evaluate(student.log_policy, eval_states, eval_log_probs)
    row = {"step": step, "test_action_error": scores["action_error"],
           "test_kl": scores["kl"], **train_means}
    row = metrics.finite_or_raise(row, f"{where}, step {step}",
                                  hint=f"lower {setting} or check the inputs")
    signals = {"parameters": metrics.fingerprint(student.trainable_variables)}
    if "train_loss" in row:
      signals["train_loss"] = row["train_loss"]
    stalls.update(step, **signals)
    if log is not None:
      log(f"  [{config.method} seed={config.seed}] step={step} "
          f"test_action_error={row['test_action_error']:.4f} "
          f"test_kl={row['test_kl']:.4f} "
          f"train_loss={row.get('train_loss', float('nan')):.4f}")
    return row

  return evaluate_at
