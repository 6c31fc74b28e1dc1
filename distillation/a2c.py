"""Advantage actor-critic (A2C, the synchronous variant of A3C) pieces.

A3C (Mnih et al. 2016) runs asynchronous actor-learners; we use its
synchronous, batched form A2C: `num_envs` games step in lockstep, every
`n_steps` steps one gradient update is made on the `num_envs * n_steps`
transitions with n-step returns

    R_t = r_t + gamma * r_{t+1} + ... + gamma^{k-1} r_{t+k-1} + gamma^k V(s_{t+k})

(cut at episode ends), and the loss

    L = -mean_t[log pi(a_t|s_t) * stopgrad(R_t - V(s_t))]
        + value_coef * mean_t[(R_t - V(s_t))^2]
        - entropy_coef * mean_t[H(pi(.|s_t))]

minimised with RMSProp and global-norm gradient clipping (the clipping is
`clip_by_global_norm`, passed to `sobolev.training.make_train_step` as
`transform_grads`).
"""

import math
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf


def n_step_returns(rewards: np.ndarray, dones: np.ndarray,
                   bootstrap: np.ndarray, gamma: float) -> np.ndarray:
  """Discounted n-step returns, cut where an episode (or life) ended.

  Args:
    rewards: `[T, B]` rewards r_t.
    dones: `[T, B]` bool, True if the transition at t ended the episode (no
      bootstrapping through it).
    bootstrap: `[B]` values V(s_T) of the states after the last step.
    gamma: discount in [0, 1].

  Returns:
    `[T, B]` float32 returns R_t.

  Raises:
    ValueError: for mismatched shapes or gamma outside [0, 1].
  """
  rewards = np.asarray(rewards, np.float64)
  dones = np.asarray(dones, bool)
  bootstrap = np.asarray(bootstrap, np.float64)
  if rewards.ndim != 2 or dones.shape != rewards.shape:
    raise ValueError(f"`rewards` and `dones` must both be [T, B], got "
                     f"{rewards.shape} and {dones.shape}.")
  if bootstrap.shape != rewards.shape[1:]:
    raise ValueError(f"`bootstrap` must be [B]={rewards.shape[1:]}, got "
                     f"{bootstrap.shape}.")
  if not 0.0 <= gamma <= 1.0:
    raise ValueError(f"`gamma` must be in [0, 1], got {gamma}.")
  returns = np.zeros_like(rewards)
  running = bootstrap
  for t in reversed(range(rewards.shape[0])):
    running = rewards[t] + gamma * running * (1.0 - dones[t])
    returns[t] = running
  return returns.astype(np.float32)


def a2c_loss(logits: tf.Tensor, values: tf.Tensor, actions: tf.Tensor,
             returns: tf.Tensor, entropy_coef: float = 0.01,
             value_coef: float = 0.5) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """The A2C loss of a batch of transitions.

  Args:
    logits: `[N, A]` policy logits.
    values: `[N]` value estimates V(s).
    actions: `[N]` integer actions taken.
    returns: `[N]` n-step returns (targets; no gradient).
    entropy_coef: weight of the entropy bonus.
    value_coef: weight of the squared value error.

  Returns:
    `(loss, metrics)` with metrics `policy_loss`, `value_loss` (mean squared
    error), `entropy` (mean, nats).
  """
  returns = tf.stop_gradient(tf.cast(returns, values.dtype))
  log_probs = tf.nn.log_softmax(logits)
  taken = tf.gather(log_probs, tf.cast(actions, tf.int32), batch_dims=1)
  advantages = tf.stop_gradient(returns - values)
  policy_loss = -tf.reduce_mean(taken * advantages)
  value_loss = tf.reduce_mean(tf.square(returns - values))
  entropy = -tf.reduce_mean(
      tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1))
  loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
  return loss, {"policy_loss": policy_loss, "value_loss": value_loss,
                "entropy": entropy}


def clip_by_global_norm(max_norm: float
                        ) -> Callable[[List[tf.Tensor]], Sequence[tf.Tensor]]:
  """A `transform_grads` hook that clips gradients to a global norm.

  If the global norm `sqrt(sum_i ||g_i||^2)` of the gradients exceeds
  `max_norm`, all are scaled by `max_norm / norm` (`tf.clip_by_global_norm`).

  Args:
    max_norm: the clipping norm (finite, > 0).

  Returns:
    `grads -> clipped grads`, for `make_train_step(transform_grads=...)`.

  Raises:
    ValueError: if `max_norm` is not a finite number > 0.
  """
  if isinstance(max_norm, bool) or not isinstance(
      max_norm, (int, float, np.integer, np.floating)) or (
      not math.isfinite(max_norm) or max_norm <= 0):
    raise ValueError(f"`max_norm` must be a finite number > 0, got "
                     f"{max_norm!r}.")
  max_norm = float(max_norm)

  def transform(grads: List[tf.Tensor]) -> List[tf.Tensor]:
    clipped, _ = tf.clip_by_global_norm(grads, max_norm)
    return clipped

  return transform


def make_optimizer(learning_rate: float, decay: float = 0.99,
                   epsilon: float = 1e-10) -> snt.optimizers.RMSProp:
  """RMSProp, A3C's optimiser (non-shared statistics).

  `snt.optimizers.RMSProp` updates by `lr * g / sqrt(ms + epsilon)`;
  `epsilon=1e-10` equals the usual A2C setting `lr * g / (sqrt(ms) + 1e-5)`
  up to ~1e-5 in the denominator (see `rmsprop_epsilon` in
  `configs/teacher.py`). Clip with `clip_by_global_norm`.
  """
  return snt.optimizers.RMSProp(learning_rate, decay=decay, epsilon=epsilon)
