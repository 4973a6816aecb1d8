"""Job postings: the reference-schema reader, and `load_postings`, the loader for every schema.

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
from pathlib import Path
from typing import Any

from jai.data import nyc
from jai.data.records import (  # re-exported: the names every caller of the loader needs
    BAD_ENCODING,
    CONTACT_KEYS,
    DUPLICATE,
    MISSING_CONTENT,
    MISSING_TITLE,
    NOT_OBJECT,
    SKIP_REASONS,
    WRONG_TYPE,
    Posting,
    SkipRecord,
    TextReader,
    is_korean,
    split_items,
    unescape_breaks,
)
from jai.errors import InputError

__all__ = [
    "BAD_ENCODING",
    "CONTACT_KEYS",
    "DUPLICATE",
    "MISSING_CONTENT",
    "MISSING_TITLE",
    "NOT_OBJECT",
    "SKIP_REASONS",
    "WRONG_TYPE",
    "LoadReport",
    "Posting",
    "PostingsError",
    "SkipRecord",
    "TextReader",
    "format_salary",
    "is_korean",
    "load_postings",
    "posting_from_reference",
    "split_items",
    "unescape_breaks",
]


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
