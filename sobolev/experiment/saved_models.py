"""SavedModel export with a concrete signature, loadable without this project.

    saved_models.export(student, [tf.TensorSpec([None, 84, 84, 4])], path)
    f = tf.saved_model.load(path)            # plain TensorFlow
    logits = f(states)                       # or f.signatures["serving_default"]

The directory is written to a temporary sibling and renamed, so a crash
never leaves a half-written SavedModel.
"""

import os
import shutil
import tempfile
from typing import Any, Callable, Sequence

import tensorflow as tf

from sobolev.experiment import files


class _Exported(tf.Module):

  def __init__(self, model: Any, fn: Callable, signature):
    super().__init__()
    self.model = model  # Tracks the variables.
    self.__call__ = tf.function(fn, input_signature=list(signature))


def export(model: Any, input_signature: Sequence[tf.TensorSpec], path: str,
           fn: Callable = None, output_name: str = "output") -> str:
  """Saves `fn` (default `model.__call__`) as a SavedModel at `path`.

  Args:
    model: a `tf.Module` (Sonnet or Keras) whose variables `fn` reads.
    input_signature: one `tf.TensorSpec` per positional input.
    path: the SavedModel directory (replaced if it exists).
    fn: the function to export; default `model`.
    output_name: the serving signature's output name (`<output_name>_<i>`
      for a tuple; a dict keeps its keys).

  Returns:
    `path`.

  Raises:
    TypeError: if `input_signature` holds something other than TensorSpecs.
  """
  signature = list(input_signature)
  if not signature or not all(isinstance(s, tf.TensorSpec) for s in signature):
    raise TypeError("`input_signature` must be a non-empty list of "
                    f"tf.TensorSpec, got {input_signature!r}.")
  exported = _Exported(model, fn if fn is not None else model, signature)

  @tf.function(input_signature=signature)
  def serving(*args):
    out = exported.__call__(*args)
    if isinstance(out, dict):
      return out
    if isinstance(out, (tuple, list)):
      return {f"{output_name}_{i}": o for i, o in enumerate(out)}
    return {output_name: out}

  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.")
  old = None
  try:
    os.chmod(tmp, 0o777 & ~files.UMASK)  # mkdtemp makes it 0700.
    tf.saved_model.save(exported, tmp,
                        signatures={"serving_default": serving})
    if os.path.exists(path):
      # Move the old export aside first: a crash leaves it, never nothing.
      old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}"
                             ".old.")
      os.replace(path, os.path.join(old, "model"))
    os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    if old is not None and not os.path.exists(path):
      os.replace(os.path.join(old, "model"), path)
    raise
  finally:
    if old is not None:
      shutil.rmtree(old, ignore_errors=True)
  return path
