"""A hand-written JAX reference for `benchmarks.speed` (issue 25).

The same step as the `mlp_order1` case, written directly in JAX: a 2x256
ReLU MLP (initialised like `snt.Linear`: truncated normal, stddev
`1 / sqrt(fan_in)`, zero biases), the same batch and targets (computed by
the TF case's teacher), the loss `mean_b (m(x_b) - y_b)^2` (regular) plus
`mean_b ||D_x m(x_b) - dy_b||^2` (order-1 Sobolev, the core's default L2),
Adam (optax, learning rate 1e-4 as the TF variants), and `steps_per_call`
steps per `jax.jit` call via `lax.scan` over the rolled batches, as the TF
`steps_per_call` loop does. It is a yardstick for the TF numbers and never
used by the library.

Needs the `bench` extra (`pip install -e ".[bench]"`: jax, optax);
`available()` says whether it is installed.
"""

from typing import Any, Callable, Dict, Sequence

import numpy as np

from sobolev.experiment import timing

INSTALL_HINT = 'pip install -e ".[bench]"'


def available() -> bool:
  """Whether jax and optax can be imported."""
  try:
    import jax  # pylint: disable=g-import-not-at-top,unused-import
    import optax  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def init_mlp(sizes: Sequence[int], in_dim: int, seed: int):
  """Parameters `[(w [in, out], b [out])]` initialised like `snt.Linear`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  key = jax.random.PRNGKey(seed)
  params, fan_in = [], in_dim
  for size in sizes:
    key, sub = jax.random.split(key)
    w = jax.random.truncated_normal(sub, -2.0, 2.0, (fan_in, size),
                                    jnp.float32) / np.sqrt(fan_in)
    params.append((w, jnp.zeros([size], jnp.float32)))
    fan_in = size
  return params


def mlp(params, x):
  """ReLU MLP with a linear last layer: `x [D] -> [O]` (one example)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  h = x
  for w, b in params[:-1]:
    h = jnp.maximum(h @ w + b, 0.0)
  w, b = params[-1]
  return h @ w + b


def make_loss(order: int) -> Callable[..., Any]:
  """`loss(params, x [B, D], y [B, 1], dy [B, D])`: L2 on values (+ on input
  gradients for `order` 1), means over the batch (the core's defaults)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def loss(params, x, y, dy):
    values = jax.vmap(lambda xi: mlp(params, xi))(x)
    total = jnp.mean(jnp.sum(jnp.square(values - y), axis=-1))
    if order == 1:
      grads = jax.vmap(jax.grad(lambda xi: mlp(params, xi)[0]))(x)
      total += jnp.mean(jnp.sum(jnp.square(grads - dy), axis=-1))
    return total

  return loss


def make_call(batch: Dict[str, Any], order: int, steps_per_call: int,
              seed: int = 0, hidden: Sequence[int] = (256, 256),
              learning_rate: float = 1e-4) -> Callable[[], Any]:
  """A call running `steps_per_call` Adam steps (one `jax.jit` call).

  Args:
    batch: `{'x': [B, D], 'targets': (y [B, 1], dy [B, 1, D] or [B, D])}`
      (arrays or tensors; `dy` is used only for order 1).
    order: 0 (regular) or 1 (Sobolev).
    steps_per_call: steps per call; step i uses the batch rolled by i (as
      `timing.stack_batches`).
    seed: initialisation seed.
    hidden: hidden widths.
    learning_rate: Adam's.

  Returns:
    `call() -> loss` (the state is carried between calls); `call.hlo()` is
    the optimised HLO text of the compiled call (`benchmarks.speed_hlo`).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  x = np.asarray(batch["x"], np.float32)
  y = np.asarray(batch["targets"][0], np.float32)
  # The TF case's Jacobian targets are [B, 1, D]; a scalar output's
  # gradient is [B, D].
  dy = (np.asarray(batch["targets"][1], np.float32).reshape(x.shape)
        if order == 1 else np.zeros_like(x))
  rolled = [np.stack([np.roll(a, i, axis=0) for i in range(steps_per_call)])
            for a in (x, y, dy)]
  xs, ys, dys = (jnp.asarray(a) for a in rolled)
  params = init_mlp(list(hidden) + [y.shape[1]], x.shape[1], seed)
  optimizer = optax.adam(learning_rate)
  loss_and_grad = jax.value_and_grad(make_loss(order))

  def step(state, inputs):
    p, opt_state = state
    value, grads = loss_and_grad(p, *inputs)
    updates, opt_state = optimizer.update(grads, opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), value

  @jax.jit
  def run(state):
    state, values = jax.lax.scan(step, state, (xs, ys, dys))
    return state, values[-1]

  state = {"s": (params, optimizer.init(params))}

  def call():
    state["s"], value = run(state["s"])
    return value

  call.hlo = lambda: run.lower(state["s"]).compile().as_text()
  return call


def block_timer(batch: Dict[str, Any], order: int, config: Any
                ) -> Callable[[], float]:
  """A warmed-up `timing.block_timer` of the JAX step (us per step)."""
  call = make_call(batch, order, config.steps_per_call, seed=config.seed)
  return timing.block_timer(
      lambda: {"loss": _Ready(call())}, warmup_calls=config.warmup_calls,
      calls=config.calls, steps_per_call=config.steps_per_call)


class _Ready:
  """Wraps a JAX array so that `timing` waits for it (`.numpy()`)."""

  def __init__(self, value):
    self._value = value

  def numpy(self):
    return np.asarray(self._value.block_until_ready())
