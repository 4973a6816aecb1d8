"""Data-parallel training in MLX. Twin: jai_torch/distributed.py; the shared half is
jai/training/distributed.py.

mlx.launch starts the processes and tells each its place (MLX_RANK and a hostfile for the ring backend,
the NCCL or MPI settings for the others); `init` joins them in MLX's global group. The training step
averages the gradients across the group (`average`, inside the compiled step, before clipping and the
optimizer update), and `share_weights` gives every process rank 0's weights at the start, so every
process starts from and keeps the same model.

MLX's collectives take no timeout: a peer that dies mid-collective can leave the others waiting. mlx.launch
stops every process when one exits with an error, and jai/training/distributed.py's watchdog ends a process
that makes no progress for JAI_DIST_TIMEOUT seconds, so the run comes down either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map

_group: mx.distributed.Group | None = None


def init(timeout: float) -> tuple[int, int, int]:
    """Join the group mlx.launch set up; (rank, world size, local rank).

    `timeout` is enforced by the shared watchdog: MLX's collectives have none of their own."""
    global _group
    hostfile = os.environ.get("MLX_HOSTFILE")
    if hostfile and not Path(hostfile).read_text().strip():
        return 0, 1, 0  # `mlx.launch -n 1` writes an empty hostfile, which the ring cannot parse
    _group = mx.distributed.init(strict=True)
    return _group.rank(), _group.size(), 0  # mlx.launch picks each process's device itself


def active() -> bool:
    return _group is not None and _group.size() > 1


def average(grads: Any) -> Any:
    """The gradients averaged over all processes (inside the compiled step), or `grads` itself alone."""
    if not active():
        return grads
    return nn.average_gradients(grads, _group)


def mean(value: mx.array) -> mx.array:
    """The mean of a scalar over all processes (the step's loss, for the log), or `value` itself alone."""
    if not active():
        return value
    return mx.distributed.all_sum(value, group=_group) / _group.size()


def share_weights(model: nn.Module) -> None:
    """Every process starts from rank 0's weights: the others contribute zeros to one sum."""
    if not active():
        return
    keep = _group.rank() == 0
    model.update(
        tree_map(
            lambda p: mx.distributed.all_sum(p if keep else mx.zeros_like(p), group=_group),
            model.parameters(),
        )
    )
    mx.eval(model.parameters())


def seed_rank() -> None:
    """Reseed every rank but 0 from the RNG it started with and its rank: its own dropout masks, the same
    ones again when the run resumes (every rank restores rank 0's saved RNG, then comes here)."""
    if active() and _group.rank() > 0:
        mx.random.seed(int(mx.random.randint(0, 2**31, ()).item()) * 1009 + _group.rank())


def barrier() -> None:
    mx.eval(mx.distributed.all_sum(mx.array(0), group=_group))


def any_rank(flag: bool) -> bool:
    return mx.distributed.all_sum(mx.array(int(flag)), group=_group).item() > 0


def peer_lost(error: BaseException) -> bool:
    """Whether `error` is a collective failing because a peer is gone (ring: "connection ... lost")."""
    return isinstance(error, RuntimeError) and any(
        tag in str(error) for tag in ("[ring]", "[mpi]", "[nccl]", "[jaccl]")
    )


def close() -> None:
    pass  # MLX's group lives until the process ends
