"""Importer for the NYC government job postings (../shared/data/nyc-jobs/, NYC Open Data, MIT).

Each file is `{"value": [record, ...]}` with flat fields (business_title, agency, job_description,
minimum_qual_requirements, preferred_skills, salary_range_from/to, salary_frequency, to_apply, ...).
Three things need care:

- Mojibake. About 1,500 records hold UTF-8 text once decoded as cp1252 (`â€¢` for `•`). Every field
  goes through `repair_mojibake` (data/text.py); a record still damaged afterwards is skipped.
- Duplicates. Most jobs are posted twice, Internal and External, under one `job_id`. The Posting id is
  "nyc:<job_id>", so `load_postings` keeps the first and counts the other as a duplicate.
- Layout. Lists were flattened into one line ("include:     •   Serve as ...   •  Lead ..."): we put
  each bullet and numbered item back on its own line so the text reads as markdown.

Use it through `jai.data.postings.load_postings`, which recognises the schema by itself. It builds on
data/records.py only, as the reference-schema reader does: the two importers never import each other.
"""

from __future__ import annotations

import re
from typing import Any

from jai.data.records import MISSING_CONTENT, MISSING_TITLE, NOT_OBJECT, Posting, SkipRecord, TextReader
from jai.data.text import repair_mojibake  # re-exported: the repair most NYC text needs

__all__ = ["posting_from_nyc", "relayout", "repair_mojibake"]

_PERIODS = {"annual": "a year", "hourly": "an hour", "daily": "a day"}

_BULLETS = re.compile(r"\s*(?:•|(?<=\s)--?(?=\s*[A-Z]))\s*")  # "  •  Serve", "  -- Provide"
_NUMBERED = re.compile(r"[ \t]{2,}(?=\d{1,2}\.\s+[A-Z])")  # "...; or  2. A baccalaureate"
_SPACES = re.compile(r"[ \t]{2,}")


def relayout(text: str) -> str:
    """Put flattened bullets and numbered items back on their own lines; collapse space runs."""
    text = _BULLETS.sub("\n- ", text)
    text = _NUMBERED.sub("\n", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()


def _items(block: str | None, separator: str | None = None) -> tuple[str, ...]:
    """The list items of a block: its "- " lines, numbered lines, or `separator`-split parts."""
    if not block:
        return ()
    lines = [line for line in block.split("\n") if line]
    bullets = [line[2:].strip() for line in lines if line.startswith("- ")]
    if len(bullets) >= 2:
        return tuple(bullets)
    numbered = [re.sub(r"^\d{1,2}\.\s+", "", line) for line in lines if re.match(r"\d{1,2}\.\s", line)]
    if len(numbered) >= 2:
        return tuple(numbered)
    if separator:
        parts = [p.strip(" .") for p in block.replace("\n", " ").split(separator)]
        parts = [p for p in parts if len(p) > 3]
        if len(parts) >= 2:
            return tuple(parts)
    return (" ".join(lines),)


def _salary(lo: Any, hi: Any, frequency: str | None) -> str | None:
    amounts = [
        f"${x:,.0f}" for x in (lo, hi) if isinstance(x, int | float) and not isinstance(x, bool) and x > 0
    ]
    if not amounts:
        return None
    period = _PERIODS.get((frequency or "").lower(), frequency and f"({frequency})")
    return " ".join(p for p in (" – ".join(dict.fromkeys(amounts)), period) if p)


def _date(value: str | None) -> str | None:
    """ "2013-11-01T07:00:00Z" -> "2013-11-01"; the export's "no date" sentinel (1900-01-01) -> None."""
    if not value or value.startswith("1900"):
        return None
    return value[:10]


def posting_from_nyc(record: Any, r: TextReader, fallback_id: str, source: str) -> Posting:
    """One NYC record -> Posting, or SkipRecord naming the record and field at fault."""
    if not isinstance(record, dict):
        raise SkipRecord(NOT_OBJECT, f"{r.where}: expected a JSON object, got {type(record).__name__}")

    def field(name: str, numbers: bool = False) -> str | None:
        return r.text(record.get(name), name, multiline=True, numbers=numbers)

    def block(name: str) -> str | None:
        text = field(name)
        return relayout(text) if text else None

    title = r.text(record.get("business_title"), "business_title") or r.text(
        record.get("civil_service_title"), "civil_service_title"
    )
    if title is None:
        raise SkipRecord(MISSING_TITLE, f"{r.where}: missing 'business_title' and 'civil_service_title'")
    description = block("job_description")
    if description is None:
        raise SkipRecord(MISSING_CONTENT, f"{r.where}: missing or empty 'job_description'")
    quals, preferred = block("minimum_qual_requirements"), block("preferred_skills")
    sections = [description]
    if quals:
        sections.append(f"## Minimum qualifications\n\n{quals}")
    if preferred:
        sections.append(f"## Preferred skills\n\n{preferred}")

    job_id = field("job_id", numbers=True)
    duties = _items(description)
    contacts = {
        "apply": block("to_apply"),
        "contact": r.text(record.get("recruitment_contact"), "recruitment_contact"),
    }
    return Posting(
        id=f"nyc:{job_id}" if job_id else fallback_id,
        title=title,
        content="\n\n".join(sections),
        company=r.text(record.get("agency"), "agency"),
        location=r.text(record.get("work_location"), "work_location"),
        salary=_salary(
            record.get("salary_range_from"), record.get("salary_range_to"), field("salary_frequency")
        ),
        deadline=_date(field("post_until")),
        created_at=_date(field("posting_date")),
        skills=_items(preferred, ";"),
        requirements=_items(quals),
        responsibilities=duties if len(duties) >= 2 else (),
        contacts={k: v for k, v in contacts.items() if v},
        source=source,
    )
