"""Opening a workdir for a config: the same settings resume, others are refused.

`open_workdir(workdir, config)` compares the config with the one the workdir
was made with (`config.json`):

* equal (up to the `ignore`d fields, e.g. how many seeds a sweep has): the
  run resumes; `config.json` is rewritten with the new config;
* different, `if_different='refuse'` (the default): `WorkdirMismatchError`
  with one line naming every differing field;
* `'fresh'`: the old contents move aside to `<workdir>.old-<time>` (nothing
  is deleted) and the run starts in an empty workdir;
* `'separate'`: the new settings get their own run set,
  `<workdir>/sets/<hash>`, opened the same way, and the old results stay.

So `config.json` always describes the results next to it.
"""

import os
import time
from typing import Any, Iterable

from absl import logging

from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files

CONFIG_FILE = "config.json"
IF_DIFFERENT = ("refuse", "fresh", "separate")
# Files that say how a workdir was made, not what it holds.
_METADATA = (CONFIG_FILE, "provenance.json")


def open_workdir(workdir: str, config: Any, *, ignore: Iterable[str] = (),
                 if_different: str = "refuse") -> str:
  """Prepares `workdir` for `config` and returns the directory to write to.

  Args:
    workdir: the directory (created if missing).
    config: the resolved `ConfigDict` (or mapping) of this run.
    ignore: dotted config fields that may change between invocations without
      invalidating finished results (e.g. the number of seeds: finished
      units are keyed by their own settings, see `runs`).
    if_different: 'refuse', 'fresh' or 'separate' (module docstring).

  Returns:
    The directory to use: `workdir`, or `workdir/sets/<hash>` for
    'separate'.

  Raises:
    ValueError: for an empty `workdir` or an unknown `if_different`.
    errors.WorkdirMismatchError: 'refuse' and the workdir holds results of
      other settings (or files of unknown settings).
  """
  if not workdir or not isinstance(workdir, str):
    raise ValueError(f"`workdir` must be a non-empty path, got {workdir!r}.")
  if if_different not in IF_DIFFERENT:
    raise ValueError(f"`if_different` must be one of {IF_DIFFERENT}, got "
                     f"{if_different!r}.")
  new = configs.to_dict(config)
  ignore = tuple(ignore)
  path = os.path.join(workdir, CONFIG_FILE)
  problem = None
  if os.path.exists(path):
    try:
      differences = configs.diff(files.read_json(path), new, ignore)
    except (ValueError, TypeError) as e:  # Garbled or not a JSON object.
      differences = None
      problem = f"has an unreadable {CONFIG_FILE} ({e})"
    if differences:
      problem = ("holds results made with other settings: " +
                 "; ".join(differences))
  elif os.path.isdir(workdir) and _has_results(workdir):
    problem = f"holds files but no {CONFIG_FILE} (settings unknown)"
  if problem is not None:
    if if_different == "refuse":
      raise errors.WorkdirMismatchError(
          f"{workdir} {problem}. Pass --fresh to move them aside and start "
          "again, or --separate to keep these settings as a separate run "
          "set.")
    if if_different == "fresh":
      aside = _aside_name(workdir)
      os.rename(workdir, aside)  # Same parent, so an atomic rename.
      logging.warning("Moved the old contents of %s to %s.", workdir, aside)
    else:
      key = configs.settings_hash(
          {k: v for k, v in configs.flatten(new).items()
           if not _ignored(k, ignore)})
      return open_workdir(os.path.join(workdir, "sets", key), config,
                          ignore=ignore, if_different="refuse")
  os.makedirs(workdir, exist_ok=True)
  files.write_json(path, new)
  return workdir


def _aside_name(workdir: str) -> str:
  """`<workdir>.old-<time>`, with a counter if that exists already."""
  base = f"{os.path.normpath(workdir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  aside, n = base, 1
  while os.path.exists(aside):
    n += 1
    aside = f"{base}-{n}"
  return aside


def _ignored(name: str, ignore: Iterable[str]) -> bool:
  return any(name == i or (i.endswith(".") and name.startswith(i))
             for i in ignore)


def _has_results(workdir: str) -> bool:
  for name in os.listdir(workdir):
    if name in _METADATA or name == "sets" or name.startswith("."):
      continue
    return True
  return False
