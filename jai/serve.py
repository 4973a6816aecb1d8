"""`jai serve`'s constants, and (for now) a re-export of the twin loader, which lives in jai/twins.py.

Framework-free and FastAPI-free. The HTTP server itself lives in jai/server/ (`jai serve`:
jai/serve_cli.py). New code imports the loader from jai.twins.
"""

from __future__ import annotations

from jai.twins import STOP_TOKENS, GenerateFn, default_stop_ids, load_generate_fn, load_twin

__all__ = [
    "MAX_NEW_TOKENS_LIMIT",
    "STOP_TOKENS",
    "GenerateFn",
    "default_stop_ids",
    "load_generate_fn",
    "load_twin",
]

MAX_NEW_TOKENS_LIMIT = 1024  # the most new tokens `jai serve` lets a request ask for, by default
