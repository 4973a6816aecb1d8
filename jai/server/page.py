"""The web page `jai serve` shows at /: one HTML file with its own small script and style, no build step,
nothing fetched from elsewhere (it works offline). It talks to /generate with "stream": true."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def html() -> str:
    return files("jai.server").joinpath("page.html").read_text(encoding="utf-8")
