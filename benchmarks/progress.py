"""A one-line terminal progress bar: runs done, elapsed and time left."""

import sys
import time
from typing import Optional, TextIO


def _fmt(seconds: float) -> str:
  seconds = max(0, int(seconds))
  return f"{seconds // 60:d}m{seconds % 60:02d}s"


class Progress:
  """Tracks work units (estimated cost) and finished runs.

  The time left is `elapsed / work_done * work_left`, with work measured in
  estimated cost units so that cheap and expensive groups are weighted.
  """

  def __init__(self, total_runs: int, total_work: float,
               stream: Optional[TextIO] = None, width: int = 30):
    self._total_runs = total_runs
    self._total_work = max(total_work, 1e-9)
    self._runs = 0
    self._work = 0.0
    self._start = time.time()
    self._stream = stream if stream is not None else sys.stderr
    self._width = width

  def update(self, runs_done: int, work_done: float, note: str = "") -> None:
    """Sets the absolute runs and work done and redraws the bar."""
    self._runs, self._work = runs_done, work_done
    elapsed = time.time() - self._start
    frac = min(self._work / self._total_work, 1.0)
    left = elapsed / frac * (1 - frac) if frac > 0 else float("nan")
    filled = int(self._width * frac)
    bar = "#" * filled + "." * (self._width - filled)
    eta = _fmt(left) if left == left else "?"
    self._stream.write(
        f"\r[{bar}] {self._runs}/{self._total_runs} runs | elapsed "
        f"{_fmt(elapsed)} | left ~{eta} | {note:<34}")
    self._stream.flush()

  def close(self) -> None:
    self._stream.write("\n")
    self._stream.flush()
