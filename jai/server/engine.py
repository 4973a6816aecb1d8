"""What the server needs of a generation engine, and the simplest one: one request at a time.

An engine runs generations in its own worker thread and reports each request's tokens through callbacks
(called in that thread):

    job = engine.submit(ids, cfg, on_token=..., on_done=...)   # QueueFull when the wait queue is full
    engine.cancel(job)        # stop it (queued: never runs; running: gone by the next decode step)
    engine.stats()            # {"running": int, "waiting": int}: what the worker is really doing
    engine.close()            # cancel everything and stop the worker

`on_token(id)` is called for each new token (never for a stop id), and `on_done(error)` exactly once at
the end, with None when the generation ended normally or was cancelled. `SerialEngine` decodes one
request at a time: the baseline that dynamic batching (jai/batching.py) is measured against.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from jai.sampling import SamplingConfig

OnToken = Callable[[int], None]
OnDone = Callable[[BaseException | None], None]
# The twin's step generator for one batch of prompts: yields each step's token (None: ended) per prompt.
StepFn = Callable[[list[list[int]], SamplingConfig], Iterator[list[int | None]]]


class QueueFull(Exception):
    """Every decoding slot is busy and the wait queue is full: the server answers 429."""


class Engine(Protocol):
    def submit(self, ids: list[int], cfg: SamplingConfig, on_token: OnToken, on_done: OnDone) -> Any: ...

    def cancel(self, job: Any) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class _Job:
    ids: list[int]
    cfg: SamplingConfig
    on_token: OnToken
    on_done: OnDone
    cancelled: threading.Event = field(default_factory=threading.Event)


class SerialEngine:
    """One generation at a time in one worker thread; at most `max_waiting` more wait their turn."""

    def __init__(self, step_fn: StepFn, max_waiting: int = 32) -> None:
        self.step_fn = step_fn
        self.max_waiting = max_waiting
        self.max_batch = 1
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._cond = threading.Condition()
        self._closed = False
        # A daemon: a second Ctrl-C or SIGTERM must be able to end the process mid-generation.
        self._worker = threading.Thread(target=self._work, name="jai-serial-engine", daemon=True)
        self._worker.start()

    def submit(self, ids: list[int], cfg: SamplingConfig, on_token: OnToken, on_done: OnDone) -> _Job:
        job = _Job(list(ids), cfg, on_token, on_done)
        with self._cond:
            if self._closed:
                raise QueueFull("the engine is shutting down")
            busy = self._running is not None or self._queue
            if busy and len(self._queue) >= self.max_waiting:
                raise QueueFull(f"1 request is decoding and {len(self._queue)} are waiting")
            self._queue.append(job)
            self._cond.notify()
        return job

    def cancel(self, job: _Job) -> None:
        job.cancelled.set()
        with self._cond:
            if job in self._queue:  # never started: it leaves the queue now
                self._queue.remove(job)
            else:
                return
        job.on_done(None)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"running": int(self._running is not None), "waiting": len(self._queue)}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            jobs = list(self._queue)
            self._queue.clear()
            if self._running is not None:
                self._running.cancelled.set()
            self._cond.notify()
        for job in jobs:
            job.cancelled.set()
            job.on_done(None)
        self._worker.join(timeout=5)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._running = self._queue.popleft()
            error = None
            try:
                steps = self.step_fn([job.ids], job.cfg)
                try:
                    for (token,) in steps:
                        if job.cancelled.is_set():
                            break
                        if token is not None:
                            job.on_token(token)
                finally:
                    steps.close()  # type: ignore[attr-defined]
            except Exception as e:  # reported to the request; the worker serves the next one
                error = e
            with self._cond:
                self._running = None
            job.on_done(error)
