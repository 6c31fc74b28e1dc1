"""Configs as plain data: conversion, hashing, diffs and value checks.

Turns an ml-collections `ConfigDict` into a canonical, JSON-safe dict,
hashes it, diffs two field by field, and checks values before any work.
"""

import hashlib
import json
import math
import numbers
from typing import (Any, Callable, Dict, Iterable, Iterator, List,
                    Mapping, Optional, Sequence)

from sobolev.experiment import errors


def to_dict(config: Any) -> Dict[str, Any]:
  """A canonical, JSON-safe nested dict of a `ConfigDict` (or a mapping).

  Tuples become lists and numpy scalars Python numbers, so that the result
  compares equal to the same config read back from JSON.

  Raises:
    TypeError: if `config` is neither a `ConfigDict` nor a mapping.
  """
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise TypeError(f"`config` must be a ConfigDict or a mapping, got "
                    f"{type(config).__name__}.")
  return _canonical(config)


def _canonical(value: Any) -> Any:
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(k): _canonical(v) for k, v in sorted(value.items())}
  if isinstance(value, (list, tuple)):
    return [_canonical(v) for v in value]
  if hasattr(value, "item") and callable(value.item):  # numpy scalar.
    return value.item()
  return value


def settings_hash(settings: Any, length: int = 16) -> str:
  """A stable hex digest of settings (a mapping or `ConfigDict`).

  Equal settings give equal hashes across processes and machines; ints and
  floats of equal value (1 and 1.0) hash the same.
  """
  text = json.dumps(_normalise_numbers(to_dict(settings)), sort_keys=True,
                    separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _normalise_numbers(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: _normalise_numbers(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_normalise_numbers(v) for v in value]
  if (isinstance(value, float) and math.isfinite(value) and
      value == int(value)):
    return int(value)
  return value


def flatten(settings: Any) -> Dict[str, Any]:
  """`{'a': {'b': 1}}` -> `{'a.b': 1}` (lists stay values)."""
  return dict(leaves(to_dict(settings), into_lists=False))


def diff(old: Any, new: Any, ignore: Iterable[str] = ()) -> List[str]:
  """Fields whose values differ, as `'name: old -> new'` strings.

  Args:
    old: the recorded settings.
    new: the requested settings.
    ignore: dotted field names (or prefixes ending in '.') left out.

  Returns:
    One string per differing field, sorted by name; empty if equal.
  """
  a = _normalise_numbers(flatten(old))
  b = _normalise_numbers(flatten(new))
  ignore, out = tuple(ignore), []
  for name in sorted(set(a) | set(b)):
    x, y = a.get(name, _MISSING), b.get(name, _MISSING)
    if not ignored(name, ignore) and not _same(x, y):
      out.append(f"{name}: {x!r} -> {y!r}")
  return out


def ignored(name: str, ignore: Iterable[str]) -> bool:
  """Whether dotted field `name` is in `ignore` (or under an `'a.'` prefix)."""
  return any(name == i or (i.endswith(".") and name.startswith(i))
             for i in ignore)


def _same(x: Any, y: Any) -> bool:
  """Equality in which NaN equals NaN and True differs from 1 (as in JSON)."""
  if isinstance(x, bool) != isinstance(y, bool):
    return False
  if isinstance(x, float) and isinstance(y, float):
    return x == y or (math.isnan(x) and math.isnan(y))
  if isinstance(x, list) and isinstance(y, list):
    return len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y))
  if isinstance(x, dict) and isinstance(y, dict):
    return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
  return x == y


class _Missing:

  def __repr__(self):
    return "(unset)"


_MISSING = _Missing()


def split_names(name: str, value: Any) -> tuple:
  """A tuple of names from a string or sequence of strings split on commas.

  `--config.functions=booth,beale` arrives as `('booth,beale',)`; this gives
  `('booth', 'beale')`. Blanks around names and empty names are dropped.
  `name` is the field, for the error message.

  Raises:
    errors.ConfigError: naming the field if an item is not a string.
  """
  items = (value,) if isinstance(value, str) else value
  if not isinstance(items, (list, tuple)):
    raise errors.ConfigError(f"`{name}` must be names, got {value!r}.")
  out = []
  for item in items:
    if not isinstance(item, str):
      raise errors.ConfigError(f"`{name}` must be names, got {item!r}.")
    out.extend(n.strip() for n in item.split(",") if n.strip())
  return tuple(out)


def leaves(value: Any, path: str = "",
           convert: Callable[[Any], Any] = lambda v: v,
           into_lists: bool = True) -> Iterator[tuple]:
  """`(path, leaf)` for every leaf of a JSON-like value, depth first.

  Args:
    value: nested mappings and lists (or tuples).
    path: the name of `value` (`'a.b'`, `'grid[1]'` below it).
    convert: applied to every node before it is looked into.
    into_lists: whether list items are leaves (else a list is one).

  Yields:
    `(dotted path, leaf)` pairs.
  """
  value = convert(value)
  if isinstance(value, Mapping):
    for key, sub in value.items():
      yield from leaves(sub, f"{path}.{key}" if path else str(key), convert,
                        into_lists)
  elif into_lists and isinstance(value, (list, tuple)):
    for i, sub in enumerate(value):
      yield from leaves(sub, f"{path}[{i}]", convert)
  else:
    yield path, value


def check_finite(config: Any) -> None:
  """Raises `ConfigError` naming the first non-finite number in a config
  (nested fields and list items, e.g. `grid[1]`, included)."""
  for name, value in leaves(to_dict(config)):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
      check_number(name, value)  # Unbounded: only the finiteness check.


def check_int(name: str, value: Any, low: Optional[int] = None,
              high: Optional[int] = None) -> None:
  """Raises `ConfigError` unless `value` is an int (not bool) in [low, high]."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise errors.ConfigError(f"`{name}` must be an integer, got {value!r}.")
  _check_range(name, value, low, high)


def check_number(name: str, value: Any, low: Optional[float] = None,
                 high: Optional[float] = None, *,
                 low_inclusive: bool = True,
                 high_inclusive: bool = True) -> None:
  """Raises `ConfigError` unless `value` is a finite real in the range."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise errors.ConfigError(f"`{name}` must be a number, got {value!r}.")
  if not math.isfinite(float(value)):
    raise errors.ConfigError(f"`{name}` must be finite, got {value!r}.")
  _check_range(name, value, low, high, low_inclusive, high_inclusive)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
  """Raises `ConfigError` unless `value` is one of `choices`."""
  if value not in tuple(choices):
    raise errors.ConfigError(f"`{name}` must be one of {tuple(choices)}, got "
                             f"{value!r}.")


def _check_range(name, value, low, high, low_inclusive=True,
                 high_inclusive=True):
  if low is not None and (value < low if low_inclusive else value <= low):
    op = ">=" if low_inclusive else ">"
    raise errors.ConfigError(f"`{name}` must be {op} {low}, got {value!r}.")
  if high is not None and (value > high if high_inclusive else
                            value >= high):
    op = "<=" if high_inclusive else "<"
    raise errors.ConfigError(f"`{name}` must be {op} {high}, got {value!r}.")
