"""One run per folder: an exclusive lock on `<out>/.lock`, held for the whole run.

Two `jai train` processes on one folder would overwrite each other's checkpoints and interleave their
metrics, and one's crash recovery would delete the other's checkpoint in progress. The lock is an OS
advisory lock (`flock`), so it is released the moment its process dies, `kill -9` included: a stale lock
file never blocks the next run. The file says who holds it, for the message the second process prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from jai.errors import InputError

LOCK_FILE = ".lock"


class RunLocked(InputError):
    """Another process holds the run folder."""


class RunLock:
    """`with RunLock(out_dir):` holds `<out_dir>/.lock` exclusively, or raises RunLocked at once."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = Path(out_dir) / LOCK_FILE
        self._fd: int | None = None
        self._made: list[Path] = []  # the folders this lock created, innermost first

    def __enter__(self) -> RunLock:
        folder = self.path.parent
        blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:  # bad input, not a file-system failure: nothing is written
            raise InputError(f"{folder}: cannot be a run folder, {blocking} is a file; choose another --out")
        self._made = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLocked(
                f"{self.path.parent}: in use by {holder(self.path)}; wait for it to finish, "
                "stop it, or choose another --out"
            ) from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "argv": sys.argv}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(owner) + "\n").encode())
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is None:
            return
        if self._made and [p.name for p in self.path.parent.iterdir()] == [LOCK_FILE]:
            # a run refused before it wrote anything (a bad --init-from, bad data): leave no folder behind
            self.path.unlink()
            for made in self._made:
                try:
                    made.rmdir()
                except OSError:  # something else appeared in it meanwhile: it stays
                    break
        os.close(self._fd)  # closing releases the lock; the file stays, harmless to the next run
        self._fd = None


def is_locked(out_dir: str | os.PathLike) -> bool:
    """Whether a live process holds `<out_dir>/.lock` (readers then leave its in-progress files alone)."""
    path = Path(out_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def holder(path: Path) -> str:
    """Who holds the lock, as the lock file says: "process 1234 on host (jai train ...)"."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(owner.get("argv", [])))
        return f"process {owner['pid']} on {owner['host']} ({command})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
