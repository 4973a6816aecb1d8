"""BatchSampler: the one batch stream both twins train on - windows, determinism, exact resume, eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jai.dataset import BatchSampler, DatasetError, TokenBin

B, T = 4, 16


@pytest.fixture
def tokens(tmp_path: Path) -> np.ndarray:
    # Distinct values (token i has id i), so every window tells us where it was cut from; read back
    # through TokenBin, as training does, so the sampler indexes a real read-only memmap.
    np.arange(5000, dtype=np.uint16).tofile(tmp_path / "train.bin")
    return TokenBin(tmp_path / "train.bin").data


def draw(sampler: BatchSampler, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [sampler.next_batch() for _ in range(n)]


def same(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x1, x2) and np.array_equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )


def test_batches_are_windows_with_shifted_targets(tokens: np.ndarray) -> None:
    sampler = BatchSampler(tokens, B, T, seed=0)
    for x, y in draw(sampler, 20):
        assert x.shape == y.shape == (B, T) and x.dtype == y.dtype == np.int32
        assert x.flags.c_contiguous and y.flags.c_contiguous
        starts = x[:, 0]
        assert np.array_equal(x, starts[:, None] + np.arange(T))  # a contiguous slice of the data
        assert np.array_equal(y, x + 1)  # the next token at every position
        assert np.array_equal(y[:, :-1], x[:, 1:])
        assert starts.min() >= 0 and starts.max() + T < len(tokens)
    assert sampler.batches_drawn == 20


def test_same_seed_same_batches_other_seed_other_batches(tokens: np.ndarray) -> None:
    a = draw(BatchSampler(tokens, B, T, seed=42), 10)
    assert same(a, draw(BatchSampler(tokens, B, T, seed=42), 10))
    assert not same(a, draw(BatchSampler(tokens, B, T, seed=43), 10))


@pytest.mark.parametrize("k, m", [(0, 5), (7, 9), (1, 1)])
def test_resume_continues_with_exactly_the_same_batches(tokens: np.ndarray, k: int, m: int) -> None:
    original = BatchSampler(tokens, B, T, seed=1337)
    draw(original, k)
    state = json.loads(json.dumps(original.state_dict()))  # must survive a JSON checkpoint
    assert state["batches_drawn"] == k
    expected = draw(original, m)

    resumed = BatchSampler(tokens, B, T, seed=999)  # the state, not the constructor's seed, decides
    resumed.load_state_dict(state)
    assert same(draw(resumed, m), expected)
    assert resumed.batches_drawn == k + m


def test_resume_refuses_another_shape(tokens: np.ndarray) -> None:
    state = BatchSampler(tokens, B, T, seed=0).state_dict()
    with pytest.raises(ValueError, match="batch_size=4"):
        BatchSampler(tokens, B + 1, T, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="block_size=16"):
        BatchSampler(tokens, B, T * 2, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="n_tokens=5000"):
        BatchSampler(tokens[:4000], B, T, seed=0).load_state_dict(state)


def test_eval_batches_are_fixed_and_leave_training_alone(tokens: np.ndarray) -> None:
    sampler = BatchSampler(tokens, B, T, seed=5)
    first = list(sampler.eval_batches(3))
    train = draw(sampler, 2)
    assert same(first, list(sampler.eval_batches(3)))  # the same batches on every call
    assert same(train, draw(BatchSampler(tokens, B, T, seed=5), 2))  # evaluating did not move training
    assert sampler.batches_drawn == 2
    assert not same(first[:2], train)  # and eval is not a copy of the training stream
    for x, y in first:
        assert np.array_equal(y, x + 1)


def test_every_offset_is_reachable(tmp_path: Path) -> None:
    data = np.arange(T + 3, dtype=np.uint16)  # valid starts: 0, 1, 2
    sampler = BatchSampler(data, 8, T, seed=0)
    starts = {int(s) for x, _ in draw(sampler, 20) for s in x[:, 0]}
    assert starts == {0, 1, 2}


def test_too_short_data_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match=r"only 16 tokens: block_size 16 needs at least 17"):
        BatchSampler(np.arange(T, dtype=np.uint16), B, T, seed=0)
    x, y = BatchSampler(np.arange(T + 1, dtype=np.uint16), B, T, seed=0).next_batch()  # exactly enough
    assert np.array_equal(x[0], np.arange(T)) and np.array_equal(y[0], np.arange(1, T + 1))
    with pytest.raises(ValueError, match="must be >= 1"):
        BatchSampler(np.arange(100, dtype=np.uint16), 0, T, seed=0)


def test_aligned_windows_begin_at_the_given_starts_only() -> None:
    """--align-samples: windows begin at each sample's [BOS] (here 0), never elsewhere; a start too close to
    the end for a whole window is left out."""
    rng = np.random.default_rng(0)
    data = rng.integers(1, 50, size=400).astype(np.uint16)
    bos = np.array([0, 37, 120, 255, 390])  # 390: fewer than T + 1 tokens after it
    data[bos] = 0
    sampler = BatchSampler(data, 8, T, seed=0, starts=np.flatnonzero(data == 0))
    firsts = {int(s) for x, _ in draw(sampler, 30) for s in x[:, 0]}
    assert firsts == {0}
    begun = {int(np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(data, T) == row, 1))[0])
             for x, _ in draw(sampler, 30) for row in x}  # fmt: skip
    assert begun == {0, 37, 120, 255}
    with pytest.raises(DatasetError, match="no sample start"):
        BatchSampler(data, 8, T, seed=0, starts=np.array([390]))
