"""An index of postings on disk: a folder holding a tantivy index that ranks postings by BM25.

    add_postings("out/index", postings)      # create, or add to, an index
    index = PostingIndex.open("out/index")
    index.search("What does K-Style Fashion pay its Merchandiser?", k=5)

tantivy (Quickwit's Rust engine) was chosen by measurement over SQLite FTS5 and bm25s (docs/retrieval.md):
it alone met the speed goals at 100,000 postings and the recall goal on the NYC postings. Its own
tokenisers never see the text: the terms come from jai/retrieval/analyser.py, joined by spaces into
fields split only at whitespace (terms hold none), so Korean is searched exactly as the analyser says.
A question becomes a disjunction of term queries built directly, never parsed, so no word of it is read
as query syntax. The posting text the model answers from is stored beside the terms, not indexed.

The folder holds tantivy's files and `jai-index.json` (format and analyser versions, checked on open).
Writes are atomic: a new index is built in a hidden sibling folder and renamed into place; an existing
one is changed by one tantivy commit, which writes new segment files and then replaces its `meta.json`
in one rename, so a crash or `kill -9` leaves the index as it was before the add or as it is after it.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jai.atomic import atomic_directory, write_json_atomic
from jai.data.postings import Posting
from jai.data.qa import render_doc
from jai.errors import InputError
from jai.retrieval.analyser import ANALYSER_VERSION, query_terms, terms

FORMAT = "jai-postings-index"
FORMAT_VERSION = 2  # 1 was one SQLite FTS5 file
META_FILE = "jai-index.json"
# Field boosts for BM25: a question names a posting by its title, company and place far more often than
# by a word of its description. Each field has its own term statistics (tantivy scores per field).
WEIGHTS = {"title": 4.0, "company": 4.0, "location": 2.0, "body": 1.0}
MAX_QUESTION_CHARS = 2000
WRITER_HEAP_BYTES = 128_000_000  # tantivy's default
# One indexing thread: the documents of an add land in one segment in the order given, so postings that
# tie (the same text under two ids) rank in the same order on every build. With tantivy's default of a
# thread per core they were spread over segments by the scheduler, and strict recall changed from build
# to build (NYC: 0.872 or 0.879). Building is no slower: the analyser, in Python, is the bottleneck.
WRITER_THREADS = 1
SQLITE_MAGIC = b"SQLite format 3\x00"


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


def _tantivy() -> Any:
    import tantivy  # the `retrieval` extra; a missing one is reported as `pip install -e '.[retrieval]'`

    return tantivy


def _schema() -> Any:
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for name in WEIGHTS:  # BM25 needs term frequencies, not positions
        builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    builder.add_bytes_field("posting", stored=True)  # JSON of the fields a Hit returns; not searched
    return builder.build()


def _document(p: Posting, doc: str, stored: bytes) -> Any:
    fields = dict(zip(WEIGHTS, (p.title, p.company, p.location, doc), strict=True))
    analysed = {name: " ".join(terms(text or "")) for name, text in fields.items()}
    return _tantivy().Document(id=p.id, posting=stored, **analysed)


def _stored(p: Posting, doc: str) -> bytes:
    record = {"title": p.title, "company": p.company, "location": p.location, "doc": doc}
    return json.dumps(record, ensure_ascii=False).encode()


def _check_folder(path: Path) -> None:
    """SearchIndexError unless `path` is a folder this JAI reads as an index."""
    if path.is_file():
        raise SearchIndexError(f"{path}: {_not_a_folder(path)}")
    if not path.is_dir():
        raise SearchIndexError(f"{path}: no such index; build one with `jai index POSTINGS --out {path}`")
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SearchIndexError(f"{path}: not a JAI postings index (no {META_FILE} in the folder)") from None
    except (OSError, ValueError) as e:
        raise SearchIndexError(f"{path}: not a JAI postings index ({META_FILE}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SearchIndexError(f"{path}: not a JAI postings index ({META_FILE} names another format)")
    found = (meta.get("format_version"), meta.get("analyser_version"))
    if found != (FORMAT_VERSION, ANALYSER_VERSION):
        raise SearchIndexError(
            f"{path}: built by another version of JAI (index format {found[0]}, analyser {found[1]}; "
            f"this one reads {FORMAT_VERSION} and {ANALYSER_VERSION}): rebuild it with `jai index`"
        )


def _not_a_folder(path: Path) -> str:
    with open(path, "rb") as f:
        old = f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    if old:
        return (
            "an index from an older JAI (one SQLite file; an index is a folder now): rebuild it with "
            f"`jai index POSTINGS --out FOLDER` (e.g. {path.with_suffix('')})"
        )
    return "not a JAI postings index (a file; an index is a folder made by `jai index`)"


def _open(path: Path) -> Any:
    try:
        return _tantivy().Index.open(str(path))
    except ValueError as e:  # tantivy's own errors: a missing or corrupt meta.json, another format
        raise SearchIndexError(f"{path}: the index cannot be read ({_first_line(e)}): rebuild it") from None


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def add_postings(path: str | Path, postings: Iterable[Posting]) -> AddReport:
    """Create the index at `path` or add to it; a posting whose id is already there is stored once."""
    path = Path(path)
    if path.is_file():
        raise SearchIndexError(f"{path}: {_not_a_folder(path)}")
    if path.is_dir() and any(path.iterdir()):
        _check_folder(path)  # a folder that is not an index is never written into
        return _write(_open(path), postings)
    for leftover in path.parent.glob(f".{path.name}.tmp-*"):  # a first build that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    with atomic_directory(path) as tmp:
        report = _write(_tantivy().Index(_schema(), path=str(tmp)), postings)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "analyser_version": ANALYSER_VERSION}
        write_json_atomic(tmp / META_FILE, meta)
    return report


def _write(index: Any, postings: Iterable[Posting]) -> AddReport:
    """Add `postings` to `index` in one commit: all of them, or (on any error) none."""
    report = AddReport()
    searcher, schema = index.searcher(), index.schema
    batch: dict[str, bytes] = {}  # this add's postings so far: an id twice in one add is kept once too
    writer = _writer(index)
    try:
        for p in postings:
            doc = render_doc(p)
            stored = _stored(p, doc)
            old = batch[p.id] if p.id in batch else _stored_in(searcher, schema, p.id)
            if old == stored:
                report.unchanged += 1
                continue
            if old is not None:
                # A delete reaches only the documents added before it, so the new one below survives.
                writer.delete_documents_by_term("id", p.id)
                report.replaced += 1
            else:
                report.added += 1
            writer.add_document(_document(p, doc, stored))
            batch[p.id] = stored
        writer.commit()
    except BaseException:
        writer.rollback()
        del writer  # releases tantivy's writer lock now, not when the traceback holding this frame goes
        raise
    writer.wait_merging_threads()  # merges finish before the folder is published or the add returns
    index.reload()
    report.total = index.searcher().num_docs
    return report


def _writer(index: Any) -> Any:
    try:
        return index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS)
    except ValueError as e:
        if "LockBusy" in str(e):
            raise SearchIndexError(
                "another `jai index` is adding to this index; wait for it to finish"
            ) from None
        raise


def _stored_in(searcher: Any, schema: Any, posting_id: str) -> bytes | None:
    if searcher.num_docs == 0 or searcher.doc_freq("id", posting_id) == 0:  # the usual case, no search
        return None
    query = _tantivy().Query.term_query(schema, "id", posting_id)
    hits = searcher.search(query, 1).hits  # doc_freq counts deleted documents too; search does not
    return bytes(searcher.doc(hits[0][1])["posting"][0]) if hits else None


class PostingIndex:
    """A read-only index, safe to search from several threads (the server's)."""

    def __init__(self, index: Any, path: Path) -> None:
        self.index, self.path = index, path
        self.searcher = index.searcher()
        self.size: int = self.searcher.num_docs
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> PostingIndex:
        path = Path(path)
        _check_folder(path)
        index = cls(_open(path), path)
        if index.size == 0:
            raise SearchIndexError(f"{path}: the index holds no postings")
        return index

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The `k` best postings for `question`, best first; [] when no term of it is in any posting."""
        if len(question) > MAX_QUESTION_CHARS:
            raise SearchIndexError(
                f"the question is {len(question)} characters; at most {MAX_QUESTION_CHARS} are searched"
            )
        words = query_terms(question)
        if not words:
            return []
        tantivy, schema = _tantivy(), self.index.schema
        should = tantivy.Occur.Should
        query = tantivy.Query.boolean_query(
            [
                (should, tantivy.Query.boost_query(tantivy.Query.term_query(schema, field, w), boost))
                for w in words
                for field, boost in WEIGHTS.items()
            ]
        )
        with self._lock:
            found = [(score, self.searcher.doc(a)) for score, a in self.searcher.search(query, k).hits]
        hits = []
        for score, doc in found:
            record = json.loads(bytes(doc["posting"][0]))
            hits.append(
                Hit(
                    doc["id"][0], record["title"], record["company"], record["location"], score, record["doc"]
                )
            )
        return hits

    def close(self) -> None:
        """Nothing to release: tantivy frees the index with its last reference."""
