"""Finish what a crash in the middle of a checkpoint write left behind (see jai/atomic.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from jai.checkpoint.inspect import inspect_checkpoint
from jai.checkpoint.run_lock import is_locked
from jai.checkpoint.train_state import has_train_state, read_state_json
from jai.checkpoint.weights import CheckpointError

LIVE_RUN_WAIT = 5.0  # seconds a reader waits for a live run to finish replacing its checkpoint


def recover_checkpoint(ckpt_dir: str | os.PathLike, owner: bool = False) -> str | None:
    """Finish what a crash during a checkpoint write left behind; return a note if anything changed.

    `atomic_directory` writes the new checkpoint to `.ckpt.tmp-*`, moves the current one aside to
    `.ckpt.old-*`, moves the new one in, then deletes the old one. A `kill -9` between the two moves
    leaves no `ckpt/` but a complete `.ckpt.old-*`: it is moved back. Leftover `.ckpt.tmp-*` (never
    made current) and `.ckpt.old-*` (already replaced) directories are deleted.

    Those files may also be a live run's work in progress. Only the run that holds the folder's lock
    (`owner`), or anyone when no run holds it, repairs anything; a reader beside a live run waits a
    moment for a missing checkpoint to reappear (the run is between its two renames) and touches nothing.
    """
    ckpt_dir = Path(ckpt_dir)
    parent, name = ckpt_dir.parent, ckpt_dir.name
    if not parent.is_dir():
        return None
    if not owner and is_locked(parent):
        deadline = time.monotonic() + LIVE_RUN_WAIT
        while not ckpt_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return None
    olds = sorted(parent.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    note = None
    if not ckpt_dir.exists():
        for old in olds:
            try:
                inspect_checkpoint(old)
                if has_train_state(old):
                    read_state_json(old)
            except CheckpointError:
                continue
            os.replace(old, ckpt_dir)
            note = f"{ckpt_dir}: restored the previous checkpoint from {old.name} (a save was interrupted)"
            break
    for leftover in [*olds, *parent.glob(f".{name}.tmp-*")]:
        if leftover.exists():
            shutil.rmtree(leftover, ignore_errors=True)
    return note
