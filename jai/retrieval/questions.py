"""Held-out questions that name a posting the way a person would, and recall@k over them.

A job seeker does not know a posting's id: they say "What does K-Style Fashion pay its Merchandiser?" or
"부기스 머천다이저 자격 요건은?". Each question here names the posting's title and its company, its place
or both, shortened as people shorten them ("K-Style Fashion", not "K-Style Fashion Pte. Ltd."; "Bugis",
not "Bugis, Singapore"), and asks for one fact, in English or Korean. Seeded: the same postings give the
same questions.

Two postings with the same title, company and place cannot be told apart by any such question; a hit
on either counts for `recall` (`strict_recall` wants the very posting).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jai.data.postings import Posting

_LEGAL = re.compile(r"\s*(?:Pte\.?\s*Ltd\.?|Co\.,?\s*Ltd\.?|Ltd\.?|Inc\.?|LLC|\(주\)|주식회사)\s*", re.I)
_PAREN = re.compile(r"\s*\([^)]*\)")

ASK_EN = (
    "What does {who} pay{for_title}?",
    "What are the requirements for the {title} job{at}?",
    "How do I apply to be a {title}{at}?",
    "What does a {title}{at} do day to day?",
    "Is the {title} role{at} full time?",
)
ASK_KO = (
    "{who_ko}{title} 급여는 얼마인가요?",
    "{who_ko}{title} 자격 요건이 뭔가요?",
    "{who_ko}{title} 지원 방법 알려주세요",
    "{who_ko}{title}는 어떤 일을 하나요?",
)


@dataclass(frozen=True)
class Question:
    text: str
    posting_id: str
    lang: str


def short_company(name: str) -> str:
    return _LEGAL.sub(" ", name).strip(" ,") or name


def short_place(location: str) -> str:
    """ "Bugis, Singapore" -> "Bugis"; "싱가포르 (Raffles Place)" -> "Raffles Place"; an address's street."""
    inner = re.search(r"\(([^)]+)\)", location)
    return (inner.group(1) if inner else location.split(",")[0]).strip()


def short_title(title: str) -> str:
    return _PAREN.sub("", title).strip() or title


def _names(p: Posting, rng: random.Random) -> tuple[str, list[str]]:
    """The posting's short title, and its short company, place or both (a seeded pick, in a seeded order)."""
    names = []
    if p.company:
        names.append(short_company(p.company))
    if p.location:
        names.append(short_place(p.location))
    return short_title(p.title), rng.sample(names, rng.randint(1, len(names))) if names else []


def named_question(p: Posting, question: str, lang: str, rng: random.Random) -> str:
    """`question`, which names no posting ("What are the requirements?", as `jai eval` asks), preceded by
    the posting named as the questions here name it: "Merchandiser at K-Style Fashion: What are ...?"."""
    title, names = _names(p, rng)
    if lang == "en":
        return (
            title + "".join(f" {'at' if i == 0 else 'in'} {n}" for i, n in enumerate(names)) + f": {question}"
        )
    return "".join(f"{n} " for n in names) + f"{title}: {question}"


def question_for(p: Posting, lang: str, rng: random.Random) -> Question:
    title, names = _names(p, rng)
    if lang == "en":
        at = "".join(f" {'at' if i == 0 else 'in'} {n}" for i, n in enumerate(names))
        template = rng.choice(ASK_EN)
        who = names[0] if names else "the employer"
        for_title = f" its {title}" + "".join(f" in {n}" for n in names[1:])
        text = template.format(title=title, at=at, who=who, for_title=for_title)
    else:
        who_ko = "".join(f"{n} " for n in names)
        text = rng.choice(ASK_KO).format(title=title, who_ko=who_ko)
    return Question(text, p.id, lang)


def make_questions(postings: Sequence[Posting], seed: int = 0) -> list[Question]:
    """One question in each language per posting."""
    rng = random.Random(f"questions/{seed}")
    return [question_for(p, lang, rng) for p in postings for lang in ("en", "ko")]


def recall(
    questions: Sequence[Question],
    search: Callable[[str, int], list[str]],
    postings: Sequence[Posting],
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """recall@k (a hit on an indistinguishable twin counts) and strict recall@k, for each k in `ks`."""
    by_id = {p.id: p for p in postings}

    def key(pid: str) -> tuple[str, str | None, str | None]:
        p = by_id[pid]
        return (p.title, p.company, p.location)

    hits = {f"recall@{k}": 0 for k in ks} | {f"strict_recall@{k}": 0 for k in ks}
    for q in questions:
        found = search(q.text, max(ks))
        for k in ks:
            top = found[:k]
            hits[f"strict_recall@{k}"] += q.posting_id in top
            hits[f"recall@{k}"] += any(key(pid) == key(q.posting_id) for pid in top)
    return {name: n / max(1, len(questions)) for name, n in hits.items()}
