"""The prompt format, in one place: what every sample looks like, and how a prompt is made to fit.

    [BOS][DOC]
    (the posting)
    [/DOC]
    [QUESTION] 이 포지션의 자격 요건은 무엇인가요? [/QUESTION]
    [ANSWER]
    (the answer)
    [/ANSWER][EOS]

Training (`jai prepare`), generation (`jai sample`, `jai serve`), evaluation (`jai eval`) and the chat
template all build text with these functions, so the model is always asked in the shape it learned.

The question comes last, right before [ANSWER]: which kind of answer to give is then read from the
tokens just before it, not from the far side of a 200-token posting. In the same minutes of training
this took field answers from 0.08 to 0.33 char F1, and with header drills from exact match 0 to 0.2
(docs/quality.md, "Question after the posting"); with the question first, a small model trained for
make run's minutes answered every question with the most common answer's opening.

A posting is often longer than the model's context. Cropping a prompt from the left would drop the
posting's header (its title, company, pay: what most answers quote) and could reach the question; so
`fit_prompt` shortens the DOCUMENT instead, from its end: the header fields and the lead of the
description (what a posting says first) stay.
"""

from __future__ import annotations

import bisect
from typing import Protocol

# The markers of a sample. They are special tokens of the tokenizer (jai/tokenizer.py adds them to the
# vocabulary), so each is always one id and never merges with the text around it.
QUESTION, QUESTION_END = "[QUESTION]", "[/QUESTION]"
DOC, DOC_END = "[DOC]", "[/DOC]"
ANSWER, ANSWER_END = "[ANSWER]", "[/ANSWER]"
MARKERS = (QUESTION, QUESTION_END, DOC, DOC_END, ANSWER, ANSWER_END)

ELLIPSIS = "…"  # ends a document that was shortened, so the model can tell a cut from a real end


class Encoder(Protocol):
    """What shortening needs of a tokenizer (jai.tokenizer.Tokenizer has it)."""

    def encode(self, text: str) -> list[int]: ...


def build_prompt(question: str, doc: str) -> str:
    """The text a model sees before it answers: document, question, and the opening [ANSWER]."""
    return f"{DOC}\n{doc.strip()}\n{DOC_END}\n{QUESTION} {question.strip()} {QUESTION_END}\n{ANSWER}"


def format_sample(question: str, doc: str, answer: str) -> str:
    """A whole training sample: the prompt, the answer, and the closing [/ANSWER]."""
    return f"{build_prompt(question, doc)}\n{answer.strip()}\n{ANSWER_END}"


def answer_suffix(answer: str) -> str:
    """What follows the prompt in a sample: `format_sample(q, d, a) == build_prompt(q, d) + this`."""
    return f"\n{answer.strip()}\n{ANSWER_END}"


def _bos(tokenizer: Encoder) -> list[int]:
    bos = getattr(tokenizer, "bos_id", None)
    return [bos] if isinstance(bos, int) else []


def _cut(doc: str, end: int) -> str:
    """The document up to `end` (a whitespace position), then an ellipsis; "" for nothing."""
    head = doc[:end].rstrip()
    return f"{head} {ELLIPSIS}" if head else ""


def shorten_doc(
    tokenizer: Encoder, question: str, doc: str, budget: int, answer: str | None = None
) -> tuple[str, bool]:
    """`doc`, cut from its end at a word boundary until [BOS] + the prompt (+ `answer_suffix(answer)`
    when an answer is given) is at most `budget` tokens. Returns (document, shortened). The question is
    never cut: when the question alone is over budget the document comes back empty.
    """
    doc = doc.strip()
    suffix = answer_suffix(answer) if answer is not None else ""

    def size(d: str) -> int:
        return len(_bos(tokenizer)) + len(tokenizer.encode(build_prompt(question, d) + suffix))

    total = size(doc)
    if total <= budget:
        return doc, False
    fixed = size("")
    if fixed >= budget:
        return "", True
    # Candidate cuts are the word boundaries. Guess one from the document's tokens per character, then
    # correct the guess, bisecting when the estimate stalls: two or three encodes for a typical posting.
    ends = [i for i, c in enumerate(doc) if c.isspace() and not doc[i - 1].isspace()]
    per_char = (total - fixed) / len(doc)
    lo, hi, best = -1, len(ends), ""  # ends[lo] fits (-1: the empty document), ends[hi] does not
    while hi - lo > 1:
        guess = bisect.bisect_right(ends, (budget - fixed - 3) / per_char) - 1
        if not lo < guess < hi:
            guess = (lo + hi) // 2
        candidate = _cut(doc, ends[guess])
        n = size(candidate)
        if n <= budget:
            lo, best = guess, candidate
            if n >= budget - 3:  # within a few tokens of the budget: a finer cut gains nothing
                break
        else:
            hi = guess
        per_char = max(1e-3, (n - fixed) / max(1, len(candidate)))
    return best, True


def fit_prompt(tokenizer: Encoder, question: str, doc: str, budget: int) -> tuple[list[int], bool]:
    """The token ids of `[BOS] build_prompt(question, doc)`, at most `budget` of them where the question
    allows, with the document shortened (never the question). Returns (ids, shortened).

    [BOS] is included because every training sample starts with it: the model has always seen it before
    [DOC]. `budget` is the context minus the room kept for the answer.
    """
    doc, shortened = shorten_doc(tokenizer, question, doc, budget)
    return _bos(tokenizer) + tokenizer.encode(build_prompt(question, doc)), shortened
