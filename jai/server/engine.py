"""What the server needs of a generation engine: jai/inference/batching.py's `BatchEngine` has it.

An engine runs generations in its own worker thread and reports each request's tokens through callbacks
(called in that thread):

    job = engine.submit(ids, cfg, on_token=..., on_done=...)   # QueueFull / EngineClosed at once
    engine.cancel(job)        # stop it (queued: never runs; running: gone by the next decode step)
    engine.stats()            # {"running": int, "waiting": int, ...}: what the worker is really doing
    engine.close()            # cancel everything and stop the worker

`on_token(id)` is called for each new token (never for a stop id), and `on_done(error)` exactly once at
the end, with None when the generation ended normally or was cancelled. Serving one request at a time
(the baseline `jai bench` compares batching with) is the same engine with `max_batch=1`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from jai.inference.batching import EngineClosed, QueueFull
from jai.inference.sampling import SamplingConfig

__all__ = ["Engine", "EngineClosed", "QueueFull"]


class Engine(Protocol):
    def submit(
        self,
        prompt: list[int],
        cfg: SamplingConfig,
        on_token: Callable[[int], None],
        on_done: Callable[[BaseException | None], None],
    ) -> Any: ...

    def cancel(self, job: Any) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...
