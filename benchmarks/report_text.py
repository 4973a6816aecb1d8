"""The report's words: the blocks of report_template.md, filled with figures; and how a figure is written."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("report_template.md")
BLOCK = re.compile(r"^<!-- ([a-z0-9_]+) -->$", re.MULTILINE)


@functools.cache
def blocks() -> dict[str, Template]:
    """Every block of the template by name (the text before the first one explains the format)."""
    parts = BLOCK.split(TEMPLATE.read_text(encoding="utf-8"))
    names, bodies = parts[1::2], parts[2::2]
    if len(set(names)) != len(names):
        raise ValueError(f"{TEMPLATE}: a block name is used twice")
    return {name: Template(body.strip("\n")) for name, body in zip(names, bodies, strict=True)}


def text(name: str, /, **values: object) -> str:
    """Block `name` with its placeholders filled: every one of them, and nothing it does not name (a
    wording change that drops or adds a placeholder fails here, not silently in the report)."""
    block = blocks()[name]
    wanted = set(block.get_identifiers())
    if set(values) != wanted:
        missing, extra = sorted(wanted - set(values)), sorted(set(values) - wanted)
        raise KeyError(f"{TEMPLATE.name} block {name!r}: placeholders not filled {missing}, unknown {extra}")
    return block.substitute({k: str(v) for k, v in values.items()})


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def mib(x: int | None) -> str:
    return "–" if not x else f"{x / 2**20:,.0f} MiB"
