"""What every experiment command line shares.

* `quiet()`: silence TensorFlow's C++ INFO/WARNING lines and CUDA probing
  chatter; call it before TensorFlow is imported (the entry points do, at
  the top). `--verbose_tf` (or `TF_CPP_MIN_LOG_LEVEL` set by the user)
  keeps them.
* `define_workdir_flags()`: `--workdir`, `--fresh`, `--separate`.
* `if_different()`: the `workdirs.open_workdir` policy those flags ask for.
* `run(main)`: `absl.app.run` that prints a `UserError` (bad settings, a
  workdir of other settings, divergence) as one line on stderr and exits
  with status 2, instead of a traceback.
"""

import os
import sys
import tempfile
from typing import Callable


def quiet() -> None:
  """Silences TensorFlow's start-up chatter unless the user asked for it.

  TensorFlow 2.21 prints its oneDNN and CUDA-probe lines through absl's C++
  logging before any log level applies, so `TF_CPP_MIN_LOG_LEVEL` alone does
  not hide them: TensorFlow is imported here with the stderr file descriptor
  pointed at a temporary file, which is shown only if the import fails.
  """
  if "--verbose_tf" in sys.argv:
    sys.argv.remove("--verbose_tf")
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as log:
    os.dup2(log.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    except BaseException:
      os.dup2(saved, 2)
      log.seek(0)
      sys.stderr.write(log.read().decode("utf-8", "replace"))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
  import logging  # pylint: disable=g-import-not-at-top
  logging.getLogger("tensorflow").setLevel(logging.ERROR)


