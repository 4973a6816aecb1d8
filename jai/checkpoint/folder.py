"""Open whatever checkpoint a folder holds: the one place above the checkpoint stage's files.

A path may be a checkpoint or a training run's out dir (its `ckpt/`); the checkpoint may be missing because
a save was interrupted between its two renames (jai/checkpoint/recovery.py restores it); it may be float
or quantized (jai/checkpoint/inspect.py). Commands and twins open checkpoints through here; the modules
below never do, so none of them imports another back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jai.checkpoint import weights
from jai.checkpoint.inspect import inspect_checkpoint
from jai.checkpoint.recovery import recover_checkpoint
from jai.checkpoint.train_state import CKPT_DIR
from jai.checkpoint.weights import CheckpointError
from jai.config import GPTConfig


def recover_if_missing(ckpt_dir: str | os.PathLike) -> None:
    """A checkpoint whose save was interrupted between its two renames is missing until restored: restore
    it, as `jai train --resume` does, and say so on stderr."""
    if Path(ckpt_dir).exists():
        return
    note = recover_checkpoint(ckpt_dir)
    if note:
        print(note, file=sys.stderr)


def open_config(ckpt_dir: str | os.PathLike) -> GPTConfig:
    """The checkpoint's config, after recovering an interrupted save."""
    recover_if_missing(ckpt_dir)
    return weights.read_config(ckpt_dir)


def open_checkpoint(ckpt_dir: str | os.PathLike, quantized: bool = False) -> tuple[GPTConfig, str]:
    """Recover an interrupted save, then validate the checkpoint end to end: its config and (float) dtype.
    A quantized one passes only when the caller can run one (`quantized`)."""
    recover_if_missing(ckpt_dir)
    return inspect_checkpoint(ckpt_dir, quantized)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint dir itself, or `<path>/ckpt` when `path` is a training run's out dir; a save that
    was interrupted between its two renames is recovered first, as `jai train --resume` does. Every
    command that reads a checkpoint (sample, serve, eval, convert) resolves its argument here."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint directory (train one with `jai train`)")
    ckpt = path / CKPT_DIR
    if not (path / weights.CONFIG_FILE).exists() and (ckpt.exists() or any(path.glob(f".{CKPT_DIR}.old-*"))):
        note = recover_checkpoint(ckpt)
        if note:
            print(note, file=sys.stderr)
        if (ckpt / weights.CONFIG_FILE).exists():
            return ckpt
    inspect_checkpoint(path, quantized=True)  # the precise complaint up front: not a dir, bad tensors
    return path
