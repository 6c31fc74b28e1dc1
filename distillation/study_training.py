"""The student loop of the distillation study (issue 20).

`train` is `distill.train_student`'s device loop (the same initial weights,
minibatches and random directions for a given seed, so a regular or
`stochastic_p1` student gives the same test numbers as `train_student`;
tested) with what the study needs on top:

* any Sobolev term variant (`sobolev_terms`), with the 'initial'
  normalisation's scale given by the caller;
* several evaluation sets at every evaluation (e.g. a fixed sample of the
  *training* states, the validation games and the test games), each giving
  `<set>_kl` and `<set>_action_error`;
* the optimised terms separately (`train_kl_term`, `train_sobolev_term`:
  unweighted means over the interval's minibatches), and, with a
  `GradientProbe`, the published gradient error `E_v ||J_t^T v - J_s^T v||`
  (fixed directions) of every student on a fixed sample of training states
  as `probe_gradient_error` (regular students included: it says how far
  their input gradients are from the teacher's);
* the training time: `train_seconds` over `timed_steps` steps (cumulative;
  evaluations and the first, compiling call of each compiled size left
  out).

`early_stopping(history)` picks the evaluation with the lowest validation KL.
"""

import dataclasses
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from distillation import distill
from distillation import networks
from distillation import sobolev_terms
from sobolev import derivatives
from sobolev import sampling
from sobolev import training
from sobolev.experiment import metrics

EvalSets = Mapping[str, Tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass
class GradientProbe:
  """Fixed states, directions and the teacher's projections on them.

  Attributes:
    x: `[N, 84, 84, 4]` float32 states in [0, 1].
    v: `[N, A]` fixed unit directions.
    teacher_projections: `[N, 84, 84, 4]` `D_s<log pi_t(s), v>`.
  """
  x: tf.Tensor
  v: tf.Tensor
  teacher_projections: tf.Tensor


def make_probe(teacher_fn: Callable[[tf.Tensor], tf.Tensor],
               states: np.ndarray, num_actions: int,
               seed: int = 0) -> GradientProbe:
  """A `GradientProbe` on uint8 `states` `[N, 84, 84, 4]` (directions from
  `seed`)."""
  x = tf.constant(distill.to_float(states))
  v = sampling.unit_sphere([states.shape[0]], num_actions, seed=seed)
  _, proj = derivatives.value_and_vjp(teacher_fn, x, v)
  return GradientProbe(x, v, proj)


def probe_error(student_fn: Callable[[tf.Tensor], tf.Tensor],
                probe: GradientProbe, batch_size: int = 250) -> float:
  """Mean over the probe's states of `||J_t^T v - J_s^T v||`."""
  total = 0.0
  n = int(probe.x.shape[0])
  for i in range(0, n, batch_size):
    _, proj = derivatives.value_and_vjp(student_fn, probe.x[i:i + batch_size],
                                        probe.v[i:i + batch_size])
    diff = tf.reshape(proj - probe.teacher_projections[i:i + batch_size],
                      [proj.shape[0], -1])
    total += float(tf.reduce_sum(tf.norm(diff, axis=1)))
  return total / n


def early_stopping(history: List[Mapping[str, float]],
                   key: str = "validation_kl") -> Mapping[str, float]:
  """The evaluation with the lowest `key` (the earliest among ties).

  Raises:
    ValueError: for an empty history or rows without `key`.
  """
  if not history:
    raise ValueError("`history` is empty.")
  if any(key not in h for h in history):
    raise ValueError(f"Every row of `history` needs {key!r}.")
  return min(history, key=lambda h: (h[key], h["step"]))


def train(config: distill.StudentConfig,
          variant: sobolev_terms.Variant,
          teacher: snt.Module,
          train_states: np.ndarray,
          train_log_probs: np.ndarray,
          eval_sets: EvalSets,
          num_actions: int,
          scale: float = 1.0,
          probe: Optional[GradientProbe] = None,
          on_record: Optional[Callable[[Dict[str, float]], None]] = None
         ) -> Tuple[List[Dict[str, float]], snt.Module]:
  """Trains one student and evaluates it every `eval_every` steps.

  Args:
    config: the run's hyper-parameters (`device_loop` must be True;
      `num_projections` is ignored: the variant's is used).
    variant: the Sobolev term (used when `config.method` is 'sobolev').
    teacher: a `TeacherNet` (`log_policy`: `[B, 84, 84, 4]` -> `[B, A]`).
    train_states: `[N, 84, 84, 4]` uint8 training states.
    train_log_probs: `[N, A]` the teacher's recorded log-probabilities.
    eval_sets: name -> (`[M, 84, 84, 4]` uint8 states, `[M, A]` teacher
      log-probabilities), evaluated at every evaluation.
    num_actions: A.
    scale: the 'initial' normalisation's `m` (`sobolev_terms.make_loss`).
    probe: optional gradient probe (`make_probe`).
    on_record: optional callback with each evaluation's row.

  Returns:
    `(history, student)`: one row per evaluation (step 0, eval_every, ...,
    steps) with `step`, `train_seconds` and `timed_steps` (see the module
    docstring), `<set>_kl` and
    `<set>_action_error` for every evaluation set, `probe_gradient_error`
    (with a probe) and, from the first interval on, `train_loss`,
    `train_kl_term` and (Sobolev) `train_sobolev_term`; and the trained
    `StudentNet`.

  Raises:
    ValueError: for a bad config or mismatched data.
    errors.DivergenceError: (from `sobolev.experiment`) if the loss or a
      metric becomes NaN or inf.
  """
  config.validate()
  if not config.device_loop:
    raise ValueError("`train` runs the device loop only.")
  if train_states.shape[0] != train_log_probs.shape[0]:
    raise ValueError("`train_states` and `train_log_probs` differ in length.")
  if train_states.shape[0] < 1:
    raise ValueError("`train_states` is empty.")
  tf.random.set_seed(config.seed)
  student = networks.StudentNet(num_actions, channels=config.channels,
                                hidden=config.hidden)
  student(tf.zeros([1, *train_states.shape[1:]]))  # Builds the variables.
  teacher_fn = teacher.log_policy
  if config.method == "regular":
    loss = distill.make_loss("regular")
  else:
    loss = sobolev_terms.make_loss(variant, config.sobolev_weight,
                                   seed=config.seed, scale=scale)
  optimizer = snt.optimizers.Adam(config.learning_rate)
  rng = np.random.default_rng(config.seed)
  history = []
  sums: Dict[str, float] = {}
  count = 0
  seconds = 0.0
  timed_steps = 0

  def record(step):
    nonlocal sums, count
    row = {"step": step, "train_seconds": seconds, "timed_steps": timed_steps}
    for name, (states, log_probs) in eval_sets.items():
      scores = distill.evaluate(student.log_policy, states, log_probs)
      row[f"{name}_kl"] = scores["kl"]
      row[f"{name}_action_error"] = scores["action_error"]
    if probe is not None:
      row["probe_gradient_error"] = probe_error(student.log_policy, probe)
    for k, v in sums.items():
      row[f"train_{k}"] = v / max(count, 1)
    row = metrics.finite_or_raise(
        row, f"{config.method} student, seed {config.seed}, step {step}")
    history.append(row)
    if on_record is not None:
      on_record(row)
    sums, count = {}, 0

  def accumulate(out, num_steps):
    nonlocal count
    for name, key in (("loss", "loss"), ("kl_term", "order_0"),
                      ("sobolev_term", "order_1")):
      if key in out:
        sums[name] = sums.get(name, 0.0) + float(out[key]) * num_steps
    count += num_steps

  states = tf.constant(train_states)
  log_probs = tf.constant(train_log_probs, tf.float32)

  def objective(model, batch):
    idx = batch["idx"]
    x = tf.cast(tf.gather(states, idx), tf.float32) / 255.0
    if config.method == "regular":
      return loss(model.log_policy, x, targets=(tf.gather(log_probs, idx),))[:2]
    return loss(model.log_policy, x, target_fn=teacher_fn)[:2]

  record(0)
  n = train_states.shape[0]
  step_fns = {}  # steps_per_call -> compiled step (at most two sizes).
  step = 0
  while step < config.steps:
    k = min(config.eval_every - step % config.eval_every, config.steps - step)
    first_call = k not in step_fns  # Compiles: left out of the timing.
    if first_call:
      step_fns[k] = training.make_train_step(student, optimizer, objective,
                                             steps_per_call=k)
    # Same index sequence as k single draws of `batch_size`.
    idx = rng.integers(0, n, size=(k, config.batch_size))
    batch = {"idx": tf.constant(idx.astype(np.int32))}
    if k == 1:
      batch = {"idx": batch["idx"][0]}
    start = time.perf_counter()
    out = step_fns[k](batch)
    out = {key: float(value) for key, value in out.items()}  # Waits for it.
    if not first_call:
      seconds += time.perf_counter() - start
      timed_steps += k
    accumulate(out, k)
    step += k
    record(step)
  return history, student
