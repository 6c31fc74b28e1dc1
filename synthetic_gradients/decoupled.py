"""Decoupled training of a split classifier with synthetic gradients.

Methods (the columns of the paper's Table 1):

* `backprop`: the unsplit network trained end to end (upper bound).
* `noprop`: every split is cut; only the top part is trained, lower parts stay
  at their random initialisation (they receive no gradient at all).
* `direct`: part `k` is updated with `SG_k(h_k, y)` from a free-form
  `sg_modules.DirectSG`, which regresses its gradient target (L2).
* `vfbn`, `critic`, `sobolev`: part `k` is updated with `dm_k/dh_k` of a
  `sg_modules.LossCritic` `m_k(h_k, y)`, trained with the core
  `sobolev.SobolevLoss` on the value target only (`critic`, order 0), on the
  gradient target only (`vfbn`, order 1 with weights (0, 1)) or on both
  (`sobolev`, order 1 with weights (w0, w1)).

Targets of the module at split `k` (`h_k`, output of part `k`). Let `S_{k+1}`
be the scalar that part `k + 1` delivers to the split below it:

* top part `K`: `S_K(h_{K-1}) = sum_b l_b`, the true per-example losses;
* intermediate part `k + 1` with an SG module: the *bootstrapped* scalar
  `S_{k+1}(h_k) = sum_b m_{k+1}(f_{k+1}(h_k)_b, y_b)` for critics, and for
  direct SG the linear surrogate `sum <f_{k+1}(h_k), SG_{k+1}>`, whose
  gradient is the backpropagated synthetic gradient.

The gradient target is `dS_{k+1}/dh_k = J_{f_{k+1}}^T SG_{k+1}` (one backward
pass through part `k + 1` only, exactly what Jaderberg et al. use for stacked
SG modules) and the value target (critic modules only) is the per-example
value of the same function: the true loss `l_b` for the top module and the
critic above, `m_{k+1}(h_{k+1}, y)`, for intermediate ones
(`value_target='bootstrap'`, the default). Value and gradient targets then
come from one scalar function of `h_k`, which is what Sobolev training
assumes, and every module only talks to the part directly above it, so no
part waits for a full backward pass. `value_target='true_loss'` instead uses
the network's true per-example loss as every module's value target (it is
available after the forward pass without any backward pass); gradients stay
bootstrapped.

The objectives are plain Python with no data-dependent control flow; they
are marked `do_not_convert` so AutoGraph neither rewrites them nor re-reads
library sources while tracing.

One compiled step implements the decoupled update: every split is cut with
`tf.stop_gradient`; part `k` gets the surrogate loss
`sum(h_k * stop_gradient(SG_k(h_k, y))) / B`, whose gradient with respect to
part `k`'s parameters is exactly the SG update `J^T SG / B`; the top part
gets the mean cross-entropy; each module gets its own loss on
stop-gradient'ed inputs and targets. These losses depend on disjoint sets of
variables, so the gradient of their sum is, variable by variable, the
gradient of the one loss that touches it: `sobolev.training.make_train_step`
applying one update for the sum is the same as every part and module
updating separately from its own loss (element-wise optimisers: SGD,
momentum, Adam). All updates in a step use the modules' current parameters,
i.e. this is the synchronous simulation of update-decoupled training used by
Jaderberg et al. (parts do not wait for backward passes; there is no
asynchrony or pipelining).
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

import sobolev
from synthetic_gradients import networks
from synthetic_gradients import sg_modules

METHODS = ("noprop", "direct", "vfbn", "critic", "sobolev", "backprop")
SG_METHODS = ("direct", "vfbn", "critic", "sobolev")
CRITIC_METHODS = ("vfbn", "critic", "sobolev")
VALUE_TARGETS = ("bootstrap", "true_loss")

Batch = Dict[str, tf.Tensor]


def check_method(method: str) -> str:
  if method not in METHODS:
    raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
  return method


class SplitModel(snt.Module):
  """A classifier split into parts, with one SG module per split if needed."""

  def __init__(self, parts: Sequence[networks.Part], method: str,
               num_classes: int, direct_hidden_multiplier: float = 1.0,
               direct_num_hidden: int = 2,
               critic_width_multiplier: float = 0.25,
               name: Optional[str] = None):
    """Builds the model.

    Args:
      parts: the parts `f_1..f_K` of the classifier (`networks`).
      method: one of `METHODS`; SG methods get `K - 1` modules.
      num_classes: number of classes.
      direct_hidden_multiplier: hidden width of `DirectSG` relative to the
        split's channels.
      direct_num_hidden: hidden layers of `DirectSG`.
      critic_width_multiplier: width of the critics' convolutions relative
        to the main network's stages above the split.
      name: module name.

    Raises:
      ValueError: for an unknown method or an empty `parts`.
    """
    super().__init__(name=name)
    check_method(method)
    if not parts:
      raise ValueError("`parts` must not be empty.")
    self.method = method
    self.parts = list(parts)
    self.sg_modules = []
    if method in SG_METHODS:
      for k in range(len(parts) - 1):
        channels = parts[k].stage_specs[-1][0]
        if method == "direct":
          hidden = max(8, int(round(channels * direct_hidden_multiplier)))
          module = sg_modules.DirectSG(channels, num_classes, hidden,
                                       num_hidden=direct_num_hidden,
                                       name=f"sg_{k}")
        else:
          above = [s for p in parts[k + 1:] for s in p.stage_specs]
          module = sg_modules.LossCritic(above, num_classes,
                                         critic_width_multiplier,
                                         name=f"sg_{k}")
        self.sg_modules.append(module)

  def __call__(self, x: tf.Tensor, is_training: bool) -> tf.Tensor:
    """Plain forward pass `[B, H, W, C] -> [B, num_classes]` logits."""
    h = x
    for part in self.parts:
      h = part(h, is_training)
    return h

  def build(self, x: tf.Tensor) -> None:
    """Creates every variable (main network and modules) from a batch `x`."""
    y = tf.zeros([x.shape[0]], tf.int32)
    h = x
    for k, part in enumerate(self.parts):
      h = part(h, is_training=False)
      if k < len(self.sg_modules):
        self.sg_modules[k](h, y)


def train_variables(model: SplitModel) -> List[tf.Variable]:
  """The variables a method trains (call `model.build` first)."""
  if model.method == "noprop":
    return list(model.parts[-1].trainable_variables)
  return list(model.trainable_variables)


def _weight_decay(modules: Sequence[snt.Module]) -> tf.Tensor:
  """`0.5 * sum ||W||^2` over convolution and linear kernels."""
  ws = [v for m in modules for v in m.trainable_variables
        if v.name.split("/")[-1].startswith("w:")]
  if not ws:
    return tf.constant(0.0)
  return 0.5 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in ws])


def _cosine(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  a = tf.reshape(a, [-1])
  b = tf.reshape(b, [-1])
  return tf.reduce_sum(a * b) / (tf.norm(a) * tf.norm(b) + 1e-12)


def make_module_loss(method: str,
                     sobolev_weights: Tuple[float, float] = (1.0, 1.0)
                     ) -> Callable:
  """The loss of one SG module on its (stop-gradient'ed) targets.

  Args:
    method: an SG method.
    sobolev_weights: `(w0, w1)` of the `sobolev` method's value and gradient
      terms.

  Returns:
    `loss(module, h, y, value_target [B], grad_target like h) ->
    (scalar, dict of unweighted terms)`; `h` is the (cut) split activation.

  Raises:
    ValueError: for a non-SG method.
  """
  if method not in SG_METHODS:
    raise ValueError(f"`method` must be one of {SG_METHODS}, got {method!r}.")
  if method == "direct":
    @tf.autograph.experimental.do_not_convert
    def direct_loss(module, h, y, value_target, grad_target):
      del value_target
      loss = sobolev.losses.l2(module(h, y), tf.stop_gradient(grad_target))
      return loss, {"order_1": loss}
    return direct_loss

  if method == "critic":
    core = sobolev.SobolevLoss(order=0)
  elif method == "vfbn":
    core = sobolev.SobolevLoss(order=1, weights=[0.0, 1.0])
  else:
    core = sobolev.SobolevLoss(order=1, weights=list(sobolev_weights))

  @tf.autograph.experimental.do_not_convert
  def critic_loss(module, h, y, value_target, grad_target):
    # The core differentiates the critic with respect to `h` of any shape
    # (`[B, D]` or `[B, H, W, C]`); the gradient target is shaped like `h`
    # (the scalar-output form `[B, ...]` of the Jacobian `[B, 1, ...]`).
    critic = lambda h_: module(h_, y)
    targets = [value_target]
    if core.order >= 1:
      targets.append(grad_target)
    total, terms = core(critic, h, targets=tuple(targets))[:2]
    return total, terms
  return critic_loss


def make_objective(model: SplitModel,
                   sobolev_weights: Tuple[float, float] = (1.0, 1.0),
                   value_target: str = "bootstrap",
                   weight_decay: float = 0.0) -> Callable:
  """The decoupled objective of `model.method` for `make_train_step`.

  Args:
    model: the split model (its `method` selects the objective).
    sobolev_weights: `(w0, w1)` for the `sobolev` method.
    value_target: `'bootstrap'` or `'true_loss'` (see the module docstring).
    weight_decay: L2 coefficient on the main network's kernels (each part's
      own term, so it stays local to the part).

  Returns:
    `loss_fn(model, batch) -> (total, metrics)` with `batch` a dict of
    `'image'` `[B, H, W, C]` and `'label'` `[B]` (int). Metrics: `ce` (the
    top part's mean cross-entropy) and, per module `k`, `sg{k}_loss`, its
    unweighted terms and `sg{k}_cos`, the cosine between its synthetic
    gradient and its gradient target over the batch.

  Raises:
    ValueError: for bad arguments.
  """
  if value_target not in VALUE_TARGETS:
    raise ValueError(f"`value_target` must be one of {VALUE_TARGETS}, got "
                     f"{value_target!r}.")
  if weight_decay < 0:
    raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}.")
  if len(sobolev_weights) != 2 or min(sobolev_weights) < 0:
    raise ValueError("`sobolev_weights` must be two non-negative numbers, got "
                     f"{sobolev_weights}.")
  if model.method == "backprop":
    return _backprop_loss(weight_decay)
  if model.method == "noprop":
    return _noprop_loss(weight_decay)
  return _sg_loss(make_module_loss(model.method, tuple(sobolev_weights)),
                  value_target, weight_decay)


def _ce(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
  """Per-example cross-entropy `[B]` of logits `[B, K]`, labels `[B]`."""
  return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                        logits=logits)


def _backprop_loss(weight_decay: float) -> Callable:
  """End-to-end backpropagation's `loss_fn(model, batch)`."""

  @tf.autograph.experimental.do_not_convert
  def backprop_loss(model, batch):
    per_ex = _ce(model(batch["image"], is_training=True), batch["label"])
    loss = tf.reduce_mean(per_ex)
    return loss + weight_decay * _weight_decay(model.parts), {"ce": loss}

  return backprop_loss


def _noprop_loss(weight_decay: float) -> Callable:
  """'noprop''s `loss_fn(model, batch)`: only the top part learns."""

  @tf.autograph.experimental.do_not_convert
  def noprop_loss(model, batch):
    h = batch["image"]
    for part in model.parts:
      h = part(tf.stop_gradient(h), is_training=True)
    loss = tf.reduce_mean(_ce(h, batch["label"]))
    return (loss + weight_decay * _weight_decay(model.parts[-1:]),
            {"ce": loss})

  return noprop_loss


def _taped_forward(parts: Sequence[snt.Module], x: tf.Tensor):
  """Runs the parts, each on its own tape, cut from the part below.

  Returns:
    `(inputs, outputs, tapes)`: per part its (stopped) input, its output
    and the tape that recorded it.
  """
  inputs, outputs, tapes = [], [], []
  h = x
  for part in parts:
    inp = tf.stop_gradient(h)
    tape = tf.GradientTape()
    with tape:
      tape.watch(inp)
      h = part(inp, is_training=True)
    inputs.append(inp)
    outputs.append(h)
    tapes.append(tape)
  return inputs, outputs, tapes


def _sg_loss(module_loss: Callable, value_target: str,
             weight_decay: float) -> Callable:
  """The decoupled `loss_fn(model, batch)` of the SG methods.

  Each part `k` below the top gets its module's synthetic gradient as its
  output's gradient; module `k` learns from the targets part `k + 1`
  delivers (see the module docstring).
  """

  @tf.autograph.experimental.do_not_convert
  def sg_loss(model, batch):
    x, y = batch["image"], batch["label"]
    parts, mods = model.parts, model.sg_modules
    inputs, outputs, tapes = _taped_forward(parts, x)
    with tapes[-1]:
      per_ex = _ce(outputs[-1], y)
      s_above = tf.reduce_sum(per_ex)
    batch_size = tf.cast(tf.shape(x)[0], x.dtype)
    loss = tf.reduce_mean(per_ex)
    total = loss + weight_decay * _weight_decay(parts)
    metrics = {"ce": loss}
    value_above = per_ex
    for k in reversed(range(len(parts) - 1)):
      # Targets delivered by part k + 1 (one backward pass through it).
      grad_target = tf.stop_gradient(tapes[k + 1].gradient(
          s_above, inputs[k + 1]))
      use_above = value_target == "bootstrap" and value_above is not None
      value_tgt = tf.stop_gradient(value_above if use_above else per_ex)
      module = mods[k]
      h_cut = tf.stop_gradient(outputs[k])
      m_loss, terms = module_loss(module, h_cut, y, value_tgt, grad_target)
      total += m_loss
      metrics[f"sg{k}_loss"] = m_loss
      for name, term in terms.items():
        metrics[f"sg{k}_{name}"] = term
      # Synthetic gradient for part k (the module's current prediction).
      if module.has_value:
        m_val, sg = module.value_and_synthetic_gradient(h_cut, y)
        value_above = tf.stop_gradient(m_val)
      else:
        sg = module(h_cut, y)
        value_above = None
      sg = tf.stop_gradient(sg)
      metrics[f"sg{k}_cos"] = _cosine(sg, grad_target)
      with tapes[k]:
        s_k = tf.reduce_sum(outputs[k] * sg)
      total += s_k / batch_size
      s_above = s_k
    return total, metrics

  return sg_loss


def sg_alignment(model: SplitModel, x: tf.Tensor, y: tf.Tensor,
                 is_training: bool = False) -> List[tf.Tensor]:
  """Cosine between each module's SG and the true gradient, over a batch.

  The true gradient at split `k` is `d(sum_b l_b)/dh_k` by backpropagation
  through every part above (not the bootstrapped target); the cosine is over
  the flattened batch, so 1 means the SG points exactly along it.

  Args:
    model: a split model with SG modules.
    x: images `[B, H, W, C]`.
    y: labels `[B]`.
    is_training: batch-norm mode of the main network.

  Returns:
    One scalar per module, bottom first.

  Raises:
    ValueError: if the model has no SG modules.
  """
  if not model.sg_modules:
    raise ValueError(f"Method {model.method!r} has no SG modules.")
  hs = []
  with tf.GradientTape() as tape:
    h = x
    for k, part in enumerate(model.parts):
      h = part(h, is_training)
      if k < len(model.sg_modules):
        tape.watch(h)
        hs.append(h)
    total = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=h))
  true_grads = tape.gradient(total, hs)
  return [_cosine(module.synthetic_gradient(tf.stop_gradient(hk), y), g)
          for module, hk, g in zip(model.sg_modules, hs, true_grads)]
