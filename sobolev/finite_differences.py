"""Target derivatives of black boxes by central finite differences.

For targets without autodiff (a simulator, a numpy function), derivative
targets are estimated as

    df/dx_d (x) ~= (f(x + h_d e_d) - f(x - h_d e_d)) / (2 h_d)

with an error O(h^2) plus a rounding error O(eps / h). Steps are relative by
default, `h_d = step * max(1, |x_d|)`; the default `1e-5` is near-optimal in
float64 (eps^(1/3) ~ 6e-6). One call evaluates `f` on `2 * D` stacked copies
of the batch, in float64. Steps below `MIN_RELATIVE_STEP * max(1, |x_d|)`
(100 machine epsilons) are rejected: there rounding error swamps the
estimate.
"""

from typing import Callable, Union

import numpy as np

ArrayFn = Callable[[np.ndarray], np.ndarray]

MIN_RELATIVE_STEP = 100.0 * float(np.finfo(np.float64).eps)


def _steps(x: np.ndarray, step: Union[float, np.ndarray],
           relative: bool) -> np.ndarray:
  """Per-coordinate steps `[N, D]`."""
  step = np.asarray(step, dtype=np.float64)
  if step.ndim > 1 or (step.ndim == 1 and step.shape[0] != x.shape[1]):
    raise ValueError(f"`step` must be a scalar or have shape [{x.shape[1]}], "
                     f"got shape {step.shape}.")
  if not np.all(np.isfinite(step)) or np.any(step <= 0):
    raise ValueError(f"`step` must be finite and > 0, got {step}.")
  h = np.broadcast_to(step, x.shape)
  if relative:
    h = h * np.maximum(1.0, np.abs(x))
  floor = MIN_RELATIVE_STEP * np.maximum(1.0, np.abs(x))
  if np.any(h < floor):
    worst = np.unravel_index(np.argmax(floor / h), h.shape)
    raise ValueError(
        f"`step` is too small for float64: the step {h[worst]:.3g} on input "
        f"coordinate {worst[1]} (x = {x[worst]:.6g}) is below "
        f"{MIN_RELATIVE_STEP:.2g} * max(1, |x|) = {floor[worst]:.3g}, where "
        "rounding error swamps the difference quotient; use a step near "
        "1e-5 (relative).")
  return h


def _check(f, x):
  if not callable(f):
    raise TypeError(f"`f` must be callable, got {type(f)}.")
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2:
    raise ValueError(f"`x` must have shape [N, D], got {x.shape}.")
  if x.shape[0] == 0:
    raise ValueError(f"`x` holds no points (shape {x.shape}); give at least "
                     "one point [N, D] with N >= 1.")
  if x.shape[1] == 0:
    raise ValueError(f"`x` has no input coordinates (shape {x.shape}); give "
                     "points [N, D] with D >= 1.")
  if not np.all(np.isfinite(x)):
    raise ValueError("`x` contains NaN or Inf values.")
  return x


def jacobian(f: ArrayFn,
             x: np.ndarray,
             step: Union[float, np.ndarray] = 1e-5,
             relative: bool = True) -> np.ndarray:
  """Central-difference Jacobian of a batched black-box function.

  Args:
    f: maps `[M, D]` to `[M, O]` or `[M]` (numpy in, array-like out), each row
      independently.
    x: points `[N, D]`.
    step: step size, a scalar or one per input coordinate `[D]`.
    relative: if True the step on coordinate d is `step * max(1, |x_d|)`.

  Returns:
    Jacobians `[N, O, D]` in float64 (`O = 1` for scalar `f`).

  Raises:
    TypeError: if `f` is not callable.
    ValueError: for bad shapes (including an empty `x`), non-positive
      steps, steps too small for float64 (see the module docstring), or a
      non-finite `f`.
  """
  x = _check(f, x)
  n, d = x.shape
  h = _steps(x, step, relative)
  eye = np.eye(d)[:, None, :]                       # [D, 1, D]
  shift = eye * h[None, :, :]                       # [D, N, D]
  stacked = np.concatenate([x[None] + shift, x[None] - shift]).reshape(-1, d)
  y = np.asarray(f(stacked), dtype=np.float64)
  if y.shape[0] != 2 * d * n:
    raise ValueError(f"`f` must return one row per input row: got "
                     f"{y.shape[0]} rows for {2 * d * n}.")
  y = y.reshape(2, d, n, -1)                        # [2, D, N, O]
  if not np.all(np.isfinite(y)):
    raise ValueError("`f` returned NaN or Inf near `x`.")
  diff = (y[0] - y[1]) / (2.0 * np.transpose(h)[:, :, None])  # [D, N, O]
  return np.transpose(diff, (1, 2, 0))              # [N, O, D]


def gradient(f: ArrayFn,
             x: np.ndarray,
             step: Union[float, np.ndarray] = 1e-5,
             relative: bool = True) -> np.ndarray:
  """Central-difference gradient of a batched scalar black-box function.

  Args:
    f: maps `[M, D]` to `[M]` or `[M, 1]`.
    x, step, relative: as for `jacobian`.

  Returns:
    Gradients `[N, D]` in float64.

  Raises:
    ValueError: if `f` has more than one output, or as `jacobian`.
  """
  jac = jacobian(f, x, step=step, relative=relative)
  if jac.shape[1] != 1:
    raise ValueError(f"`f` must be scalar-valued for `gradient`, got "
                     f"{jac.shape[1]} outputs; use `jacobian`.")
  return jac[:, 0, :]
