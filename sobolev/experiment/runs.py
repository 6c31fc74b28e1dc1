"""Finished units of work, keyed by a hash of every setting behind them.

A unit is one thing an experiment trains and scores (a model, a student, a
rollout set); its settings are every value that affects its numbers (config
fields, seed, inputs' digests). `runs/<key>/` holds `settings.json`,
`result.json` (written last: the unit is finished when it exists) and
whatever else the experiment puts there. A result is only returned for the
same settings.
"""

import os
from typing import (Any, Dict, Iterator, Mapping, NamedTuple, Optional,
                    Tuple)

from sobolev.experiment import configs
from sobolev.experiment import files

SETTINGS_FILE = "settings.json"
RESULT_FILE = "result.json"


class Unit(NamedTuple):
  """A finished unit as read back: its key, settings and result."""
  key: str
  settings: Dict[str, Any]
  result: Dict[str, Any]


def _read(unit_dir: str) -> Tuple[Optional[Dict[str, Any]],
                                  Optional[Dict[str, Any]]]:
  """`(result, settings)` of `unit_dir`, each None where its file is missing
  (settings are not read without a result)."""
  remedy = f"delete {unit_dir} to redo that unit"
  result = files.read_json(os.path.join(unit_dir, RESULT_FILE), remedy=remedy)
  if result is None:
    return None, None
  return result, files.read_json(os.path.join(unit_dir, SETTINGS_FILE),
                                 remedy=remedy)


def read_unit(unit_dir: str) -> Optional[Unit]:
  """The finished unit in `unit_dir` (`<workdir>/<subdir>/<key>`), else None.

  Raises:
    errors.CorruptFileError: if its `result.json` or `settings.json` is
      garbled (naming it; delete the unit's directory to redo it).
  """
  result, settings = _read(unit_dir)
  if result is None or settings is None:
    return None
  return Unit(os.path.basename(os.path.normpath(unit_dir)), settings, result)


class RunStore:
  """Finished units under `<workdir>/<subdir>/<key>/`."""

  def __init__(self, workdir: str, subdir: str = "runs"):
    self._root = os.path.join(workdir, subdir)

  @property
  def root(self) -> str:
    return self._root

  @staticmethod
  def key(settings: Mapping[str, Any]) -> str:
    """The key of a unit: a hash of its settings (`configs.settings_hash`)."""
    return configs.settings_hash(settings)

  def unit_dir(self, settings: Mapping[str, Any], create: bool = True) -> str:
    """The directory of the unit with these settings."""
    path = os.path.join(self._root, self.key(settings))
    if create:
      os.makedirs(path, exist_ok=True)
    return path

  def result(self, settings: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The saved result of a finished unit with these settings, else None.

    Raises:
      ValueError: if the unit's directory records other settings (a hash
        collision or a hand-edited file).
      errors.CorruptFileError: as `read_unit`.
    """
    path = self.unit_dir(settings, create=False)
    result, recorded = _read(path)
    if result is None:
      return None
    if recorded is None or configs.diff(recorded, settings):
      raise ValueError(f"{path} records other settings than its key says; "
                       "delete that directory.")
    return result

  def load(self, key: str) -> Optional[Unit]:
    """The finished unit stored under `key`, else None (see `read_unit`)."""
    return read_unit(os.path.join(self._root, key))

  def finished(self) -> Iterator[Unit]:
    """Every finished unit of the store, in key order (see `read_unit`)."""
    if not os.path.isdir(self._root):
      return
    for key in sorted(os.listdir(self._root)):
      unit = self.load(key)
      if unit is not None:
        yield unit

  def save(self, settings: Mapping[str, Any],
           result: Mapping[str, Any]) -> str:
    """Records a finished unit (settings first, then the result).

    Returns:
      The unit's directory.
    """
    path = self.unit_dir(settings)
    files.write_json(os.path.join(path, SETTINGS_FILE),
                     configs.to_dict(settings))
    files.write_json(os.path.join(path, RESULT_FILE), dict(result))
    return path
