"""Dynamic batching: requests from many threads, decoded together by one worker thread.

    engine = BatchEngine(model, max_batch=8, max_waiting=64)   # model: either twin's
    # (jai.inference.twins.load_twin)
    req = engine.submit(ids, SamplingConfig(...), on_token=f, on_done=g)   # any thread; returns at once
    req.cancel()  # or engine.cancel(req): queued or running, it is gone within one decode step
    req.result(timeout=None)          # block until done: the new token ids (stop id excluded)
    engine.stats()                    # {"running", "waiting", "max_batch", "max_waiting", counters...}
    engine.close(timeout=0.0)         # refuse new work; let the rest finish for `timeout` s, cancel the rest

The worker runs jai/inference/decode.py's `Batch`: between two decode steps it drops cancelled requests and
lets waiting ones join (they are prefilled in that step); every running request then decodes in one batched
forward pass, each row at its own position. A request's greedy tokens are the same alone or in a batch
(the tests check it in both twins), and a seeded request draws from its own random stream.

Callbacks are called from the worker thread: `on_token(token_id)` once per new token (never for a stop
id), then `on_done(error)` exactly once, with None unless the model raised. By then `req.finish_reason`
says why it ended:

    "stop" (a stop id, not emitted), "length" (max_new_tokens), "cancelled" (cancel() or close()),
    "error" (the model raised, or this request's own sampling did: a SamplingError, and the other
             requests go on; `req.error` holds the exception, and on_done gets it)

Callbacks must be quick and must not block (e.g. `loop.call_soon_threadsafe(queue.put_nowait, token)`
for asyncio); an exception in one is logged and swallowed so the other requests go on.

`submit` checks the prompt (SamplingError: empty, out of the vocabulary) in the caller's thread, raises
`QueueFull` when every place in the batch is taken and `max_waiting` requests already wait (an HTTP
server answers 429), and `EngineClosed` after `close`. A prompt longer than the context minus the room
for max_new_tokens is cropped from the left (jai.inference.sampling.crop_left): shorten documents before, with
jai.prompt.fit_prompt. One worker thread decodes: MLX and PyTorch are never driven from two at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from jai.inference.decode import Batch, Row, backend_for
from jai.inference.sampling import SamplingConfig, check_prompts

log = logging.getLogger(__name__)

OnToken = Callable[[int], None] | None
OnDone = Callable[[BaseException | None], None] | None


class QueueFull(Exception):
    """The wait queue is full: try again later (HTTP 429)."""


class EngineClosed(Exception):
    """The engine is closing or closed and takes no new requests (HTTP 503)."""


class Request:
    """A submitted generation. Read `tokens`, `finish_reason` once `done()`; or `result()`."""

    def __init__(
        self,
        rid: int,
        prompt: list[int],
        cfg: SamplingConfig,
        on_token: OnToken,
        on_done: OnDone,
        engine: Any,
    ) -> None:
        self.id = rid
        self.prompt = prompt
        self.cfg = cfg
        self.tokens: list[int] = []
        self.finish_reason: str | None = None
        self.error: BaseException | None = None
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None  # when it joined the batch
        self._on_token, self._on_done = on_token, on_done
        self._engine = engine
        self._done = threading.Event()
        self._cancelled = False

    def cancel(self) -> None:
        """Stop this request: a queued one never runs, a running one leaves the batch at the next step.
        Its final event has finish_reason "cancelled" (unless it had already ended). Safe from any thread."""
        self._engine._cancel(self)

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> list[int]:
        """The new token ids once the request has ended (TimeoutError if not within `timeout`)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"request {self.id} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return list(self.tokens)

    def _token(self, token: int) -> None:
        self.tokens.append(token)
        if self._on_token is not None:
            _call(self._on_token, token)

    def _end(self, reason: str, error: BaseException | None) -> None:
        self.finish_reason, self.error = reason, error
        if self._on_done is not None:
            _call(self._on_done, error)
        self._done.set()


def _call(callback: Callable, arg: Any) -> None:
    try:
        callback(arg)
    except Exception:  # one broken callback must not stop everyone else's generation
        log.exception("a request's callback raised")


class BatchEngine:
    """Decodes every running request together in one worker thread; see the module docstring."""

    def __init__(self, model: Any, max_batch: int = 8, max_waiting: int = 64, cache: bool = True) -> None:
        """`model`: either twin's model (or a jai.inference.decode Backend); `max_batch` requests decode at
        once, up to `max_waiting` more wait for a place; `cache=False` recomputes every window (for tests)."""
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not isinstance(max_waiting, int) or max_waiting < 0:
            raise ValueError(f"max_waiting must be an integer >= 0, got {max_waiting!r}")
        self.backend = backend_for(model)
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.vocab_size = self.backend.vocab_size
        self._cache = cache
        self._batch: Batch  # made in the worker thread: MLX arrays belong to the thread's stream
        self._lock = threading.Condition()
        self._waiting: deque[Request] = deque()
        self._running: dict[Request, Any] = {}  # request -> its row in the batch
        self._to_cancel: list[Request] = []
        self._ids = itertools.count()
        self._closing = False
        self._counts = dict.fromkeys(("submitted", "finished", "cancelled", "failed", "tokens", "steps"), 0)
        self._thread = threading.Thread(target=self._work, name="jai-batch-engine", daemon=True)
        self._thread.start()

    # --- any thread ---------------------------------------------------------------------------------

    def submit(
        self, prompt: Sequence[int], cfg: SamplingConfig, on_token: OnToken = None, on_done: OnDone = None
    ) -> Request:
        """Queue a generation; returns at once. Raises SamplingError (a bad prompt: empty, or an id outside
        the vocabulary), QueueFull or EngineClosed."""
        (ids,) = check_prompts([prompt], self.vocab_size)
        with self._lock:
            if self._closing:
                raise EngineClosed("the engine is shutting down")
            if len(self._running) + len(self._waiting) >= self.max_batch + self.max_waiting:
                raise QueueFull(
                    f"{len(self._waiting)} requests already wait for a place in the batch "
                    f"(max_batch={self.max_batch}, max_waiting={self.max_waiting})"
                )
            request = Request(next(self._ids), ids, cfg, on_token, on_done, self)
            self._waiting.append(request)
            self._counts["submitted"] += 1
            self._lock.notify()
        return request

    def stats(self) -> dict[str, int]:
        """running: requests decoding now; waiting: queued for a place; the limits; and counters since the
        start: submitted, finished ("stop"/"length"), cancelled, failed, tokens (stop ids not counted),
        steps (decode steps run)."""
        with self._lock:
            return {
                "running": len(self._running),
                "waiting": len(self._waiting),
                "max_batch": self.max_batch,
                "max_waiting": self.max_waiting,
                **self._counts,
            }

    def generate(self, prompt: Sequence[int], cfg: SamplingConfig, timeout: float | None = None) -> list[int]:
        """Submit and wait: the new token ids (a convenience for callers without their own thread)."""
        return self.submit(prompt, cfg).result(timeout)

    def cancel(self, request: Request) -> None:
        """Stop `request` (see Request.cancel)."""
        self._cancel(request)

    def close(self, timeout: float | None = 0.0) -> None:
        """Take no new requests; let queued and running ones finish for up to `timeout` seconds (0: cancel
        them at once; None: as long as they take), then cancel what is left and stop the worker thread."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout)
        with self._lock:
            for request in [*self._waiting, *self._running]:
                request._cancelled = True
            self._to_cancel.extend(self._waiting)
            self._waiting.clear()
            self._lock.notify()
        self._thread.join()

    def _cancel(self, request: Request) -> None:
        with self._lock:
            if request._done.is_set() or request._cancelled:
                return
            request._cancelled = True
            if request in self._waiting:  # out of the queue now, so `waiting` counts only real work
                self._waiting.remove(request)
            self._to_cancel.append(request)
            self._lock.notify()

    # --- the worker thread --------------------------------------------------------------------------

    def _work(self) -> None:
        """Each round: wait for work and collect cancellations, finish the cancelled requests, admit
        waiting ones into the batch, decode one step (prefilling those that joined), emit its tokens."""
        self._batch = Batch(self.backend, capacity=self.max_batch, cache=self._cache)
        while (cancelled := self._next_round()) is not None:
            for request in cancelled:
                self._finish(request, "cancelled")
            self._admit()
            if self._running and (produced := self._decode()) is not None:
                self._emit(produced)

    def _next_round(self) -> list[Request] | None:
        """Wait until there is work; the requests to cancel now, or None once closed with nothing left."""
        with self._lock:
            while not (self._waiting or self._running or self._to_cancel or self._closing):
                self._lock.wait()
            cancelled, self._to_cancel = self._to_cancel, []
            for request in self._running:
                if request._cancelled and request not in cancelled:
                    cancelled.append(request)
            if self._closing and not (self._waiting or self._running or cancelled):
                return None
        return cancelled

    def _admit(self) -> None:
        """Move waiting requests into the batch's free rows (each is prefilled in the next step)."""
        with self._lock:
            joining = []
            while self._waiting and len(self._running) + len(joining) < self.max_batch:
                joining.append(self._waiting.popleft())
            for request in joining:
                self._running[request] = None  # counted as running from here on
        for request in joining:
            request.started_at = time.monotonic()
            sampler = self._batch.sampler(request.cfg)  # its own random stream
            row = self._batch.add(request.prompt, sampler, owner=request)
            self._running[request] = row

    def _decode(self) -> list[tuple[Row, int | None]] | None:
        """One step of the batch: a token for every running request. None when the step failed: every
        running request has then ended with the error, and the engine goes on serving."""
        try:
            produced = self._batch.step()
        except Exception as e:  # a bug or a device failure: fail the running requests, keep serving
            log.exception("decode step failed")
            self._fail_running(e)
            return None
        self._counts["steps"] += 1
        return produced

    def _fail_running(self, error: Exception) -> None:
        # The batch may be half-updated: start a fresh one, with none of its rows left to remove.
        self._batch = Batch(self.backend, capacity=self.max_batch, cache=self._cache)
        with self._lock:
            self._running = dict.fromkeys(self._running)
        for request in list(self._running):
            self._finish(request, "error", error)

    def _emit(self, produced: list[tuple[Row, int | None]]) -> None:
        """Each row's new token to its request; the requests whose row ended finish."""
        for row, token in produced:
            request = row.owner
            if token is not None:
                self._counts["tokens"] += 1
                request._token(token)
            if row.finish_reason:
                self._finish(request, row.finish_reason, row.error)

    def _finish(self, request: Request, reason: str, error: BaseException | None = None) -> None:
        """Send the final event and forget the request (its row leaves the batch if still there)."""
        with self._lock:
            row = self._running.pop(request, None)
        if row is not None and row.finish_reason is None:
            self._batch.remove(row)
        if request._done.is_set():
            return
        self._counts[
            {"stop": "finished", "length": "finished", "cancelled": "cancelled", "error": "failed"}[reason]
        ] += 1
        request._end(reason, error)
