"""Data-parallel training in PyTorch. Twin: jai_mlx/distributed.py; the shared half is
jai/training/distributed.py.

torchrun starts the processes and tells each its place (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT); `init` joins them in one process group: gloo for CPU tensors, and NCCL for CUDA ones when
every process of a host has a GPU of its own (that of its LOCAL_RANK). Processes sharing a GPU use gloo
for everything, since NCCL refuses two ranks on one device. DistributedDataParallel (`wrap`) averages the
gradients across the group during the backward pass, bucket by bucket, and broadcasts rank 0's weights
when it is built, so every process starts from and keeps the same model.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def init(timeout: float) -> tuple[int, int, int]:
    """Join the process group torchrun set up; (rank, world size, local rank).

    `timeout` bounds every collective: a peer that died or hung ends the wait with an error instead of
    blocking forever (gloo honours it; NCCL only with its async error handling, which torch enables)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    per_host = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    backend = "gloo"  # also for CUDA tensors when processes share a GPU, which NCCL refuses
    if torch.cuda.is_available() and per_host <= torch.cuda.device_count():
        torch.cuda.set_device(local_rank)  # "cuda" now means this process's own GPU
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    return dist.get_rank(), dist.get_world_size(), local_rank


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model as the training step calls it: under DistributedDataParallel when there is a group."""
    if not active():
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def syncing(model: torch.nn.Module, last: bool) -> AbstractContextManager:
    """Gradient accumulation: average across processes only on the last micro-batch of a step."""
    if isinstance(model, DistributedDataParallel) and not last:
        return model.no_sync()
    return nullcontext()


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over all processes (the step's loss, for the log), or `value` itself alone."""
    if not active():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)  # SUM: gloo has no AVG
    return total / dist.get_world_size()


def share_weights(model: torch.nn.Module) -> None:
    """Every process starts from rank 0's weights: DistributedDataParallel broadcasts them when built."""


def seed_rank() -> None:
    """Reseed every rank but 0 from the RNG it started with and its rank: its own dropout masks, the same
    ones again when the run resumes (every rank restores rank 0's saved RNG, then comes here)."""
    if active() and dist.get_rank() > 0:
        torch.manual_seed(int(torch.randint(2**31, ()).item()) * 1009 + dist.get_rank())


def barrier() -> None:
    dist.barrier()


def any_rank(flag: bool) -> bool:
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def peer_lost(error: BaseException) -> bool:
    """Whether `error` is a collective failing because a peer is gone (gloo: connection reset or closed)."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and any(word in str(error) for word in ("gloo", "NCCL"))
    )


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
