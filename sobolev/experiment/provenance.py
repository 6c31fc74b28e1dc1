"""Provenance: how a workdir was made.

`start(workdir, config)` appends one invocation record to
`<workdir>/provenance.json`, `finish` sets its end time and status, and
`recorded` brackets a `with` block with both. A record holds the command
line (shell quoted), the config, library versions, the git commit and
whether the tree was dirty, the machine, `THREAD_ENV` and the times; every
process that wrote to the workdir adds one.
"""

import contextlib
import datetime
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from typing import (Any, Callable, Dict, Iterator, Mapping, Optional,
                    Sequence, Type, Union)

from sobolev.experiment import configs
from sobolev.experiment import files

FILE = "provenance.json"
# What to do about a garbled provenance.json (it holds no results).
_REMEDY = ("move it aside (it only records how the workdir was made; a new "
           "one is started)")
PACKAGES = ("tensorflow", "dm-sonnet", "numpy", "keras", "absl-py",
            "ml-collections", "tensorboard", "tensorflow-datasets",
            "gymnasium", "ale-py", "scikit-learn", "matplotlib", "tqdm")


def versions(packages: Sequence[str] = PACKAGES) -> Dict[str, Optional[str]]:
  """Installed versions of `packages` (None where not installed)."""
  out = {"python": platform.python_version()}
  for name in packages:
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      out[name] = None
  return out


def git_state(path: Optional[str] = None) -> Dict[str, Any]:
  """`{'commit': sha or None, 'dirty': bool or None}` of the repo at `path`."""
  path = path or os.path.dirname(os.path.abspath(__file__))
  def git(*args):
    return subprocess.run(["git", "-C", path, *args], capture_output=True,
                          text=True, timeout=10, check=True).stdout.strip()
  try:
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
  except (OSError, subprocess.SubprocessError):
    return {"commit": None, "dirty": None}


def machine() -> Dict[str, Any]:
  """CPU model, core count, platform and host name."""
  cpu = platform.processor() or None
  with contextlib.suppress(OSError):
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  return {"cpu": cpu, "cores": os.cpu_count(),
          "platform": platform.platform(), "machine": platform.machine(),
          "hostname": socket.gethostname()}


# Environment variables that change a run's numbers (thread counts change
# float reduction orders; oneDNN changes kernels) or where it runs.
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
              "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS",
              "TF_DETERMINISTIC_OPS", "CUDA_VISIBLE_DEVICES")


def environment() -> Dict[str, Optional[str]]:
  """The `THREAD_ENV` variables as set in this process (None: unset)."""
  return {k: os.environ.get(k) for k in THREAD_ENV}


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds")


def start(workdir: str, config: Any,
          argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  """Appends this invocation's record to `<workdir>/provenance.json`.

  Args:
    workdir: the workdir (created if missing).
    config: the resolved config (`ConfigDict` or mapping).
    argv: the command line (default `sys.argv`).

  Returns:
    The record (pass it to `finish`).
  """
  argv = list(sys.argv if argv is None else argv)
  record = {
      "command": shlex.join([os.path.basename(sys.executable), "-m"] +
                            [_module_name(argv[0])] + argv[1:])
                 if argv and argv[0].endswith(".py") else shlex.join(argv),
      "argv": argv,
      "cwd": os.getcwd(),
      "config": configs.to_dict(config),
      "versions": versions(),
      "git": git_state(),
      "machine": machine(),
      "environment": environment(),
      "start": _now(),
      "end": None,
      "status": "running",
  }
  path = os.path.join(workdir, FILE)
  data = files.read_json(path, default={"invocations": []}, remedy=_REMEDY)
  data["invocations"].append(record)
  files.write_json(path, data)
  return record


def finish(workdir: str, record: Dict[str, Any],
           status: str = "finished") -> None:
  """Sets the end time and status of `record` in `provenance.json`."""
  path = os.path.join(workdir, FILE)
  data = files.read_json(path, default={"invocations": []}, remedy=_REMEDY)
  for entry in reversed(data["invocations"]):
    if all(entry.get(k) == record[k] for k in ("start", "argv")):
      entry.update(end=_now(), status=status)
      break
  files.write_json(path, data)


Status = Union[str, Callable[[BaseException], str]]


@contextlib.contextmanager
def recorded(workdir: str, config: Any, *,
             statuses: Optional[Mapping[Type[BaseException], Status]] = None,
             argv: Optional[Sequence[str]] = None
             ) -> Iterator[Dict[str, Any]]:
  """`start`s a record and `finish`es it 'finished', or, when an exception
  leaves the block (re-raised), with the first matching `statuses` entry (a
  string or a function of the exception), else 'interrupted' for a
  `KeyboardInterrupt` (Ctrl-C, or SIGTERM as `cli.Terminated`), else
  'failed'.

  Args:
    workdir, config, argv: as for `start`.
    statuses: exception type -> status, checked in order.

  Yields:
    The record.
  """
  record = start(workdir, config, argv)
  status = "failed"
  try:
    yield record
    status = "finished"
  except BaseException as e:  # pylint: disable=broad-except
    for kind, value in (statuses or {}).items():
      if isinstance(e, kind):
        status = value(e) if callable(value) else value
        break
    else:
      if isinstance(e, KeyboardInterrupt):
        status = "interrupted"
    raise
  finally:
    finish(workdir, record, status)


def _module_name(path: str) -> str:
  """`.../benchmarks/run.py` -> `benchmarks.run` (best effort)."""
  path = os.path.abspath(path)
  parts = [os.path.splitext(os.path.basename(path))[0]]
  directory = os.path.dirname(path)
  while os.path.exists(os.path.join(directory, "__init__.py")):
    parts.insert(0, os.path.basename(directory))
    directory = os.path.dirname(directory)
  return ".".join(parts)
