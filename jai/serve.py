"""Serve a JAI checkpoint over HTTP: FastAPI, either twin, a bounded number of generations at a time.

    POST /generate  {"prompt": str, "max_new_tokens": int, "temperature": float, "top_k": int | null,
                     "top_p": float | null, "seed": int | null}
                    -> {"text": str, "tokens": int, "finish_reason": "stop" | "length"}
    GET  /health    -> {"status": "ok", "max_concurrent": int, "running": int, "waiting": int}

`create_app` imports neither framework: it takes a `generate_fn(prompt_ids, SamplingConfig) -> new ids`
and an object with `encode`/`decode`, so tests can drive it with fakes; `load_generate_fn` loads a
twin, and `jai serve` (jai/serve_cli.py) puts the two together.
At most `max_concurrent` generations run at once (an asyncio.Semaphore); later requests wait their turn.
Each generation runs in a worker thread, so the event loop keeps answering (/health included) meanwhile.
Bad input gets a 422 naming the field.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jai.devices import BACKENDS
from jai.sampling import MAX_SEED, SamplingConfig, SamplingError

DEFAULTS = SamplingConfig()
MAX_NEW_TOKENS_LIMIT = 1024
# Special tokens that end an answer, looked up in the tokenizer by name when no stop ids are given.
STOP_TOKENS = ("[EOS]", "[/ANSWER]")

GenerateFn = Callable[[list[int], SamplingConfig], list[int]]


class TokenizerLike(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class GenerateRequest(BaseModel):
    # strict: "5" is not an int and true is not a number; unknown fields are typos, not options.
    model_config = ConfigDict(strict=True, extra="forbid")

    prompt: str = Field(min_length=1)
    max_new_tokens: int | None = Field(None, ge=1)  # None: SamplingConfig's default, within the app's limit
    temperature: float = Field(DEFAULTS.temperature, ge=0.0, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)


class GenerateResponse(BaseModel):
    text: str
    tokens: int
    finish_reason: str  # "stop": a stop id ended it; "length": max_new_tokens did


def default_stop_ids(tokenizer: Any) -> tuple[int, ...]:
    """The tokenizer's end-of-text id and the ids of STOP_TOKENS, whichever it has."""
    ids = []
    eos = getattr(tokenizer, "eos_id", None)
    if isinstance(eos, int):
        ids.append(eos)
    token_id = getattr(tokenizer, "token_id", None)
    for name in STOP_TOKENS if callable(token_id) else ():
        try:
            found = token_id(name)
        except (KeyError, ValueError):
            continue
        if isinstance(found, int) and found not in ids:
            ids.append(found)
    return tuple(ids)


def _invalid(field: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 shaped like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}]
    )


def create_app(
    generate_fn: GenerateFn,
    tokenizer: TokenizerLike,
    max_concurrent: int = 2,
    stop_ids: Sequence[int] | None = None,
    max_new_tokens_limit: int = MAX_NEW_TOKENS_LIMIT,
    title: str = "JAI",
) -> FastAPI:
    """The HTTP app around `generate_fn(prompt_ids, cfg) -> new token ids` (stop id excluded).

    `stop_ids` defaults to `default_stop_ids(tokenizer)`. Requests asking for more than
    `max_new_tokens_limit` tokens are refused with a 422.
    """
    if not isinstance(max_concurrent, int) or max_concurrent < 1:
        raise ValueError(f"max_concurrent must be a positive integer, got {max_concurrent!r}")
    stops = tuple(default_stop_ids(tokenizer) if stop_ids is None else stop_ids)
    counts = {"running": 0, "waiting": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.slots = asyncio.Semaphore(max_concurrent)  # made inside the server's event loop
        yield

    app = FastAPI(title=title, lifespan=lifespan)

    def slots(request: Request) -> asyncio.Semaphore:
        if not hasattr(request.app.state, "slots"):  # an app driven without its lifespan
            request.app.state.slots = asyncio.Semaphore(max_concurrent)
        return request.app.state.slots

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "max_concurrent": max_concurrent, **counts}

    @app.post("/generate", response_model=GenerateResponse)
    async def generate(body: GenerateRequest, request: Request) -> GenerateResponse:
        max_new_tokens = body.max_new_tokens or min(DEFAULTS.max_new_tokens, max_new_tokens_limit)
        if max_new_tokens > max_new_tokens_limit:
            raise _invalid(
                "max_new_tokens", f"at most {max_new_tokens_limit} tokens per request", max_new_tokens
            )
        try:
            cfg = SamplingConfig(
                temperature=body.temperature,
                top_k=body.top_k,
                top_p=body.top_p,
                max_new_tokens=max_new_tokens,
                seed=body.seed,
                stop_ids=stops,
            )
        except SamplingError as e:
            raise _invalid("sampling", str(e)) from None
        ids = await run_in_threadpool(tokenizer.encode, body.prompt)
        if not ids:
            raise _invalid("prompt", "the prompt encodes to no tokens", body.prompt)

        counts["waiting"] += 1
        started = False
        try:
            async with slots(request):  # beyond max_concurrent, wait here for a slot
                counts["waiting"] -= 1
                counts["running"] += 1
                started = True
                try:
                    new = await run_in_threadpool(generate_fn, list(ids), cfg)
                finally:
                    counts["running"] -= 1
        except SamplingError as e:  # e.g. a token id outside the model's vocabulary
            raise _invalid("prompt", str(e), body.prompt) from None
        finally:
            if not started:  # cancelled (client gone) while waiting
                counts["waiting"] -= 1
        text = await run_in_threadpool(tokenizer.decode, new)
        reason = "length" if len(new) >= cfg.max_new_tokens else "stop"
        return GenerateResponse(text=text, tokens=len(new), finish_reason=reason)

    return app


def load_twin(ckpt_dir: str | os.PathLike, backend: str, device: str = "auto") -> tuple[Any, ModuleType]:
    """A checkpoint's model in the chosen twin on `device` ("auto": the twin's best), and the twin's
    generate module. The twin is imported only here, so the other framework is never loaded."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'mlx' or 'torch', got {backend!r}")
    devices = importlib.import_module(f"jai_{backend}.device")
    checkpoint = importlib.import_module(f"jai_{backend}.checkpoint")
    generate = importlib.import_module(f"jai_{backend}.generate")
    name = devices.resolve_device(device)
    if backend == "mlx":
        devices.use_device(name)  # MLX places arrays on a default device, not per model
        return checkpoint.load_model(ckpt_dir), generate
    return checkpoint.load_model(ckpt_dir, device=name), generate


def load_generate_fn(
    ckpt_dir: str | os.PathLike, backend: str, device: str = "auto"
) -> tuple[GenerateFn, Any]:
    """`generate_fn` for `create_app` from a checkpoint with the chosen twin, and the model's config.

    MLX evaluates lazily on one default stream, which is not made for several threads at once, so its
    generations take turns behind a lock (the semaphore still bounds how many requests hold a slot);
    PyTorch's run side by side.
    """
    model, twin = load_twin(ckpt_dir, backend, device)
    if backend == "mlx":
        lock = threading.Lock()

        def generate_fn(ids: list[int], cfg: SamplingConfig) -> list[int]:
            with lock:
                return twin.generate_tokens(model, [ids], cfg)[0]

        return generate_fn, model.config
    return lambda ids, cfg: twin.generate_tokens(model, [ids], cfg)[0], model.config
