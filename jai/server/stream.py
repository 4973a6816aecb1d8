"""One request's tokens, carried from the engine's worker thread to the event loop.

The engine calls back in its own thread; `TokenStream` hands each call to the event loop
(`call_soon_threadsafe`) and lets a route `await` the tokens in batches: whatever has arrived since the
last wait. Closing the stream cancels the job in the engine, so a request that ends early (a stop string,
a client that went away, a server that shuts down) frees its decoding slot at the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jai.inference.sampling import SamplingConfig, SamplingError
from jai.server.engine import Engine

_DONE = object()


class EngineFailed(RuntimeError):
    """The engine raised while generating this request (a bug or a device error, not the input)."""


class TokenStream:
    def __init__(self, engine: Engine, ids: list[int], cfg: SamplingConfig) -> None:
        """Submit at once, so that a full queue (`QueueFull`) is known before any response starts."""
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._engine = engine
        self._error: BaseException | None = None
        self.finished = False  # the engine reported the end (not a cancel of ours)
        self.count = 0
        self._job = engine.submit(ids, cfg, on_token=self._from_thread, on_done=self._done_from_thread)

    def _from_thread(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _done_from_thread(self, error: BaseException | None) -> None:
        self._error = error
        self._from_thread(_DONE)

    async def next_tokens(self) -> list[int] | None:
        """The tokens that arrived since the last call (waiting for at least one); None at the end."""
        if self.finished:
            return None
        items = [await self._queue.get()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        tokens = [t for t in items if t is not _DONE]
        self.count += len(tokens)
        if len(tokens) < len(items):
            self.finished = True
            if isinstance(self._error, SamplingError):  # this request's own parameters: a 422
                raise self._error
            if self._error is not None:
                raise EngineFailed(str(self._error)) from self._error
        return tokens or (None if self.finished else [])

    def abort(self) -> None:
        """Cancel the job and end the stream now, whatever the engine still has to report."""
        self.close()
        self._queue.put_nowait(_DONE)

    def close(self) -> None:
        """Cancel the job unless it has ended: its slot or queue place is freed."""
        if not self.finished:
            self._engine.cancel(self._job)
