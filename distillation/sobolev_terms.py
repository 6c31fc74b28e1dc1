"""Variants of the Sobolev distillation term (issue 20), selectable by name.

The published objective (`distill.make_loss('sobolev', lambda)`) is

    KL(pi_s || pi_t) + lambda * E_v || J_t(s)^T v - J_s(s)^T v ||      (1)

with `J(s) = D_s log pi(.|s)`, the `[A, 84, 84, 4]` Jacobian of the
log-policy with respect to the input, and v uniform on the unit sphere of
R^A (one draw per state and step). A *variant* changes how the gradient
term is computed or scaled; the KL term is always the same:

* `stochastic_p<P>`: (1) with P independent directions v per state and
  step, averaged (Monte Carlo; `stochastic_p1` is the published term,
  bit-identical to `distill.make_loss`).
* `exact`: the exact counterpart of (1), from the full Jacobians (A
  vector-Jacobian products per network and state):

      || J_t(s) - J_s(s) ||_F / sqrt(A)
          = sqrt( E_v || (J_t(s) - J_s(s))^T v ||^2 )                   (2)

  since `E[v v^T] = I / A` for v uniform on the sphere. It is the root mean
  square over v of the norm that (1) averages, so the two have the same
  units and the same lambda means about the same weight; by Jensen's
  inequality (2) is >= the expectation in (1), with equality when the
  Jacobian difference has A equal singular values. (Squared, (2) is exactly
  `E_v ||(J_t - J_s)^T v||^2 = ||J_t - J_s||_F^2 / A`.)
* suffix `_per_state`: each state's gradient error is divided by the size
  of the teacher's term at that state (a relative error):
  `||J_t^T v - J_s^T v|| / ||J_t^T v||` (stochastic; the same v) or
  `||J_t - J_s||_F / ||J_t||_F` (exact); `1e-8` is added to the
  denominator.
* suffix `_initial`: one weight puts the gradient term on the scale of 1 at
  the start of training: lambda is divided by the term's value for a
  student with zero input gradients, `m = mean_s E_v ||J_t(s)^T v||`
  (stochastic, with fixed directions) or `mean_s ||J_t(s)||_F / sqrt(A)`
  (exact), measured on (a fixed sample of) the training states
  (`initial_scale`). A freshly initialised student's input gradients are
  small, so its gradient term starts near 1 * lambda. This is the analogue
  of the benchmarks' `grad_weight / mean squared gradient norm`
  (`benchmarks.protocols`), for an unsquared norm.

What the paper supports. Section 4.2 gives the objective (1): "since
policies are multivariate functions, direct application of Sobolev Training
would mean producing full Jacobian matrices with respect to the s, which for
large action spaces is computationally expensive. To avoid this issue we
employ a stochastic approximation" with v "from a uniform distribution over
the unit sphere, and Monte Carlo sampling is used to approximate" the
expectation. So the stochastic term is the paper's; the number of Monte
Carlo samples is not given (our `stochastic_p1` is one per state and step;
`stochastic_p<P>` is the same objective with a better Monte Carlo
estimate); the exact Jacobian is what the paper avoids for cost, not for
accuracy (Atari has 4-18 actions, so it is A vector-Jacobian products); and
lambda is not reported. Neither the per-state normalisation nor a
scale-setting weight appears in the paper: they are our additions,
prompted by the size of the gradient term against the KL (issue 20).
"""

import dataclasses
import math
import re
from typing import Callable

import numpy as np
import tensorflow as tf

import sobolev
from sobolev import derivatives
from sobolev import sampling
from distillation import distill

TERMS = ("stochastic", "exact")
NORMALIZATIONS = ("none", "per_state", "initial")
DEFAULT = "stochastic_p1"
_EPSILON = 1e-8
_NAME = re.compile(r"^(stochastic_p(\d+)|exact)(_per_state|_initial)?$")


@dataclasses.dataclass(frozen=True)
class Variant:
  """How the gradient term is computed and scaled.

  Attributes:
    term: 'stochastic' (random projections) or 'exact' (full Jacobians).
    num_projections: directions v per state and step ('stochastic' only;
      1 for 'exact').
    normalization: 'none', 'per_state' or 'initial' (see the module
      docstring).
  """
  term: str = "stochastic"
  num_projections: int = 1
  normalization: str = "none"

  @property
  def name(self) -> str:
    """The variant's name, e.g. 'stochastic_p4', 'exact_initial'."""
    base = ("exact" if self.term == "exact" else
            f"stochastic_p{self.num_projections}")
    return base + ("" if self.normalization == "none" else
                   f"_{self.normalization}")


def parse(name: str) -> Variant:
  """The `Variant` of a name (`Variant.name` inverted).

  Args:
    name: `stochastic_p<P>` (P >= 1) or `exact`, optionally followed by
      `_per_state` or `_initial`.

  Returns:
    The variant.

  Raises:
    ValueError: for a name of another form.
  """
  match = _NAME.match(name) if isinstance(name, str) else None
  if match is None or (match.group(2) is not None and
                       int(match.group(2)) < 1):
    raise ValueError(
        f"Unknown Sobolev variant {name!r}: give stochastic_p<P> (P >= 1) or "
        "exact, optionally followed by _per_state or _initial.")
  normalization = (match.group(3) or "_none")[1:]
  if match.group(2) is None:
    return Variant("exact", 1, normalization)
  return Variant("stochastic", int(match.group(2)), normalization)


def _norms(t: tf.Tensor) -> tf.Tensor:
  """Per-example Euclidean norms, `[N, ...] -> [N]`."""
  flat = tf.reshape(t, tf.stack([tf.shape(t)[0], -1]))
  return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1) + 1e-12)


def exact_rms_error(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Per-state `||J_t - J_s||_F / sqrt(A)`, Eq. (2) of the module docstring.

  Args:
    prediction: the student's Jacobians `[B, A, ...]`.
    target: the teacher's Jacobians, same shape; receives no gradient.

  Returns:
    `[B]`.
  """
  target = tf.stop_gradient(target)
  num_actions = tf.cast(tf.shape(prediction)[1], prediction.dtype)
  return _norms(prediction - target) / tf.sqrt(num_actions)


def relative_error(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Per-state `||prediction - target|| / (||target|| + 1e-8)`.

  Args:
    prediction: the student's projections `[N, ...]` (or Jacobians).
    target: the teacher's, same shape; receives no gradient.

  Returns:
    `[N]`.
  """
  target = tf.stop_gradient(target)
  return _norms(prediction - target) / (_norms(target) + _EPSILON)


def make_loss(variant: Variant, sobolev_weight: float, seed: int = 0,
              scale: float = 1.0) -> sobolev.SobolevLoss:
  """The Sobolev distillation loss of a variant, as a core `SobolevLoss`.

  `make_loss(parse('stochastic_p<P>'), lam, seed)` is exactly
  `distill.make_loss('sobolev', lam, seed, num_projections=P)`.

  Args:
    variant: the variant.
    sobolev_weight: lambda (>= 0).
    seed: seed of the random directions (stochastic terms).
    scale: the 'initial' normalisation's `m` (`initial_scale`); the weight
      of the gradient term is `sobolev_weight / scale`. Must be 1 for the
      other normalisations.

  Returns:
    A `SobolevLoss` whose terms are `order_0` (the KL) and `order_1` (the
    gradient term, unweighted).

  Raises:
    ValueError: for a bad variant, weight or scale.
  """
  if variant.term not in TERMS:
    raise ValueError(f"`term` must be one of {TERMS}, got {variant.term!r}.")
  if variant.normalization not in NORMALIZATIONS:
    raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}, got "
                     f"{variant.normalization!r}.")
  if not sobolev_weight >= 0:
    raise ValueError(f"`sobolev_weight` must be >= 0, got {sobolev_weight}.")
  if not (math.isfinite(scale) and scale > 0):
    raise ValueError(f"`scale` must be finite and > 0, got {scale}.")
  if variant.normalization != "initial" and scale != 1.0:
    raise ValueError("`scale` applies to the 'initial' normalisation only.")
  weight = float(sobolev_weight) / float(scale)
  if variant.term == "stochastic" and variant.normalization != "per_state":
    return distill.make_loss("sobolev", weight, seed=seed,
                             num_projections=variant.num_projections)
  if variant.term == "stochastic":
    return sobolev.SobolevLoss(
        order=1, loss_fns=[distill.kl_student_teacher, relative_error],
        weights=[1.0, weight], mode="stochastic",
        num_projections=variant.num_projections, unbiased_scaling=False,
        seed=seed)
  gradient_loss = (relative_error if variant.normalization == "per_state"
                   else exact_rms_error)
  return sobolev.SobolevLoss(
      order=1, loss_fns=[distill.kl_student_teacher, gradient_loss],
      weights=[1.0, weight], mode="exact", jacobian_mode="reverse")


def teacher_term_sizes(teacher_fn: Callable[[tf.Tensor], tf.Tensor],
                       states: np.ndarray, variant: Variant, seed: int = 0,
                       batch_size: int = 100) -> np.ndarray:
  """The gradient term of a student with zero input gradients, per state.

  Args:
    teacher_fn: the teacher's log-policy, `[B, 84, 84, 4]` float in [0, 1]
      (or any `[B, ...]`) -> `[B, A]`.
    states: `[N, ...]` uint8 states (scaled by 1/255) or float inputs.
    variant: the variant ('stochastic': `||J_t^T v||` with `num_projections`
      directions drawn from `seed`, averaged; 'exact': `||J_t||_F /
      sqrt(A)`).
    seed: seed of the directions.
    batch_size: states per batch.

  Returns:
    `[N]` float64.
  """
  rng = tf.random.Generator.from_seed(seed)
  out = []
  for i in range(0, states.shape[0], batch_size):
    chunk = states[i:i + batch_size]
    x = tf.constant(distill.to_float(chunk) if chunk.dtype == np.uint8
                    else chunk.astype(np.float32))
    if variant.term == "exact":
      _, jac = derivatives.value_and_jacobian(teacher_fn, x)
      a = float(jac.shape[1])
      out.append(_norms(jac).numpy() / math.sqrt(a))
      continue
    p = variant.num_projections
    rows = tf.tile(x, [p] + [1] * (x.shape.rank - 1)) if p > 1 else x
    n = int(x.shape[0])
    _, proj = derivatives.value_and_vjp(
        teacher_fn, rows,
        lambda dim: sampling.unit_sphere([int(rows.shape[0])], dim, rng=rng))
    sizes = tf.reshape(_norms(proj), [p, n])
    out.append(tf.reduce_mean(sizes, axis=0).numpy())
  return np.concatenate(out).astype(np.float64)


def initial_scale(teacher_fn: Callable[[tf.Tensor], tf.Tensor],
                  states: np.ndarray, variant: Variant, seed: int = 0) -> float:
  """The 'initial' normalisation's `m`: the mean of `teacher_term_sizes`.

  Raises:
    ValueError: if the teacher's input gradients are all zero on `states`.
  """
  m = float(np.mean(teacher_term_sizes(teacher_fn, states, variant, seed)))
  if not m > 0:
    raise ValueError("The teacher's input gradients are zero on these states; "
                     "the 'initial' normalisation is undefined.")
  return m
