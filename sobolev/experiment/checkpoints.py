"""Checkpoints that resume from the newest intact one, never silently afresh.

`Manager` wraps `tf.train.CheckpointManager`: `restore_or_initialize()`
restores the newest checkpoint that reads back completely (skipping others
with a warning; a garbled `checkpoint` index is rebuilt from the files, the
old one kept as `checkpoint.corrupt`), and raises `CheckpointError` rather
than starting afresh if none can. `read` reads saved weights, turning a bad
file into one `CorruptFileError` line.
"""

import contextlib
import glob
import os
import re
from typing import Any, Optional

from absl import logging
import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files

_CKPT_RE = re.compile(r"-(\d+)\.index$")


def _on_disk(directory: str, prefix: str = "ckpt") -> list:
  """Checkpoint prefixes on disk, newest (highest number) first."""
  found = []
  for index in glob.glob(os.path.join(directory, f"{prefix}-*.index")):
    m = _CKPT_RE.search(index)
    if m:
      found.append((int(m.group(1)), index[:-len(".index")]))
  return [p for _, p in sorted(found, reverse=True)]


def is_intact(path: str) -> bool:
  """Whether every tensor of the checkpoint at `path` reads back."""
  try:
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
    return True
  except (tf.errors.OpError, ValueError, OSError, IndexError):
    return False  # IndexError: a truncated data file (TF 2.21's reader).


def read(checkpoint: tf.train.Checkpoint, path: str, *,
         remedy: str = "delete it or restore it from a backup") -> Any:
  """`checkpoint.read(path)` of built objects, naming a file it cannot read.

  Args:
    checkpoint: what to restore.
    path: the checkpoint prefix (`.../weights`).
    remedy: what to do about an unreadable one, for the message.

  Returns:
    The load status (call e.g. `.assert_consumed()` on it).

  Raises:
    errors.CorruptFileError: if the files are missing, truncated or garbled.
  """
  try:
    return checkpoint.read(path)
  except (tf.errors.OpError, IndexError, ValueError) as e:
    reason = " ".join(str(getattr(e, "message", None) or e).split())
    raise errors.CorruptFileError(
        f"the weights {path} cannot be read ({reason[:200]}); "
        f"{remedy}.") from e


def _quote(path: str) -> str:
  """A checkpoint's file name as a quoted text-proto string."""
  name = os.path.basename(path)
  return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Manager:
  """A `tf.train.CheckpointManager` with a fault-tolerant restore."""

  def __init__(self, checkpoint: tf.train.Checkpoint, directory: str,
               max_to_keep: int = 3, checkpoint_name: str = "ckpt"):
    """Creates the manager.

    Args:
      checkpoint: what to save and restore.
      directory: the checkpoint directory.
      max_to_keep: checkpoints kept (>= 2 so that one can fall back).
      checkpoint_name: file prefix.
    """
    self._checkpoint = checkpoint
    self._directory = directory
    self._prefix = checkpoint_name
    os.makedirs(directory, exist_ok=True)
    self._repair_index()
    self._manager = tf.train.CheckpointManager(
        checkpoint, directory, max_to_keep=max_to_keep,
        checkpoint_name=checkpoint_name)

  def _repair_index(self) -> None:
    index = os.path.join(self._directory, "checkpoint")
    has_index = os.path.exists(index)
    if has_index:
      with contextlib.suppress(Exception):  # A garbled text proto raises.
        if tf.train.get_checkpoint_state(self._directory) is not None:
          return
    paths = _on_disk(self._directory, self._prefix)
    if has_index:  # Garbled: set aside and rebuilt.
      os.replace(index, index + ".corrupt")
      logging.warning("%s was unreadable (kept as checkpoint.corrupt); "
                      "rebuilt it from %d checkpoint files.", index,
                      len(paths))
    if paths:
      # Paths relative to the directory (as CheckpointManager writes them),
      # so that the workdir can still be moved or renamed (`--fresh`).
      lines = [f"model_checkpoint_path: {_quote(paths[0])}"] + [
          f"all_model_checkpoint_paths: {_quote(p)}" for p in reversed(paths)]
      files.atomic_write_text(index, "\n".join(lines) + "\n")

  def restore_or_initialize(self) -> Optional[str]:
    """Restores the newest intact checkpoint; returns its path (None: none).

    Raises:
      errors.CheckpointError: if checkpoints exist but none is intact.
    """
    candidates = list(reversed(self._manager.checkpoints))
    candidates += [p for p in _on_disk(self._directory, self._prefix)
                   if p not in candidates]
    if not candidates:
      return None
    newest = candidates[0]
    for path in candidates:
      if not is_intact(path):
        logging.warning("Checkpoint %s is unreadable; trying an older one.",
                        path)
        continue
      self._checkpoint.read(path).assert_existing_objects_matched()
      if path != newest:
        logging.warning("Restored %s instead of the newest, %s.", path, newest)
        print(f"warning: checkpoint {newest} is unreadable; resumed from "
              f"the older {path}.")
      return path
    raise errors.CheckpointError(
        f"None of the checkpoints in {self._directory} can be read "
        f"({', '.join(os.path.basename(p) for p in candidates)}); move the "
        "directory aside to start again.")

  def save(self, step: Optional[int] = None) -> str:
    """Saves a checkpoint numbered `step`; returns its path."""
    return self._manager.save(checkpoint_number=step)

  @property
  def latest(self) -> Optional[str]:
    return self._manager.latest_checkpoint
