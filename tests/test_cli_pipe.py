"""`jai ... | head`: a reader that closes the pipe early ends `jai` quietly, as it ends a Unix tool.

The real `jai` console script writes into a real pipe whose reading end is closed before it starts, so
every write fails (EPIPE) whatever the timing; then once more through a real `head -1`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jai.cli import EXIT_BROKEN_PIPE

JAI = str(Path(sys.executable).with_name("jai"))


def into_closed_pipe(argv: list[str], unbuffered: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:  # each print writes at once, instead of at the flush before exit
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before jai writes a byte
    try:
        return subprocess.run([JAI, *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, env=env)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["convert", "--help"]])
def test_a_closed_pipe_ends_jai_quietly(argv, unbuffered):
    done = into_closed_pipe(argv, unbuffered)
    assert done.stderr == "", done.stderr  # no traceback, no "Exception ignored" at exit
    # argparse itself swallows a failed write of a verb's help (then exits 0); every other write that
    # fails reaches jai.cli.main, which answers as SIGPIPE would
    swallowed = unbuffered and argv[0] != "--help"
    assert done.returncode == (0 if swallowed else EXIT_BROKEN_PIPE)


def test_head_takes_the_first_line():
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {JAI} train --help | head -1"], capture_output=True, text=True
    )
    assert done.stdout.startswith("usage: jai train [-h]") and done.stdout.count("\n") == 1
    assert done.stderr == ""
    assert done.returncode in (0, EXIT_BROKEN_PIPE)  # 0 when jai wrote everything before head left
