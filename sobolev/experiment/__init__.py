"""Experiment utilities shared by `benchmarks`, `distillation` and
`synthetic_gradients`.

Written once, used by all three experiment packages:

* `files`: atomic writes (text, JSON, CSV appends) and tolerant CSV reads.
* `configs`: ml-collections configs as plain dicts, finite/range checks,
  setting hashes and field-by-field diffs.
* `workdirs`: opening a workdir for a config (refuse / fresh / separate).
* `locks`: one workdir, one writer (an exclusive lock naming its holder).
* `runs`: finished units keyed by a hash of every setting that affects them.
* `results`: the public results loader (typed rows) and writer.
* `metrics`: an acme-style `MetricWriter.write(dict)` to CSV and TensorBoard.
* `progress`: one progress bar with ETA (tqdm).
* `stats`: one std convention (sample std, ddof=1) and 95% intervals
  (scipy.stats).
* `schedules`: learning-rate schedules.
* `tuning`: grid search with a resumable, keyed store of trials.
* `provenance`: command line, config, versions, commit, machine, times.
* `checkpoints`: restore that falls back to the newest intact checkpoint.
* `saved_models`: SavedModel export with a concrete signature.
* `cli`: the entry-point shape (`cli.run(main, define_flags)`): quiet
  TensorFlow, `--help` of the command's own flags, one-line user errors,
  common workdir, config and dry-run flags.
* `studies`: a study's workdir session, flags and printed outcome.
* `workers`: a study's `--worker=I/N` processes and their balanced shares.
* `tables`: measure one table into a workdir (CSV, Markdown, provenance).
* `errors`: the exceptions the CLIs print as one line.

Import the modules you need (`from sobolev.experiment import workdirs`); this
file imports none of them, so that `import sobolev` stays light.
"""
