"""Open whatever checkpoint a folder holds: the one place above the checkpoint stage's files.

A path may be a checkpoint or a training run's out dir (its `ckpt/`); the checkpoint may be missing because
a save was interrupted between its two renames (jai/checkpoint/recovery.py restores it); it may be float
or quantized (jai/checkpoint/inspect.py); or it may hold a LoRA adapter, opened over the base it names
(jai/checkpoint/lora.py). Commands and twins open checkpoints through here; the modules below never do,
so none of them imports another back.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jai.checkpoint import weights
from jai.checkpoint.inspect import inspect_checkpoint
from jai.checkpoint.lora import ADAPTER_CONFIG, LoraConfig, read_adapter, read_adapter_config
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


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter over its base, both checked: the adapter's tensors fit the base's model."""

    dir: Path  # holds adapter_config.json and adapter_model.safetensors
    base_dir: Path  # the base checkpoint, resolved
    model: GPTConfig  # the base's model
    lora: LoraConfig
    tensors: dict[str, np.ndarray]  # `h.0.attn.c_attn.lora_A` ... (the twins' names), float32


def open_adapter(path: str | os.PathLike, base: str | os.PathLike | None = None) -> Adapter:
    """The adapter in `path` (or in `<path>/ckpt`, a LoRA run's out dir) over `base`, by default the base
    its adapter_config.json names; the base is opened as any checkpoint is (recovered, validated)."""
    path = Path(path)
    if (path / CKPT_DIR / ADAPTER_CONFIG).is_file():
        path = path / CKPT_DIR
    _, recorded = read_adapter_config(path)
    base_dir = resolve_checkpoint(base or recorded)
    model, _ = open_checkpoint(base_dir)
    config, _, tensors = read_adapter(path, model)
    return Adapter(path, base_dir, model, config, tensors)
