"""Exceptions that the experiment command lines print as one line.

A `UserError` is a mistake in what the user asked for or a run that cannot
go on (divergence); `cli.run` prints it without a traceback.
"""


class UserError(Exception):
  """Base class: printed as one line by `cli.run`, exit status 2."""


class ConfigError(UserError, ValueError):
  """A setting is invalid (non-finite, out of range, of the wrong type)."""


class WorkdirMismatchError(UserError, ValueError):
  """The workdir holds results made with other settings."""


class DivergenceError(UserError, FloatingPointError):
  """Training produced a non-finite loss or metric; no result is written."""


class CheckpointError(UserError, RuntimeError):
  """Checkpoints exist but none of them can be restored."""


class WorkdirInUseError(UserError, RuntimeError):
  """Another process holds the workdir's lock (`locks`)."""


class CorruptFileError(UserError, ValueError):
  """A file exists but cannot be read (garbled JSON, truncated weights);
  the message names the file and what to do."""


class MissingDataError(UserError, FileNotFoundError):
  """A dataset is not prepared where the run looks for it; the message says
  how to prepare it."""
