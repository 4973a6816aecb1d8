"""`jai serve`: serve a checkpoint over HTTP with either twin (FastAPI + uvicorn; see jai/serve.py).

jai serve out/run                                   # http://127.0.0.1:8000, the default backend
jai serve --ckpt out/run/ckpt --backend mlx --port 9000 --max-concurrent 4
"""

from __future__ import annotations

import argparse
import inspect
import sys

from fastapi import FastAPI

from jai.sample_cli import UsageError, add_model_args, checkpoint_arg, load_tokenizer, resolve_checkpoint
from jai.serve import MAX_NEW_TOKENS_LIMIT, create_app, load_generate_fn

# create_app's own default, so the help text cannot drift from the server.
MAX_CONCURRENT = inspect.signature(create_app).parameters["max_concurrent"].default

EPILOG = """\
endpoints:
  POST /generate   JSON body {"prompt": str, and optionally "max_new_tokens": int, "temperature": float
                   (0 = greedy), "top_k": int, "top_p": float, "seed": int}
                   -> {"text": str, "tokens": int, "finish_reason": "stop" | "length"}
                   Bad input gets a 422 naming the field. Generation ends at [EOS] or [/ANSWER].
  GET  /health     -> {"status": "ok", "max_concurrent": int, "running": int, "waiting": int}
  GET  /docs       the interactive OpenAPI page

example:
  jai serve out/run &
  curl -s localhost:8000/generate -H 'Content-Type: application/json' \\
       -d '{"prompt": "[QUESTION] What is the salary? [/QUESTION]\\n[DOC]\\n...\\n[/DOC]\\n[ANSWER]",
            "temperature": 0, "max_new_tokens": 100}'

At most --max-concurrent generations run at once; further requests wait for a slot (not refused).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai serve",
        description="Serve a JAI checkpoint over HTTP with the MLX or the PyTorch twin.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    server = p.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: %(default)s)",
    )
    server.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    server.add_argument(
        "--max-concurrent",
        type=int,
        default=MAX_CONCURRENT,
        metavar="N",
        help="generations running at once; the rest queue (default: %(default)s)",
    )
    server.add_argument(
        "--max-new-tokens",
        type=int,
        default=MAX_NEW_TOKENS_LIMIT,
        metavar="N",
        help="refuse (422) requests asking for more new tokens than N (default: %(default)s)",
    )
    return p


def check_args(args: argparse.Namespace) -> None:
    if args.max_concurrent < 1:
        raise UsageError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")


def build_app(args: argparse.Namespace) -> FastAPI:
    """The app `jai serve` runs: checkpoint, tokenizer and twin from the flags (the model is loaded now)."""
    check_args(args)
    ckpt = resolve_checkpoint(checkpoint_arg(args))
    tokenizer = load_tokenizer(ckpt, args.tokenizer)
    generate_fn, _ = load_generate_fn(ckpt, args.backend, args.device)  # an unavailable device fails first
    return create_app(
        generate_fn,
        tokenizer,
        max_concurrent=args.max_concurrent,
        max_new_tokens_limit=args.max_new_tokens,
        title=f"JAI ({args.backend}, {ckpt})",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app = build_app(args)  # errors go up to the `jai` dispatcher, which reports them for every command

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
