"""One normalised `Posting`, and what every importer uses to read a record into one: `TextReader`
(repairs, cleans and type-checks fields), `SkipRecord` and the reasons a record is skipped for.

The importers (data/postings.py for the reference schema, data/nyc.py for the NYC export) both build on
this module and on nothing of each other's, so neither imports the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jai.data.text import (
    clean_line,
    clean_text,
    encoding_problem,
    hangul_ratio,
    is_placeholder,
    repair_mojibake,
)

CONTACT_KEYS = ("url", "email", "phone", "apply", "contact")  # the keys Posting.contacts may hold


@dataclass(frozen=True)
class Posting:
    id: str  # unique within a load: the record's id, "nyc:<job_id>", or "<file>#<index>" without one
    title: str
    content: str  # markdown
    company: str | None = None
    location: str | None = None
    industry: str | None = None
    salary: str | None = None  # as people write it: "SGD 4,000 – 5,500 / month", "협의"
    employment_type: str | None = None
    experience_level: str | None = None
    education_level: str | None = None
    deadline: str | None = None
    remote: str | None = None  # "yes", "no", or the posting's own words ("hybrid", "주 2회 재택")
    created_at: str | None = None
    skills: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    responsibilities: tuple[str, ...] = ()
    benefits: tuple[str, ...] = ()
    contacts: dict[str, str] = field(default_factory=dict)  # keys from CONTACT_KEYS, only those present
    source: str = ""  # the file it came from

    @cached_property  # works on a frozen dataclass: it writes to __dict__, not through __setattr__
    def lang(self) -> str:
        """ "ko" when the posting is written in Korean, else "en" (English skill names do not count)."""
        return "ko" if is_korean(f"{self.title}\n{self.content}") else "en"


def is_korean(text: str) -> bool:
    # A Korean posting is full of English words (Python, AWS, Pte. Ltd.), so ask for a share, not all.
    return hangul_ratio(text) >= 0.2


# --- skipping bad records ----------------------------------------------------------------------------

NOT_OBJECT = "not_object"
MISSING_TITLE = "missing_title"
MISSING_CONTENT = "missing_content"
WRONG_TYPE = "wrong_type"
BAD_ENCODING = "bad_encoding"
DUPLICATE = "duplicate"
SKIP_REASONS = (NOT_OBJECT, MISSING_TITLE, MISSING_CONTENT, WRONG_TYPE, BAD_ENCODING, DUPLICATE)


class SkipRecord(Exception):
    """Raised by a record converter: the record is unusable for `reason` (one of SKIP_REASONS)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- field readers shared by the importers ---------------------------------------------------------


class TextReader:
    """Reads one record's fields: repairs, cleans, treats placeholders as absent, checks types.

    `where` ("postings.json: record 12") prefixes every error so a skip names its record and field.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.repaired = False
        self.unescaped = False
        self.salary_text = False

    def _fix(self, value: str, name: str) -> str:
        unescaped = unescape_breaks(value)
        self.unescaped |= unescaped != value
        fixed = repair_mojibake(unescaped)
        self.repaired |= fixed != unescaped
        problem = encoding_problem(fixed)
        if problem:
            raise SkipRecord(BAD_ENCODING, f"{self.where}: field {name!r} {problem}")
        return fixed

    def text(self, value: Any, name: str, *, multiline: bool = False, numbers: bool = False) -> str | None:
        """A string field (with `numbers`, an int or float too); None when absent or a placeholder."""
        if value is None:
            return None
        allowed = (str, int, float) if numbers else (str,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            kind = "text or a number" if numbers else "text"
            raise SkipRecord(
                WRONG_TYPE, f"{self.where}: field {name!r} should be {kind}, got {type(value).__name__}"
            )
        value = str(value)
        out = (clean_text if multiline else clean_line)(self._fix(value, name))
        return None if is_placeholder(out) else out

    def items(self, value: Any, name: str, *, split_commas: bool = False) -> tuple[str, ...]:
        """A list field: a JSON list of strings, or one string with one item per line (or per comma)."""
        if value is None:
            return ()
        if isinstance(value, str):
            value = split_items(self._fix(value, name), split_commas)
        if not isinstance(value, list):
            raise SkipRecord(
                WRONG_TYPE, f"{self.where}: field {name!r} should be a list, got {type(value).__name__}"
            )
        out = []
        for i, item in enumerate(value):
            text = self.text(item, f"{name}[{i}]")
            if text is not None and text not in out:
                out.append(text)
        return tuple(out)


# "\\n" as two characters: JSON that was escaped twice. Decoded only where the text has more of them than
# real line breaks, so a posting that mentions "\\n" once (a regex, a path) keeps it.
_ESCAPES = {"\\r\\n": "\n", "\\n": "\n", "\\r": "\n", "\\t": "\t"}
_ESCAPE = re.compile(r"\\r\\n|\\[nrt]")


def unescape_breaks(text: str) -> str:
    """ "Duties:\\n- a\\n- b" (backslash, n) -> real lines; text with real line breaks is left alone."""
    n = text.count("\\n")
    if n == 0 or n <= text.count("\n"):
        return text
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)


_BULLET = re.compile(r"^\s*(?:[-*•·▪●]|\d{1,2}[.)])\s+")


def split_items(text: str, split_commas: bool = False) -> list[str]:
    """ "- a\\n- b" -> ["a", "b"]; with split_commas a single line "Python, SQL" -> ["Python", "SQL"]."""
    lines = [_BULLET.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if split_commas and len(lines) == 1:
        lines = [part.strip() for part in re.split(r"[,;、]", lines[0]) if part.strip()]
    return lines
