"""`jai bench --only retrieval`: the search index's quality, build time, size and query latency.

Quality is recall@1 and recall@5 on held-out questions (jai.retrieval.questions: they name a posting's
title, company and place, in English and Korean) asked about the validation split of each corpus (the
split `jai prepare` makes) while the index holds every posting of it. Speed is measured on the bundled
300 postings, the NYC export (2,558 records, 1,437 distinct postings) and 100,000 generated postings
(seeded, made here, never stored): build time, file size, and p50/p99 of 200 questions' latency.
Recall asks about at most 500 validation postings of a corpus (a seeded pick), 1,000 questions.

The same terms (jai/retrieval/analyser.py) go to each engine compared, when installed: JAI's index
(tantivy, per-field BM25) and bm25s (one bag of terms, fields repeated by their weight). SQLite FTS5, which
JAI used before, was measured here too until it was replaced (docs/retrieval.md keeps its figures).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jai.data.postings import Posting, load_postings
from jai.data.prepare import BUNDLED_SAMPLE, generated_postings, split_postings
from jai.retrieval.analyser import query_terms, terms
from jai.retrieval.index import WEIGHTS, PostingIndex, add_postings
from jai.retrieval.questions import make_questions, recall

# The NYC export sits beside the repository (../shared, see data/README.md); JAI_NYC_JOBS names another.
NYC = Path(os.environ.get("JAI_NYC_JOBS", "../shared/data/nyc-jobs"))
LATENCY_QUESTIONS = 200
RECALL_POSTINGS = 500  # validation postings asked about, at most (seeded pick): 1,000 questions per engine

Search = Callable[[str, int], list[str]]


def tantivy_index(postings: Sequence[Posting], work: Path) -> tuple[Search, int]:
    """JAI's own index (jai/retrieval/index.py: tantivy), built and searched as `jai index`/`jai ask` do."""
    path = work / "index"
    add_postings(path, postings)
    index = PostingIndex.open(path)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return (lambda q, k: [h.id for h in index.search(q, k)]), size


def _weighted_terms(p: Posting) -> list[str]:
    """One bag of terms with each field repeated by its weight: bm25s has no fields."""
    fields = {"title": p.title, "company": p.company, "location": p.location, "body": p.content}
    return [t for name, text in fields.items() for _ in range(int(WEIGHTS[name])) for t in terms(text or "")]


def bm25s_engine(postings: Sequence[Posting], work: Path) -> tuple[Search, int]:
    import bm25s

    retriever = bm25s.BM25()
    corpus = [_weighted_terms(p) for p in postings]
    retriever.index(bm25s.tokenization.Tokenized(*_vocab_ids(corpus)), show_progress=False)
    retriever.save(work / "bm25s")
    vocab = _vocab_ids(corpus)[1]
    ids = [p.id for p in postings]

    def search(q: str, k: int) -> list[str]:
        words = [[vocab[w] for w in query_terms(q) if w in vocab]]
        if not words[0]:
            return []
        docs, _ = retriever.retrieve(words, k=min(k, len(ids)), show_progress=False)
        return [ids[i] for i in docs[0]]

    size = sum(f.stat().st_size for f in (work / "bm25s").iterdir())
    return search, size


def _vocab_ids(corpus: list[list[str]]) -> tuple[list[list[int]], dict[str, int]]:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus]
    return ids, vocab


ENGINES = {"tantivy": tantivy_index, "bm25s": bm25s_engine}


def installed(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _latencies(search: Search, questions: list[str]) -> dict[str, float]:
    times = []
    for q in questions:
        t = time.perf_counter()
        search(q, 5)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))]}


def corpora(n_generated: int) -> dict[str, list[Posting]]:
    out = {"bundled": load_postings(BUNDLED_SAMPLE)[0]}
    if NYC.is_dir():
        out["nyc"] = load_postings(NYC)[0]
    out[f"generated_{n_generated}"] = generated_postings(seed=0, n=n_generated)
    return out


def run(n_generated: int = 100_000, engines: Sequence[str] = tuple(ENGINES), say=print) -> dict[str, Any]:
    results: dict[str, Any] = {"engines": [e for e in engines if installed(e)], "corpora": {}}
    start = time.perf_counter()
    made = corpora(n_generated)
    say(f"retrieval: corpora read and generated in {time.perf_counter() - start:.0f} s")
    for name, postings in made.items():
        _, val = split_postings(postings, 0.1, 1337)
        if len(val) > RECALL_POSTINGS:
            val = random.Random(0).sample(val, RECALL_POSTINGS)
        questions = make_questions(val)
        texts = [q.text for q in make_questions(postings[:LATENCY_QUESTIONS])][:LATENCY_QUESTIONS]
        row: dict[str, Any] = {"postings": len(postings), "questions": len(questions)}
        for engine in results["engines"]:
            with tempfile.TemporaryDirectory(prefix="jai-retrieval-") as tmp:
                start, cpu = time.perf_counter(), time.process_time()
                search, size = ENGINES[engine](postings, Path(tmp))
                built, built_cpu = time.perf_counter() - start, time.process_time() - cpu
                scores = recall(questions, search, postings)
                by_lang = {
                    lang: recall([q for q in questions if q.lang == lang], search, postings)
                    for lang in ("en", "ko")
                }
                row[engine] = {
                    "build_s": built,
                    "build_cpu_s": built_cpu,  # what a busy machine's wall clock hides
                    "size_mb": size / 1e6,
                    **scores,
                    "by_lang": by_lang,
                    **_latencies(search, texts),
                }
            say(f"retrieval: {name} ({len(postings)} postings), {engine}: {_line(row[engine])}")
        results["corpora"][name] = row
    results["cpus"] = os.cpu_count()
    return results


def _line(r: dict[str, Any]) -> str:
    return (
        f"recall@1 {r['recall@1']:.3f}, recall@5 {r['recall@5']:.3f} (strict {r['strict_recall@1']:.3f}/"
        f"{r['strict_recall@5']:.3f}), build {r['build_s']:.1f} s ({r['build_cpu_s']:.1f} s CPU), "
        f"{r['size_mb']:.1f} MB, "
        f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
    )


def render(results: dict[str, Any] | None) -> str:
    if not results:
        return ""
    lines = [
        "\n## Retrieval (jai index / jai ask)\n",
        "| corpus | postings | engine | recall@1 | recall@5 | strict @1 / @5 | build s (CPU s) | MB "
        "| p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["corpora"].items():
        for engine in results["engines"]:
            r = row[engine]
            lines.append(
                f"| {name} | {row['postings']} | {engine} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | "
                f"{r['strict_recall@1']:.3f} / {r['strict_recall@5']:.3f} | "
                f"{r['build_s']:.1f} ({r['build_cpu_s']:.1f}) | "
                f"{r['size_mb']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    out = run(n)
    print(render(out))
    print(json.dumps(out, indent=1))
