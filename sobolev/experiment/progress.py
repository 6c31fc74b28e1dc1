"""One progress display with ETA for every long job (tqdm).

    with progress.Progress(total=steps, desc="booth/sobolev") as bar:
      for ...:
        bar.update(10, loss=0.12)

Writes to stderr, refreshes at most twice a second, and shows the rate and
the ETA. `disable=None` (the default) turns it off when stderr is not a
terminal (CI logs), where a one-line summary is printed on close instead.
"""

import sys
import time
from typing import Any, Optional


class Progress:
  """A tqdm bar over `total` units of work, with an ETA."""

  def __init__(self, total: float, desc: str = "", unit: str = "it",
               initial: float = 0, disable: Optional[bool] = None):
    import tqdm  # pylint: disable=g-import-not-at-top
    if disable is None:
      disable = not sys.stderr.isatty()
    self._desc = desc
    self._unit = unit
    self._start = time.time()
    self._initial = initial
    self._done = initial
    self._total = total
    self._disabled = disable
    self._bar = tqdm.tqdm(total=total, desc=desc, unit=unit, initial=initial,
                          disable=disable, mininterval=0.5, dynamic_ncols=True,
                          file=sys.stderr)

  def update(self, n: float = 1, **postfix: Any) -> None:
    """Advances by `n` units; `postfix` values are shown after the bar."""
    self._done += n
    if postfix:
      self._bar.set_postfix(
          {k: f"{v:.4g}" if isinstance(v, float) else v
           for k, v in postfix.items()}, refresh=False)
    self._bar.update(n)

  def set_description(self, desc: str) -> None:
    self._desc = desc
    self._bar.set_description(desc)

  def close(self) -> None:
    self._bar.close()
    if self._disabled and self._done > self._initial:
      elapsed = time.time() - self._start
      print(f"{self._desc}: {self._done:g}/{self._total:g} {self._unit} in "
            f"{elapsed:.1f} s", file=sys.stderr)

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
