"""One metric writer for every experiment: CSV rows and TensorBoard scalars.

In the style of acme's `Logger.write(data)`: each call writes one row (a
dict holding the step and the metric values) to a CSV file (atomic append)
and, for every numeric field, a TensorBoard scalar through the
`tensorboard` package's event writer (`tensorboard.summary.Writer`), so
curves appear live under `tensorboard --logdir <workdir>/tb`.
"""

import math
import numbers
import os
import tempfile
from typing import Any, Dict, Mapping, Optional

from sobolev.experiment import files


class MetricWriter:
  """Writes metric rows to a CSV file and/or TensorBoard.

  Attributes:
    csv_path: the CSV file, or None.
    logdir: the TensorBoard log directory, or None.
  """

  def __init__(self, csv_path: Optional[str] = None,
               logdir: Optional[str] = None, *, step_key: str = "step"):
    """Creates the writer.

    Args:
      csv_path: CSV file to append rows to (None: no CSV).
      logdir: TensorBoard log directory (None: no events).
      step_key: the field that holds the step (int).

    Raises:
      ValueError: if both outputs are None.
    """
    if csv_path is None and logdir is None:
      raise ValueError("MetricWriter needs `csv_path` or `logdir`.")
    self.csv_path = csv_path
    self.logdir = logdir
    self._step_key = step_key
    self._tb = None
    if logdir is not None:
      from tensorboard import summary as tb_summary  # pylint: disable=g-import-not-at-top
      os.makedirs(logdir, exist_ok=True)
      self._tb = tb_summary.Writer(logdir)

  def write(self, data: Mapping[str, Any]) -> None:
    """Writes one row.

    Args:
      data: `{step_key: int, name: value, ...}`; numeric values become
        TensorBoard scalars named by their key (use '/' to group), other
        values go to the CSV only.

    Raises:
      ValueError: if `data` has no step.
    """
    if self._step_key not in data:
      raise ValueError(f"`data` must hold the step {self._step_key!r}, got "
                       f"keys {sorted(data)}.")
    row = {k: _plain(v) for k, v in data.items()}
    step = int(row[self._step_key])
    if self.csv_path is not None:
      files.append_csv(self.csv_path, [row])
    if self._tb is not None:
      for name, value in row.items():
        if name == self._step_key or not _is_number(value):
          continue
        self._tb.add_scalar(name, float(value), step)
      self._tb.flush()

  def truncate_after(self, step: int) -> None:
    """Drops rows with a step above `step` (before resuming from it).

    CSV rows are dropped atomically. TensorBoard events with a higher step in
    `logdir` itself (not its subdirectories) are dropped by rewriting their
    event files atomically, so that a resumed run's curves are those of an
    uninterrupted run, not both.
    """
    if self.csv_path is not None and os.path.exists(self.csv_path):
      rows = files.read_csv(self.csv_path)
      kept = [r for r in rows if float(r[self._step_key]) <= step]
      if len(kept) != len(rows):
        files.write_csv(self.csv_path, kept, list(rows[0]))
    if self._tb is not None:
      from tensorboard import summary as tb_summary  # pylint: disable=g-import-not-at-top
      self._tb.close()
      try:
        truncate_events(self.logdir, step)
      finally:
        self._tb = tb_summary.Writer(self.logdir)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def truncate_events(logdir: str, step: int) -> int:
  """Drops summaries with a step above `step` from the event files in `logdir`.

  Each event file (`*tfevents*` directly in `logdir`) that holds such
  summaries is rewritten to a temporary file and renamed over the old one,
  so that TensorBoard never reads a half-written file. A partial last record
  (a writer killed mid-write) is dropped as well.

  Args:
    logdir: the TensorBoard log directory (a missing one holds nothing).
    step: the last step to keep.

  Returns:
    The number of events dropped.
  """
  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_file_loader
  from tensorboard.compat.proto import event_pb2
  from tensorboard.summary.writer import record_writer
  # pylint: enable=g-import-not-at-top
  if not os.path.isdir(logdir):
    return 0
  dropped = 0
  for name in sorted(os.listdir(logdir)):
    path = os.path.join(logdir, name)
    if "tfevents" not in name or not os.path.isfile(path):
      continue
    records = list(event_file_loader.RawEventFileLoader(path).Load())
    kept = []
    for raw in records:
      event = event_pb2.Event.FromString(raw)
      if event.HasField("summary") and event.step > step:
        continue
      kept.append(raw)
    with open(path, "rb") as f:
      size = len(f.read())
    written = sum(len(r) + 16 for r in records)  # 16 bytes of framing each.
    if len(kept) == len(records) and written == size:
      continue
    dropped += len(records) - len(kept)
    fd, tmp = tempfile.mkstemp(dir=logdir, prefix=".truncating-")
    try:
      with os.fdopen(fd, "wb") as f:
        writer = record_writer.RecordWriter(f)
        for raw in kept:
          writer.write(raw)
        f.flush()
        os.fsync(f.fileno())
      os.chmod(tmp, os.stat(path).st_mode & 0o777)
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise
  return dropped


def _plain(value: Any) -> Any:
  if hasattr(value, "numpy"):
    value = value.numpy()
  if hasattr(value, "item") and callable(value.item):
    value = value.item()
  return value


def _is_number(value: Any) -> bool:
  return (isinstance(value, numbers.Real) and not isinstance(value, bool))


def finite_or_raise(metrics: Mapping[str, Any], where: str) -> Dict[str, Any]:
  """Returns plain-number metrics; raises `DivergenceError` on NaN/inf.

  Args:
    metrics: name -> value (tensors, numpy or Python numbers).
    where: what was training, for the message (e.g. 'sobolev seed 2, step
      300').

  Raises:
    errors.DivergenceError: naming the first non-finite metric.
  """
  from sobolev.experiment import errors  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = {}
  for name, value in metrics.items():
    if hasattr(value, "numpy"):
      value = value.numpy()
    if isinstance(value, np.ndarray) and value.size != 1:
      if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
        raise errors.DivergenceError(
            f"Training diverged ({where}): {name} has non-finite values. No "
            "result was written; lower the learning rate or check the "
            "inputs.")
      out[name] = value
      continue
    value = _plain(value)
    if _is_number(value) and not math.isfinite(float(value)):
      raise errors.DivergenceError(
          f"Training diverged ({where}): {name} = {value}. No result was "
          "written; lower the learning rate or check the inputs.")
    out[name] = value
  return out
