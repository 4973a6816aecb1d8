"""The HTTP app: OpenAI-compatible routes and JAI's own, on any engine (jai/server/engine.py).

    POST /v1/completions        raw text to continue                (OpenAI "text_completion")
    POST /v1/chat/completions   a question (user) about a posting (system), in the training format
    GET  /v1/models             the one model served
    POST /v1/search             with `jai serve --index`: {"query", "k"} -> the best postings (no model)
    GET  /                      a web page: ask, see the postings found and the answer as it streams
    POST /generate              JAI's own: {"question", "posting"} -> {"text", "tokens", ...}
    GET  /health                what the engine is doing now: requests decoding and waiting
    GET  /metrics               Prometheus counters: requests, tokens, latency

Every generating route streams as server-sent events with `"stream": true`. Nothing slow runs on the
event loop: prompts are encoded in worker threads and generation runs in the engine's thread, so
/health answers at once whatever the load. The engine's wait queue is bounded: beyond it a request gets
429 with Retry-After at once. A client that goes away (streaming or not) cancels its generation, which
frees its decoding slot or its place in the queue at the next decode step. Bad input is a 422 that names
the field, in OpenAI's error shape ({"error": {"message", "type", "param", "code"}}), never a 500.

With an index (`jai serve --index`), a question sent without a posting (/generate, or a chat with no
system message) is answered from the posting the index finds; the response names the postings found
("sources", and "posting_id", the one answered from) in its body, and in the first and last events of a
stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from jai.inference.sampling import SamplingConfig, SamplingError
from jai.retrieval.index import Hit, PostingIndex, SearchIndexError
from jai.server import page, prompts
from jai.server.engine import Engine, EngineClosed, QueueFull
from jai.server.guard import Guard
from jai.server.metrics import DISCONNECTED, Metrics, Recorder
from jai.server.schemas import (
    ChatRequest,
    CompletionRequest,
    FieldError,
    GenerateRequest,
    OpenAIFields,
    Sampling,
    SearchRequest,
    penalties,
)
from jai.server.stream import EngineFailed, TokenStream
from jai.server.text import Detokenizer

DEFAULT_MAX_NEW_TOKENS = SamplingConfig().max_new_tokens


@dataclass
class Settings:
    model_name: str
    block_size: int  # the model's context
    stop_ids: tuple[int, ...] = ()  # [EOS] and [/ANSWER] (jai.inference.twins.default_stop_ids)
    backend: str = ""
    max_new_tokens: int = 1024  # a request may ask for at most this many (422 beyond)
    max_body_bytes: int = 1 << 20  # 413 beyond
    api_key: str | None = None
    retry_after: int = 1  # seconds, in a 429's Retry-After
    extra_health: dict[str, Any] = field(default_factory=dict)
    sources: int = 3  # postings a retrieved answer names (it is answered from the first)


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.status, self.param = status, param
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")


def error_body(message: str, kind: str, param: str | None, code: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


TYPE_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


def _field(loc: tuple[Any, ...]) -> str | None:
    """The field a pydantic error location names, without the union branches it tried ("str",
    "list[...]", "function-after[...]") or list indices."""
    names = [str(x) for x in loc if x != "body" and not isinstance(x, int)]
    return ".".join(n for n in names if "[" not in n and n not in TYPE_NAMES) or None


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """One line for a 422 from pydantic's errors, naming the field; the input is never echoed (it may
    not even be valid Unicode)."""
    # A union field fails once per branch ("not a string", then the list's real complaint): our own
    # checks (value errors) say what is wrong, so they come first.
    first = next((e for e in errors if e.get("type") == "value_error"), errors[0])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):  # a check over the whole body that is about one field
        return str(cause), cause.field
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})", None
    if tuple(first.get("loc", ())) == ("body",):
        return "the body must be a JSON object holding this route's fields", None
    param = _field(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return (f"{param}: {msg}" if param else msg), param


def create_app(
    engine: Engine, tokenizer: Any, settings: Settings, index: PostingIndex | None = None
) -> FastAPI:
    """The app serving `engine` (which it closes on shutdown) with `tokenizer` encoding and decoding;
    with `index`, questions without a posting are answered from the posting it finds."""
    metrics = Metrics()
    per_token = prompts.chars_per_token(tokenizer)  # bounds the text worth tokenizing
    state = {"draining": False}
    live: set[Generation] = set()

    async def drain(timeout: float) -> None:
        """Refuse new work; let live generations finish for `timeout` seconds, then end them cleanly
        (a stream gets an error event and [DONE], a waiting client a 503) before uvicorn cuts them off."""
        state["draining"] = True
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while live and loop.time() < end:
            await asyncio.sleep(0.05)
        for gen in list(live):
            gen.abort()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state["draining"] = True
        await run_in_threadpool(engine.close)  # cancels what is left, stops the worker

    app = FastAPI(title=f"JAI ({settings.model_name})", lifespan=lifespan)
    app.state.metrics = metrics
    app.state.serving = state
    app.state.drain = drain  # called by jai.server.runner on the first SIGTERM / Ctrl-C
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, api_key=settings.api_key)
    app.add_middleware(Recorder, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        message, param = validation_message(list(e.errors()))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):  # else FastAPI does not read it as JSON
            message, param = f"Content-Type must be application/json, got {kind or 'none'!r:.60}", None
        return JSONResponse(error_body(message, "invalid_request_error", param, 422), status_code=422)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(settings.retry_after)} if e.status in (429, 503) else None
        return JSONResponse(error_body(str(e), e.kind, e.param, e.status), e.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, e: HTTPException) -> JSONResponse:
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(e.detail), kind, None, e.status_code), e.status_code)

    def sampling(body: Sampling, max_new: int | None) -> SamplingConfig:
        if max_new is not None and max_new > settings.max_new_tokens:
            name = "max_new_tokens" if isinstance(body, GenerateRequest) else "max_tokens"
            raise ApiError(422, f"{name}: at most {settings.max_new_tokens} tokens per request", name)
        defaults = SamplingConfig()
        return SamplingConfig(
            temperature=defaults.temperature if body.temperature is None else body.temperature,
            top_k=body.top_k,
            top_p=body.top_p,
            max_new_tokens=max_new or min(DEFAULT_MAX_NEW_TOKENS, settings.max_new_tokens),
            seed=body.seed,
            stop_ids=settings.stop_ids,
            **penalties(body),
        )

    def check_model(body: OpenAIFields) -> None:
        if body.model not in (None, settings.model_name):
            raise ApiError(
                404,
                f"model {body.model!r} is not served here; this server serves {settings.model_name!r}",
                "model",
                "not_found_error",
            )

    async def encode(build: Callable[..., prompts.Prompt], *args: Any) -> prompts.Prompt:
        try:
            return await run_in_threadpool(build, tokenizer, *args)  # a long posting: not on the loop
        except prompts.PromptError as e:
            raise ApiError(422, f"{e.field}: {e}", e.field) from None

    async def find(query: str, k: int, param: str) -> list[Hit]:
        if index is None:
            raise ApiError(404, "this server has no index of postings (start it with --index INDEX)", param)
        try:
            hits = await run_in_threadpool(index.search, query, k)
        except SearchIndexError as e:
            raise ApiError(422, f"{param}: {e}", param) from None
        if not hits:
            raise ApiError(
                422, f"{param}: no posting in the index matches; name a title, company or place", param
            )
        return hits

    async def posting_for(question: str, posting: str, param: str) -> tuple[str, list[Hit]]:
        """The posting to answer from: the one sent, else (with an index) the best one found."""
        if posting.strip() or index is None:
            return posting, []
        hits = await find(question, settings.sources, param)
        return hits[0].doc, hits

    def start(
        prompt: prompts.Prompt, cfg: SamplingConfig, stops: list[str], hits: list[Hit] | None = None
    ) -> Generation:
        if state["draining"]:
            raise ApiError(503, "the server is shutting down")
        try:
            return Generation(engine, tokenizer, prompt, cfg, stops, metrics, live, hits or [])
        except QueueFull as e:
            metrics.rejected += 1
            raise ApiError(429, f"the server is busy ({e}); retry later", None, "rate_limit_error") from None
        except EngineClosed:
            raise ApiError(503, "the server is shutting down") from None
        except SamplingError as e:  # a prompt the model cannot take (an id outside its vocabulary)
            raise ApiError(422, f"prompt: {e}", "prompt") from None

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """The engine's own count of requests decoding and waiting (and its counters since the start)."""
        return {
            "status": "draining" if state["draining"] else "ok",
            "model": settings.model_name,
            "backend": settings.backend,
            **settings.extra_health,
            **engine.stats(),
        }

    @app.get("/metrics")
    async def metrics_text() -> PlainTextResponse:
        stats = engine.stats()
        gauges = {"requests_running": stats["running"], "requests_waiting": stats["waiting"]}
        gauges |= {f"engine_{k}": v for k, v in stats.items() if k.startswith("max_")}
        # the engine's counters since the start: submitted, finished, cancelled, failed, tokens, steps
        counters = {
            f"engine_{k}": v
            for k, v in stats.items()
            if k not in ("running", "waiting") and not k.startswith("max_")
        }
        text = metrics.render(gauges, counters)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return Response(page.html(), media_type="text/html; charset=utf-8")

    @app.post("/v1/search")
    async def search(body: SearchRequest) -> dict[str, Any]:
        hits = await find(body.query, body.k, "query")
        return {"object": "list", "query": body.query, "data": [h.source() for h in hits]}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": settings.model_name, "object": "model", "created": 0, "owned_by": "jai"}
        return {"object": "list", "data": [{**card, "max_model_len": settings.block_size}]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        check_model(body)
        cfg = sampling(body, body.max_tokens)
        prompt = await encode(
            prompts.raw_prompt, body.prompt, settings.block_size, cfg.max_new_tokens, per_token
        )
        gen = start(prompt, cfg, body.stop)
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": settings.model_name}

        def choice(text: str, finish: str | None) -> dict[str, Any]:
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

        if body.stream:
            return sse(gen, head | {"object": "text_completion"}, choice, _include_usage(body), request)
        text = await gen.collect(request)
        return JSONResponse(
            head | {"object": "text_completion", "choices": [choice(text, gen.finish_reason)]} | gen.tail()
        )

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        check_model(body)
        cfg = sampling(body, body.max_tokens)
        try:
            question, posting = prompts.chat_question(body.messages)
        except prompts.PromptError as e:
            raise ApiError(422, f"{e.field}: {e}", e.field) from None
        posting, hits = await posting_for(question, posting, "messages")
        prompt = await encode(
            prompts.question_prompt, question, posting, settings.block_size, cfg.max_new_tokens, per_token
        )
        gen = start(prompt, cfg, body.stop, hits)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time())}
        head["model"] = settings.model_name
        first = [True]

        def delta(text: str, finish: str | None) -> dict[str, Any]:
            d: dict[str, Any] = {"content": text} if text or finish is None else {}
            if first[0]:
                d, first[0] = {"role": "assistant", **d}, False
            return {"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}

        if body.stream:
            return sse(gen, head | {"object": "chat.completion.chunk"}, delta, _include_usage(body), request)
        text = await gen.collect(request)
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
        return JSONResponse(head | {"object": "chat.completion", "choices": [choice]} | gen.tail())

    @app.post("/generate")
    async def generate(body: GenerateRequest, request: Request) -> Response:
        cfg = sampling(body, body.max_new_tokens)
        posting, hits = await posting_for(body.question, body.posting, "question")
        args = (body.question, posting, settings.block_size, cfg.max_new_tokens, per_token)
        prompt = await encode(prompts.question_prompt, *args)
        gen = start(prompt, cfg, body.stop, hits)
        if body.stream:

            def piece(text: str, finish: str | None) -> dict[str, Any]:
                return {"text": text, "finish_reason": finish}

            return sse(gen, {}, piece, False, request, native=True)
        text = await gen.collect(request)
        return JSONResponse({"text": text, **gen.summary()})

    return app


class ShuttingDown(Exception):
    """The server's shutdown deadline ended a generation."""


def _include_usage(body: OpenAIFields) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


class Generation:
    """One request's generation: tokens from the engine, text with stop strings, finish reason, counts."""

    def __init__(
        self,
        engine: Engine,
        tokenizer: Any,
        prompt: prompts.Prompt,
        cfg: SamplingConfig,
        stops: list[str],
        metrics: Metrics,
        live: set[Generation],
        hits: list[Hit],
    ) -> None:
        self.started = time.perf_counter()
        self.hits = hits
        self.aborted = False
        self.prompt, self.cfg, self.metrics = prompt, cfg, metrics
        self.detok = Detokenizer(tokenizer.decode, stops)
        self.finish_reason: str | None = None
        self.stream = TokenStream(engine, prompt.ids, cfg)  # QueueFull: nothing has started
        metrics.prompt_tokens += len(prompt.ids)
        self.live = live
        live.add(self)

    def abort(self) -> None:
        """End this generation now (the server is shutting down): `pieces` raises ShuttingDown."""
        self.aborted = True
        self.stream.abort()

    async def pieces(self) -> AsyncIterator[str]:
        """The text as it becomes safe to show; sets `finish_reason` at the end. Leaving early (a client
        gone, a shutdown) cancels the job in the engine."""
        try:
            while (tokens := await self.stream.next_tokens()) is not None:
                if self.stream.count == len(tokens) and tokens:
                    self.metrics.first_token.observe(time.perf_counter() - self.started)
                self.metrics.completion_tokens += len(tokens)
                # Decoding is bounded by max_tokens (<= a few thousand ids): microseconds, fine on the loop.
                if piece := self.detok.add(tokens):
                    yield piece
                if self.detok.stopped:
                    break
            if self.aborted:
                raise ShuttingDown("the server shut down before this generation finished")
            if tail := self.detok.finish():
                yield tail
            length = self.stream.count >= self.cfg.max_new_tokens and not self.detok.stopped
            self.finish_reason = "length" if length else "stop"
        finally:
            self.stream.close()
            self.live.discard(self)

    async def collect(self, request: Request) -> str:
        """The whole text; a client that disconnects meanwhile cancels the generation at once."""

        async def whole() -> str:
            return "".join([p async for p in self.pieces()])

        task = asyncio.ensure_future(whole())
        watch = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():  # the client went away (or this handler was cancelled): stop generating
                task.cancel()
                self.metrics.disconnected += watch.done()
                with suppress(asyncio.CancelledError):
                    await task
            watch.cancel()
        if task.cancelled():
            raise ApiError(499, "client closed request")
        try:
            return task.result()
        except SamplingError as e:  # this request's own sampling failed; the others decode on
            raise ApiError(422, str(e)) from None
        except EngineFailed as e:
            raise ApiError(500, f"generation failed: {e}") from None
        except ShuttingDown as e:
            raise ApiError(503, str(e)) from None

    def usage(self) -> dict[str, int]:
        n, m = len(self.prompt.ids), self.stream.count
        return {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}

    def sources(self) -> dict[str, Any]:
        """The postings retrieved for this answer ({} when the posting came with the request)."""
        if not self.hits:
            return {}
        return {"sources": [h.source() for h in self.hits], "posting_id": self.hits[0].id}

    def tail(self) -> dict[str, Any]:
        """The OpenAI body's usage, and JAI's notes: the posting shortened to fit, the sources."""
        return {"usage": self.usage(), "jai": {"posting_shortened": self.prompt.shortened, **self.sources()}}

    def summary(self) -> dict[str, Any]:
        return {
            "tokens": self.stream.count,
            "prompt_tokens": len(self.prompt.ids),
            "finish_reason": self.finish_reason,
            "posting_shortened": self.prompt.shortened,
            **self.sources(),
        }


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (after the body, the only message left is http.disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _event(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse(
    gen: Generation,
    head: dict[str, Any],
    choice: Callable[[str, str | None], dict[str, Any]],
    include_usage: bool,
    request: Request,
    native: bool = False,
) -> StreamingResponse:
    """Server-sent events: one chunk per piece of text, a last chunk with the finish reason and usage,
    an OpenAI usage chunk when asked for (`stream_options.include_usage`), then `data: [DONE]`.

    Starlette cancels this generator when the client disconnects; `pieces` then cancels the job."""

    async def events() -> AsyncIterator[bytes]:
        # The sources go first, so a reader shows where the answer comes from before it arrives.
        first = ({"jai": gen.sources()} if not native else gen.sources()) if gen.hits else {}
        try:
            async for piece in gen.pieces():
                event = head | {"choices": [choice(piece, None)]} if not native else choice(piece, None)
                yield _event(event | first)
                first = {}
            last = choice("", gen.finish_reason)
            if native:
                yield _event(last | gen.summary())
            else:
                yield _event(head | {"choices": [last]} | gen.tail())
                if include_usage:
                    yield _event(head | {"choices": [], "usage": gen.usage()})
        except (asyncio.CancelledError, GeneratorExit):  # Starlette ends the stream: the client went away
            gen.metrics.disconnected += 1
            request.scope[DISCONNECTED] = True  # the Recorder counts it as 499, not as the 200 it began as
            raise
        except SamplingError as e:
            yield _event(error_body(str(e), "invalid_request_error", None, 422))
        except EngineFailed as e:
            yield _event(error_body(f"generation failed: {e}", "server_error", None, 500))
        except ShuttingDown as e:
            yield _event(error_body(str(e), "server_error", None, 503))
        yield b"data: [DONE]\n\n"

    shortened = {"X-JAI-Posting-Shortened": "true"} if gen.prompt.shortened else {}
    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **shortened},
    )
