"""Every error a user can cause derives from `JaiError`; the `jai` dispatcher (jai/cli.py) alone turns
one into a line on stderr and an exit code, so the same kind of mistake exits the same way in every
command. Tracebacks are left for bugs.

Exit codes: 2 for bad input (a flag, a file, a field, a tensor: fix it and run again), 1 for a run that
failed on good input (training diverged, the disk filled up), 130 for an interrupt.
"""

from __future__ import annotations


class JaiError(Exception):
    """A problem the user can fix; the message names the file, field or tensor concerned."""

    exit_code = 2


class InputError(JaiError, ValueError):
    """Bad input: a value, a file or a combination of options that JAI cannot use as given."""


class RunFailed(JaiError, RuntimeError):
    """A run that started on good input and could not finish; the message says what was kept."""

    exit_code = 1
