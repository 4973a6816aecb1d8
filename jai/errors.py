"""Every error a user can cause derives from `JaiError`; the `jai` dispatcher (jai/cli/__init__.py) alone
turns one into a line on stderr and an exit code, so the same kind of mistake exits the same way in every
command. Tracebacks are left for bugs.

Exit codes: 2 for bad input (a flag, a file, a field, a tensor: fix it and run again), 1 for a run that
failed on good input (training diverged, the disk filled up), 130 for an interrupt, 141 (quietly) when
the reader of stdout has gone (`jai --help | head -1`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class JaiError(Exception):
    """A problem the user can fix; the message names the file, field or tensor concerned."""

    exit_code = 2


class InputError(JaiError, ValueError):
    """Bad input: a value, a file or a combination of options that JAI cannot use as given."""


class RunFailed(JaiError, RuntimeError):
    """A run that started on good input and could not finish; the message says what was kept."""

    exit_code = 1


@contextmanager
def warnings_as_lines(prog: str, kind: type[Warning]) -> Iterator[None]:
    """Show the `kind` warnings raised inside as one plain line each (`prog: warning: ...`), after the
    block, whether it ends normally or raises; any other warning as Python would show it."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", kind)
            yield
    finally:
        for w in caught:
            if issubclass(w.category, kind):
                print(f"{prog}: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
