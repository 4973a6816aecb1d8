"""Fault suite, token files: an id past the vocabulary, in train.bin or val.bin, through every reader.

An id >= vocab_size indexes past the embedding table: MLX reads out of bounds (a segfault, exit 139) and
PyTorch raises an IndexError traceback. Every reader opens token files through `jai.dataset.TokenBin`,
which checks the ids against the vocabulary it knows; here each reader is a real `jai` process, or the
benchmark's in-process sampler, and each must give one line naming the file, with exit 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jai.config import GPTConfig
from jai.data.prepare import BUNDLED_SAMPLE, prepare
from jai.dataset import DatasetError

ROOT = Path(__file__).resolve().parents[1]
TWINS = ("mlx", "torch")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ids") / "data"
    prepare([BUNDLED_SAMPLE], out, vocab_size=400, context=64, show_progress=False, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def ckpt(data_dir: Path, tmp_path_factory) -> Path:
    from jai_torch import checkpoint
    from jai_torch.model import GPT

    vocab = json.loads((data_dir / "meta.json").read_text())["vocab_size"]
    cfg = GPTConfig(vocab_size=vocab, block_size=64, n_layer=1, n_head=2, n_embd=32)
    path = tmp_path_factory.mktemp("ids") / "ckpt"
    checkpoint.save_model(GPT(cfg), path, tokenizer=data_dir / "tokenizer.json")
    return path


def spoiled(data_dir: Path, tmp_path: Path, split: str, offset: int = 0) -> tuple[Path, int]:
    """A copy of `data_dir` whose `split`.bin holds vocab_size + offset at position 7; and that id."""
    bad = tmp_path / f"bad-{split}"
    shutil.copytree(data_dir, bad)
    bad_id = json.loads((data_dir / "meta.json").read_text())["vocab_size"] + offset
    tokens = np.fromfile(bad / f"{split}.bin", dtype=np.uint16)
    tokens[7] = bad_id
    tokens.tofile(bad / f"{split}.bin")
    return bad, bad_id


def jai(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "jai.cli", *map(str, argv)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_one_line(done: subprocess.CompletedProcess, command: str, file: Path, bad_id: int) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)  # not 139 (a segfault), not 1 (a traceback)
    assert "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"jai {command}: error: {file}: token {bad_id} at position 7"), line


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("offset", [0, 60_000])
def test_eval_names_a_bad_id_in_val_bin(data_dir, ckpt, tmp_path, twin, offset):
    bad, bad_id = spoiled(data_dir, tmp_path, "val", offset)
    flags = ["--backend", twin, "--device", "cpu", "--no-progress", "--answers", "0", "--loss-tokens", "200"]
    done = jai("eval", ckpt.parent, "--data", bad, *flags, cwd=tmp_path)
    assert_one_line(done, "eval", bad / "val.bin", bad_id)


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("split", ["train", "val"])
def test_train_names_a_bad_id(data_dir, tmp_path, twin, split):
    bad, bad_id = spoiled(data_dir, tmp_path, split)
    tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--max-steps", "2"]
    done = jai("train", "--backend", twin, "--data", bad, "--out", tmp_path / "run", *tiny, cwd=tmp_path)
    assert_one_line(done, "train", bad / f"{split}.bin", bad_id)
    assert not (tmp_path / "run").exists()  # refused before anything was written, the folder included


def test_the_benchmark_sampler_refuses_a_bad_id(data_dir, tmp_path):
    from jai.benchmarks.data import sampler

    bad, bad_id = spoiled(data_dir, tmp_path, "train")
    vocab = json.loads((data_dir / "meta.json").read_text())["vocab_size"]
    cfg = GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=2, n_embd=32)
    with pytest.raises(DatasetError, match=rf"train.bin: token {bad_id} at position 7"):
        sampler({"data": str(bad), "batch": 2, "seed": 0}, cfg)
