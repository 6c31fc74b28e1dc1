"""The one timing loop of the speed scripts: warm up, time blocks, interleave.

A *block* is `calls` compiled calls of `steps_per_call` steps each, timed
up to reading the last outputs. Variants' blocks are interleaved
round-robin, so load changes hit all alike; `summary` gives the median (and
minimum) over blocks.
"""

import time
from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import tensorflow as tf


def _wait(out: Any) -> None:
  """Reads every tensor of `out` (waits for the computation)."""
  tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t,
                        out)


def block_timer(call: Callable[[], Any], *, warmup_calls: int, calls: int,
                steps_per_call: int = 1) -> Callable[[], float]:
  """Warms `call` up; returns `block() -> float`, the microseconds per step
  of one timed block.

  Args:
    call: runs `steps_per_call` steps and returns their outputs (tensors).
    warmup_calls: untimed calls first (tracing, compilation, caches).
    calls: calls per timed block.
    steps_per_call: steps per call.

  Raises:
    ValueError: for counts below 1 (0 for `warmup_calls`).
  """
  if warmup_calls < 0 or calls < 1 or steps_per_call < 1:
    raise ValueError(f"Need warmup_calls >= 0, calls >= 1 and "
                     f"steps_per_call >= 1, got {warmup_calls}, {calls}, "
                     f"{steps_per_call}.")
  for _ in range(warmup_calls):
    _wait(call())

  def block() -> float:
    start = time.perf_counter()
    out = None
    for _ in range(calls):
      out = call()
    _wait(out)
    return (time.perf_counter() - start) / (calls * steps_per_call) * 1e6

  return block


def interleave(timers: Sequence[Callable[[], float]], repeats: int,
               on_block: Optional[Callable[[], None]] = None
              ) -> List[List[float]]:
  """Runs `repeats` blocks of every timer, round-robin with a rotating start.

  Returns:
    Per timer, its `repeats` block times (in the timers' order).
  """
  times = [[] for _ in timers]
  for r in range(repeats):
    for k in range(len(timers)):
      i = (k + r) % len(timers)
      times[i].append(timers[i]())
      if on_block is not None:
        on_block()
  return times


def summary(times: Sequence[float]) -> dict:
  """`{'median_us', 'min_us'}` of a timer's block times."""
  return {"median_us": float(np.median(times)),
          "min_us": float(np.min(times))}


def stack_batches(batch: Any, k: int) -> Any:
  """k copies of `batch`, each rolled by its index, stacked on a new axis 0
  (the inputs of a `steps_per_call=k` step)."""
  return tf.nest.map_structure(
      lambda t: tf.stack([tf.roll(t, shift=i, axis=0) for i in range(k)]),
      batch)
