"""Saving and loading trained teacher networks.

A teacher directory (by default `distillation/teachers/<game>/`) holds
  teacher.json                      game, network sizes, frames trained, scores
  teacher.index, teacher.data-*     a `tf.train.Checkpoint(teacher=net)`
and, for the committed teachers, the training log `train_log.csv` and
  train_state.index, train_state.data-*
                                    the full A2C training state (network,
                                    RMSProp slots, RNG, counters), so that
                                    `train_teacher --init_from=` continues
                                    exactly where the run stopped
"""

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from distillation import atari_env
from distillation import networks
from sobolev.experiment import checkpoints
from sobolev.experiment import files

TEACHERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "teachers")
META_FILE = "teacher.json"
# What to do about a garbled or truncated teacher file.
_REMEDY = ("restore the teacher (`git checkout -- {0}` for a shipped one) or "
           "train it again")
PREFIX = "teacher"
TRAIN_STATE_PREFIX = "train_state"


def default_dir(game: str) -> str:
  """`distillation/teachers/<game>` (the game is validated)."""
  atari_env.check_game(game)
  return os.path.join(TEACHERS_DIR, game)


def build(meta: Dict[str, Any]) -> networks.TeacherNet:
  """Builds (and initialises) a `TeacherNet` from its metadata."""
  net = networks.TeacherNet(meta["num_actions"], tuple(meta["channels"]),
                            meta["hidden"])
  net(tf.zeros([1, *atari_env.FRAME_SHAPE], tf.uint8))
  return net


def export(net: networks.TeacherNet, directory: str,
           meta: Dict[str, Any]) -> None:
  """Writes a teacher to `directory` atomically (files are replaced).

  Args:
    net: a built `TeacherNet`.
    directory: destination; created if needed.
    meta: extra metadata (e.g. `game`, `frames`, `mean_return`), merged
      with the network sizes.
  """
  os.makedirs(directory, exist_ok=True)
  meta = dict(meta, num_actions=net.num_actions, channels=list(net.channels),
              hidden=net.hidden)
  tmp = tempfile.mkdtemp(dir=directory, prefix=".tmp_export_")
  try:
    tf.train.Checkpoint(teacher=net).write(os.path.join(tmp, PREFIX))
    with open(os.path.join(tmp, META_FILE), "w") as f:
      json.dump(meta, f, indent=2, sort_keys=True)
    for name in os.listdir(tmp):
      os.replace(os.path.join(tmp, name), os.path.join(directory, name))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def export_train_state(checkpoint: tf.train.Checkpoint,
                       directory: str) -> None:
  """Writes a training checkpoint as `directory/train_state.*` atomically.

  Args:
    checkpoint: the run's `tf.train.Checkpoint` (network, optimiser, RNG,
      counters).
    directory: a teacher directory; created if needed.
  """
  os.makedirs(directory, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=directory, prefix=".tmp_state_")
  try:
    checkpoint.write(os.path.join(tmp, TRAIN_STATE_PREFIX))
    for name in os.listdir(tmp):
      os.replace(os.path.join(tmp, name), os.path.join(directory, name))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def train_state_path(directory: str) -> Optional[str]:
  """The `train_state` checkpoint prefix in `directory`, or None."""
  prefix = os.path.join(directory, TRAIN_STATE_PREFIX)
  return prefix if os.path.exists(prefix + ".index") else None


def load(game: Optional[str] = None, directory: Optional[str] = None
         ) -> Tuple[networks.TeacherNet, Dict[str, Any]]:
  """Loads a teacher.

  Args:
    game: the game; its default directory is used if `directory` is None.
    directory: a teacher directory (overrides the default).

  Returns:
    `(net, meta)`.

  Raises:
    ValueError: for an unknown game, if neither argument is given, or if the
      directory holds no teacher (or one for another game).
  """
  if directory is None:
    if game is None:
      raise ValueError("Give `game` or `directory` to load a teacher.")
    directory = default_dir(game)
  elif game is not None:
    atari_env.check_game(game)
  meta_path = os.path.join(directory, META_FILE)
  if not os.path.exists(meta_path):
    raise ValueError(f"No teacher in {directory!r} (missing {META_FILE}).")
  meta = files.read_json(meta_path, remedy=_REMEDY.format(directory))
  if game is not None and meta.get("game") not in (None, game):
    raise ValueError(f"The teacher in {directory!r} plays {meta['game']}, "
                     f"not {game}.")
  net = build(meta)
  checkpoints.read(
      tf.train.Checkpoint(teacher=net), os.path.join(directory, PREFIX),
      remedy=_REMEDY.format(directory)).assert_existing_objects_matched()
  return net, meta


def update_meta(directory: str, **fields: Any) -> Dict[str, Any]:
  """Adds `fields` (e.g. evaluation scores) to a teacher's `teacher.json`.

  Args:
    directory: a teacher directory.
    **fields: JSON-serialisable values.

  Returns:
    The updated metadata.

  Raises:
    ValueError: if the directory holds no teacher.
  """
  path = os.path.join(directory, META_FILE)
  if not os.path.exists(path):
    raise ValueError(f"No teacher in {directory!r} (missing {META_FILE}).")
  meta = files.read_json(path, remedy=_REMEDY.format(directory))
  meta.update(fields)
  files.write_json(path, meta)
  return meta


def digest(net: tf.Module, length: int = 16) -> str:
  """A hex digest of a network's weights: the teacher's identity.

  Hashes every variable's name, shape, dtype and values (in name order), so
  two teachers with the same weights share it wherever they are stored, and
  any retrained or other teacher gets another one.

  Args:
    net: a built network (e.g. a `TeacherNet`).
    length: hex characters kept.

  Returns:
    The digest.

  Raises:
    ValueError: if `net` has no variables (not built).
  """
  variables = sorted(net.variables, key=lambda v: v.name)
  if not variables:
    raise ValueError("`net` has no variables; build it before hashing.")
  h = hashlib.sha256()
  for v in variables:
    value = v.numpy()
    h.update(f"{v.name}|{value.shape}|{value.dtype}|".encode("utf-8"))
    h.update(value.tobytes())
  return h.hexdigest()[:length]
