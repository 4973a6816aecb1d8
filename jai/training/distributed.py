"""Data-parallel training: which process this is, what only one process does, and a run that cannot hang.

`jai train` run under a launcher trains one model on several processes (docs/distributed.md):

    torchrun --nproc-per-node 2 $(which jai) train --backend torch ...
    mlx.launch -n 2 -- jai train --backend mlx ...

Every process holds the whole model and optimizer, draws the same global batch from the shared sampler
and keeps its own rows of it (jai/dataset.py), and the twin averages the gradients across processes
before the optimizer step (jai_<backend>/distributed.py: DistributedDataParallel, mx.distributed), so
every process makes the same update. Rank 0 alone logs, evaluates, shows progress, writes metrics and
checkpoints; every rank reads the same checkpoint on resume.

This module is framework-free: it reads the launcher's environment, and imports the twin's
distributed.py only when there is more than one process. A world of one process touches no framework
collective at all, so a plain `jai train` runs exactly as it always did.

A process that dies or hangs must not leave the others waiting forever. The launchers stop the other
processes when one exits with an error (torchrun's agent, mlx.launch's monitor); for a process that is
alive but stuck (a wedged network, a peer host gone silent) every rank runs a `Watchdog` that ends the
process with a message when no step completes within JAI_DIST_TIMEOUT seconds (default 120), and
torch's collectives carry the same timeout. Checkpoints are written atomically by rank 0, so the last
one stays good whatever happens mid-step.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError
from jai.devices import twin_module
from jai.errors import RunFailed

TIMEOUT_ENV = "JAI_DIST_TIMEOUT"
# Seconds without a completed step before a process gives up on the others. It must outlast what rank 0
# makes the rest wait through: the default model's 20-batch evaluation + checkpoint save took 40 s on a
# loaded 2-core CPU (1.9 s per eval batch, measured), so 120 s leaves 3x; a frozen rank is then noticed
# in two minutes, not ten. Larger models or slower machines raise it with JAI_DIST_TIMEOUT.
DEFAULT_TIMEOUT = 120.0
HUNG_EXIT = 3  # exit status of a process the watchdog ends

# What each launcher sets in its processes' environment.
TORCHRUN_ENV = "WORLD_SIZE"  # with RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
MLX_ENV = ("MLX_RANK", "MLX_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE")  # ring/jaccl, nccl, mpi
LAUNCHERS = {"torch": "torchrun", "mlx": "mlx.launch"}


class DistributedError(ConfigError):
    """A launch that cannot work: the wrong launcher for the backend, or a world size a resume cannot use."""


class PeerLost(RunFailed):
    """A collective failed because another process died or its host went away."""


def launcher(environ: dict[str, str] | None = None) -> str | None:
    """Which launcher started this process ("torchrun", "mlx.launch"), or None for a plain process."""
    env = os.environ if environ is None else environ
    if int(env.get(TORCHRUN_ENV, "1") or 1) > 1:
        return "torchrun"
    if any(key in env for key in MLX_ENV):
        return "mlx.launch"
    return None


def launcher_rank() -> int:
    """This process's rank as its launcher set it (0 without one), before any process group exists."""
    return int(os.environ.get("RANK", os.environ.get("MLX_RANK", "0")) or 0)


def timeout_seconds(environ: dict[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    raw = env.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise DistributedError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


class Watchdog:
    """Ends this process with a message if `beat` is not called for `timeout` seconds.

    A collective waiting on a dead or stuck peer blocks inside the framework, where no Python exception
    can reach it; a thread that watches the clock and calls os._exit is the one way out that works in
    both twins. `os._exit` skips cleanup on purpose: the main thread is blocked and cannot run it, and
    rank 0 writes each checkpoint atomically, so nothing on disk is left half-written.
    """

    def __init__(self, timeout: float, rank: int, where: Callable[[], str]) -> None:
        self.timeout, self.rank, self.where = timeout, rank, where
        self._last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="jai-watchdog", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.timeout / 10)):
            idle = time.monotonic() - self._last
            if idle >= self.timeout:
                sys.stderr.write(
                    f"jai train: error: rank {self.rank} made no progress for {idle:.0f}s ({TIMEOUT_ENV}="
                    f"{self.timeout:g}): another process died or hung; stopping. {self.where()}\n"
                )
                sys.stderr.flush()
                os._exit(HUNG_EXIT)


@dataclass
class World:
    """The processes training one model: this one's rank, how many there are, and the twin's collectives."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    ops: ModuleType | None = None  # jai_<backend>.distributed, when size > 1
    watchdog: Watchdog | None = None
    where: Callable[[], str] = lambda: ""

    @property
    def main(self) -> bool:
        """Whether this process logs, evaluates and writes (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.ops is not None:
            self.ops.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any: ranks agree on a decision their clocks may differ on."""
        return self.ops.any_rank(flag) if self.ops is not None else flag

    def beat(self) -> None:
        if self.watchdog is not None:
            self.watchdog.beat()

    def raise_if_peer_lost(self, error: BaseException) -> None:
        """A framework's error from a collective whose peer is gone, as one line that says what to do."""
        if self.ops is None or not self.ops.peer_lost(error):
            return
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise PeerLost(
            f"rank {self.rank} lost contact with the other processes ({first}): one of them died, hung "
            f"or lost its host. {self.where()}"
        ) from None

    @contextmanager
    def rank_zero_first(self) -> Iterator[None]:
        """Rank 0 runs the body (say, repairing an interrupted checkpoint write) before the others do."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.ops is not None:
            self.ops.close()


def join(backend: str, where: Callable[[], str] = lambda: "") -> World:
    """This process's place in the run its launcher started (a world of one without a launcher).

    `where` says, for the watchdog's message, what survives (the last checkpoint)."""
    found = launcher()
    if found is None:
        return World()
    if found != LAUNCHERS[backend]:
        other = next(b for b, name in LAUNCHERS.items() if name == found)
        raise DistributedError(
            f"this process was started by {found}, which launches --backend {other}; "
            f"start --backend {backend} with {LAUNCHERS[backend]} (see docs/distributed.md)"
        )
    timeout = timeout_seconds()
    rank = launcher_rank()
    watchdog = Watchdog(timeout, rank, where)  # covers a peer that never shows up, too
    ops = twin_module(backend, "distributed")
    rank, size, local_rank = ops.init(timeout)
    watchdog.rank = rank
    watchdog.beat()
    if size == 1:
        watchdog.stop()
        return World()
    stop_in_one_line(rank, where)
    return World(rank, size, local_rank, ops, watchdog, where)


def stop_in_one_line(rank: int, where: Callable[[], str]) -> None:
    """When a process dies, both launchers SIGTERM the others, often before their own collective has
    failed: say then, in the same one line as a lost peer, what happened and that the checkpoint is good.
    os._exit: rank 0 writes each checkpoint atomically, so stopping anywhere leaves the last one whole (a
    save cut short leaves only a .ckpt.tmp-* folder, which the next --resume or reader removes)."""

    def stopped(signum: int, frame: object) -> None:
        sys.stderr.write(
            f"jai train: error: rank {rank} lost contact with the other processes (stopped by its launcher, "
            f"SIGTERM): one of them died, hung or lost its host. {where()}\n"
        )
        sys.stderr.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stopped)


def per_rank_batch(batch_size: int, saved: dict[str, Any] | None, asked: int | None, world_size: int) -> int:
    """The batch each process draws, so that a resumed run keeps the checkpoint's global batch.

    `batch_size` is the configured per-process batch, `saved` the checkpoint's sampler state (None for a
    new run), `asked` the batch the user set explicitly now (None: not set). A run saved by N processes
    with batch B and resumed by M processes continues the same batch sequence with batch N*B/M when M
    divides N*B; anything else would draw a different sequence, so it is refused with what would work.
    """
    if saved is None or "batch_size" not in saved:
        return batch_size
    global_batch = int(saved["batch_size"])
    saved_world = int(saved.get("world_size", 1))
    if batch_size * world_size == global_batch:
        return batch_size
    if asked is None and global_batch % world_size == 0:
        return global_batch // world_size
    fits = [n for n in range(1, global_batch + 1) if global_batch % n == 0]
    raise CheckpointError(
        f"the checkpoint was trained with a global batch of {global_batch} ({saved_world} process"
        f"{'es' if saved_world > 1 else ''} x {global_batch // saved_world}); {world_size} process"
        f"{'es' if world_size > 1 else ''} x batch {batch_size} would draw a different batch sequence. "
        f"Resume with a process count dividing {global_batch} ({', '.join(map(str, fits))}) and no "
        "--batch-size, or start a new run with --init-from"
    )


class NullLog:
    """The metrics log of a rank that writes none (every rank but 0)."""

    def write(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def settle_batch(plan: Any, world: World) -> None:
    """Set the plan's per-process batch for this world (see `per_rank_batch`), noting a change in the log."""
    cfg, resumed = plan.train_config, plan.resume
    if resumed is None:
        return
    asked = cfg.batch_size if cfg.batch_size != resumed.train_config.batch_size else None
    batch_size = per_rank_batch(cfg.batch_size, resumed.sampler, asked, world.size)
    if batch_size != cfg.batch_size:
        plan.train_config = cfg.replace(batch_size=batch_size)
        plan.notes.append(
            f"batch size {cfg.batch_size} -> {batch_size} per process: {world.size} process"
            f"{'es' if world.size > 1 else ''} continue the checkpoint's batch sequence "
            f"(global batch {batch_size * world.size})"
        )
