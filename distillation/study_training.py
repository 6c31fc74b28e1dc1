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
from distillation import sobolev_terms
from sobolev import derivatives
from sobolev import sampling
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
  if not config.device_loop:
    raise ValueError("`train` runs the device loop only.")
  distill.check_data(train_states, train_log_probs)
  student = distill.build_student(config, num_actions, train_states.shape[1:])
  if config.method == "regular":
    loss = distill.make_loss("regular")
  else:
    loss = sobolev_terms.make_loss(variant, config.sobolev_weight,
                                   seed=config.seed, scale=scale)
  run = distill.DeviceSteps(
      student, snt.optimizers.Adam(config.learning_rate),
      distill.device_objective(loss, config.method, teacher.log_policy,
                               tf.constant(train_states),
                               tf.constant(train_log_probs, tf.float32)),
      np.random.default_rng(config.seed), train_states.shape[0],
      config.batch_size)
  means = distill.IntervalMeans((("loss", "loss"), ("kl_term", "order_0"),
                                 ("sobolev_term", "order_1")))
  evaluate = _evaluator(config, student, eval_sets, probe)
  history = []

  def record(row):
    history.append(row)
    if on_record is not None:
      on_record(row)

  record(evaluate(0, 0.0, 0, means.pop()))
  seconds, timed_steps, step = 0.0, 0, 0
  for k in distill.intervals(config.steps, config.eval_every):
    first_call = not run.compiled(k)  # Compiles: left out of the timing.
    start = time.perf_counter()
    out = {key: float(value) for key, value in run(k).items()}  # Waits.
    if not first_call:
      seconds += time.perf_counter() - start
      timed_steps += k
    means.add(out, k)
    step += k
    record(evaluate(step, seconds, timed_steps, means.pop()))
  return history, student


def _evaluator(config: distill.StudentConfig, student: snt.Module,
               eval_sets: EvalSets, probe: Optional[GradientProbe]):
  """`evaluate(step, seconds, timed_steps, train_means) -> row` of `train`:
  every evaluation set, the probe, and a finite check."""

  def evaluate(step, seconds, timed_steps, train_means):
    row = {"step": step, "train_seconds": seconds, "timed_steps": timed_steps}
    for name, (states, log_probs) in eval_sets.items():
      scores = distill.evaluate(student.log_policy, states, log_probs)
      row[f"{name}_kl"] = scores["kl"]
      row[f"{name}_action_error"] = scores["action_error"]
    if probe is not None:
      row["probe_gradient_error"] = probe_error(student.log_policy, probe)
    row.update(train_means)
    return metrics.finite_or_raise(
        row, f"{config.method} student, seed {config.seed}, step {step}")

  return evaluate
