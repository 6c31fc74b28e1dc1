"""One metric writer for every experiment: CSV rows and TensorBoard scalars.

`MetricWriter.write(data)` writes one row (as acme's `Logger.write`). No
silent divergence: it, `finite_or_raise` (step metrics),
`finite_result_or_raise` (a unit's result) and `check_parameters` raise
`errors.DivergenceError` on NaN or infinity (unless declared `allow_nan`,
saying why); `StallDetector` stops a run that stops changing.
"""

import hashlib
import io
import math
import numbers
import os
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files


DEFAULT_HINT = "lower the learning rate or check the inputs"


class MetricWriter:
  """Writes metric rows to a CSV file and/or TensorBoard.

  Attributes:
    csv_path: the CSV file, or None.
    logdir: the TensorBoard log directory, or None.
  """

  def __init__(self, csv_path: Optional[str] = None,
               logdir: Optional[str] = None, *, step_key: str = "step",
               allow_nan: Sequence[str] = (), where: str = "",
               hint: str = DEFAULT_HINT):
    """Creates the writer.

    Args:
      csv_path: CSV file to append rows to (None: no CSV).
      logdir: TensorBoard log directory (None: no events).
      step_key: the field that holds the step (int).
      allow_nan: metrics that may be NaN (say why where you pass them).
      where: what is training, for the message (e.g. 'sobolev seed 2').
      hint: the likely cause and fix, for the message.

    Raises:
      ValueError: if both outputs are None.
    """
    if csv_path is None and logdir is None:
      raise ValueError("MetricWriter needs `csv_path` or `logdir`.")
    if isinstance(allow_nan, str):
      raise TypeError("`allow_nan` must be a sequence of metric names, got "
                      f"the string {allow_nan!r}.")
    self.csv_path = csv_path
    self.logdir = logdir
    self._step_key = step_key
    self._allow_nan = frozenset(allow_nan)
    self._where = where
    self._hint = hint
    self._tb = None
    if logdir is not None:
      from tensorboard import summary as tb_summary  # pylint: disable=g-import-not-at-top
      os.makedirs(logdir, exist_ok=True)
      self._tb = tb_summary.Writer(logdir)

  def write(self, data: Mapping[str, Any]) -> None:
    """Writes one row.

    Args:
      data: `{step_key: int, name: value, ...}`; numbers also become
        TensorBoard scalars (use '/' in names to group).

    Raises:
      ValueError: if `data` has no step.
      errors.DivergenceError: if a number not in `allow_nan` is not finite
        (nothing is written).
    """
    if self._step_key not in data:
      raise ValueError(f"`data` must hold the step {self._step_key!r}, got "
                       f"keys {sorted(data)}.")
    row = {k: _plain(v) for k, v in data.items()}
    step = int(row[self._step_key])
    for name, value in row.items():
      if name not in self._allow_nan and _not_finite(value):
        where = f"{self._where}, " if self._where else ""
        raise _diverged(f"{where}{self._step_key} {step}",
                        f"{name} = {value}", self._hint)
    if self.csv_path is not None:
      files.append_csv(self.csv_path, [row])
    if self._tb is not None:
      for name, value in row.items():
        if name != self._step_key and _is_number(value):
          self._tb.add_scalar(name, float(value), step)
      self._tb.flush()

  def truncate_after(self, step: int) -> None:
    """Drops CSV rows and events with a step above `step` (on resuming)."""
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

  Each `*tfevents*` file directly in `logdir` that holds such summaries (or
  a partial last record) is rewritten atomically.

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
    events = [event_pb2.Event.FromString(raw) for raw in records]
    kept = [raw for raw, event in zip(records, events)
            if not (event.HasField("summary") and event.step > step)]
    written = sum(len(r) + 16 for r in records)  # 16 bytes of framing each.
    if len(kept) == len(records) and written == os.path.getsize(path):
      continue
    dropped += len(records) - len(kept)
    buf = io.BytesIO()
    writer = record_writer.RecordWriter(buf)
    for raw in kept:
      writer.write(raw)
    files.atomic_write_bytes(path, buf.getvalue())  # Keeps the file's mode.
  return dropped


def _plain(value: Any) -> Any:
  if hasattr(value, "numpy"):
    value = value.numpy()
  if hasattr(value, "item") and callable(value.item):
    value = value.item()
  return value


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _not_finite(value: Any) -> bool:
  """Whether a plain number is NaN or infinite."""
  return _is_number(value) and not math.isfinite(float(value))


def _has_non_finite(values: np.ndarray) -> bool:
  return values.dtype.kind in "fc" and not np.all(np.isfinite(values))


def _diverged(where: str, what: str, hint: str) -> errors.DivergenceError:
  """The one message of every divergence check."""
  return errors.DivergenceError(f"Training diverged ({where}): {what}. No "
                                f"result was written; {hint}.")


def finite_or_raise(metrics: Mapping[str, Any], where: str, *,
                    hint: str = DEFAULT_HINT) -> Dict[str, Any]:
  """Returns plain-number metrics; raises `DivergenceError` on NaN/inf.

  Args:
    metrics: name -> value (tensors, numpy or Python numbers).
    where, hint: what was training, and the likely cause and fix (as for
      `MetricWriter`).

  Raises:
    errors.DivergenceError: naming the first non-finite metric.
  """
  out = {}
  for name, value in metrics.items():
    if hasattr(value, "numpy"):
      value = value.numpy()
    if isinstance(value, np.ndarray) and value.size != 1:
      if _has_non_finite(value):
        raise _diverged(where, f"{name} has non-finite values", hint)
    else:
      value = _plain(value)
      if _not_finite(value):
        raise _diverged(where, f"{name} = {value}", hint)
    out[name] = value
  return out


def finite_result_or_raise(result: Mapping[str, Any], where: str, *,
                           hint: str = DEFAULT_HINT,
                           allow_nan: Sequence[str] = ()) -> Dict[str, Any]:
  """Returns `result` (JSON-like) if every number in it, nested too, is finite.

  Args:
    result: a unit's result, before it is saved.
    where, hint: what was trained, and the likely cause and fix (as
      `finite_or_raise`).
    allow_nan: top-level keys whose values may be NaN (say why).

  Raises:
    errors.DivergenceError: naming the first non-finite entry (`a[1]`).
  """
  for path, value in configs.leaves(result, convert=_plain):
    if (path.split("[")[0].split(".")[0] not in allow_nan and
        _not_finite(value)):
      raise _diverged(where, f"the result's {path} = {float(value)}", hint)
  return result


def check_parameters(variables: Sequence[Any], where: str, *,
                     hint: str = DEFAULT_HINT) -> None:
  """Raises if any parameter is NaN or infinite (call at each evaluation).

  Args:
    variables: the parameters (`tf.Variable`s or arrays).
    where, hint: what is training and when, and the likely cause and fix
      (as `finite_or_raise`).

  Raises:
    errors.DivergenceError: naming the first non-finite parameter.
  """
  for v in variables:
    if _has_non_finite(np.asarray(v.numpy() if hasattr(v, "numpy") else v)):
      name = getattr(v, "name", "a parameter")
      raise _diverged(where, f"parameter {name} has non-finite values", hint)


def fingerprint(variables: Sequence[Any]) -> str:
  """A digest of the parameters' exact bits (equal iff bit-identical).

  Args:
    variables: the parameters (`tf.Variable`s or arrays), in a fixed order.

  Returns:
    A hex SHA-256 of their dtypes, shapes and bytes.
  """
  digest = hashlib.sha256()
  for v in variables:
    values = np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") else v)
    digest.update(f"{values.dtype.str}{values.shape}".encode())
    digest.update(values.tobytes())
  return digest.hexdigest()


class StallDetector:
  """Stops a run whose parameters or loss stop changing.

  A run can fail without a NaN: updates that are all zero, skipped or lost
  to rounding leave the parameters bit-identical. Fed once per evaluation
  with named signals (a parameter `fingerprint`, a loss), the detector
  raises when one is *exactly* equal to its previous value for `patience`
  evaluations in a row; a healthy run changes at least in the last bits.
  """

  def __init__(self, patience: int, where: str, *,
               hint: str = DEFAULT_HINT, setting: str = "stall_patience",
               unit: str = "step"):
    """Creates the detector.

    Args:
      patience: evaluations in a row a signal may stay unchanged (3: raised
        at the 4th identical one); 0 disables the detector.
      where: what is training, for the message.
      hint: the likely setting to change, for the message.
      setting: the config field that sets `patience`, for the message.
      unit: what `update`'s step counts ('step', 'epoch'), for the message.

    Raises:
      ValueError: if `patience` is not an int >= 0.
    """
    if (isinstance(patience, bool) or not isinstance(patience, int) or
        patience < 0):
      raise ValueError(f"`patience` must be an int >= 0, got {patience!r}.")
    self.patience = patience
    self._where = where
    self._hint = hint
    self._setting = setting
    self._unit = unit
    self._last: Dict[str, Any] = {}
    self._since: Dict[str, Any] = {}
    self._count: Dict[str, int] = {}

  def update(self, step: int, **signals: Any) -> None:
    """Records one evaluation's signals.

    Args:
      step: the evaluation's step (or epoch), for the message.
      **signals: name -> value (number, string or array; compared bit for
        bit).

    Raises:
      errors.DivergenceError: if a signal is unchanged for the
        `patience`-th evaluation in a row.
    """
    if self.patience == 0:
      return
    for name, value in signals.items():
      value = _plain(value)
      bits = _bits(value)
      if name in self._last and bits == self._last[name]:
        self._count[name] += 1
      else:
        self._count[name] = 0
        self._since[name] = step
      self._last[name] = bits
      if self._count[name] >= self.patience:
        shown = ("the same array" if isinstance(value, np.ndarray) else
                 repr(value))
        what = ("the parameters did not change" if name == "parameters" else
                f"{name} stayed exactly {shown}")
        raise errors.DivergenceError(
            f"Training stalled ({self._where}): {what} from {self._unit} "
            f"{self._since[name]} to {self._unit} {step} "
            f"({self._count[name]} evaluations in a row). No result was "
            f"written; {self._hint} (or set {self._setting}=0 to turn this "
            "check off).")


def _bits(value: Any) -> Any:
  """A plain value compared bit for bit: floats and arrays become bytes."""
  if isinstance(value, float):
    return ("float", np.float64(value).tobytes())
  if isinstance(value, np.ndarray):
    return ("array", value.dtype.str, value.shape, value.tobytes())
  return value
