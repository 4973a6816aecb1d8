"""What `jai eval` measures, framework-free: answer scores, held-out questions, and loss in bits per byte.

Answers are scored against the references data/qa.py builds from a posting's own fields:

- exact match after normalisation (`normalize`: NFKC, case folded, markdown bullets, punctuation and
  symbols dropped, whitespace collapsed), 1 or 0 per answer;
- a character-level F1 (`char_f1`) over character BIGRAMS of the normalised text without spaces. Words
  are a poor unit for Korean (particles attach to them: 회사는 / 회사가), characters are not; and a bag
  of single characters gives text in the right script a large F1 by chance (random English tokens share
  most of their letters with any English answer), where bigrams need the characters in order.

Scores are means per question kind, per language and overall. The scorer takes answers as text, so
anything that produces text can be scored: a model's greedy answers (jai/cli/eval.py), or the
references themselves (which score 1.0).

Loss is reported three ways: mean cross-entropy per token (nats), perplexity, and bits per byte — the
total cross-entropy in bits divided by the UTF-8 bytes of the text those tokens decode to — which
compares models across tokenizers (a larger vocabulary makes fewer, harder tokens of the same text).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jai.data.fit import fit_samples
from jai.data.postings import load_postings
from jai.data.prepare import split_postings
from jai.data.qa import FIELD_KINDS, KINDS, LONG_KINDS, Sample, make_samples
from jai.dataset import META_FILE, DatasetError
from jai.prompt import Encoder

# --- scoring answers ---------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*•·▪●]|\d{1,2}[.)])\s+", re.MULTILINE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")


def normalize(text: str) -> str:
    """The text an exact match compares: NFKC, case folded, no list bullets, punctuation or symbols,
    single spaces. "- SGD 4,000 – 6,000 / month" -> "sgd 4000 6000 month"."""
    text = _BULLET.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    text = _THOUSANDS.sub("", text)  # 4,000 and 4000 are one number
    kept = (" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return " ".join("".join(kept).split())


def _bigrams(text: str) -> Counter[str]:
    chars = normalize(text).replace(" ", "")
    if len(chars) < 2:
        return Counter(chars)  # one character: compare it as itself
    return Counter(chars[i : i + 2] for i in range(len(chars) - 1))


def char_f1(prediction: str, reference: str) -> float:
    """F1 of the character bigrams the two texts share (as multisets), spaces ignored; 1.0 when both are
    empty. "서울 강남구" vs "서울시 강남구": 3 shared of 4 and 5 bigrams -> F1 = 2*3 / (4+5) = 0.667."""
    pred, ref = _bigrams(prediction), _bigrams(reference)
    if not pred and not ref:
        return 1.0
    shared = sum((pred & ref).values())
    if shared == 0:
        return 0.0
    return 2 * shared / (sum(pred.values()) + sum(ref.values()))


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


@dataclass(frozen=True)
class Answer:
    """One question asked: its kind and language, what was answered, and the reference answer."""

    kind: str
    lang: str
    prediction: str
    reference: str


def repeats_a_line(prediction: str, reference: str) -> bool:
    """Whether the answer says some line more often than the reference does: the loop a weak model
    falls into ("Employment type: Full-time" six times). Lines compare normalised; blank ones do not count."""
    said = Counter(line for line in map(normalize, prediction.splitlines()) if line)
    meant = Counter(line for line in map(normalize, reference.splitlines()) if line)
    return any(n > 1 and n > meant[line] for line, n in said.items())


def _mean_scores(answers: Sequence[Answer]) -> dict[str, float | int]:
    n = len(answers)
    return {
        "n": n,
        "exact": sum(exact_match(a.prediction, a.reference) for a in answers) / n if n else 0.0,
        "f1": sum(char_f1(a.prediction, a.reference) for a in answers) / n if n else 0.0,
    }


def score_answers(answers: Sequence[Answer]) -> dict[str, Any]:
    """Means of the scores: {"all", "fields", "long"} ({n, exact, f1}: every answer, the field questions',
    the long answers'), "repeated" (the share of answers that repeat a line the reference does not),
    "by_kind" and "by_lang"."""
    kinds = [k for k in KINDS if any(a.kind == k for a in answers)]
    kinds += sorted({a.kind for a in answers} - set(kinds))
    n = len(answers)
    return {
        "all": _mean_scores(answers),
        "fields": _mean_scores([a for a in answers if a.kind in FIELD_KINDS]),
        "long": _mean_scores([a for a in answers if a.kind not in FIELD_KINDS]),
        "repeated": sum(repeats_a_line(a.prediction, a.reference) for a in answers) / n if n else 0.0,
        "by_kind": {k: _mean_scores([a for a in answers if a.kind == k]) for k in kinds},
        "by_lang": {
            lang: _mean_scores([a for a in answers if a.lang == lang])
            for lang in sorted({a.lang for a in answers})
        },
    }


# --- the held-out questions --------------------------------------------------------------------------


def read_meta(data_dir: str | Path) -> dict[str, Any]:
    path = Path(data_dir) / META_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (make the data with `jai prepare`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def heldout_samples(meta: dict[str, Any], tok: Encoder) -> list[Sample]:
    """The validation split's samples, exactly as `jai prepare` wrote them to val.bin: the same postings
    (its sources, seed and split), questions and documents fitted to its context."""
    sources = meta.get("sources") or []
    missing = [s for s in sources if not Path(s).exists()]
    if not sources or missing:
        raise DatasetError(
            f"the postings this data was prepared from are not there "
            f"({', '.join(missing) or 'none recorded'}); answers need them (`jai eval --answers 0` measures "
            "the loss alone)"
        )
    postings, _ = load_postings(sources)
    _, val = split_postings(postings, meta["val_fraction"], meta["seed"])
    # The kinds this data was prepared with: data made before field questions existed asks the long ones.
    kinds = [k for k in meta.get("question_kinds", LONG_KINDS) if k in KINDS]
    samples = make_samples(val, meta["seed"], kinds)
    if meta.get("context"):  # data prepared before samples were fitted has no context recorded
        samples = fit_samples(tok, samples, meta["context"])
    return list(samples)


def postings_samples(
    paths: Sequence[str | Path], tok: Encoder, context: int, seed: int = 1337
) -> list[Sample]:
    """Every question kind asked of every posting in these files or folders (either schema `jai prepare`
    reads), documents fitted to `context` as `jai prepare` fits them: `jai eval --postings`, for postings
    written by someone else. Unlike `heldout_samples` nothing here knows what the model trained on: pass
    postings it never saw."""
    postings, _ = load_postings(list(paths))
    return list(fit_samples(tok, make_samples(postings, seed), context))


def spread(samples: Sequence[Sample], limit: int | None) -> list[Sample]:
    """At most `limit` samples, taken in turn from each (kind, language), so a small limit still asks
    every kind in every language; the order is deterministic."""
    if limit is None or limit >= len(samples):
        return list(samples)
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.kind, s.lang), []).append(s)
    out: list[Sample] = []
    for i in range(max(len(g) for g in groups.values())):
        for g in groups.values():
            if i < len(g) and len(out) < limit:
                out.append(g[i])
    return out


# --- loss ------------------------------------------------------------------------------------------------


def loss_windows(
    data: np.ndarray, block_size: int, max_tokens: int | None, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(x, y) batches that cover the first `max_tokens` targets of `data` once each: consecutive,
    non-overlapping windows of `block_size` (the last one shorter), so every target is predicted from
    its window's start. Deterministic: the same tokens for every model."""
    n = len(data) - 1 if max_tokens is None else min(len(data) - 1, max_tokens)
    starts = list(range(0, n, block_size))
    full = [i for i in starts if i + block_size <= n]
    for b in range(0, len(full), batch_size):
        rows = np.stack([data[i : i + block_size + 1] for i in full[b : b + batch_size]]).astype(np.int64)
        yield rows[:, :-1], rows[:, 1:]
    if len(full) < len(starts):
        rest = np.asarray(data[starts[-1] : n + 1], dtype=np.int64)[None]
        yield rest[:, :-1], rest[:, 1:]


def loss_report(total_nats: float, n_tokens: int, n_bytes: int) -> dict[str, float | int]:
    """Mean loss per token, perplexity, and bits per byte of the text the targets decode to."""
    mean = total_nats / n_tokens
    return {
        "loss": mean,
        "perplexity": math.exp(min(mean, 700.0)),
        "bits_per_byte": total_nats / math.log(2) / n_bytes if n_bytes else float("nan"),
        "tokens": n_tokens,
        "bytes": n_bytes,
    }


# --- the report --------------------------------------------------------------------------------------


def format_table(result: dict[str, Any]) -> str:
    """The scores as a plain-text table: one row per kind, per language, and all together."""
    lines = []
    loss = result.get("loss")
    if loss:
        lines.append(
            f"validation loss {loss['loss']:.4f}  perplexity {loss['perplexity']:,.2f}  "
            f"bits per byte {loss['bits_per_byte']:.4f}  ({loss['tokens']:,} tokens, {loss['bytes']:,} bytes)"
        )
    answers = result.get("answers")
    if answers:
        lines.append("")
        lines.append(f"{'answers':<22}{'n':>5}{'exact':>9}{'char F1':>10}")
        rows: Iterable[tuple[str, dict[str, Any]]] = [
            *((f"  {k}", v) for k, v in answers["by_kind"].items()),
            *((f"  lang {k}", v) for k, v in answers["by_lang"].items()),
            ("  fields", answers["fields"]),
            ("  long answers", answers["long"]),
            ("  all", answers["all"]),
        ]
        for name, s in rows:
            if s["n"]:
                lines.append(f"{name:<22}{s['n']:>5}{s['exact']:>9.3f}{s['f1']:>10.3f}")
        lines.append(f"{'  repeated a line':<27}{answers['repeated']:>9.3f}")
    return "\n".join(lines)
