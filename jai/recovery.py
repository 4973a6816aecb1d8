"""Finish what a crash in the middle of a checkpoint write left behind (see jai/atomic.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from jai import weights
from jai.train_state import read_state_json
from jai.weights import CheckpointError


def recover_checkpoint(ckpt_dir: str | os.PathLike) -> str | None:
    """Finish what a crash during a checkpoint write left behind; return a note if anything changed.

    `atomic_directory` writes the new checkpoint to `.ckpt.tmp-*`, moves the current one aside to
    `.ckpt.old-*`, moves the new one in, then deletes the old one. A `kill -9` between the two moves
    leaves no `ckpt/` but a complete `.ckpt.old-*`: it is moved back. Leftover `.ckpt.tmp-*` (never
    made current) and `.ckpt.old-*` (already replaced) directories are deleted.
    """
    ckpt_dir = Path(ckpt_dir)
    parent, name = ckpt_dir.parent, ckpt_dir.name
    if not parent.is_dir():
        return None
    olds = sorted(parent.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    note = None
    if not ckpt_dir.exists():
        for old in olds:
            try:
                weights.inspect_checkpoint(old)
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
