"""Samples that fit the context whole: the document shortened around what the answer needs.

A posting is often longer than the model's context, and a training window that holds a document
without its question (or an answer without the lines it was copied from) teaches the model to make
answers up. So before a sample is written, its document is cut until question + document + answer fit
in `context` tokens together ([BOS] and [EOS] included), keeping, in this order:

1. the header fields (`render_doc` puts the posting's fields first: title, company, salary, ...);
2. the lines the answer quotes (a benefit, a requirement, an email address) and the heading above them;
3. the rest of the description from its start (its lead), as much as fits.

Lines left out are marked with one "…" line per gap, so the model can tell a cut from the real text.
Only the document is ever cut, and never its title, company, location and salary lines: a sample
whose question, answer and those lines are too long together stays so and is counted as not fitting.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jai.data.qa import LABELS, Sample
from jai.prompt import ELLIPSIS, Encoder, answer_suffix, build_prompt

__all__ = ["FitReport", "fit_doc", "fit_sample", "fit_samples"]

# Header lines every shortened document keeps: what the posting is, where, and for how much. The other
# fields stay when the answer quotes them, else as room allows (before the description: fields first).
_CORE = tuple(
    f"{labels[k]}: " for labels in LABELS.values() for k in ("title", "company", "location", "salary")
)

_MARKUP = re.compile(r"^\s*(?:[-*•·▪●#>]+|\d{1,2}[.)])\s*|[*_`]+|\s+$")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s.*|\[[^\]]{1,60}\]|\*\*[^*]{1,60}\*\*|[^.!?:]{1,60}:)\s*$")


@dataclass
class FitReport:
    """How many samples fit the context whole, how many needed a shorter document, how many not even
    then (their question and answer alone are too long)."""

    context: int
    samples: int = 0
    shortened: int = 0
    too_long: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def fit(self) -> int:
        return self.samples - self.too_long

    def add(self, kind: str, shortened: bool, fits: bool) -> None:
        self.samples += 1
        self.shortened += shortened
        self.too_long += not fits
        counts = self.by_kind.setdefault(kind, {"samples": 0, "shortened": 0, "too_long": 0})
        counts["samples"] += 1
        counts["shortened"] += shortened
        counts["too_long"] += not fits

    def summary(self) -> str:
        share = self.fit / max(1, self.samples)
        return (
            f"fit in the context of {self.context} tokens: {self.fit} of {self.samples} samples "
            f"({share:.1%}), {self.shortened} of them with a shortened document"
            + (f"; {self.too_long} too long even without their document" if self.too_long else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "samples": self.samples,
            "fit": self.fit,
            "shortened": self.shortened,
            "too_long": self.too_long,
            "by_kind": self.by_kind,
        }


def _norm(text: str) -> str:
    return " ".join(_MARKUP.sub("", text).lower().split())


def _evidence(lines: list[str], answer: str) -> set[int]:
    """Indices of the lines the answer quotes, and of the heading above each of them."""
    answer_norm = _norm(answer)
    # An answer line reads "Label: value" or "- item": what it quotes is the value or the item.
    quotes = {_norm(line.split(": ", 1)[-1]) for line in answer.split("\n")}
    quotes = {q for q in quotes if len(q) >= 4}
    found: set[int] = set()
    for i, line in enumerate(lines):
        norm = _norm(line)
        if len(norm) >= 4 and (norm in answer_norm or any(q in norm for q in quotes)):
            found.add(i)
            heading = next((j for j in range(i - 1, -1, -1) if _HEADING.match(lines[j])), None)
            if heading is not None:
                found.add(heading)
    return found


def _join(lines: list[str], keep: set[int]) -> str:
    """The kept lines (and blank lines) in document order, one "…" line where kept text skips some."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in keep or not line.strip():
            out.append(line)
        elif not out or out[-1] != ELLIPSIS:
            while out and not out[-1].strip():  # "…" takes the place of the blank lines before it
                out.pop()
            out += [""] * (bool(out) and out[-1].startswith("#")) + [ELLIPSIS]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return re.sub(rf"{ELLIPSIS}(\s*{ELLIPSIS})+", ELLIPSIS, text)


def _line_costs(tok: Encoder, lines: list[str], cache: dict[str, list[int]] = {}) -> list[int]:  # noqa: B006
    """Tokens per line (+1 for its line break). The questions about one posting share its document, so
    the last document's costs are kept (a one-entry cache: the default dict lives with the function)."""
    key = "\n".join(lines)
    if key not in cache:
        encode_batch = getattr(tok, "encode_batch", None)
        ids = encode_batch(lines) if encode_batch else [tok.encode(line) for line in lines]
        cache.clear()
        cache[key] = [len(i) + 1 for i in ids]
    return cache[key]


def _fit(tok: Encoder, question: str, doc: str, answer: str, context: int) -> tuple[str, bool, int]:
    """(document, shortened, tokens of [BOS] + sample + [EOS] with that document)."""
    suffix = answer_suffix(answer)

    def size(d: str) -> int:
        return 2 + len(tok.encode(build_prompt(question, d) + suffix))

    doc = doc.strip()
    lines = doc.split("\n")
    costs = _line_costs(tok, lines)
    fixed = size("")  # question, answer and markers: what no cut of the document can shrink
    if fixed + sum(costs) <= context + 8:  # the estimate says it may fit whole: count exactly
        n = size(doc)
        if n <= context:
            return doc, False, n
    header = range(lines.index("")) if "" in lines else range(0)
    core = {i for i in header if lines[i].startswith(_CORE)}
    if fixed >= context:  # too long whatever the document: keep its core, count it as not fitting
        text = _join(lines, core)
        return text, True, size(text)
    must = core | _evidence(lines, answer)
    # Fill with the other lines in document order by their estimated tokens, then check the estimate
    # with one encode and give lines back from the end until the real count fits.
    room = context - fixed - 2 * len(must) // 3  # a rough allowance for "…" lines and merges
    keep = set(must)
    used = sum(costs[i] for i in keep)
    added = []
    for i in range(len(lines)):
        if i not in keep and used + costs[i] <= room:
            keep.add(i)
            added.append(i)
            used += costs[i]
    text = _join(lines, keep)
    n = size(text)
    # Over: give back the lines added to fill, then the quoted ones, from the end. The core header
    # stays even when it alone is too long (the sample is then counted as not fitting): a document
    # without its title would teach answers about nothing.
    for pool in (added, sorted(must - core)):
        while n > context and pool:
            excess = n - context
            while excess > 0 and pool:
                i = pool.pop()
                keep.discard(i)
                excess -= costs[i]
            text = _join(lines, keep)
            n = size(text)
    return text, True, n


def fit_doc(tok: Encoder, question: str, doc: str, answer: str, context: int) -> tuple[str, bool]:
    """`doc` shortened (see the module docstring) so that [BOS] + sample + [EOS] is at most `context`
    tokens where the question and answer allow. Returns (document, shortened)."""
    text, shortened, _ = _fit(tok, question, doc, answer, context)
    return text, shortened


def fit_sample(tok: Encoder, sample: Sample, context: int) -> tuple[Sample, bool, bool]:
    """(the sample with its document fitted, shortened?, fits?) for a context of `context` tokens."""
    doc, shortened, n = _fit(tok, sample.question, sample.doc, sample.answer, context)
    return (dataclasses.replace(sample, doc=doc) if shortened else sample), shortened, n <= context


def fit_samples(
    tok: Encoder, samples: Iterable[Sample], context: int, report: FitReport | None = None
) -> Iterator[Sample]:
    """`fit_sample` over many samples, lazily, counting into `report`."""
    for sample in samples:
        fitted, shortened, fits = fit_sample(tok, sample, context)
        if report is not None:
            report.add(sample.kind, shortened, fits)
        yield fitted
