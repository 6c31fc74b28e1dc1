"""Opening a workdir for a config: the same settings resume, others are refused.

`open_workdir(workdir, config)` compares the config with the one the workdir
was made with (`config.json`): equal (up to `ignore`d fields), the run
resumes; different, `if_different='refuse'` (default) raises
`WorkdirMismatchError` naming the fields, `'fresh'` moves the old contents
to `<workdir>.old-<time>`, and `'separate'` opens `<workdir>/sets/<hash>`. A
workdir holding no results is taken by any settings: `config.json`
describes the results next to it.

One workdir, one writer: `open_workdir` holds the workdir's lock
(`locks.hold`) until `release(workdir)` or the process ends; `opened` is
the `with` form. `locate` finds a config's results without writing or
locking anything (for readers).
"""

import contextlib
import os
import time
from typing import Any, Iterable, Iterator, Optional

from absl import logging

from sobolev.experiment import configs
from sobolev.experiment import errors
from sobolev.experiment import files
from sobolev.experiment import locks

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
    ignore: dotted fields that may change without invalidating finished
      results (e.g. the number of seeds).
    if_different: 'refuse', 'fresh' or 'separate' (module docstring).

  Returns:
    `workdir`, or `workdir/sets/<hash>` for 'separate'.

  Raises:
    ValueError: for an empty `workdir` or an unknown `if_different`.
    errors.WorkdirInUseError: another process holds the workdir.
    errors.WorkdirMismatchError: 'refuse' and other settings' results there.
  """
  if not workdir or not isinstance(workdir, str):
    raise ValueError(f"`workdir` must be a non-empty path, got {workdir!r}.")
  if if_different not in IF_DIFFERENT:
    raise ValueError(f"`if_different` must be one of {IF_DIFFERENT}, got "
                     f"{if_different!r}.")
  new = configs.to_dict(config)
  locks.hold(workdir)  # Before reading anything: one writer decides.
  return _open(workdir, new, tuple(ignore), if_different)


def release(workdir: str) -> None:
  """Undoes one `open_workdir`'s hold of the lock (see `locks.release`)."""
  locks.release(workdir)


@contextlib.contextmanager
def opened(workdir: str, config: Any, *, ignore: Iterable[str] = (),
           if_different: str = "refuse") -> Iterator[str]:
  """`open_workdir` (same arguments, yields its result) for a `with` block,
  releasing the lock after it."""
  directory = open_workdir(workdir, config, ignore=ignore,
                           if_different=if_different)
  try:
    yield directory
  finally:
    release(workdir)


def _problem(workdir: str, new: Any, ignore: Iterable[str]) -> Optional[str]:
  """Why `workdir` cannot take `new` as is (None: it can)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path):
    try:
      differences = configs.diff(files.read_json(path), new, ignore)
    except (ValueError, TypeError) as e:  # Garbled or not a JSON object.
      problem = f"has an unreadable {CONFIG_FILE} ({e})"
    else:
      if not differences:
        return None
      problem = ("holds results made with other settings: " +
                 "; ".join(differences))
    if not _has_results(workdir):
      logging.warning("%s held no results; its %s is replaced.", workdir,
                      CONFIG_FILE)
      return None
    return problem
  if os.path.isdir(workdir) and _has_results(workdir):
    return f"holds files but no {CONFIG_FILE} (settings unknown)"
  return None


def _open(workdir: str, new: Any, ignore: Iterable[str],
          if_different: str) -> str:
  """`open_workdir` once the lock is held."""
  problem = _problem(workdir, new, ignore)
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
      locks.hold(workdir)  # The lock moved aside with the old contents.
    else:
      return _open(os.path.join(workdir, "sets", _set_key(new, ignore)), new,
                   ignore, "refuse")
  os.makedirs(workdir, exist_ok=True)
  files.write_json(os.path.join(workdir, CONFIG_FILE), new)
  return workdir


def locate(workdir: str, config: Any, *,
           ignore: Iterable[str] = ()) -> Optional[str]:
  """Where `config`'s results are in `workdir`; writes and locks nothing.

  Args:
    workdir, config, ignore: as for `open_workdir`.

  Returns:
    `workdir` if its `config.json` matches `config` (up to `ignore`), else
    `workdir/sets/<hash>` if that one does, else None.
  """
  new = configs.to_dict(config)
  ignore = tuple(ignore)
  for place in (workdir,
                os.path.join(workdir, "sets", _set_key(new, ignore))):
    recorded = files.read_json(os.path.join(place, CONFIG_FILE))
    if recorded is not None and not configs.diff(recorded, new, ignore):
      return place
  return None


def locate_or_raise(workdir: str, config: Any, *,
                    ignore: Iterable[str] = ()) -> str:
  """`locate`, refusing a workdir that holds no results of `config`.

  Raises:
    errors.WorkdirMismatchError: naming the workdir.
  """
  found = locate(workdir, config, ignore=ignore)
  if found is None:
    raise errors.WorkdirMismatchError(
        f"{workdir} holds no results of these settings (no matching "
        f"{CONFIG_FILE}); give the settings it was run with.")
  return found


def _set_key(new: Any, ignore: Iterable[str]) -> str:
  """The `sets/<key>` of these settings (ignored fields left out)."""
  return configs.settings_hash(
      {k: v for k, v in configs.flatten(new).items()
       if not configs.ignored(k, ignore)})


def _aside_name(workdir: str) -> str:
  """`<workdir>.old-<time>`, with a counter if that exists already."""
  base = f"{os.path.normpath(workdir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  aside, n = base, 1
  while os.path.exists(aside):
    n += 1
    aside = f"{base}-{n}"
  return aside


def _has_results(workdir: str) -> bool:
  """Whether `workdir` holds files other than metadata, hidden ones, `sets/`."""
  for root, dirs, names in os.walk(workdir):
    top = root == workdir
    dirs[:] = [d for d in dirs if not d.startswith(".") and
               not (top and d == "sets")]
    if any(not n.startswith(".") and not (top and n in _METADATA)
           for n in names):
      return True
  return False
