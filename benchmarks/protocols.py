"""The training protocols compared in the study: scalings and loss weights.

Every protocol trains a model `v = net(u)` on scaled inputs `u` and targets
`v`, with a loss per model that is (B examples, D inputs; `t`, `dt` the
scaled targets, `dv` the net's input gradient)

    L = a * mean_b (v_b - t_b)^2 + mean_b sum_j c_j (dv_bj - dt_bj)^2

Regular models use `a = 1, c = 0` in every protocol (values only, in the
protocol's units). Sobolev models:

* `'ours'` (the default, PROTOCOL.md): inputs mapped from the domain to
  [-1, 1]^D (`u = (x - centre) / half_width`), values standardised with the
  training set's mean and std, gradients by the chain rule
  (`dt = dy/dx * half_width / std`); `a = 1`,
  `c_j = grad_weight / mean_b ||dt_b||^2` (the same for every input; with
  `normalize_grad_weight=False` simply `grad_weight`).
* `'raw_l2'` (the paper's plain L2 in the functions' own units): inputs
  mapped to [-1, 1]^D as above, values NOT standardised (`t = y`), gradient
  targets `dt_j = dy/dx_j * half_width_j` (the chain rule of the input map);
  `a = 1`, `c_j = 1 / half_width_j^2`. Since the net's gradient w.r.t. x is
  `dv/du_j / half_width_j`, this is exactly
  `mean (m(x) - f(x))^2 + mean ||D_x m(x) - D_x f(x)||^2` in raw units: the
  input map is a fixed affine first layer, nothing else changes.
* `'differential_ml'` (Huge and Savine 2020, "Differential Machine
  Learning", arXiv:2005.02347): inputs AND values standardised with the
  training set's per-coordinate mean and std (`u = (x - mean_x) / std_x`,
  `t = (y - mean_y) / std_y`, `dt_j = dy/dx_j * std_x_j / std_y`);
  `a = alpha = 1 / (1 + lambda * D)` and
  `c_j = (1 - alpha) / D * 1 / mean_b dt_bj^2`, i.e. their
  `alpha * MSE(values) + (1 - alpha) * MSE(lambda_j * derivatives)` with
  `lambda_j = 1 / sqrt(mean_b dt_bj^2)` and the derivative MSE a mean over
  examples AND inputs; `lambda` is `dml_lambda` (their default 1).

The mean squares are over the model's whole training set.
"""

from typing import Any, Tuple

import numpy as np
import tensorflow as tf

NAMES = ("ours", "raw_l2", "differential_ml")
DEFAULT = "ours"


def check(protocol: str) -> None:
  """Raises ValueError for an unknown protocol name (listing the valid)."""
  if protocol not in NAMES:
    raise ValueError(f"Unknown protocol {protocol!r}; use one of "
                     f"{', '.join(NAMES)}.")


def loss_weights(config: Any, method: str, dt: tf.Tensor,
                 half_width: np.ndarray) -> Tuple[float, tf.Tensor]:
  """The value weight `a` and per-input gradient weights `c` of M models.

  Computed in float32 on the stacked targets (for 'ours' exactly the
  published computation: `grad_weight / max(mean_n ||dt_n||^2, 1e-12)`).

  Args:
    config: the protocol: `protocol` (default 'ours'), `grad_weight`,
      `normalize_grad_weight`, `dml_lambda` (default 1.0).
    method: 'regular' or 'sobolev'.
    dt: `[M, N, D]` float32, each model's scaled training gradient targets.
    half_width: `[M, D]` each model's input half-widths
      (`scaling.Scaler.half_width`).

  Returns:
    `(a, c)`: a float (shared by the M models: it depends only on the
    protocol and D) and `c` `[M, D]` float32 (zeros for regular models).

  Raises:
    ValueError: for an unknown protocol or method, or `dt` not `[M, N, D]`.
  """
  protocol = getattr(config, "protocol", DEFAULT)
  check(protocol)
  dt = tf.convert_to_tensor(dt, tf.float32)
  if dt.shape.rank != 3:
    raise ValueError(f"`dt` must have shape [M, N, D], got {dt.shape}.")
  m, dim = dt.shape[0], dt.shape[2]
  if method == "regular":
    return 1.0, tf.zeros([m, dim])
  if method != "sobolev":
    raise ValueError(f"`method` must be 'regular' or 'sobolev', got "
                     f"{method!r}.")
  if protocol == "ours":
    if config.normalize_grad_weight:
      mean_sq = tf.reduce_mean(tf.reduce_sum(tf.square(dt), axis=2), axis=1)
      weight = config.grad_weight / tf.maximum(mean_sq, 1e-12)
    else:
      weight = tf.fill([m], float(config.grad_weight))
    return 1.0, tf.tile(weight[:, None], [1, dim])
  if protocol == "raw_l2":
    h = np.asarray(half_width, np.float64).reshape([m, dim])
    return 1.0, tf.constant(1.0 / np.square(h), tf.float32)
  lam = float(getattr(config, "dml_lambda", 1.0))
  alpha = 1.0 / (1.0 + lam * dim)
  mean_sq = tf.maximum(tf.reduce_mean(tf.square(dt), axis=1), 1e-12)
  return alpha, (1.0 - alpha) / dim / mean_sq
