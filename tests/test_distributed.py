"""Data-parallel training, the framework-free half (jai/training/distributed.py, the sampler's sharding).

The launched runs (torchrun, mlx.launch) are in test_distributed_launch.py; this file checks the
arithmetic they rest on, in-process and fast.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jai.checkpoint.weights import CheckpointError
from jai.dataset import BatchSampler
from jai.training import distributed
from jai.training.distributed import DistributedError, per_rank_batch

TOKENS = np.arange(5_000, dtype=np.uint16)


def sampler(batch: int, rank: int = 0, world: int = 1) -> BatchSampler:
    return BatchSampler(TOKENS, batch, 8, seed=3, rank=rank, world_size=world)


def test_ranks_together_see_the_one_process_batches_in_order():
    """Two ranks with batch 3, concatenated, are one process with batch 6, draw after draw."""
    one, ranks = sampler(6), [sampler(3, r, 2) for r in range(2)]
    for _ in range(5):
        x1, y1 = one.next_batch()
        parts = [s.next_batch() for s in ranks]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), x1)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), y1)
        assert not np.array_equal(parts[0][0], parts[1][0])  # each rank has rows of its own
    # the state is the global stream's, the same on every rank and in the one process
    states = [s.state_dict() for s in (one, *ranks)]
    assert all(s["bit_generator"] == states[0]["bit_generator"] for s in states)
    assert all(s["batch_size"] == 6 and s["batches_drawn"] == 5 for s in states)


def test_world_size_one_is_the_plain_sampler():
    plain = BatchSampler(TOKENS, 4, 8, seed=3)
    rng = np.random.Generator(np.random.PCG64(3))
    ix = rng.integers(0, len(TOKENS) - 8, size=4)
    assert np.array_equal(plain.next_batch()[0], np.stack([TOKENS[i : i + 8] for i in ix]).astype(np.int32))


def test_a_two_rank_state_resumes_in_one_process_with_the_global_batch():
    ranks = [sampler(3, r, 2) for r in range(2)]
    for s in ranks:
        s.next_batch()
    one, ref = sampler(6), sampler(6)
    ref.next_batch()
    one.load_state_dict(ranks[0].state_dict())
    assert np.array_equal(one.next_batch()[0], ref.next_batch()[0])
    with pytest.raises(ValueError, match="batch_size=6, this sampler has batch_size=3"):
        sampler(3).load_state_dict(ranks[0].state_dict())


def test_per_rank_batch_keeps_the_global_batch_or_says_why_not():
    saved = {"batch_size": 8, "world_size": 2}
    assert per_rank_batch(4, None, None, 2) == 4  # a new run: as configured
    assert per_rank_batch(4, saved, None, 2) == 4
    assert per_rank_batch(4, saved, None, 1) == 8  # 1 process continues 2 x 4 with batch 8
    assert per_rank_batch(4, saved, None, 4) == 2
    assert per_rank_batch(8, saved, 8, 1) == 8
    with pytest.raises(
        CheckpointError, match=r"global batch of 8 \(2 processes x 4\); 3 processes x batch 4"
    ):
        per_rank_batch(4, saved, None, 3)
    with pytest.raises(CheckpointError, match=r"dividing 8 \(1, 2, 4, 8\)"):
        per_rank_batch(5, saved, 5, 1)  # asked for explicitly: not silently replaced


def test_the_launcher_is_read_from_the_environment():
    assert distributed.launcher({}) is None
    assert distributed.launcher({"WORLD_SIZE": "1", "RANK": "0"}) is None  # torchrun with one process
    assert distributed.launcher({"WORLD_SIZE": "2", "RANK": "1"}) == "torchrun"
    assert distributed.launcher({"MLX_RANK": "0", "MLX_HOSTFILE": "/tmp/h"}) == "mlx.launch"
    assert distributed.timeout_seconds({}) == distributed.DEFAULT_TIMEOUT
    assert distributed.timeout_seconds({"JAI_DIST_TIMEOUT": "30"}) == 30.0
    with pytest.raises(DistributedError, match="JAI_DIST_TIMEOUT='soon'"):
        distributed.timeout_seconds({"JAI_DIST_TIMEOUT": "soon"})


def test_the_wrong_launcher_for_the_backend_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(DistributedError, match="started by torchrun.*start --backend mlx with mlx.launch"):
        distributed.join("mlx")


def test_alone_the_world_is_one_process_and_touches_no_framework(monkeypatch):
    for key in ("WORLD_SIZE", *distributed.MLX_ENV):
        monkeypatch.delenv(key, raising=False)
    world = distributed.join("torch")
    assert (world.rank, world.size, world.main, world.ops) == (0, 1, True, None)
    assert world.any(True) and not world.any(False)
    world.close()


def test_the_watchdog_ends_a_process_that_makes_no_progress():
    """A rank stuck in a collective cannot raise; the watchdog ends it with a message and exit status 3."""
    code = (
        "import time\n"
        "from jai.training.distributed import Watchdog\n"
        "dog = Watchdog(0.5, 1, lambda: 'The last checkpoint, out/ckpt, is intact.')\n"
        "for _ in range(3):\n"
        "    time.sleep(0.1); dog.beat()  # alive while it beats\n"
        "print('beating stopped', flush=True)\n"
        "time.sleep(60)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert done.returncode == distributed.HUNG_EXIT
    assert done.stdout == "beating stopped\n"
    assert "rank 1 made no progress" in done.stderr and "out/ckpt, is intact" in done.stderr


def test_the_hung_rank_timeout_is_minutes_and_said_in_help():
    """A frozen rank went unnoticed for ten minutes; the default is two, and `jai train --help` says so."""
    from tests.test_readme import help_text

    assert distributed.DEFAULT_TIMEOUT == 120.0
    text = " ".join(help_text(["train"]).split())
    assert "JAI_DIST_TIMEOUT seconds (default 120" in text and f"exit status {distributed.HUNG_EXIT}" in text
