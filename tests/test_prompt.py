"""The prompt format (jai/prompt.py): one shape for every sample, and prompts shortened in the document,
never in the question, to fit a token budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from jai.data.postings import load_postings
from jai.data.qa import make_samples
from jai.prompt import (
    ANSWER,
    ELLIPSIS,
    QUESTION,
    answer_suffix,
    build_prompt,
    fit_prompt,
    format_sample,
    shorten_doc,
)
from jai.tokenizer import Tokenizer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "jobs" / "postings.json"


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    postings, _ = load_postings(SAMPLE)
    return Tokenizer.train((s.text for s in make_samples(postings[:80], 1)), 2000, 2, show_progress=False)


def test_sample_is_prompt_then_answer() -> None:
    prompt = build_prompt(" What pays? ", "\nTitle: Cook\n")
    # the question last, right before [ANSWER]: the kind of answer is read from the tokens just before it
    assert prompt == f"[DOC]\nTitle: Cook\n[/DOC]\n{QUESTION} What pays? [/QUESTION]\n{ANSWER}"
    assert format_sample("What pays?", "Title: Cook", "SGD 3,000") == prompt + answer_suffix("SGD 3,000")
    assert answer_suffix(" SGD 3,000\n") == "\nSGD 3,000\n[/ANSWER]"


def test_short_prompt_is_untouched_and_starts_with_bos(tok: Tokenizer) -> None:
    ids, shortened = fit_prompt(tok, "How do I apply?", "Title: Cook\n\nEmail jobs@example.com", 200)
    assert not shortened
    assert ids == [
        tok.bos_id,
        *tok.encode(build_prompt("How do I apply?", "Title: Cook\n\nEmail jobs@example.com")),
    ]


@pytest.mark.parametrize("budget", [30, 64, 120, 250])
def test_long_document_is_cut_from_its_end_question_kept(tok: Tokenizer, budget: int) -> None:
    question = "이 포지션의 자격 요건은 무엇인가요?"
    doc = "Title: Data engineer\nCompany: Acme\n\n" + " ".join(
        f"Sentence number {i} of the posting." for i in range(300)
    )
    ids, shortened = fit_prompt(tok, question, doc, budget)
    assert shortened
    assert len(ids) <= budget
    assert len(ids) >= budget - 12  # cut at a word boundary near the budget, not far below it
    text = tok.decode(ids)
    assert text.endswith(build_prompt(question, "").split("[/DOC]")[1])  # the whole question
    kept = text.split("[DOC]\n")[1].split("\n[/DOC]")[0]
    assert kept.endswith(ELLIPSIS)
    assert doc.startswith(kept.removesuffix(ELLIPSIS).rstrip())  # a prefix: fields first, then the lead


def test_budget_counts_the_answer_when_given(tok: Tokenizer) -> None:
    doc = " ".join(f"word{i}" for i in range(400))
    answer = "- Python\n- SQL\n- three years of experience"
    short, shortened = shorten_doc(tok, "Requirements?", doc, 100, answer=answer)
    assert shortened
    n = 1 + len(tok.encode(format_sample("Requirements?", short, answer)))
    assert 90 <= n <= 100


def test_question_over_budget_leaves_an_empty_document(tok: Tokenizer) -> None:
    question = "why " * 50
    doc, shortened = shorten_doc(tok, question, "Title: Cook", 10)
    assert shortened and doc == ""
