"""The size and noise of a teacher's input gradients ("why Breakout").

For every state s of a sample and K directions v_k uniform on the unit
sphere of R^A, `teacher_gradient_stats` measures `g_k(s) = ||D_s<log
pi_t(s), v_k>||`, the size of the teacher's term in the published Sobolev
loss (the loss of a student with zero input gradients), and summarises:

* `mean_norm`: `mean_s mean_k g_k(s)`, the term's typical size (compare the
  KL, which is O(0.1-1));
* `mean_sd_over_v`: `mean_s std_k g_k(s)`, how much one random direction
  changes it (the noise the one-projection estimate adds);
* `mean_cv_over_v`: `mean_s std_k g_k(s) / mean_k g_k(s)`;
* `cv_over_states`: the coefficient of variation over states of
  `mean_k g_k(s)` (whether a few states dominate the term);
* `exact_rms`: `mean_s ||J_t(s)||_F / sqrt(A)`, the exact counterpart
  (`sobolev_terms`, Eq. 2);
* `teacher_entropy`: the teacher's mean policy entropy (nats) there.

`for_game` computes them once per game of the study (a unit of the
workdir's `diagnostics/` store).
"""

import dataclasses
import os
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from distillation import distill
from distillation import rollouts
from sobolev import derivatives
from sobolev import sampling
from sobolev.experiment import runs


@dataclasses.dataclass(frozen=True)
class DiagnosticRow:
  """One game's teacher-gradient statistics (`teacher_gradients.csv`)."""
  game: str
  num_actions: int
  states: int
  projections: int
  mean_norm: float
  mean_sd_over_v: float
  mean_cv_over_v: float
  cv_over_states: float
  exact_rms: float
  teacher_entropy: float


def teacher_gradient_stats(teacher_fn: Callable[[tf.Tensor], tf.Tensor],
                           states: np.ndarray, projections: int = 16,
                           seed: int = 0, batch_size: int = 25
                          ) -> dict:
  """The statistics of the module docstring on `states`.

  Args:
    teacher_fn: log-policy, `[B, ...]` float -> `[B, A]`.
    states: `[N, 84, 84, 4]` uint8 (scaled by 1/255) or float `[N, ...]`.
    projections: K directions per state (>= 2).
    seed: seed of the directions.
    batch_size: states per batch.

  Returns:
    A dict with the `DiagnosticRow` fields from `states` on.

  Raises:
    ValueError: for fewer than 2 projections or no states.
  """
  if projections < 2:
    raise ValueError(f"`projections` must be >= 2, got {projections}.")
  if states.shape[0] < 1:
    raise ValueError("`states` is empty.")
  rng = tf.random.Generator.from_seed(seed)
  norms, exact, entropy = [], [], []
  for i in range(0, states.shape[0], batch_size):
    chunk = states[i:i + batch_size]
    x = tf.constant(distill.to_float(chunk) if chunk.dtype == np.uint8
                    else chunk.astype(np.float32))
    n = int(x.shape[0])
    rows = tf.tile(x, [projections] + [1] * (x.shape.rank - 1))
    y, proj = derivatives.value_and_vjp(
        teacher_fn, rows,
        lambda dim: sampling.unit_sphere([n * projections], dim, rng=rng))
    g = tf.norm(tf.reshape(proj, [projections, n, -1]), axis=-1)
    norms.append(tf.transpose(g).numpy())  # [n, K]
    logp, jac = derivatives.value_and_jacobian(teacher_fn, x)
    a = float(jac.shape[1])
    exact.append(tf.norm(tf.reshape(jac, [n, -1]), axis=1).numpy() /
                 np.sqrt(a))
    entropy.append(-tf.reduce_sum(tf.exp(logp) * logp, axis=1).numpy())
    del y
  g = np.concatenate(norms).astype(np.float64)
  per_state = g.mean(axis=1)
  sd = g.std(axis=1, ddof=1)
  return {
      "states": int(g.shape[0]), "projections": int(projections),
      "mean_norm": float(per_state.mean()),
      "mean_sd_over_v": float(sd.mean()),
      "mean_cv_over_v": float(np.mean(sd / np.maximum(per_state, 1e-30))),
      "cv_over_states": float(per_state.std(ddof=1) / per_state.mean()
                              if g.shape[0] > 1 else 0.0),
      "exact_rms": float(np.concatenate(exact).mean()),
      "teacher_entropy": float(np.concatenate(entropy).mean())}


def for_game(config: Any, game: Any, workdir: str,
             compute: bool = True) -> Optional[DiagnosticRow]:
  """A study game's row, computed once and kept in `diagnostics/`.

  Args:
    config: the study config (`diagnostic_states`,
      `diagnostic_projections`, `collect_seed`).
    game: a `study_runner.Game`.
    workdir: the study's workdir.
    compute: compute it if missing (else return None).

  Returns:
    The row, or None.
  """
  settings = {"kind": "teacher_gradients", "game": game.name,
              "teacher": game.digest, "rollouts": game.rollouts_key,
              "states": config.diagnostic_states,
              "projections": config.diagnostic_projections,
              "seed": config.collect_seed}
  store = runs.RunStore(workdir, "diagnostics")
  done = store.result(settings)
  if done is None:
    if not compute:
      return None
    data = rollouts.load(os.path.join(game.rollouts_root, "rollouts",
                                      game.rollouts_key))
    n = data["states"].shape[0]
    idx = np.sort(np.random.default_rng(config.collect_seed + 5).choice(
        n, min(n, config.diagnostic_states), replace=False))
    states = data["states"][idx]
    del data
    done = teacher_gradient_stats(game.teacher.log_policy, states,
                                  config.diagnostic_projections,
                                  seed=config.collect_seed)
    store.save(settings, done)
  return DiagnosticRow(game=game.name, num_actions=game.num_actions, **done)
