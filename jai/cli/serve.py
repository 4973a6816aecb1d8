"""`jai serve`: serve a checkpoint over HTTP with either twin: OpenAI-compatible routes and JAI's own
(FastAPI + uvicorn; the app is jai/server/app.py).

jai serve out/run                                           # http://127.0.0.1:8000, the default backend
jai serve --ckpt out/run/ckpt --backend mlx --port 9000 --max-concurrent 16 --api-key secret
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fastapi import FastAPI

from jai.checkpoint.weights import CheckpointError
from jai.cli.sample import UsageError, add_model_args, checkpoint_arg, load_tokenizer, resolve_checkpoint
from jai.inference.batching import BatchEngine
from jai.inference.twins import default_stop_ids, load_twin
from jai.retrieval.index import PostingIndex
from jai.server.app import Settings, create_app
from jai.server.engine import Engine

MAX_NEW_TOKENS_LIMIT = 1024  # the most new tokens `jai serve` lets a request ask for, by default
API_KEY_ENV = "JAI_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

EPILOG = f"""\
endpoints (OpenAI-compatible, plus JAI's own):
  POST /v1/chat/completions  {{"messages": [{{"role": "system", "content": POSTING}},
                                           {{"role": "user", "content": QUESTION}}], ...}}
                             the question (and the posting, optional) in the format the model was trained
                             on; a posting too long for the context is shortened, never the question
  POST /v1/completions       {{"prompt": TEXT, ...}}: raw text to continue, as is
  POST /generate             {{"question": TEXT, "posting": TEXT}} -> {{"text", "finish_reason", ...}}
  POST /v1/search            {{"query": TEXT, "k": 5}}: the best postings in --index (no model involved)
  GET  /                     a web page: ask, see the postings found and the answer as it streams
  GET  /v1/models            the model served (its name: --model-name)
  GET  /health               {{"status", "running", "waiting", ...}}: what the server is doing now
  GET  /metrics              Prometheus counters: requests, tokens, latency
  GET  /docs                 the interactive OpenAPI page
  Each generating route takes "max_tokens" ("max_new_tokens" on /generate), "temperature" (0 = greedy),
  "top_p", "top_k", "seed", "stop" and "stream": true (server-sent events, ending with data: [DONE]).

examples:
  jai serve out/run &
  curl -s localhost:8000/generate -H 'Content-Type: application/json' \\
       -d '{{"question": "What is the salary?", "posting": "Backend engineer, Seoul ...", "temperature": 0}}'
  curl -sN localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{{"messages": [{{"role": "user", "content": "연봉은 얼마인가요?"}}], "stream": true}}'
  python -c 'from openai import OpenAI
  c = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
  print(c.chat.completions.create(model="run", messages=[{{"role": "user", "content": "Where?"}}]))'
  JAI_API_KEY=secret jai serve out/run --host 0.0.0.0   # clients send Authorization: Bearer secret

Up to --max-concurrent requests decode at once, batched into one forward pass per step (requests join
and leave between steps); up to --max-waiting more wait, and beyond that a request gets 429 with
Retry-After at once. A client that disconnects frees its slot. Bad input gets a 422 naming the field;
a body over --max-body-bytes gets 413. SIGTERM or Ctrl-C: in-flight requests get --shutdown-timeout
seconds to finish; a second signal exits at once. The API key may also come from ${API_KEY_ENV}.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai serve",
        description="Serve a JAI checkpoint over HTTP (OpenAI-compatible) with the MLX or the PyTorch twin.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    server = p.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: %(default)s, this machine only)",
    )
    server.add_argument(
        "--port", type=int, default=8000, help="TCP port; 0 picks a free one (default: %(default)s)"
    )
    server.add_argument(
        "--index",
        metavar="INDEX",
        help="an index from `jai index`: a question sent without a posting is answered from the one found",
    )
    server.add_argument(
        "--model-name", metavar="NAME", help="the model's name in the API (default: the run dir's name)"
    )
    server.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"require 'Authorization: Bearer KEY' on all routes but /health (default: ${API_KEY_ENV})",
    )
    load = p.add_argument_group("load")
    load.add_argument(
        "--max-concurrent",
        type=int,
        default=8,
        metavar="N",
        help="requests decoding at once, in one batch (default: %(default)s)",
    )
    load.add_argument(
        "--max-waiting",
        type=int,
        default=32,
        metavar="N",
        help="requests waiting for a slot; more get 429 at once (default: %(default)s)",
    )
    load.add_argument(
        "--no-batching",
        action="store_true",
        help="decode one request at a time (the baseline that `jai bench` compares batching with)",
    )
    load.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="compute threads of the model's framework (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS; default: "
        "the framework's own, one per core). On a small or shared CPU, 1 leaves a core to the HTTP side",
    )
    load.add_argument(
        "--max-new-tokens",
        type=int,
        default=MAX_NEW_TOKENS_LIMIT,
        metavar="N",
        help="refuse (422) requests asking for more new tokens than N (default: %(default)s)",
    )
    load.add_argument(
        "--max-body-bytes",
        type=int,
        default=1 << 20,
        metavar="N",
        help="refuse (413) request bodies larger than N bytes (default: %(default)s)",
    )
    load.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="on SIGTERM/Ctrl-C, seconds in-flight requests get to finish (default: %(default)s)",
    )
    return p


def check_args(args: argparse.Namespace) -> None:
    for flag in ("max_concurrent", "max_new_tokens", "max_body_bytes"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.max_waiting < 0:
        raise UsageError(f"--max-waiting must be at least 0, got {args.max_waiting}")
    if not args.shutdown_timeout >= 0:
        raise UsageError(f"--shutdown-timeout must be at least 0, got {args.shutdown_timeout}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    if args.api_key is not None and not args.api_key.strip():
        # `--api-key "$KEY"` with KEY unset: serving with no authentication is not what was asked for
        raise UsageError("--api-key is empty (an unset variable?): give a key, or leave the flag out")


def model_name(ckpt: Path) -> str:
    """The run's name: `out/run/ckpt` -> "run"."""
    ckpt = ckpt.resolve()
    return ckpt.parent.name if ckpt.name == "ckpt" else ckpt.name


def build_engine(model: object, args: argparse.Namespace) -> Engine:
    """Dynamic batching: up to --max-concurrent requests decode together; --no-batching: one at a time."""
    max_batch = 1 if args.no_batching else args.max_concurrent
    return BatchEngine(model, max_batch=max_batch, max_waiting=args.max_waiting)


def build_app(args: argparse.Namespace) -> FastAPI:
    """The app `jai serve` runs: checkpoint, tokenizer and twin from the flags (the model is loaded now)."""
    check_args(args)
    index = PostingIndex.open(args.index) if args.index else None  # a bad index fails before the model loads
    ckpt = resolve_checkpoint(checkpoint_arg(args))
    tokenizer = load_tokenizer(ckpt, args.tokenizer)
    if args.threads:  # read by PyTorch and OpenBLAS when they load, which is next
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    model, _ = load_twin(ckpt, args.backend, args.device)  # an unavailable device fails first
    config = model.config
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"{ckpt}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{config.vocab_size}: not the tokenizer this model was trained with"
        )
    engine = build_engine(model, args)
    settings = Settings(
        model_name=args.model_name or model_name(ckpt),
        block_size=config.block_size,
        stop_ids=default_stop_ids(tokenizer),
        backend=args.backend,
        max_new_tokens=args.max_new_tokens,
        max_body_bytes=args.max_body_bytes,
        api_key=args.api_key,
        extra_health={
            "max_concurrent": 1 if args.no_batching else args.max_concurrent,
            "max_waiting": args.max_waiting,
            "batching": not args.no_batching,
            "index_postings": index.size if index else None,
        },
    )
    app = create_app(engine, tokenizer, settings, index)
    app.state.describe = {"model": settings.model_name, "backend": args.backend, "context": config.block_size}
    return app


def describe(args: argparse.Namespace, app: FastAPI) -> str:
    """One line on what is served and how much load it takes."""
    h = app.state.describe
    batching = "one at a time" if args.no_batching else f"up to {args.max_concurrent} decoding together"
    key = ", API key required" if args.api_key else ""
    model = f"model {h['model']!r} ({h['backend']}, context {h['context']})"
    return f"{model}: {batching}, {args.max_waiting} more may wait{key}"


def main(argv: list[str] | None = None) -> int:
    # Errors (JaiError, a missing extra, Ctrl-C) go up to the `jai` dispatcher, which reports them all alike.
    args = build_parser().parse_args(argv)
    app = build_app(args)
    from jai.server.runner import serve

    print(f"jai serve: {describe(args, app)}", file=sys.stderr, flush=True)
    if not args.api_key and args.host not in LOOPBACK:
        print(
            f"jai serve: warning: listening on {args.host} without an API key: anyone who can reach this "
            f"machine can use the model (--api-key or ${API_KEY_ENV})",
            file=sys.stderr,
            flush=True,
        )

    serve(app, args.host, args.port, args.shutdown_timeout)
    return 0
