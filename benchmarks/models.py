"""A unit's trained model: its MLP's weights, saved and read back.

A finished unit (`<workdir>/runs/<key>/`, `sobolev.experiment.runs`) keeps
its model's final weights in `model/weights` (a `tf.train.Checkpoint` of a
plain `snt.nets.MLP` mapping scaled inputs to scaled values) and its input
and output scaling in `result.json` (`scaler`).
"""

import os
from typing import Any, Dict, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from benchmarks import scaling
from benchmarks import stacked_mlp
from sobolev import derivatives
from sobolev.experiment import checkpoints
from sobolev.experiment import runs


def _weights(unit_dir: str) -> str:
  return os.path.join(unit_dir, "model", "weights")


def save(unit_dir: str, mlp: snt.nets.MLP) -> None:
  """Writes a unit's weights (before its result, which marks it finished)."""
  tf.train.Checkpoint(model=mlp).write(_weights(unit_dir))


def scaler_record(scaler: scaling.Scaler) -> Dict[str, Any]:
  """The scaler as `result.json` holds it (read back by `load_model`)."""
  return {"center": scaler.center.tolist(),
          "half_width": scaler.half_width.tolist(),
          "mean": scaler.mean, "std": scaler.std}


def load_model(unit_dir: str) -> Tuple[snt.nets.MLP, scaling.Scaler]:
  """A finished unit's trained MLP and its scaler.

  Args:
    unit_dir: `<workdir>/runs/<key>`.

  Returns:
    `(mlp, scaler)`: `mlp` maps `scaler.inputs(x)` `[N, D]` to scaled
    values `[N, 1]`; `scaler.outputs` maps back to the function's units.

  Raises:
    ValueError: if the directory holds no finished unit.
    errors.CorruptFileError: if its settings or result are garbled.
  """
  unit = runs.read_unit(unit_dir)
  if unit is None:
    raise ValueError(f"{unit_dir} holds no finished unit.")
  settings, result = unit.settings, unit.result
  mlp = snt.nets.MLP(list(settings["hidden_sizes"]) + [1],
                     activation=stacked_mlp.activation_fn(settings.get(
                         "activation", stacked_mlp.DEFAULT_ACTIVATION)),
                     name="mlp")
  mlp(tf.zeros([1, len(result["scaler"]["center"])]))
  checkpoints.read(
      tf.train.Checkpoint(model=mlp), _weights(unit_dir),
      remedy=f"delete {unit_dir} to train that unit again").assert_consumed()
  sc = result["scaler"]
  scaler = scaling.Scaler(center=np.asarray(sc["center"]),
                          half_width=np.asarray(sc["half_width"]),
                          mean=float(sc["mean"]), std=float(sc["std"]))
  return mlp, scaler


def predict(unit_dir: str, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Values `[N]` and gradients `[N, D]` of a saved model at `x [N, D]`."""
  mlp, scaler = load_model(unit_dir)
  v, dv = derivatives.value_and_gradient(
      mlp, tf.constant(scaler.inputs(x), tf.float32))
  return scaler.outputs(v.numpy()[:, 0].astype(np.float64),
                        dv.numpy().astype(np.float64))
