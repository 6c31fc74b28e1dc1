"""One workdir, one writer: an exclusive lock held for the whole run.

`hold(workdir)` takes an exclusive `fcntl.flock` lock on `<workdir>/.lock`
(re-entrant within a process) until `release(workdir)` or the end of the
process; another process gets `errors.WorkdirInUseError` naming the holder
(pid, host, start time, written into the lock file). The lock file stays
after release (deleting it would race); without `flock` support the run
goes on unlocked, with a warning.

Why `flock` rather than a lock package: the kernel drops it when its process
dies (`kill -9` too), so a stale lock file is simply taken over, and the
holder's details live in the locked file itself.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
from typing import Dict, Optional, Tuple

from absl import logging

from sobolev.experiment import errors

LOCK_FILE = ".lock"

# realpath(workdir) -> [fd of the locked file, (st_dev, st_ino) of it,
# number of holds].
_HELD: Dict[str, list] = {}
_CONTENDED = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def _identity(stat: os.stat_result) -> Tuple[int, int]:
  return stat.st_dev, stat.st_ino


def _still_there(path: str, identity: Tuple[int, int]) -> bool:
  """Whether `path` is still the file with this identity (not moved)."""
  try:
    return _identity(os.stat(path)) == identity
  except OSError:
    return False


def holder(workdir: str) -> Optional[Dict[str, object]]:
  """What the lock file of `workdir` says of its holder (if held), or None."""
  try:
    with open(os.path.join(workdir, LOCK_FILE), encoding="utf-8") as f:
      data = json.loads(f.read() or "null")
  except (OSError, ValueError):
    return None
  return data if isinstance(data, dict) else None


def _describe(info: Optional[Dict[str, object]]) -> str:
  if not info or "pid" not in info:
    return "another process"
  text = f"pid {info['pid']} on {info.get('host', '?')}"
  if info.get("since"):
    text += f", since {info['since']}"
  return text


def hold(workdir: str) -> None:
  """Takes the exclusive lock of the directory `workdir` (created if missing).

  Raises:
    errors.WorkdirInUseError: if another process holds it.
    OSError: if the lock file cannot be created.
  """
  os.makedirs(workdir, exist_ok=True)
  key = os.path.realpath(workdir)
  path = os.path.join(key, LOCK_FILE)
  if holds(workdir):
    _HELD[key][2] += 1  # Re-entrant: this process holds it already.
    return
  if key in _HELD:
    _close(key)  # The workdir was moved (`--fresh`) or replaced.
  for _ in range(10):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno in _CONTENDED:
        raise errors.WorkdirInUseError(
            f"{workdir} is in use by another run ({_describe(holder(key))})"
            "; wait for it to finish, or give another --workdir.") from None
      logging.warning("Cannot lock %s (%s); running without a lock.", path,
                      e.strerror)
      return
    identity = _identity(os.fstat(fd))
    if not _still_there(path, identity):
      os.close(fd)  # Moved aside between open and flock: lock the new one.
      continue
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.datetime.now().astimezone().isoformat(
                timespec="seconds"),
            "argv": list(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
    _HELD[key] = [fd, identity, 1]
    return
  raise errors.WorkdirInUseError(
      f"{workdir} keeps being moved while this run tries to lock it; run "
      "again.")


def holds(workdir: str) -> bool:
  """Whether this process holds the lock of `workdir`."""
  key = os.path.realpath(workdir)
  held = _HELD.get(key)
  return held is not None and _still_there(os.path.join(key, LOCK_FILE),
                                           held[1])


def release(workdir: str) -> None:
  """Undoes one `hold` of `workdir` (if held); the last one releases it."""
  key = os.path.realpath(workdir)
  held = _HELD.get(key)
  if held is not None:
    held[2] -= 1
    if held[2] <= 0:
      _close(key)


def _close(key: str) -> None:
  fd = _HELD.pop(key)[0]
  with contextlib.suppress(OSError):
    os.ftruncate(fd, 0)  # No holder any more.
  os.close(fd)  # Closing the descriptor releases the flock.
