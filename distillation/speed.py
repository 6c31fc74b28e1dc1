r"""Step time of the Atari distillation student: KL vs KL + Sobolev.

    python -m distillation.speed --workdir=results/distill_speed

measures, in one process and after warm-up, the time of one optimisation
step (microseconds; median and min over `repeats` timed blocks) of the
distillation student (batch 32, 6 actions):

  * `kl`: KL to recorded teacher log-probabilities (regular distillation);
  * `kl_sobolev`: KL + the stochastic Sobolev term, the teacher's
    projections by autodiff through the teacher at every step;

and, with `profile`, the parts of the Sobolev step compiled and timed
alone: `teacher_vjp` (teacher forward and J_T^T v), `student_vjp` (student
forward and J_S^T v) and `student_grads` (parameter gradients of KL +
projection loss given precomputed teacher terms).

Steps are the library's `sobolev.training.make_train_step` with Adam;
`steps_per_call` steps run inside one compiled call and the time per step is
the call's time divided by it. Each step is compiled as a TF graph and with
XLA and the faster on a pilot block is kept (`compiled`); timed blocks of
all variants are interleaved round-robin so that load changes on a shared
machine hit them alike. Writes `speed.csv`
(`variant,batch,num_actions,median_us,min_us,compiled`), `speed.md` and
`provenance.json` into the workdir. (Moved here from `benchmarks.speed`, so
that `benchmarks` no longer imports `distillation`.)
"""

import dataclasses
import os
import platform
from typing import Any, Callable, Dict, List, Sequence

from sobolev.experiment import cli

if __name__ == "__main__":
  cli.quiet()  # Before TensorFlow is imported (not when imported).

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
import numpy as np
import sonnet as snt
import tensorflow as tf

from distillation import atari_env
from distillation import distill
from distillation import networks
from distillation import sobolev_terms
from distillation import study_training
from sobolev import training
from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import progress
from sobolev.experiment import tables
from sobolev.experiment import timing
# pylint: enable=g-import-not-at-top,wrong-import-position

COMPILE_MODES = ("graph", "xla")


@dataclasses.dataclass
class Row:
  """One row of `speed.csv`."""
  variant: str
  batch: int
  num_actions: int
  median_us: float
  min_us: float
  compiled: str


def check(config: Any) -> None:
  """Raises `errors.ConfigError` naming the first bad setting."""
  configs.check_finite(config)
  for name in ("batch_size", "num_actions", "repeats", "calls",
               "steps_per_call", "warmup_calls", "tf_threads"):
    configs.check_int(name, config[name], low=1)
  configs.check_int("num_actions", config.num_actions, low=2)
  configs.check_int("seed", config.seed, low=0)
  modes = config.compile_modes
  if isinstance(modes, str):
    modes = (modes,)
  if not modes:
    raise errors.ConfigError("`compile_modes` must not be empty.")
  for mode in modes:
    configs.check_choice("compile_modes", mode, COMPILE_MODES)


def student_step(method: str, config: Any) -> tuple:
  """`(student, objective, batch)` of one distillation step.

  Random Atari-shaped float states `[B, 84, 84, 4]` in [0, 1] (the student
  and teacher are differentiated with respect to them directly); method
  'regular' fits recorded teacher log-probabilities (KL only), 'sobolev'
  adds the stochastic Sobolev term with the teacher differentiated at every
  step. `student` is a `StudentNet`.
  """
  rng = np.random.RandomState(config.seed)
  states = tf.constant(rng.uniform(0, 1, (config.batch_size,
                                          *atari_env.FRAME_SHAPE)),
                       tf.float32)
  teacher = networks.TeacherNet(config.num_actions)
  student = networks.StudentNet(config.num_actions)
  student(states)  # Builds the variables.
  loss = distill.make_loss(method, sobolev_weight=1.0, seed=config.seed)
  objective = distill.host_objective(loss, method, teacher.log_policy)
  if method == "regular":
    return student, objective, {"x": states,
                                "targets": (teacher.log_policy(states),)}
  return student, objective, {"x": states}


def _timer(call: Callable[[], Any], config: Any) -> Callable[[], float]:
  """Warms `call` up; returns a timer of one block (us per step)."""
  return timing.block_timer(call, warmup_calls=config.warmup_calls,
                            calls=config.calls,
                            steps_per_call=config.steps_per_call)


def _step_call(method: str, config: Any, jit: bool) -> Callable[[], Any]:
  tf.random.set_seed(config.seed)
  model, objective, batch = student_step(method, config)
  step = training.make_train_step(
      model, snt.optimizers.Adam(1e-4), objective, jit_compile=jit,
      steps_per_call=config.steps_per_call)
  stacked = (timing.stack_batches(batch, config.steps_per_call)
             if config.steps_per_call > 1 else batch)
  return lambda: step(stacked)


def _repeated(fn: Callable[..., Any], stacked, k: int):
  """A compiled call running `fn(*inputs_i)` for the k stacked inputs."""

  @tf.function
  def call():
    acc = tf.constant(0.0)
    for i in tf.range(k):
      outs = fn(*[s[i] for s in stacked])
      acc += tf.add_n([tf.reduce_sum(o) for o in tf.nest.flatten(outs)])
    return {"sum": acc}

  return call


def _profile_parts(config: Any) -> Dict[str, Callable[[], Any]]:
  """The parts of the KL + Sobolev step, each a compiled call."""
  a, b, k = config.num_actions, config.batch_size, config.steps_per_call
  tf.random.set_seed(config.seed)
  rng = np.random.RandomState(config.seed)
  states = tf.constant(rng.uniform(0, 1, (k, b, *atari_env.FRAME_SHAPE)),
                       tf.float32)
  v = tf.constant(rng.normal(size=(k, b, a)), tf.float32)
  v = v / tf.norm(v, axis=-1, keepdims=True)
  teacher = networks.TeacherNet(a).log_policy
  student_net = networks.StudentNet(a)
  student = student_net.log_policy
  teacher(states[0])  # Builds the variables.
  student(states[0])

  def vjp(model):
    def fn(x, v):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
      return y, tape.gradient(y, x, output_gradients=v)
    return fn

  t_logp, t_proj = zip(*[vjp(teacher)(states[i], v[i]) for i in range(k)])
  t_logp, t_proj = tf.stack(t_logp), tf.stack(t_proj)
  loss = distill.make_loss("sobolev", sobolev_weight=1.0, seed=config.seed)

  def student_grads(x, v, t_logp, t_proj):
    with tf.GradientTape() as tape:
      total = loss(student, x, targets=[t_logp, t_proj], vectors=(v, None),
                   projected_targets=True)[0]
    return tape.gradient(total, student_net.trainable_variables)

  return {
      "teacher_vjp": _repeated(vjp(teacher), [states, v], k),
      "student_vjp": _repeated(vjp(student), [states, v], k),
      "student_grads": _repeated(student_grads, [states, v, t_logp, t_proj],
                                 k),
  }


def _markdown(rows: List[Row], config: Any) -> str:
  lines = [
      "# Distillation student step time (microseconds per step)", "",
      f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
      f"TensorFlow {tf.__version__}. {config.steps_per_call} steps per "
      f"compiled call, {config.repeats} timed blocks of {config.calls} calls "
      "per variant, interleaved across variants.", "",
      "| variant | batch | actions | median_us | min_us | compiled | ratio |",
      "|---|---|---|---|---|---|---|"]
  base = rows[0].median_us
  for r in rows:
    lines.append(f"| {r.variant} | {r.batch} | {r.num_actions} | "
                 f"{r.median_us:.0f} | {r.min_us:.0f} | {r.compiled} | "
                 f"{r.median_us / base:.2f}x |")
  lines += ["", "`ratio`: median over the `kl` step's."]
  return "\n".join(lines) + "\n"


def measure(config: Any) -> List[Row]:
  """Times every variant (see the module docstring); returns the rows.

  `config` is checked (`check`) by the caller.
  """
  modes = config.compile_modes
  modes = (modes,) if isinstance(modes, str) else tuple(modes)
  timers = []  # (variant, compiled, timer)
  for variant, method in (("kl", "regular"), ("kl_sobolev", "sobolev")):
    best = None
    for mode in modes:
      timer = _timer(_step_call(method, config, jit=(mode == "xla")), config)
      pilot = timer()
      if best is None or pilot < best[2]:
        best = (mode, timer, pilot)
    timers.append((variant, best[0], best[1]))
  if config.profile:
    for part, call in _profile_parts(config).items():
      timers.append((part, "graph", _timer(call, config)))
  with progress.Progress(total=config.repeats * len(timers),
                         desc="student step time", unit="block") as bar:
    times = timing.interleave([t for _, _, t in timers], config.repeats,
                              on_block=lambda: bar.update(1))
  return [Row(variant, config.batch_size, config.num_actions,
              **timing.summary(t), compiled=mode)
          for (variant, mode, _), t in zip(timers, times)]


def time_variant(teacher: snt.Module, num_actions: int, method: str,
                 variant: str = "stochastic_p1", batch_size: int = 32,
                 steps: int = 200, num_states: int = 256,
                 seed: int = 0) -> float:
  """Seconds per step of one study student (issue 20), compilation excluded.

  Runs `steps` steps of `distillation.study_training.train` (the study's
  loop: Adam, device-resident minibatches) on random uint8 states in two
  equal compiled calls, and returns the second call's time per step. The
  `_initial` variants cost what their base term costs (the scale is a
  constant), so they are timed with a scale of 1.

  Args:
    teacher: the teacher network (its real size matters).
    num_actions: A.
    method: 'regular' or 'sobolev'.
    variant: a `sobolev_terms` variant name (Sobolev only).
    batch_size: the minibatch size.
    steps: timed steps (even, >= 2).
    num_states: random training states.
    seed: seeds the states and the student.

  Returns:
    Seconds per optimisation step.
  """
  half = max(steps // 2, 1)
  rng = np.random.default_rng(seed)
  states = rng.integers(0, 256, (num_states, *atari_env.FRAME_SHAPE),
                        dtype=np.uint8)
  log_probs = teacher.log_policy(tf.constant(states)).numpy()
  config = distill.StudentConfig(method=method, batch_size=batch_size,
                                 steps=2 * half, eval_every=half, seed=seed)
  parsed = sobolev_terms.parse(variant)
  history, _ = study_training.train(
      config, dataclasses.replace(parsed, normalization="none"), teacher,
      states, log_probs, {}, num_actions)
  return history[2]["train_seconds"] / history[2]["timed_steps"]


def run(config: Any, workdir: str, if_different: str = "refuse", *,
        checked: bool = False) -> List[Row]:
  """Measures and writes `speed.csv`, `speed.md` and `provenance.json`
  (`checked`: `check(config)` already ran, as the command line does)."""
  if not checked:
    check(config)
  return tables.measure_into(workdir, config, measure, _markdown,
                             if_different=if_different)


_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "configs", "speed.py")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this program's flags (only when it runs as a program)."""
  cli.define_config_flag(_DEFAULT_CONFIG, "Timing settings.")
  cli.define_workdir_flags(default="./results/distill_speed")


def main(argv: Sequence[str]) -> None:
  del argv  # `cli.run` refuses positional arguments.
  logging.set_verbosity(logging.WARNING)
  config = FLAGS.config
  check(config)
  if cli.dry_run():
    cli.say_dry_run(
        f"would time the kl and kl_sobolev student steps (batch "
        f"{config.batch_size}, {config.num_actions} actions; "
        f"{config.repeats} timed blocks each) and write speed.csv and "
        f"speed.md to {FLAGS.workdir}.")
    return
  tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
  run(config, FLAGS.workdir, if_different=cli.if_different(), checked=True)


if __name__ == "__main__":
  cli.run(main, define_flags)
