"""`jai eval --retrieval INDEX`: what retrieval costs the answers (issue 21's "end to end").

`jai eval`'s held-out questions are each about one posting but name none ("What are the requirements?").
Here each is answered twice and scored the same way (jai/evaluation/scoring.py):

- **given**: from its own posting, as `jai sample --doc-file` would answer it;
- **retrieved**: as `jai ask` answers it: the index is searched with the question preceded by the
  posting's title and its company, place or both (named as jai/retrieval/questions.py names postings:
  "Merchandiser at K-Style Fashion: What are the requirements?"), and the model answers from the best hit.

The model is asked the question itself in both (the naming is for the search), and both prompts are made
as `jai ask` makes them (jai.prompt.fit_prompt, the posting shortened from its end to fit). So where the
index finds the very posting both prompts are the same token for token, and the scores differ only where
it found another. Each distinct prompt is decoded once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jai.data.postings import Posting, load_postings
from jai.data.qa import Sample, render_doc
from jai.evaluation import scoring
from jai.prompt import fit_prompt
from jai.retrieval.index import PostingIndex
from jai.retrieval.questions import named_question
from jai.tokenizer import Tokenizer


def retrieval_cost(
    tok: Tokenizer,
    samples: Sequence[Sample],
    sources: Sequence[str | Path],
    index: PostingIndex,
    budget: int,
    decode: Callable[[list[list[int]]], list[str]],
    seed: int = 0,
) -> dict[str, Any]:
    """The scores of `samples` answered from the posting given and from the posting retrieved, how often
    retrieval found it, and one row per question. `sources`: the postings the samples were made from;
    `budget`: the prompt's tokens at most; `decode`: prompts -> answers (`jai eval`'s greedy decoding)."""
    by_id: dict[str, Posting] = {p.id: p for p in load_postings(list(sources))[0]}
    rng = random.Random(f"retrieval-cost/{seed}")
    queries = [named_question(by_id[s.posting_id], s.question, s.lang, rng) for s in samples]
    found = [index.search(q, 1) for q in queries]

    def prompt(question: str, doc: str) -> tuple[int, ...]:
        return tuple(fit_prompt(tok, question, doc, budget)[0])

    given = [prompt(s.question, render_doc(by_id[s.posting_id])) for s in samples]
    retrieved = [
        prompt(s.question, hits[0].doc) if hits else None for s, hits in zip(samples, found, strict=True)
    ]
    distinct = list(dict.fromkeys([*given, *(p for p in retrieved if p is not None)]))
    decoded = dict(zip(distinct, decode([list(p) for p in distinct]), strict=True))

    def scored(prompts: Sequence[tuple[int, ...] | None]) -> list[scoring.Answer]:
        # A question that retrieves nothing gets no answer (`jai ask` refuses it): it scores 0.
        return [
            scoring.Answer(s.kind, s.lang, decoded[p] if p is not None else "", s.answer)
            for s, p in zip(samples, prompts, strict=True)
        ]

    given_answers, retrieved_answers = scored(given), scored(retrieved)
    twin_key = {pid: (p.title, p.company, p.location) for pid, p in by_id.items()}
    rows = [
        {
            "posting_id": s.posting_id,
            "query": q,
            "found": hits[0].id if hits else None,
            "given": g.prediction,
            "retrieved": r.prediction,
            "reference": s.answer,
        }
        for s, q, hits, g, r in zip(samples, queries, found, given_answers, retrieved_answers, strict=True)
    ]
    n = max(1, len(samples))
    return {
        "index": str(index.path),
        "found": sum(r["found"] == r["posting_id"] for r in rows) / n,
        "found_or_twin": sum(
            r["found"] is not None and twin_key[r["found"]] == twin_key[r["posting_id"]] for r in rows
        )
        / n,
        "given": scoring.score_answers(given_answers),
        "retrieved": scoring.score_answers(retrieved_answers),
        "decoded_prompts": len(distinct),
        "samples": rows,
    }


def format_cost(cost: dict[str, Any]) -> str:
    lines = [
        f"\nanswers with retrieval ({cost['index']}): its posting found for {cost['found']:.1%} of the "
        f"questions ({cost['found_or_twin']:.1%} with one of the same title, company and place)",
        f"{'':<22}{'n':>5}{'exact':>9}{'char F1':>10}",
    ]
    for part in ("fields", "long", "all"):
        for arm in ("given", "retrieved"):
            s = cost[arm][part]
            if s["n"]:
                lines.append(f"  {part + ', ' + arm:<20}{s['n']:>5}{s['exact']:>9.3f}{s['f1']:>10.3f}")
    return "\n".join(lines)
