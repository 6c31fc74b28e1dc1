"""The benchmarks' settings: reading, checking and recording configs, and a
unit's settings (the key of every trained model).

`resolve` turns a config into a `ConfigDict` with its name lists split;
`check` checks a sweep or tuning config once, before any work (the studies
check their own fields and call `check_functions` and `check_protocol`);
`protocol` picks the fields that change a model's numbers and
`unit_settings` turns them into a unit's settings, whose hash
(`runs.RunStore.key`) names the unit's directory. Fields added after
results were published are left out at their defaults, so that existing
workdirs resume.
"""

from typing import Any, Dict, Mapping, Sequence

import ml_collections

from benchmarks import functions
from benchmarks import protocols
from benchmarks import report
from benchmarks import stacked_mlp
from benchmarks import trainer
from benchmarks.configs import tune as tune_config
from sobolev.experiment import configs
from sobolev.experiment import errors

# Which models a sweep covers and how it is displayed: may change between
# invocations into one workdir (units are keyed by their own settings).
SWEEP_EXTENT = ("functions", "sizes", "seeds", "figure3_function",
                "steps_per_call", "stall_patience")
# Tuning: which candidates, sizes, seeds and functions are tried.
TUNE_EXTENT = SWEEP_EXTENT + ("candidates",)
# Settings that change a model's numbers.
PROTOCOL_FIELDS = ("steps", "learning_rate", "final_lr_fraction",
                   "batch_size", "grad_weight", "normalize_grad_weight",
                   "hidden_sizes", "jit_compile", "protocol", "dml_lambda",
                   "activation", "optimizer")
# Protocol fields that do not affect regular models.
SOBOLEV_ONLY = ("grad_weight", "normalize_grad_weight", "dml_lambda")
# Fields used by one protocol's Sobolev models only.
_USED_BY = {"grad_weight": "ours", "normalize_grad_weight": "ours",
            "dml_lambda": "differential_ml"}
# Defaults of the fields added after results were published: a config
# without them means these values.
NEW_FIELD_DEFAULTS = {"protocol": protocols.DEFAULT, "dml_lambda": 1.0,
                      "activation": stacked_mlp.DEFAULT_ACTIVATION,
                      "optimizer": trainer.DEFAULT_OPTIMIZER}
# Fields left out of a unit's settings (and of `config.json`) when they hold
# their default: the keys of units made before the field existed.
_OMITTED_AT_DEFAULT = ("protocol", "activation", "optimizer")
# Fields that full-batch L-BFGS does not use (no learning rate, no batches).
_ADAM_ONLY = ("learning_rate", "final_lr_fraction", "batch_size")
# Version of a unit's definition: 2 = per-model mini-batch seeds (issue 13).
UNIT_VERSION = 2
# First tuning seed (the sweep uses seeds 0, 1, ...).
TUNING_SEED = 100


def resolve(config: Any, name_fields: Sequence[str] = ("functions",
                                                       "candidates"),
            defaults: Mapping[str, Any] = NEW_FIELD_DEFAULTS
           ) -> ml_collections.ConfigDict:
  """A copy of `config` with its name lists split on commas.

  `--config.functions=booth,beale` arrives as the 1-tuple `('booth,beale',)`
  (ml-collections parses only Python literals into tuples).

  Args:
    config: a `ConfigDict` or mapping.
    name_fields: the fields holding names (split where present).
    defaults: values of fields the config lacks (by default those added
      after results were published; the studies pass none).

  Raises:
    TypeError: if `config` is not a `ConfigDict` or mapping.
    errors.ConfigError: if a name field holds something other than names.
  """
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise TypeError(f"`config` must be a ConfigDict or a mapping, got "
                    f"{type(config).__name__}.")
  config = ml_collections.ConfigDict(dict(config))
  for field in name_fields:
    if field in config:
      config[field] = configs.split_names(field, config[field])
  for field, value in defaults.items():
    if field not in config:
      config[field] = value
  return config


def recorded(config: Any) -> Dict[str, Any]:
  """The config as recorded in `config.json`: fields of other protocols out.

  `protocol` is left out when it is 'ours' and `dml_lambda` unless the
  protocol is 'differential_ml', so workdirs made before these fields
  existed resume and changing an unused field is not a different setting.
  """
  out = configs.to_dict(config)
  for field in _OMITTED_AT_DEFAULT:
    if field in out and out[field] == NEW_FIELD_DEFAULTS[field]:
      del out[field]
  if out.get("protocol") != "differential_ml":
    out.pop("dml_lambda", None)
  return out


def check_distinct(field: str, values: Sequence[Any],
                   choices: Sequence[Any] = ()) -> None:
  """Checks a non-empty list without duplicates (of `choices`, if given).

  Raises:
    errors.ConfigError: naming the field.
  """
  if not values:
    raise errors.ConfigError(f"`{field}` must not be empty.")
  if len(set(values)) != len(values):
    raise errors.ConfigError(f"`{field}` has duplicates: {tuple(values)}.")
  for value in values if choices else ():
    configs.check_choice(field, value, tuple(choices))


def check_functions(field: str, names: Sequence[str]) -> None:
  """Checks benchmark names (any registered or `<family>_<D>d` name).

  Raises:
    errors.ConfigError: naming the field, for an empty list, an unknown
      name (listing the valid ones) or a duplicate.
  """
  if not names:
    raise errors.ConfigError(f"`{field}` must name at least one benchmark.")
  for name in names:
    try:
      functions.get(name)
    except ValueError:
      families = " or ".join(f"{f}_<D>d" for f in functions.FAMILIES)
      raise errors.ConfigError(
          f"`{field}` must be one of {functions.known_names()}, {families} "
          f"(D >= 3) or a function registered with "
          f"benchmarks.functions.register, got {name!r}.") from None
  if len(set(names)) != len(names):
    raise errors.ConfigError(f"`{field}` has duplicates: {tuple(names)}.")


def check(config: Any) -> None:
  """Checks a (resolved) sweep, or tuning config (one with `candidates`).

  Called once per run, before any work (by `experiment.train_and_evaluate`,
  `protocol_tuning.tune` and their dry runs).

  Raises:
    errors.ConfigError: naming the field, for a non-finite number, an
      unknown function or candidate, a size <= 0, a duplicate, ...
  """
  configs.check_finite(config)
  check_functions("functions", config.functions)
  if not config.sizes:
    raise errors.ConfigError("`sizes` must hold at least one size.")
  for size in config.sizes:
    configs.check_int("sizes", size, 1)
  if len(set(config.sizes)) != len(config.sizes):
    raise errors.ConfigError(f"`sizes` has duplicates: {tuple(config.sizes)}.")
  for field in ("seeds", "steps", "batch_size", "steps_per_call"):
    configs.check_int(field, config[field], 1)
  configs.check_int("stall_patience",
                    config.get("stall_patience", 0), 0)
  check_protocol(config)
  if "candidates" in config:
    configs.check_int("validation_size", config.validation_size, 1)
    configs.check_choice("score_method", config.score_method, report.METHODS)
    if not config.candidates:
      raise errors.ConfigError("`candidates` must name at least one.")
    for name in config.candidates:
      configs.check_choice("candidates", name,
                           tuple(tune_config.CANDIDATES))
    if len(set(config.candidates)) != len(config.candidates):
      raise errors.ConfigError(
          f"`candidates` has duplicates: {tuple(config.candidates)}.")
  else:
    configs.check_int("test_size", config.test_size, 1)
    check_functions("figure3_function", (config.figure3_function,))
    dim = functions.get(config.figure3_function).dim
    if dim != 2:
      raise errors.ConfigError(
          f"`figure3_function` must be a 2-D function (Figure 3 is a 2-D "
          f"surface and contour plot), got {config.figure3_function!r} "
          f"with D = {dim}.")


def check_protocol(protocol: Any) -> None:
  """Checks the protocol fields (`PROTOCOL_FIELDS`).

  Raises:
    errors.ConfigError: naming the field.
  """
  configs.check_int("steps", protocol.steps, 1)
  configs.check_int("batch_size", protocol.batch_size, 1)
  configs.check_number("learning_rate", protocol.learning_rate, 0,
                       low_inclusive=False)
  configs.check_number("final_lr_fraction", protocol.final_lr_fraction, 0, 1,
                       low_inclusive=False)
  configs.check_number("grad_weight", protocol.grad_weight, 0)
  for field in ("normalize_grad_weight", "jit_compile"):
    if not isinstance(protocol[field], bool):
      raise errors.ConfigError(
          f"`{field}` must be True or False, got {protocol[field]!r}.")
  if not protocol.hidden_sizes:
    raise errors.ConfigError("`hidden_sizes` must hold at least one width.")
  for width in protocol.hidden_sizes:
    configs.check_int("hidden_sizes", width, 1)
  configs.check_choice("protocol", protocol.protocol, protocols.NAMES)
  configs.check_number("dml_lambda", protocol.dml_lambda, 0)
  configs.check_choice(
      "activation", protocol.get("activation", stacked_mlp.DEFAULT_ACTIVATION),
      tuple(stacked_mlp.ACTIVATIONS))
  configs.check_choice(
      "optimizer", protocol.get("optimizer", trainer.DEFAULT_OPTIMIZER),
      trainer.OPTIMIZERS)


def protocol(config: Any, **overrides) -> ml_collections.ConfigDict:
  """The trainer's settings: `PROTOCOL_FIELDS` of `config` or `overrides`
  (which may stand in for fields the config lacks), `steps_per_call` and
  `stall_patience`."""
  fields = {f: overrides[f] if f in overrides else config[f]
            for f in PROTOCOL_FIELDS}
  fields.update(overrides)
  fields["steps_per_call"] = config.steps_per_call
  fields["stall_patience"] = config.get("stall_patience",
                                        trainer.DEFAULT_STALL_PATIENCE)
  return ml_collections.ConfigDict(fields)


def unit_settings(run: trainer.Run, fields: Any,
                  evaluation: Mapping[str, Any]) -> Dict[str, Any]:
  """Every setting that affects a model's numbers (its unit's key).

  Args:
    run: function, size, method, seed.
    fields: the protocol fields (`protocol`).
    evaluation: `{'set': 'test' | 'validation', 'size': points}`.

  Returns:
    A JSON-safe dict. Regular models leave out the Sobolev-only fields, so
    protocols that differ only there share their regular models; Sobolev
    models leave out the fields of other protocols (`grad_weight` and
    `normalize_grad_weight` belong to 'ours', `dml_lambda` to
    'differential_ml'). `protocol` is left out when it is 'ours' (the keys
    of units made before it existed). Functions other than the paper's
    seven and the `<family>_<D>d` ones (user-registered) add their
    dimension and domain. `activation` and `optimizer` are left out at
    their defaults ('relu', 'adam'); L-BFGS models leave out the fields it
    does not use (`learning_rate`, `final_lr_fraction`, `batch_size`).
  """
  settings = {"function": run.function, "size": run.size,
              "method": run.method, "seed": run.seed,
              "version": UNIT_VERSION, "evaluation": dict(evaluation)}
  if not functions.is_builtin(run.function):
    bench = functions.get(run.function)
    settings["function_domain"] = {"low": list(bench.low),
                                   "high": list(bench.high)}
  name = fields.get("protocol", protocols.DEFAULT)
  lbfgs = fields.get("optimizer", trainer.DEFAULT_OPTIMIZER) == "lbfgs"
  for field in PROTOCOL_FIELDS:
    if run.method == "regular" and field in SOBOLEV_ONLY:
      continue
    if field in _USED_BY and _USED_BY[field] != name:
      continue
    if lbfgs and field in _ADAM_ONLY:
      continue
    value = fields.get(field, NEW_FIELD_DEFAULTS.get(field))
    if field in _OMITTED_AT_DEFAULT and value == NEW_FIELD_DEFAULTS[field]:
      continue
    settings[field] = list(value) if isinstance(value, tuple) else value
  return configs.to_dict(settings)
