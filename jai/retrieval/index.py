"""An index of postings on disk: one SQLite file whose FTS5 table ranks postings by BM25.

    add_postings("out/index.db", postings)      # create, or add to, an index (atomically)
    index = PostingIndex.open("out/index.db")
    index.search("What does K-Style Fashion pay its Merchandiser?", k=5)

SQLite's FTS5 was chosen by measurement (docs/retrieval.md): the same recall as bm25s with our analyser,
incremental adds, and nothing to install (it ships with Python). FTS5 tokenises only on its own rules, so
the terms come from jai/retrieval/analyser.py and are handed to it as space-separated words; the term
table is contentless (content=''), the posting text is stored once, in `postings`.

A write never touches the index in place: the file is copied, changed and renamed over the old one
(jai/atomic.py), so a crash or a full disk leaves the previous index whole.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jai.atomic import atomic_file
from jai.data.postings import Posting
from jai.data.qa import render_doc
from jai.errors import InputError
from jai.retrieval.analyser import ANALYSER_VERSION, query_terms, terms

FORMAT = "jai-postings-index"
FORMAT_VERSION = 1
# Column weights for BM25: a question names a posting by its title, company and place far more often
# than by a word of its description.
WEIGHTS = {"title": 4.0, "company": 4.0, "location": 2.0, "body": 1.0}
MAX_QUESTION_CHARS = 2000

_SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE postings(n INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, title TEXT NOT NULL,
                      company TEXT, location TEXT, doc TEXT NOT NULL);
CREATE VIRTUAL TABLE terms USING fts5({", ".join(WEIGHTS)}, content='',
                                      tokenize='unicode61 remove_diacritics 0');
INSERT INTO terms(terms, rank) VALUES('rank', 'bm25({", ".join(map(str, WEIGHTS.values()))})');
"""


class SearchIndexError(InputError):
    """An index that cannot be used: missing, empty, not an index, built by another version."""


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    company: str | None
    location: str | None
    score: float  # BM25, higher is better
    doc: str  # the posting as the model reads it (jai.data.qa.render_doc)

    def source(self) -> dict[str, object]:
        """What a response says about a posting it used (everything but the text)."""
        return {
            "id": self.id,
            "title": self.title,
            "company": self.company,
            "location": self.location,
            "score": round(self.score, 3),
        }


@dataclass
class AddReport:
    added: int = 0
    replaced: int = 0  # same id, new text: the newer posting wins
    unchanged: int = 0  # same id, same text: stored once
    total: int = 0


def _row_terms(title: str, company: str | None, location: str | None, doc: str) -> tuple[str, ...]:
    return tuple(" ".join(terms(x or "")) for x in (title, company, location, doc))


def _check(con: sqlite3.Connection, path: Path) -> int:
    """The number of postings in a connected index; SearchIndexError when it is not one this JAI reads."""
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
        n = con.execute("SELECT count(*) FROM postings").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise SearchIndexError(f"{path}: not a JAI postings index ({e})") from None
    if meta.get("format") != FORMAT:
        raise SearchIndexError(f"{path}: not a JAI postings index (format {meta.get('format')!r})")
    found = (meta.get("format_version"), meta.get("analyser_version"))
    if found != (str(FORMAT_VERSION), str(ANALYSER_VERSION)):
        raise SearchIndexError(
            f"{path}: built by another version of JAI (index format {found[0]}, analyser {found[1]}; "
            f"this one reads {FORMAT_VERSION} and {ANALYSER_VERSION}): rebuild it with `jai index`"
        )
    return n


def add_postings(path: str | Path, postings: Iterable[Posting]) -> AddReport:
    """Create the index at `path` or add to it; a posting whose id is already there is stored once."""
    path = Path(path)
    if path.is_dir():
        raise SearchIndexError(f"{path}: is a folder; the index is one file (e.g. {path}/index.db)")
    report = AddReport()
    with atomic_file(path) as tmp:
        if path.exists():
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as old:
                _check(old, path)
            old.close()
            shutil.copyfile(path, tmp)
            con = sqlite3.connect(tmp)
        else:
            con = sqlite3.connect(tmp)
            con.executescript(_SCHEMA)
            meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "analyser_version": ANALYSER_VERSION}
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        try:
            _add(con, postings, report)
            report.total = con.execute("SELECT count(*) FROM postings").fetchone()[0]
            con.commit()
        finally:
            con.close()
    return report


def _add(con: sqlite3.Connection, postings: Iterable[Posting], report: AddReport) -> None:
    known = {id_: (n, doc) for n, id_, doc in con.execute("SELECT n, id, doc FROM postings")}
    next_n = 1 + (con.execute("SELECT max(n) FROM postings").fetchone()[0] or 0)
    rows, term_rows = [], []
    for p in postings:
        doc = render_doc(p)
        if p.id in known:
            n, old_doc = known[p.id]
            if old_doc == doc:
                report.unchanged += 1
                continue
            # A contentless FTS5 table forgets a row only when told the terms it was given.
            old = con.execute(
                "SELECT title, company, location, doc FROM postings WHERE n = ?", (n,)
            ).fetchone()
            con.execute(
                f"INSERT INTO terms(terms, rowid, {', '.join(WEIGHTS)}) VALUES('delete', ?, ?, ?, ?, ?)",
                (n, *_row_terms(*old)),
            )
            con.execute("DELETE FROM postings WHERE n = ?", (n,))
            report.replaced += 1
        else:
            n, next_n = next_n, next_n + 1
            report.added += 1
        known[p.id] = (n, doc)
        rows.append((n, p.id, p.title, p.company, p.location, doc))
        term_rows.append((n, *_row_terms(p.title, p.company, p.location, doc)))
    con.executemany("INSERT INTO postings VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.executemany(f"INSERT INTO terms(rowid, {', '.join(WEIGHTS)}) VALUES (?, ?, ?, ?, ?)", term_rows)


class PostingIndex:
    """A read-only index, safe to search from several threads (the server's)."""

    def __init__(self, con: sqlite3.Connection, path: Path, size: int) -> None:
        self.con, self.path, self.size = con, path, size
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> PostingIndex:
        path = Path(path)
        if not path.is_file():
            what = "is a folder, not an index file" if path.is_dir() else "no such index"
            raise SearchIndexError(f"{path}: {what}; build one with `jai index POSTINGS --out {path}`")
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        n = _check(con, path)
        if n == 0:
            raise SearchIndexError(f"{path}: the index holds no postings")
        return cls(con, path, n)

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The `k` best postings for `question`, best first; [] when no term of it is in any posting."""
        if len(question) > MAX_QUESTION_CHARS:
            raise SearchIndexError(
                f"the question is {len(question)} characters; at most {MAX_QUESTION_CHARS} are searched"
            )
        words = query_terms(question)
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)  # quoted: a term is never read as FTS5 syntax
        with self._lock:
            ranked = self.con.execute(
                "SELECT rowid, rank FROM terms WHERE terms MATCH ? ORDER BY rank LIMIT ?", (match, k)
            ).fetchall()
            found = {
                row[0]: row[1:]
                for row in self.con.execute(
                    f"SELECT n, id, title, company, location, doc FROM postings WHERE n IN "
                    f"({', '.join('?' * len(ranked))})",
                    [n for n, _ in ranked],
                )
            }
        return [Hit(*found[n][:4], score=-rank, doc=found[n][4]) for n, rank in ranked if n in found]

    def close(self) -> None:
        self.con.close()
