"""Experiment utilities shared by `benchmarks`, `distillation` and
`synthetic_gradients`.

Modules: `files` (atomic writes), `configs`, `workdirs`, `locks`, `runs`
(finished units keyed by their settings), `results`, `metrics`, `progress`,
`stats`, `schedules`, `tuning`, `provenance`, `checkpoints`,
`saved_models`, `timing`, `cli` (the entry-point shape), `studies`,
`workers`, `tables` and `errors`; each says what it does.

Import the modules you need (`from sobolev.experiment import workdirs`); this
file imports none of them, so that `import sobolev` stays light.
"""
