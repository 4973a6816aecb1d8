"""Progress for long work: a tqdm bar on a terminal, plain log lines everywhere else.

A tqdm bar redrawn with carriage returns turns a log file or a CI transcript into one endless line, or
into nothing at all until the work ends. When stderr is not a terminal the same calls print a line now
and then instead (`LOG_EVERY` seconds apart), so a long run piped to a file still shows it is alive.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LOG_EVERY = 30.0  # seconds between plain progress lines

# tqdm makes its class lock on first use, importing multiprocessing then; a Ctrl-C landing inside that
# import leaves tqdm without a lock, and every later tqdm.write (the run's log) fails with AttributeError
# instead of the run stopping as interrupted. Made here, at import, the lock is whole before any run starts.
tqdm.get_lock()


class LogLines(tqdm):
    """tqdm's bookkeeping, printed as `desc: n/total [elapsed, rate, postfix]` lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # before tqdm's __init__: with `initial` > 0 (a resumed run) it displays the bar at once
        self._last = 0.0
        kwargs.update(file=sys.stderr, mininterval=LOG_EVERY, ascii=True)
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        now = time.monotonic()
        if self.n in (0, self.total) or now - self._last >= LOG_EVERY:
            self._last = now
            print(self.format_meter(**self.format_dict).strip(), file=sys.stderr, flush=True)
        return True

    def close(self) -> None:
        if not self.disable and self.n != self.total and self.n > 0:
            self._last = 0.0
            self.display()
        self.disable = True  # tqdm's close would redraw the bar


def progress_bar(iterable: Iterable[Any] | None = None, enabled: bool = True, **kwargs: Any) -> tqdm:
    """tqdm(iterable, **kwargs) on a terminal; `LogLines` when stderr is not one; silent if not enabled."""
    if not enabled:
        return tqdm(iterable, disable=True, **kwargs)
    kind = tqdm if sys.stderr.isatty() else LogLines
    return kind(iterable, **kwargs)
