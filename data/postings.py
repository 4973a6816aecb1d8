"""Job postings: one normalised `Posting`, the reference-schema reader, and `load_postings`.

The reference schema is a JSON list of records

    {"id", "title", "content" (markdown), "created_at",
     "meta": {"company_name", "location", "salary", "min_salary", "max_salary", "salary_type",
              "salary_currency", "skills", "requirements", "responsibilities", "benefits", ...}}

Real data is messy: `meta` is often empty or partial, withheld contacts read "000", lists come as
lists or as one newline/comma-separated string. We normalise all of that into `Posting`, with None or
() wherever a value is absent, so later stages (Q&A, training) never have to guess. A record that cannot
be trusted (not an object, no title or content, a value of the wrong type, text whose encoding is
broken beyond repair) is skipped, and the `LoadReport` counts it by reason and names an example.

`load_postings(path)` is the one entry point for every schema: it reads a file or a directory of .json
files, recognises the reference list or the NYC `{"value": [...]}` export (see data/nyc.py) per file,
and drops duplicates across files.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jai.data.text import (
    clean_line,
    clean_text,
    encoding_problem,
    hangul_ratio,
    is_placeholder,
    repair_mojibake,
)
from jai.errors import InputError

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


class PostingsError(InputError):
    """A postings file or directory that cannot be read at all (bad JSON, unknown shape, no records)."""


@dataclass
class LoadReport:
    files: list[str] = field(default_factory=list)
    used: int = 0
    repaired: int = 0  # used records whose text needed mojibake repair
    unescaped: int = 0  # used records whose line breaks came as the two characters "\\n"
    salary_text: int = 0  # used records with a salary bound in words ("10,001+"), kept as written
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> first few "where: why"

    def skip(self, reason: str, message: str, keep: int = 3) -> None:
        self.skipped[reason] += 1
        if len(self.examples.setdefault(reason, [])) < keep:
            self.examples[reason].append(message)

    def summary(self) -> str:
        lines = [
            f"postings: {self.used} used, {sum(self.skipped.values())} skipped from {len(self.files)} file(s)"
        ]
        if self.repaired:
            lines.append(f"  {self.repaired} used postings had mojibake repaired")
        if self.unescaped:
            lines.append(f"  {self.unescaped} used postings had escaped line breaks (\\n) turned into lines")
        if self.salary_text:
            lines.append(f"  {self.salary_text} used postings have a salary bound in words, kept as written")
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n} {reason}, e.g. {self.examples[reason][0]}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "repaired": self.repaired,
            "unescaped": self.unescaped,
            "salary_text": self.salary_text,
            "skipped": dict(self.skipped),
        }


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


# --- the reference schema ----------------------------------------------------------------------------

_SALARY_PERIODS = {
    # salary_type -> (English, Korean) wording
    "monthly": ("/ month", "월"),
    "month": ("/ month", "월"),
    "월급": ("/ month", "월"),
    "annual": ("/ year", "연"),
    "yearly": ("/ year", "연"),
    "year": ("/ year", "연"),
    "연봉": ("/ year", "연"),
    "hourly": ("/ hour", "시간당"),
    "hour": ("/ hour", "시간당"),
    "시급": ("/ hour", "시간당"),
    "daily": ("/ day", "일"),
    "일급": ("/ day", "일"),
}


def _amount(value: Any, reader: TextReader, name: str) -> float | str | None:
    """A salary bound: a number or a numeric string ("3,500"); 0 and placeholders mean absent. A bound
    in words ("10,001+", "Average Total Pay = AED 11,244 / month") is kept as written: real postings
    have them, and what they say is good content."""
    text = reader.text(value, name, numbers=True)
    if text is None:
        return None
    try:
        amount = float(text.replace(",", "").replace(" ", ""))
    except ValueError:
        reader.salary_text = True
        return text
    return amount if amount > 0 else None


_LETTER = re.compile(r"[^\W\d_]")


def format_salary(
    lo: float | str | None, hi: float | str | None, currency: str | None, period: str | None, ko: bool
) -> str | None:
    """ "SGD 3,500 – 4,800 / month" (English) or "월 3,500 – 4,800 SGD" (Korean); None without amounts.

    A bound in words is used as written; one that explains itself ("Average Total Pay = AED 11,244 /
    month", any letters) is the whole salary, without a currency or period added to it.
    """
    if lo is None and hi is None:
        return None
    words = [x for x in (lo, hi) if isinstance(x, str) and _LETTER.search(x)]
    if words:
        return " – ".join(dict.fromkeys(words))
    nums = [
        x if isinstance(x, str) else f"{x:,.0f}" if x == int(x) else f"{x:,.2f}"
        for x in (lo, hi)
        if x is not None
    ]
    amount = " – ".join(dict.fromkeys(nums))  # "4,000 – 4,000" reads as "4,000"
    en, kr = _SALARY_PERIODS.get(
        (period or "").strip().lower(), (f"({period})" if period else "", period or "")
    )
    if ko:
        return " ".join(p for p in (kr, amount, currency) if p)
    return " ".join(p for p in (currency, amount, en) if p)


def _remote(value: Any, reader: TextReader) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return reader.text(value, "meta.remote_work")


def posting_from_reference(record: Any, r: TextReader, fallback_id: str, source: str) -> Posting:
    """One reference-schema record -> Posting, or SkipRecord naming what is wrong."""
    where = r.where
    if not isinstance(record, dict):
        raise SkipRecord(NOT_OBJECT, f"{where}: expected a JSON object, got {type(record).__name__}")
    title = r.text(record.get("title"), "title")
    if title is None:
        raise SkipRecord(MISSING_TITLE, f"{where}: missing or empty 'title'")
    content = r.text(record.get("content"), "content", multiline=True)
    if content is None:
        raise SkipRecord(MISSING_CONTENT, f"{where}: missing or empty 'content'")
    meta = record.get("meta")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise SkipRecord(WRONG_TYPE, f"{where}: field 'meta' should be an object, got {type(meta).__name__}")
    rid = record.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
        raise SkipRecord(
            WRONG_TYPE, f"{where}: field 'id' should be a string or integer, got {type(rid).__name__}"
        )

    def m(key: str, numbers: bool = False) -> str | None:
        return r.text(meta.get(key), f"meta.{key}", numbers=numbers)

    ko = is_korean(f"{title}\n{content}")
    lo, hi = (
        _amount(meta.get("min_salary"), r, "meta.min_salary"),
        _amount(meta.get("max_salary"), r, "meta.max_salary"),
    )
    currency, period = m("salary_currency"), m("salary_type")
    salary = m("salary", numbers=True) or format_salary(lo, hi, currency, period, ko)
    contacts = {
        "url": m("application_url"),
        "email": m("contact_email"),
        "phone": m("contact_phone", numbers=True),
    }
    created = r.text(record.get("created_at"), "created_at")
    posting = Posting(
        id=str(rid) if rid is not None and str(rid).strip() else fallback_id,
        title=title,
        content=content,
        company=m("company_name"),
        location=m("location"),
        industry=m("industry"),
        salary=salary,
        employment_type=m("employment_type"),
        experience_level=m("experience_level"),
        education_level=m("education_level"),
        deadline=m("deadline"),
        remote=_remote(meta.get("remote_work"), r),
        created_at=created,
        skills=r.items(meta.get("skills"), "meta.skills", split_commas=True),
        requirements=r.items(meta.get("requirements"), "meta.requirements"),
        responsibilities=r.items(meta.get("responsibilities"), "meta.responsibilities"),
        benefits=r.items(meta.get("benefits"), "meta.benefits"),
        contacts={k: v for k, v in contacts.items() if v is not None},
        source=source,
    )
    return posting


# --- files, schemas, the loader ----------------------------------------------------------------------

# A converter: (record, its TextReader, fallback id, source file name) -> Posting, or raise SkipRecord.
Converter = Callable[[Any, TextReader, str, str], Posting]


def read_json(path: Path) -> Any:
    """Parse a JSON file; invalid JSON fails naming the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError as e:
        raise PostingsError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise PostingsError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def records_and_schema(data: Any, path: Path) -> tuple[list[Any], Converter]:
    """Recognise a file's schema: the reference list, or the NYC export {"value": [...]}."""
    if isinstance(data, list):
        return data, posting_from_reference
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        from jai.data import nyc  # nyc imports this module, so it is imported when first needed

        return data["value"], nyc.posting_from_nyc
    shape = type(data).__name__ if not isinstance(data, dict) else f"object with keys {sorted(data)[:5]}"
    raise PostingsError(
        f"{path}: expected a JSON list of postings (reference schema) or an object "
        f'{{"value": [...]}} (NYC export), got {shape}'
    )


def json_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
        if not files:
            raise PostingsError(f"{path}: directory has no .json files")
        return files
    if not path.is_file():
        raise PostingsError(f"{path}: no such file or directory")
    return [path]


def load_postings(
    paths: str | Path | Sequence[str | Path],
    report: LoadReport | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[Posting], LoadReport]:
    """Read postings from files and/or directories of .json files, any supported schema.

    Returns the usable postings in file order and a LoadReport. Records with an id already seen (the
    same NYC job posted internally and externally) are skipped as duplicates: the first one wins.
    Raises PostingsError for unreadable input and when not a single record is usable. `log`, when
    given, gets one line per file read (progress for big inputs).
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise PostingsError("no input given: pass postings .json files or directories")
    report = report or LoadReport()
    files = [f for p in paths for f in json_files(Path(p))]
    postings: list[Posting] = []
    seen: set[str] = set()
    for path in files:
        report.files.append(str(path))
        records, convert = records_and_schema(read_json(path), path)
        for i, record in enumerate(records):
            reader = TextReader(f"{path.name}: record {i}")
            try:
                posting = convert(record, reader, f"{path.name}#{i}", path.name)
            except SkipRecord as e:
                report.skip(e.reason, str(e))
                continue
            if posting.id in seen:
                report.skip(DUPLICATE, f"{reader.where}: id {posting.id!r} already loaded")
                continue
            seen.add(posting.id)
            postings.append(posting)
            report.repaired += reader.repaired
            report.unescaped += reader.unescaped
            report.salary_text += reader.salary_text
        if log is not None:
            log(f"read {path}: {len(records)} records, {len(postings)} usable postings so far")
    report.used = len(postings)
    if not postings:
        raise PostingsError(f"no usable posting in {', '.join(map(str, paths))}\n{report.summary()}")
    return postings, report
