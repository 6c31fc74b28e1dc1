"""The public results loader: CSV result tables as typed rows.

Each experiment package writes its dataclass rows with `write`; `read(path,
Row)` reads them back typed (None for empty optional fields).
"""

import dataclasses
import types
import typing
from typing import Any, List, Sequence, Type, TypeVar

from sobolev.experiment import errors
from sobolev.experiment import files

T = TypeVar("T")


def write(path: str, rows: Sequence[Any]) -> None:
  """Writes dataclass rows (or dicts) as CSV, atomically, columns in order."""
  dicts, fields = [], None
  for row in rows:
    if dataclasses.is_dataclass(row):
      if fields is None:
        fields = [f.name for f in dataclasses.fields(row)]
      row = dataclasses.asdict(row)
    dicts.append({k: ("" if v is None else v) for k, v in row.items()})
  files.write_csv(path, dicts, fields)


def read(path: str, row_type: Type[T]) -> List[T]:
  """Reads a results CSV into rows of `row_type` (a dataclass).

  Args:
    path: the CSV file (a missing file gives no rows).
    row_type: the dataclass; each column is converted to its field's type.

  Returns:
    The rows.

  Raises:
    TypeError: if `row_type` is not a dataclass.
    errors.CorruptFileError: (a `ValueError`) if a column is missing or a
      value does not convert, naming the file, the row and the field.
  """
  if not dataclasses.is_dataclass(row_type):
    raise TypeError(f"`row_type` must be a dataclass, got {row_type!r}.")
  hints = typing.get_type_hints(row_type)
  out = []
  for i, raw in enumerate(files.read_csv(path)):
    values = {}
    for field in dataclasses.fields(row_type):
      if field.name not in raw:
        if (field.default is not dataclasses.MISSING or
            field.default_factory is not dataclasses.MISSING):
          continue
        raise errors.CorruptFileError(
            f"{path}: no column {field.name!r}; delete it or restore "
            "it from a backup.")
      try:
        values[field.name] = _convert(raw[field.name], hints[field.name])
      except ValueError as e:
        raise errors.CorruptFileError(
            f"{path}: row {i + 1}, field {field.name!r}: {e}; delete it "
            "or restore it from a backup.") from e
    out.append(row_type(**values))
  return out


def _convert(text: str, kind: Any) -> Any:
  origin = typing.get_origin(kind)
  if origin is typing.Union or origin is types.UnionType:  # `int | None` too.
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return None if text == "" else _convert(text, args[0])
  if kind is bool:
    if text in ("True", "true", "1"):
      return True
    if text in ("False", "false", "0"):
      return False
    raise ValueError(f"not a bool: {text!r}")
  if kind in (int, float, str):
    return kind(text)
  return text
