"""The batches the loss curves train on: a prepared token directory (train.bin + meta.json, written by
`jai prepare` / `python -m jai.data.prepare`), or seeded random tokens where none is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jai.config import GPTConfig

RANDOM_TOKENS = 1 << 20


def vocab_of(data_dir: str | Path) -> int:
    """The vocabulary size a prepared token directory was written with (its meta.json)."""
    meta = json.loads((Path(data_dir) / "meta.json").read_text(encoding="utf-8"))
    return int(meta["vocab_size"])


def sampler(spec: dict[str, Any], cfg: GPTConfig):
    """A BatchSampler with the spec's seed: the same batches, in the same order, in every process."""
    from jai.dataset import BatchSampler, TokenBin

    if spec.get("data"):
        data = TokenBin(Path(spec["data"]) / "train.bin", vocab_size=cfg.vocab_size).data
    else:
        rng = np.random.default_rng(spec["seed"])
        data = rng.integers(0, cfg.vocab_size, size=RANDOM_TOKENS).astype(np.uint16)
    return BatchSampler(data, spec["batch"], cfg.block_size, spec["seed"])
