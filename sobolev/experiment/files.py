"""Atomic file writes and tolerant CSV reads.

Every write goes to a fsynced temporary file in the same directory that
replaces the target (`os.replace`), so a reader or a resumed run never sees
a partial file; an append rewrites the file (fine for logs of a few MB).
"""

import csv
import io
import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence

from absl import logging

from sobolev.experiment import errors


def atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically, creating its directory if needed."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  try:
    fd, tmp = tempfile.mkstemp(dir=directory,
                               prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
  except OSError as e:  # Name the file meant, not the temporary one.
    raise type(e)(e.errno, e.strerror, path) from e
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    # mkstemp creates the file 0600; give it the mode a plain open() would.
    os.chmod(tmp, _file_mode(path))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


UMASK = os.umask(0o022)  # Read at import (no threads yet), then restored.
os.umask(UMASK)


def _file_mode(path: str) -> int:
  """The mode of the existing `path`, else 0666 less the umask."""
  try:
    return os.stat(path).st_mode & 0o777
  except OSError:
    return 0o666 & ~UMASK


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> None:
  """Writes `obj` as indented, key-sorted JSON, atomically."""
  atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True,
                                     default=_json_default) + "\n")


def read_json(path: str, default: Any = None, *,
              remedy: str = "delete it or restore it from a backup") -> Any:
  """Reads a JSON file; `default` if it does not exist.

  Args:
    path: the file.
    default: returned if the file does not exist.
    remedy: what to do about a garbled file, for the message.

  Returns:
    The parsed JSON, or `default`.

  Raises:
    errors.CorruptFileError: (a `ValueError`) if it is not UTF-8 JSON.
  """
  if not os.path.exists(path):
    return default
  with open(path, "rb") as f:
    data = f.read()
  try:
    return json.loads(data.decode("utf-8"))
  except ValueError as e:  # JSONDecodeError and UnicodeDecodeError.
    reason = (f"line {e.lineno} column {e.colno}: {e.msg}"
              if isinstance(e, json.JSONDecodeError) else "not UTF-8 text")
    if not data.strip(b"\0 \t\r\n"):
      reason = "empty"
    raise errors.CorruptFileError(
        f"{path} is not valid JSON ({reason}); {remedy}.") from e


def _json_default(obj: Any) -> Any:
  if hasattr(obj, "tolist"):  # numpy scalars and arrays.
    return obj.tolist()
  if isinstance(obj, (set, frozenset)):
    return sorted(obj)
  raise TypeError(f"Object of type {type(obj).__name__} is not JSON "
                  "serialisable.")


def _csv_text(fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, list(fields), lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({k: _csv_value(v) for k, v in row.items()})
  return buf.getvalue()


def _csv_value(value: Any) -> Any:
  # numpy scalars first: np.float64 is a float whose repr (numpy 2) is
  # 'np.float64(...)', which would not read back as a number.
  if hasattr(value, "item") and callable(value.item):
    value = value.item()
  if isinstance(value, float):
    return repr(value)  # Round-trips exactly.
  return value


def write_csv(path: str, rows: Sequence[Mapping[str, Any]],
              fields: Optional[Sequence[str]] = None) -> None:
  """Writes rows (dicts) as a CSV file, atomically.

  Args:
    path: the file.
    rows: the rows; every key must be in `fields`.
    fields: the column order; by default the keys of the rows in order of
      first appearance.

  Raises:
    ValueError: if a row has a key that is not in `fields`.
  """
  if fields is None:  # The keys in order of first appearance.
    fields = list(dict.fromkeys(k for row in rows for k in row))
  atomic_write_text(path, _csv_text(fields, rows))


def read_csv(path: str) -> List[Dict[str, str]]:
  """Reads a CSV file written by `write_csv`/`append_csv` as string dicts.

  A missing file reads as no rows. A partial last line (an older version's
  non-atomic append, cut anywhere) is dropped with a warning.

  Raises:
    errors.CorruptFileError: (a `ValueError`) if a line other than the last
      is malformed or not UTF-8, naming the file.
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read().rstrip(b"\0")
  cut = data.rfind(b"\n") + 1  # What follows the last newline may be partial.
  try:
    text = (data[:cut].decode("utf-8") +
            data[cut:].decode("utf-8", errors="replace"))
  except UnicodeDecodeError as e:
    raise errors.CorruptFileError(
        f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); delete "
        "it or restore it from a backup.") from e
  lines = list(csv.reader(io.StringIO(text, newline="")))
  if not lines:
    return []
  header, body = lines[0], lines[1:]
  rows = []
  for i, line in enumerate(body):
    if len(line) != len(header):
      if i == len(body) - 1:
        logging.warning("%s: dropping a partial last line (%d of %d fields).",
                        path, len(line), len(header))
        break
      raise errors.CorruptFileError(
          f"{path}: line {i + 2} has {len(line)} fields, the header has "
          f"{len(header)}; delete it or restore it from a backup.")
    rows.append(dict(zip(header, line)))
  return rows


def append_csv(path: str, rows: Sequence[Mapping[str, Any]],
               fields: Optional[Sequence[str]] = None) -> None:
  """Appends rows to a CSV file atomically (rewrites it with the new rows).

  Args:
    path: the file (created with a header if missing).
    rows: the new rows.
    fields: the preferred column order for a new file; by default the keys
      of the new rows. Columns of an existing file come first; new columns
      are added at the end (older rows get empty cells).
  """
  existing = read_csv(path)
  header: List[str] = []
  if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path, newline="", encoding="utf-8") as f:
      header = list(next(csv.reader(f), []))
  for name in list(fields or []) + [k for row in rows for k in row]:
    if name not in header:
      header.append(name)
  atomic_write_text(path, _csv_text(header, list(existing) + list(rows)))
