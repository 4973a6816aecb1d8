"""Token files and the one batch sampler both twins train from.

On disk a split is a flat array of uint16 token ids (`train.bin`, `val.bin`), nanoGPT style: every
sample is `[BOS] tokens [EOS]`, concatenated. Beside them `meta.json` records what produced them
(tokenizer hash, vocab size, token counts), so a model never trains on ids from another tokenizer.

- `write_bins` streams samples -> tokens -> file in bounded batches: a corpus larger than RAM is fine.
- `TokenBin` memory-maps a .bin read-only and checks it against meta.json.
- `BatchSampler` draws random windows from a memmap with a seeded PCG64 generator. MLX and PyTorch
  both call it, so the twins see the same batches in the same order; its state (generator state +
  batches drawn) is JSON, so a resumed run continues with exactly the batches it would have seen.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jai.atomic import atomic_file, write_json_atomic
from jai.errors import InputError
from jai.tokenizer import Tokenizer

DTYPE = np.uint16
MAX_VOCAB = 65_535  # every id, and the vocab size itself, must fit in a uint16
META_FILE = "meta.json"
FORMAT = "jai-tokens-v1"


class DatasetError(InputError):
    """A token file or meta.json that does not match what the caller expects."""


# --- writing -----------------------------------------------------------------------------------------


def check_vocab(vocab_size: int) -> None:
    if vocab_size > MAX_VOCAB:
        raise DatasetError(
            f"vocab_size {vocab_size:,} is too large for uint16 token files (max {MAX_VOCAB:,}); "
            "train a smaller tokenizer"
        )


def _write_split(
    path: Path, samples: Iterable[str], tok: Tokenizer, batch_size: int, desc: str, total: int | None
) -> tuple[int, int]:
    """Encode `samples` batch by batch and append them to `path` atomically. Returns (tokens, samples)."""
    n_tokens = n_samples = 0
    it = iter(samples)
    bos, eos = tok.bos_id, tok.eos_id
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        bar = tqdm(total=total, desc=desc, unit=" samples", disable=None)
        while batch := list(itertools.islice(it, batch_size)):
            encoded = tok.encode_batch(batch)
            # One array per batch, filled in place: [BOS] ids [EOS] [BOS] ids [EOS] ...
            arr = np.empty(sum(len(ids) + 2 for ids in encoded), dtype=DTYPE)
            pos = 0
            for ids in encoded:
                arr[pos] = bos
                arr[pos + 1 : pos + 1 + len(ids)] = ids
                arr[pos + 1 + len(ids)] = eos
                pos += len(ids) + 2
            arr.tofile(f)
            n_tokens += arr.size
            n_samples += len(batch)
            bar.update(len(batch))
        bar.close()
    return n_tokens, n_samples


def write_bins(
    splits: Mapping[str, Iterable[str]],
    tokenizer: Tokenizer,
    out_dir: str | os.PathLike,
    *,
    batch_size: int = 256,
    totals: Mapping[str, int] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `<split>.bin` for each split (texts streamed from any iterable) and then meta.json.

    `totals` (sample counts, if known) only sizes the progress bars; `meta` adds keys to meta.json
    (posting counts, seed, sources). meta.json is written last, so a crash midway leaves either no
    meta.json or an old one whose token counts no longer match the .bin files - which TokenBin catches.
    Returns the meta dict.
    """
    check_vocab(tokenizer.vocab_size)
    if not splits:
        raise ValueError("write_bins needs at least one split")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {}
    for name, samples in splits.items():
        total = (totals or {}).get(name)
        tokens, count = _write_split(out_dir / f"{name}.bin", samples, tokenizer, batch_size, name, total)
        if count == 0:
            raise DatasetError(
                f"split {name!r} has no samples: nothing to write to {out_dir / f'{name}.bin'}"
            )
        info[name] = {"file": f"{name}.bin", "tokens": tokens, "samples": count}
    result = {
        "format": FORMAT,
        "dtype": np.dtype(DTYPE).name,
        "vocab_size": tokenizer.vocab_size,
        "tokenizer_sha256": tokenizer.sha256,
        "bos_id": tokenizer.bos_id,
        "eos_id": tokenizer.eos_id,
        "pad_id": tokenizer.pad_id,
        "splits": info,
        **(meta or {}),
    }
    write_json_atomic(out_dir / META_FILE, result)
    return result


# --- reading -----------------------------------------------------------------------------------------


class TokenBin:
    """A read-only memmap of one .bin, validated against the meta.json beside it.

    Checks: the file exists and is a whole number of uint16s; if meta.json is there, it lists this
    file with the same token count and dtype; `vocab_size` / `tokenizer_sha256`, when given, match it.
    When the vocabulary size is known (meta.json or `vocab_size`), every id is checked on opening: an id
    past the embedding table is a segfault in MLX and an IndexError in PyTorch, so no reader may pass one
    on. That reads the whole file once, in chunks (~0.1 s per 10M tokens).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        vocab_size: int | None = None,
        tokenizer_sha256: str | None = None,
        meta_path: str | os.PathLike | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such token file (make one with `jai prepare`)")
        size = self.path.stat().st_size
        if size == 0:
            raise DatasetError(f"{self.path}: empty token file")
        if size % 2:
            raise DatasetError(
                f"{self.path}: {size} bytes is not a whole number of uint16 tokens (truncated?)"
            )
        self.meta = self._read_meta(Path(meta_path) if meta_path else self.path.parent / META_FILE)
        if tokenizer_sha256 is not None and self.meta is None:
            raise DatasetError(f"{self.path}: no meta.json beside it, so its tokenizer cannot be checked")
        if self.meta is not None:
            self._check_meta(size // 2, vocab_size, tokenizer_sha256)
        self.vocab_size = self.meta.get("vocab_size") if self.meta else vocab_size
        self.data = np.memmap(self.path, dtype=DTYPE, mode="r")
        if self.vocab_size is not None:
            self.check_ids()

    def _read_meta(self, meta_path: Path) -> dict[str, Any] | None:
        if not meta_path.is_file():
            return None
        try:
            return json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(
                f"{meta_path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
            ) from None

    def _check_meta(self, n_tokens: int, vocab_size: int | None, sha: str | None) -> None:
        meta = self.meta or {}
        where = f"{self.path} (meta.json beside it)"
        if meta.get("dtype") != np.dtype(DTYPE).name:
            raise DatasetError(f"{where}: dtype is {meta.get('dtype')!r}, expected 'uint16'")
        split = next((s for s in meta.get("splits", {}).values() if s.get("file") == self.path.name), None)
        if split is None:
            raise DatasetError(f"{where}: meta.json does not list {self.path.name}")
        if split["tokens"] != n_tokens:
            raise DatasetError(
                f"{where}: file holds {n_tokens:,} tokens but meta.json says {split['tokens']:,} "
                "(stale meta.json, or an interrupted write?)"
            )
        if vocab_size is not None and meta.get("vocab_size") != vocab_size:
            raise DatasetError(
                f"{where}: vocab_size is {meta.get('vocab_size')}, the model expects {vocab_size}"
            )
        if sha is not None and meta.get("tokenizer_sha256") != sha:
            raise DatasetError(
                f"{where}: made with another tokenizer "
                f"(sha256 {meta.get('tokenizer_sha256')}, expected {sha})"
            )

    def __len__(self) -> int:
        return len(self.data)

    def check_ids(self, vocab_size: int | None = None, chunk: int = 1 << 24) -> None:
        """Raise if any id is >= vocab_size (default: the file's own; read in chunks, memory bounded)."""
        vocab_size = vocab_size if vocab_size is not None else self.vocab_size
        if vocab_size is None:
            raise DatasetError(
                f"{self.path}: vocab_size unknown (no meta.json): pass vocab_size= to check ids"
            )
        for start in range(0, len(self.data), chunk):
            part = self.data[start : start + chunk]
            bad = np.flatnonzero(part >= vocab_size)
            if bad.size:
                pos = start + int(bad[0])
                raise DatasetError(
                    f"{self.path}: token {int(self.data[pos])} at position {pos} "
                    f"is >= vocab_size {vocab_size} (a corrupt file, or one made for another model)"
                )


# --- sampling ----------------------------------------------------------------------------------------


def sampled_targets(length: int, share: float, seed: int, chunk: int = 1 << 22) -> np.ndarray:
    """True at a `share` of positions, drawn once per position from `seed`: the same positions every
    run, resume and process, so no generator state has to be saved with the sampler. Drawn in chunks
    so a corpus of billions of tokens needs no float per token at once."""
    rng = np.random.Generator(np.random.PCG64([seed, _TARGET_STREAM]))
    return np.concatenate(
        [rng.random(min(chunk, length - i)) < share for i in range(0, length, chunk)] or [np.zeros(0, bool)]
    )


_TARGET_STREAM = 0x7A26_E7  # mixed into the seed so the kept targets are not the batches' draws
_EVAL_STREAM = 0x5EED_E7A1  # mixed into the seed so eval batches never coincide with training ones


IGNORE = -1  # a target the loss skips (jai train --mask-prompt): the twins' masked_cross_entropy


def answer_mask(tokens: np.ndarray, open_id: int, close_id: int) -> np.ndarray:
    """True at every token inside an answer: after an [ANSWER] (open_id), up to and including the
    [/ANSWER] (close_id) that ends it. Vectorised over the whole stream, so a window that starts in the
    middle of an answer still knows it is in one."""
    positions = np.arange(len(tokens), dtype=np.int64)
    last_open = np.maximum.accumulate(np.where(tokens == open_id, positions, -1))
    last_close = np.maximum.accumulate(np.where(tokens == close_id, positions, -1))
    # token j is an answer token when the last marker strictly before it is an [ANSWER]
    return np.concatenate([[False], last_open[:-1] > last_close[:-1]])


class BatchSampler:
    """Random (x, y) windows from a token array, reproducible and resumable. Shared by both twins.

    Each batch draws `batch_size` offsets i uniformly from [0, len - block_size - 1] and returns
    x = data[i : i+T] and y = data[i+1 : i+T+1] (the next token at every position), as int32 arrays
    of shape [batch_size, block_size]: numpy, so each twin converts them to its own arrays.

    Data-parallel training (jai/training/distributed.py): every one of `world_size` processes holds the same
    generator, draws the whole global batch of world_size x batch_size offsets from it, and keeps the
    rows of its `rank`. So N processes with batch B see exactly the batches one process with batch N x B
    sees, in the same order, and the state (the generator's) is the same on every rank. World size 1 is
    the plain sampler, draw for draw.

    `loss_mask` (one bool per token, `answer_mask`) sets every target outside it to IGNORE; `starts`
    (offsets, e.g. every [BOS]) are the only places windows begin.
    """

    def __init__(
        self,
        data: np.ndarray,
        batch_size: int,
        block_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        loss_mask: np.ndarray | None = None,
        starts: np.ndarray | None = None,
    ) -> None:
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"batch_size and block_size must be >= 1, got {batch_size} and {block_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        if data.ndim != 1:
            raise ValueError(f"data must be a 1-D token array, got shape {data.shape}")
        if len(data) < block_size + 1:
            raise DatasetError(
                f"only {len(data):,} tokens: block_size {block_size} needs at least {block_size + 1} "
                "(x and its one-token-shifted y); use more data or a smaller block_size"
            )
        self.data, self.batch_size, self.block_size, self.seed = data, batch_size, block_size, seed
        self.rank, self.world_size, self.loss_mask = rank, world_size, loss_mask
        # `starts`: the offsets windows may begin at (each sample's [BOS]), those with a whole window after
        self.starts = None if starts is None else starts[starts < len(data) - block_size]
        if self.starts is not None and not len(self.starts):
            raise DatasetError(
                f"no sample start has {block_size + 1} tokens after it; use a smaller block_size"
            )
        self.global_batch_size = batch_size * world_size
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.batches_drawn = 0
        self._window = np.arange(block_size + 1)

    def _batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.starts is None:
            ix = rng.integers(0, len(self.data) - self.block_size, size=self.global_batch_size)
        else:
            ix = self.starts[rng.integers(0, len(self.starts), size=self.global_batch_size)]
        ix = ix[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]  # this rank's rows
        # One fancy-index read of [B, T+1] tokens from the memmap; x and y are its two overlapping views.
        rows = np.asarray(self.data[ix[:, None] + self._window], dtype=np.int32)
        x, y = np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, 1:])
        if self.loss_mask is not None:
            y[~self.loss_mask[ix[:, None] + self._window[1:]]] = IGNORE
        return x, y

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        batch = self._batch(self.rng)
        self.batches_drawn += 1
        return batch

    def eval_batches(self, n_batches: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The same `n_batches` batches on every call, from a generator of their own: evaluating
        never moves the training stream, and losses at different steps compare like with like."""
        rng = np.random.Generator(np.random.PCG64([self.seed, _EVAL_STREAM]))
        for _ in range(n_batches):
            yield self._batch(rng)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the PCG64 state, batches drawn, and the shape it is only valid for."""
        return {
            "bit_generator": self.rng.bit_generator.state,
            "batches_drawn": self.batches_drawn,
            "seed": self.seed,
            "batch_size": self.global_batch_size,  # rows per draw, all ranks together
            "world_size": self.world_size,
            "block_size": self.block_size,
            "n_tokens": len(self.data),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # Another batch shape or data length would draw different windows from the same generator
        # state: refuse rather than resume into a silently different stream. The world size may change
        # as long as the global batch does not (see jai/training/distributed.py).
        for key, mine in (
            ("batch_size", self.global_batch_size),
            ("block_size", self.block_size),
            ("n_tokens", len(self.data)),
        ):
            if key in state and state[key] != mine:
                raise ValueError(f"sampler state is for {key}={state[key]}, this sampler has {key}={mine}")
        self.rng.bit_generator.state = dict(state["bit_generator"])
        self.batches_drawn = int(state["batches_drawn"])
        self.seed = int(state.get("seed", self.seed))
