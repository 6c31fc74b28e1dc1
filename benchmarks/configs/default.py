"""The default benchmark sweep (the paper's Figures 2 and 3) and its protocol.

    python -m benchmarks.run --workdir=./results/benchmarks
    python -m benchmarks.run --workdir=/tmp/bench \
        --config.functions=booth,styblinski_tang --config.sizes=20,100 \
        --config.seeds=1 --config.steps=500

Every field can be overridden as `--config.<field>=<value>`. The sweep
trains, for every function, training-set size and seed, a regular (values
only) and a Sobolev (values + gradients) MLP.

The protocol (one for all functions and both methods; see PROTOCOL.md for how
it was chosen on validation data):
  * inputs mapped affinely from the domain to [-1, 1]^D;
  * values standardised with the training set's mean and std; gradient
    targets transformed by the chain rule (times half-width / std);
  * loss: the core `SobolevLoss` per model (L2, order 0 for regular, order 1
    for Sobolev with gradient weight `grad_weight`, divided by the training
    set's mean squared scaled gradient norm if `normalize_grad_weight`);
  * Adam, learning rate `learning_rate` with a cosine decay to
    `learning_rate * final_lr_fraction` over `steps` steps;
  * full batch when the training set has at most `batch_size` points,
    otherwise mini-batches of `batch_size` points drawn with replacement
    (seeded per model by its function and seed).
"""

import ml_collections

from benchmarks import functions


def get_config() -> ml_collections.ConfigDict:
  """The default sweep.

  Fields:
    functions: benchmark names (`--config.functions=booth,beale` works).
    sizes: training-set sizes.
    seeds: number of seeds (seeds are 0 .. seeds - 1).
    steps: Adam steps per model.
    learning_rate: initial learning rate.
    final_lr_fraction: final learning rate as a fraction of the initial one
      (cosine schedule); 1.0 is a constant learning rate.
    batch_size: mini-batch size for training sets larger than it.
    grad_weight: weight of the gradient term (Sobolev only).
    normalize_grad_weight: divide each model's gradient weight by the mean
      squared norm of its (scaled) training gradient targets, so that the two
      terms start on the same scale whatever the function (Sobolev only).
    hidden_sizes: hidden layer widths of the MLP.
    jit_compile: compile each chunk of steps with XLA (changes the numbers
      at float rounding level, so it is part of a model's settings).
    test_size: points in each function's fixed test set.
    stall_patience: stop with an error when every model of a trained group
      keeps bit-identical weights for this many `steps_per_call` chunks in
      a row (a learning rate whose updates round away); 0: off. Does not
      change any number.
    steps_per_call: Adam steps per compiled call; also how often the
      training loss terms are logged. Does not change any number.
    figure3_function: the function drawn in Figure 3 (a 2-D one).
    protocol: 'ours' (the default above), 'raw_l2' (the paper's plain L2
      on values and gradients in the functions' units) or
      'differential_ml' (Huge and Savine 2020); see
      `benchmarks/protocols.py` and PROTOCOL.md for the exact formulas.
    dml_lambda: lambda of 'differential_ml' (value/derivative balance
      `alpha = 1 / (1 + lambda * D)`); unused by the other protocols.
    activation: the hidden layers' activation: 'relu' (the published
      numbers), 'tanh', 'softplus', 'silu' or 'gelu'.
    optimizer: 'adam' (the published numbers) or 'lbfgs': full-batch
      L-BFGS (TensorFlow Probability's, batched over models; see
      `benchmarks/lbfgs.py`) for at most `steps` iterations; it uses no
      learning rate, schedule or mini-batches.

  Functions: the paper's seven (`functions.NAMES`), `rosenbrock_<D>d` /
  `styblinski_tang_<D>d` for D >= 3, or a user function registered with
  `benchmarks.functions.register` (e.g. at the top of a config file given
  as `--config=<file>`).
  """
  config = ml_collections.ConfigDict()
  # What the sweep covers (may change between invocations into one workdir:
  # each model is stored under a hash of its own settings).
  config.functions = tuple(functions.NAMES)
  config.sizes = (20, 100, 10000)
  config.seeds = 3
  config.figure3_function = "styblinski_tang"
  config.steps_per_call = 250
  config.stall_patience = 3
  # The protocol: every field below changes the models' numbers.
  config.steps = 4000
  config.learning_rate = 3e-3
  config.final_lr_fraction = 0.01
  config.batch_size = 100
  config.grad_weight = 0.3
  config.normalize_grad_weight = True
  config.hidden_sizes = (256, 256)
  config.jit_compile = False
  config.protocol = "ours"
  config.dml_lambda = 1.0
  config.activation = "relu"
  config.optimizer = "adam"
  config.test_size = 10000
  return config
