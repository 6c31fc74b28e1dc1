r"""The optimised HLO of the `mlp_order1` steps, TF against JAX (issue 25).

    python -c "from benchmarks import speed_hlo; print(speed_hlo.table(100))"

prints, for batch size B, what XLA makes of one optimisation step of
`benchmarks.speed`'s `mlp_order1` case (2x256 ReLU MLP, D = 2, Adam,
`steps_per_call` steps per compiled call): the TF `TrainStep`
(`experimental_get_compiler_ir(...)(stage='optimized_hlo')`) for the regular,
sobolev and `jacobian_mode='fused'` steps, and the hand-written JAX steps of
`benchmarks.jax_baseline` (`jax.jit(...).lower(...).compile().as_text()`;
needs the `bench` extra). Counts are over the `while` body (one step) and
the computations it calls: dots and their multiply-adds, fusions by kind,
copies, split reductions, transposes and float64 ops. The numbers are in
`docs/speed.md` ("Where the time goes"). Compiles only, times nothing.
"""

import collections
import re
from typing import Dict, List, Optional, Tuple

import sonnet as snt
import tensorflow as tf

from benchmarks import jax_baseline
from benchmarks import speed
from sobolev import training
from sobolev.experiment import timing

Instruction = Tuple[str, str, str, str]  # (name, shape, opcode, rest).
# The shape may be a tuple with spaces: it ends at the first " opcode(".
_INSTRUCTION = re.compile(
    r"\s+(?:ROOT )?%?(\S+) = (.+?) ([a-z][\w\-]*)\((.*)$")
_HEADER = re.compile(r"^(?:ENTRY )?%?([^\s(]+)")
ROWS = ("dots", "macs", "copies", "reduce_windows", "transposes", "f64_ops",
        "body_instructions")


def _batch(batch_size: int, order: int, seed: int):
  return speed.mlp_regression(batch_size, 2, 1, order, "exact", tf.nn.relu,
                              seed)


def tf_hlo(batch_size: int, order: int, jacobian_mode: Optional[str] = None,
           steps_per_call: int = 10, seed: int = 0) -> str:
  """The optimised HLO text of the TF `mlp_order1` step (as timed)."""
  tf.random.set_seed(seed)
  model, loss, batch = speed.mlp_regression(
      batch_size, 2, 1, order, "exact", tf.nn.relu, seed,
      jacobian_mode=jacobian_mode)
  model(batch["x"])
  step = training.make_train_step(
      model, snt.optimizers.Adam(1e-4), loss, jit_compile=True,
      steps_per_call=steps_per_call)
  stacked = (timing.stack_batches(batch, steps_per_call)
             if steps_per_call > 1 else batch)
  return step.compiled.experimental_get_compiler_ir(stacked)(
      stage="optimized_hlo")


def jax_hlo(batch_size: int, order: int, steps_per_call: int = 10,
            seed: int = 0) -> str:
  """The optimised HLO text of the JAX reference step (same batch)."""
  tf.random.set_seed(seed)
  _, _, batch = _batch(batch_size, order, seed)
  return jax_baseline.make_call(batch, order, steps_per_call,
                                seed=seed).hlo()


def computations(hlo: str) -> Dict[str, List[Instruction]]:
  """The computations of an HLO module text: name -> instructions."""
  out, current = {}, None
  for line in hlo.splitlines():
    if line.startswith("%") or line.startswith("ENTRY"):
      current = _HEADER.match(line).group(1)
      out[current] = []
    elif line.startswith("}"):
      current = None
    elif current is not None:
      match = _INSTRUCTION.match(line)
      if match:
        out[current].append(match.groups())
  return out


def _dims(shape: str) -> List[int]:
  match = re.match(r"\w+\[([\d,]*)\]", shape)
  return [int(d) for d in match.group(1).split(",") if d] if match else []


def _macs(shape: str, rest: str, shapes: Dict[str, str]) -> int:
  """Multiply-adds of a dot: output elements x contracted size."""
  lhs = re.findall(r"%([^\s,)]+)", rest.split(")")[0])[0]
  contracted = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
  size = 1
  for d in contracted.group(1).split(","):
    if d:
      size *= _dims(shapes[lhs])[int(d)]
  for d in _dims(shape):
    size *= d
  return size


def loop_summary(hlo: str) -> Dict[str, int]:
  """Counts over the `while` body of `hlo` and what it calls (one step).

  Returns:
    `dots`, `macs` (their multiply-adds), `copies`, `reduce_windows`,
    `transposes`, `f64_ops`, `body_instructions` (top level of the body)
    and `fusions:<kind>` (top level of the body).

  Raises:
    ValueError: if `hlo` has no `while` loop.
  """
  comps = computations(hlo)
  bodies = [m.group(1) for instrs in comps.values() for _, _, op, rest in
            instrs if op == "while"
            for m in [re.search(r"body=%?([^\s,]+)", rest)]]
  if not bodies:
    raise ValueError("The HLO has no while loop (steps_per_call = 1?).")
  counts = collections.Counter(body_instructions=len(comps[bodies[0]]))
  for _, _, op, rest in comps[bodies[0]]:
    if op == "fusion":
      counts["fusions:" + re.search(r"kind=(\w+)", rest).group(1)] += 1
  todo, seen = [bodies[0]], set()
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    shapes = {n: shape for n, shape, _, _ in comps[name]}
    for _, shape, op, rest in comps[name]:
      todo += re.findall(r"calls=%?([^\s,]+)", rest)
      counts["f64_ops"] += shape.startswith("f64[")
      if op == "dot":
        counts["dots"] += 1
        counts["macs"] += _macs(shape, rest, shapes)
      for key, opcode in (("copies", "copy"), ("transposes", "transpose"),
                          ("reduce_windows", "reduce-window")):
        counts[key] += op == opcode
  return dict(counts)


def table(batch_size: int = 100, steps_per_call: int = 10,
          seed: int = 0) -> str:
  """A Markdown table of `loop_summary` for every step (JAX if installed)."""
  columns = [("TF regular", lambda: tf_hlo(batch_size, 0, None,
                                           steps_per_call, seed)),
             ("TF sobolev", lambda: tf_hlo(batch_size, 1, None,
                                           steps_per_call, seed)),
             ("TF sobolev fused", lambda: tf_hlo(batch_size, 1, "fused",
                                                 steps_per_call, seed))]
  if jax_baseline.available():
    columns += [("JAX regular", lambda: jax_hlo(batch_size, 0,
                                                steps_per_call, seed)),
                ("JAX sobolev", lambda: jax_hlo(batch_size, 1,
                                                steps_per_call, seed))]
  summaries = [loop_summary(make()) for _, make in columns]
  keys = list(ROWS) + sorted({k for s in summaries for k in s
                              if k.startswith("fusions:")})
  lines = [f"One step at B = {batch_size} (the while body):", "",
           "| | " + " | ".join(name for name, _ in columns) + " |",
           "|---" * (len(columns) + 1) + "|"]
  for key in keys:
    lines.append(f"| {key} | " + " | ".join(
        str(s.get(key, 0)) for s in summaries) + " |")
  return "\n".join(lines) + "\n"
