"""One metric writer for every experiment: CSV rows and TensorBoard scalars.

In the style of acme's `Logger.write(data)`: each call writes one row (a
dict holding the step and the metric values) to a CSV file (atomic append)
and, for every numeric field, a TensorBoard scalar through the
`tensorboard` package's event writer (`tensorboard.summary.Writer`), so
curves appear live under `tensorboard --logdir <workdir>/tb`.

No silent divergence: `MetricWriter.write` refuses a row holding a NaN or
infinite number (`errors.DivergenceError` naming the metric and the step,
nothing written), unless that metric is declared `allow_nan` (each such
declaration says why); `finite_or_raise` checks step metrics and
`finite_result_or_raise` a unit's result before it is saved;
`check_parameters` refuses non-finite weights; `StallDetector` stops a run
whose parameters or loss stop changing.
"""

import hashlib
import math
import numbers
import os
import tempfile
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

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
      allow_nan: metrics that may legitimately be NaN (say why where you
        pass them, e.g. a mean over no episodes yet); every other numeric
        field must be finite.
      where: what is training, for the divergence message (e.g. 'sobolev
        seed 2').
      hint: the likely cause and fix, for the divergence message (e.g.
        'lower learning_rate').

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
      data: `{step_key: int, name: value, ...}`; numeric values become
        TensorBoard scalars named by their key (use '/' to group), other
        values go to the CSV only.

    Raises:
      ValueError: if `data` has no step.
      errors.DivergenceError: if a numeric value not in `allow_nan` is NaN
        or infinite (naming it and the step); nothing is written.
    """
    if self._step_key not in data:
      raise ValueError(f"`data` must hold the step {self._step_key!r}, got "
                       f"keys {sorted(data)}.")
    row = {k: _plain(v) for k, v in data.items()}
    step = int(row[self._step_key])
    for name, value in row.items():
      if (name not in self._allow_nan and _is_number(value) and
          not math.isfinite(float(value))):
        where = f"{self._where}, " if self._where else ""
        raise errors.DivergenceError(
            f"Training diverged ({where}{self._step_key} {step}): {name} = "
            f"{value}. No result was written; {self._hint}.")
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


def finite_or_raise(metrics: Mapping[str, Any], where: str, *,
                    hint: str = DEFAULT_HINT) -> Dict[str, Any]:
  """Returns plain-number metrics; raises `DivergenceError` on NaN/inf.

  Args:
    metrics: name -> value (tensors, numpy or Python numbers).
    where: what was training, for the message (e.g. 'sobolev seed 2, step
      300').
    hint: the likely cause and fix, for the message.

  Raises:
    errors.DivergenceError: naming the first non-finite metric.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = {}
  for name, value in metrics.items():
    if hasattr(value, "numpy"):
      value = value.numpy()
    if isinstance(value, np.ndarray) and value.size != 1:
      if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
        raise errors.DivergenceError(
            f"Training diverged ({where}): {name} has non-finite values. No "
            f"result was written; {hint}.")
      out[name] = value
      continue
    value = _plain(value)
    if _is_number(value) and not math.isfinite(float(value)):
      raise errors.DivergenceError(
          f"Training diverged ({where}): {name} = {value}. No result was "
          f"written; {hint}.")
    out[name] = value
  return out


def finite_result_or_raise(result: Mapping[str, Any], where: str, *,
                           hint: str = DEFAULT_HINT,
                           allow_nan: Sequence[str] = ()) -> Dict[str, Any]:
  """Returns `result` if every number in it is finite; else raises.

  For a unit's `result.json` before it is saved: NaN and infinity (also in
  nested lists and dicts, e.g. a per-module list or a history) mean the run
  diverged, even when the loss checked at each step stayed finite (e.g.
  weights that became NaN in the last update give a finite-looking accuracy
  and a NaN gradient cosine).

  Args:
    result: the result (JSON-like: numbers, strings, None, lists, dicts).
    where: what was trained, for the message (e.g. 'sobolev seed 2').
    hint: the likely cause and fix, for the message.
    allow_nan: top-level keys whose values may be NaN (say why where you
      pass them).

  Returns:
    `result`, unchanged.

  Raises:
    errors.DivergenceError: naming the first non-finite entry (a path such
      as `sg_cosine_per_module[1]`).
  """
  for path, value in _numbers(result, ""):
    if path.split("[")[0].split(".")[0] in allow_nan:
      continue
    if not math.isfinite(value):
      raise errors.DivergenceError(
          f"Training diverged ({where}): the result's {path} = {value}. No "
          f"result was written; {hint}.")
  return result


def _numbers(value: Any, path: str) -> Iterable:
  """`(path, float)` for every number in a JSON-like value."""
  value = _plain(value)
  if isinstance(value, Mapping):
    for k, v in value.items():
      yield from _numbers(v, f"{path}.{k}" if path else str(k))
  elif isinstance(value, (list, tuple)):
    for i, v in enumerate(value):
      yield from _numbers(v, f"{path}[{i}]")
  elif _is_number(value):
    yield path, float(value)


def check_parameters(variables: Sequence[Any], where: str, *,
                     hint: str = DEFAULT_HINT) -> None:
  """Raises if any parameter is NaN or infinite.

  A step's loss is computed before its update, so weights that became NaN
  in the last update of an interval show up in no loss; call this at each
  evaluation.

  Args:
    variables: the parameters (`tf.Variable`s or arrays).
    where: what is training and when, for the message (e.g. 'sobolev seed
      2, epoch 3').
    hint: the likely cause and fix, for the message.

  Raises:
    errors.DivergenceError: naming the first non-finite parameter.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  for v in variables:
    values = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
    if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
      name = getattr(v, "name", "a parameter")
      raise errors.DivergenceError(
          f"Training diverged ({where}): parameter {name} has non-finite "
          f"values. No result was written; {hint}.")


def fingerprint(variables: Sequence[Any]) -> str:
  """A digest of the parameters' exact bits (equal iff bit-identical).

  Args:
    variables: the parameters (`tf.Variable`s or arrays), in a fixed order.

  Returns:
    A hex SHA-256 of their dtypes, shapes and bytes.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256()
  for v in variables:
    values = np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") else v)
    digest.update(f"{values.dtype.str}{values.shape}".encode())
    digest.update(values.tobytes())
  return digest.hexdigest()


class StallDetector:
  """Stops a run whose parameters or loss stop changing.

  A run can fail without a NaN: a learning rate or a loss weight so large
  (or a learning rate so small) that every update is zero, skipped or lost
  to rounding leaves the parameters bit-identical, so the test metric stays
  at its step-0 value while the run "finishes" normally. Fed once per
  evaluation with named signals (a parameter `fingerprint`, a loss), the
  detector raises when one of them is *exactly* equal to its previous value
  for `patience` evaluations in a row. Exact equality is the signal on
  purpose: a healthy run's parameters change at every update, and a loss
  that plateaus at float precision still changes in its last bits, so only
  a stuck run trips it.

  Example:

    stalls = metrics.StallDetector(config.stall_patience, "sobolev seed 0",
                                   hint="lower learning_rate")
    for step in eval_steps:
      ...
      stalls.update(step, parameters=metrics.fingerprint(model.variables),
                    test_kl=kl)
  """

  def __init__(self, patience: int, where: str, *,
               hint: str = DEFAULT_HINT, setting: str = "stall_patience",
               unit: str = "step"):
    """Creates the detector.

    Args:
      patience: evaluations in a row a signal may stay unchanged before the
        run is stopped (e.g. 3: raised at the 4th identical evaluation);
        0 disables the detector.
      where: what is training, for the message (e.g. 'sobolev student, seed
        0').
      hint: the likely setting to change, for the message.
      setting: the config field that sets `patience`, named in the message
        (how to turn the check off).
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
      **signals: name -> value (a number, a string such as a `fingerprint`,
        or an array; compared exactly, bit for bit).

    Raises:
      errors.DivergenceError: if a signal equals its previous value for the
        `patience`-th evaluation in a row, naming it, the steps and the
        likely setting.
    """
    if self.patience == 0:
      return
    for name, value in signals.items():
      value = _comparable(value)
      if name in self._last and value == self._last[name]:
        self._count[name] += 1
      else:
        self._count[name] = 0
        self._since[name] = step
      self._last[name] = value
      if self._count[name] >= self.patience:
        what = ("the parameters did not change" if name == "parameters" else
                f"{name} stayed exactly {_show(value)}")
        raise errors.DivergenceError(
            f"Training stalled ({self._where}): {what} from {self._unit} "
            f"{self._since[name]} to {self._unit} {step} "
            f"({self._count[name]} evaluations in a row). No result was "
            f"written; {self._hint} (or set {self._setting}=0 to turn this "
            "check off).")


def _comparable(value: Any) -> Any:
  """A value compared bit for bit: floats and arrays become bytes."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  value = _plain(value)
  if isinstance(value, float):
    return ("float", np.float64(value).tobytes())
  if isinstance(value, np.ndarray):
    return ("array", value.dtype.str, value.shape, value.tobytes())
  return value


def _show(value: Any) -> str:
  import numpy as np  # pylint: disable=g-import-not-at-top
  if isinstance(value, tuple) and value and value[0] == "float":
    return repr(float(np.frombuffer(value[1], np.float64)[0]))
  if isinstance(value, tuple) and value and value[0] == "array":
    return "the same array"
  return repr(value)
