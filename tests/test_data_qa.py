"""Postings -> Q&A samples: format, language, skipped kinds, no invented facts, determinism."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from jai.data.postings import Posting, load_postings
from jai.data.qa import (
    ANSWER,
    ANSWER_END,
    DOC,
    DOC_END,
    ECHO_QUESTIONS,
    FIELD_KINDS,
    KINDS,
    LONG_KINDS,
    MARKERS,
    QUESTION,
    QUESTION_END,
    build_prompt,
    drill_samples,
    echo_samples,
    field_value,
    make_samples,
    render_doc,
    render_header,
    samples_for,
)
from jai.data.text import has_hangul
from jai.tokenizer import SPECIAL_TOKENS

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "jobs" / "postings.json"

KO = Posting(
    id="ko-1",
    title="물류 코디네이터",
    content="머라이언 로지스틱스는 한국 소비재를 동남아시아에 공급합니다. "
    "포워딩팀에서 함께할 분을 찾습니다.\n\n"
    "## 주요 업무\n\n- 선적 예약 및 추적\n- 통관 서류 준비\n\n"
    "## 자격 요건\n\n- 물류 경력 2년 이상\n- 엑셀 기본 활용 가능자\n\n"
    "## 복리후생\n\n- 연차 14일\n- 교통비 지원",
    company="머라이언 로지스틱스",
    location="싱가포르 투아스",
    salary="월 SGD 3,200~4,500",
    employment_type="정규직",
    skills=("Excel", "TradeNet"),
    requirements=("물류 경력 2년 이상", "엑셀 기본 활용 가능자"),
    responsibilities=("선적 예약 및 추적", "통관 서류 준비"),
    benefits=("연차 14일", "교통비 지원"),
    contacts={"email": "hr@merlion.sg", "phone": "+65 6123 4567"},
    deadline="2025-06-30",
)
EN = Posting(
    id="en-1",
    title="Barista",
    content="Kampong Kopi roasts its own beans. We are hiring a barista in Bugis.\n\n- Make espresso",
    company="Kampong Kopi",
    salary="SGD 12 - 14 per hour",
    skills=("Latte art",),
    contacts={"url": "https://kopi.sg/jobs/1"},
)
BARE = Posting(
    id="bare", title="Kitchen Helper", content="Help in the kitchen of a busy restaurant in Bugis."
)


def test_markers_are_the_tokenizer_special_tokens() -> None:
    assert MARKERS == (QUESTION, QUESTION_END, DOC, DOC_END, ANSWER, ANSWER_END)
    assert set(MARKERS) <= set(SPECIAL_TOKENS)


def test_sample_layout_and_prompt_prefix() -> None:
    for s in samples_for(KO, seed=0):
        text = s.text
        prompt = build_prompt(s.question, s.doc)
        assert text.startswith(prompt) and prompt.endswith(ANSWER)
        assert text.endswith(ANSWER_END)
        # Each marker exactly once, in order.
        in_order = (DOC, DOC_END, QUESTION, QUESTION_END, ANSWER, ANSWER_END)
        assert sorted(in_order) == sorted(MARKERS)
        positions = [text.index(m) for m in in_order]
        assert positions == sorted(positions) and all(text.count(m) == 1 for m in MARKERS)
        assert text[len(prompt) :].strip().removesuffix(ANSWER_END).strip() == s.answer


def test_doc_holds_header_fields_and_content() -> None:
    doc = render_doc(KO)
    for value in (KO.title, KO.company, KO.location, KO.salary):
        assert value in doc
    assert doc.endswith(KO.content)
    assert "Location" not in render_doc(EN)  # no line for an absent field


def test_language_follows_the_posting() -> None:
    for s in samples_for(KO, seed=1):
        assert s.lang == "ko" and has_hangul(s.question)
    for s in samples_for(EN, seed=1):
        assert s.lang == "en" and not has_hangul(s.question + s.answer)


def test_kinds_need_their_fields() -> None:
    ko_kinds = {s.kind for s in samples_for(KO, seed=0)}
    assert ko_kinds == set(LONG_KINDS) | {k for k in FIELD_KINDS if field_value(KO, k)}
    assert len(ko_kinds) >= len(KINDS) - 3  # the full posting has nearly every field
    assert [s.kind for s in samples_for(BARE, seed=0)] == ["summary", "title"]
    en_kinds = {s.kind for s in samples_for(EN, seed=0)}
    assert en_kinds & set(LONG_KINDS) == {"summary", "requirements", "conditions", "apply"}  # no duties
    assert en_kinds & set(FIELD_KINDS) == {k for k in FIELD_KINDS if field_value(EN, k)}


def test_field_answers_are_the_documents_own_lines() -> None:
    """A field question is answered by one line of the document, copied: what exact match can check."""
    for posting in (KO, EN):
        fields = [s for s in samples_for(posting, seed=0) if s.kind in FIELD_KINDS]
        assert fields
        for s in fields:
            assert s.answer in s.doc.splitlines(), s.kind
            assert s.answer.endswith(": " + field_value(posting, s.kind))


def test_drills_ask_the_field_questions_of_the_header_alone() -> None:
    full = {s.kind: s for s in samples_for(EN, seed=0) if s.kind in FIELD_KINDS}
    drills = {s.kind: s for s in drill_samples([EN], seed=0)}
    assert drills.keys() == full.keys()  # every field the posting states, nothing else
    header = render_header(EN)
    assert render_doc(EN) == header + "\n\n" + EN.content
    for kind, s in drills.items():
        assert s.doc == header and EN.content not in s.doc
        assert s.answer == full[kind].answer and s.answer in header.splitlines()
    # phrased apart from the full samples, so the pair does not teach one question per posting
    assert any(s.question != full[k].question for k, s in drills.items())


def test_echo_asks_the_whole_header_back_in_the_posting_language() -> None:
    (en,), (ko,) = echo_samples([EN], seed=0), echo_samples([KO], seed=0)
    for posting, s in ((EN, en), (KO, ko)):
        assert s.kind == "echo" and s.kind not in KINDS  # trained on, never asked by `jai eval`
        assert s.doc == s.answer == render_header(posting) and s.lang == posting.lang
    assert ko.question in ECHO_QUESTIONS["ko"] and en.question in ECHO_QUESTIONS["en"]
    assert [s.question for s in echo_samples([EN], seed=0)] == [en.question]  # seeded


def test_answers_quote_the_posting() -> None:
    answers = {s.kind: s.answer for s in samples_for(KO, seed=3)}
    assert all(r in answers["requirements"] for r in KO.requirements + KO.skills)
    assert KO.salary in answers["conditions"] and all(b in answers["conditions"] for b in KO.benefits)
    assert all(v in answers["apply"] for v in KO.contacts.values())
    assert all(d in answers["duties"] for d in KO.responsibilities)


def test_list_items_the_posting_does_not_state_are_left_out() -> None:
    # a posting's fields can list more than its text shows (a generated posting leaves out its benefits
    # section a quarter of the time): the model reads the text, so an answer must not hold the rest
    unstated = dataclasses.replace(
        KO,
        requirements=(*KO.requirements, "운전면허 소지자"),
        benefits=(*KO.benefits, "주택 수당"),
        responsibilities=(*KO.responsibilities, "창고 재고 관리"),
    )
    answers = {s.kind: s.answer for s in samples_for(unstated, seed=3)}
    assert "운전면허" not in answers["requirements"] and "주택 수당" not in answers["conditions"]
    assert "창고 재고" not in answers["duties"] and "창고 재고" not in answers["summary"]
    assert all(r in answers["requirements"] for r in KO.requirements)  # the stated ones stay
    assert all(b in answers["conditions"] for b in KO.benefits)
    doc = render_doc(unstated)
    for answer in answers.values():
        items = [line[2:] for line in answer.splitlines() if line.startswith("- ")]
        assert all(item in doc for item in items)


def test_missing_salary_is_said_not_invented() -> None:
    p = Posting(
        id="x", title="Cook", content="Cook Korean food for our guests every day.", benefits=("Meals",)
    )
    (conditions,) = [s for s in samples_for(p, seed=0) if s.kind == "conditions"]
    assert "not stated" in conditions.answer and not re.search(r"\d", conditions.answer)


@pytest.fixture(scope="module")
def sample_postings() -> list[Posting]:
    return load_postings(SAMPLE)[0]


def test_no_number_in_an_answer_is_made_up(sample_postings: list[Posting]) -> None:
    # Every number an answer states must appear in the posting: the answers only rearrange facts.
    for p in sample_postings:
        facts = render_doc(p) + " ".join(str(v) for v in vars(p).values())
        for s in samples_for(p, seed=5):
            for number in re.findall(r"\d[\d,.]*", s.answer):
                assert number.rstrip(".,") in facts, (p.id, s.kind, number)


def test_same_seed_same_samples_other_seed_other_phrasings(sample_postings: list[Posting]) -> None:
    some = sample_postings[:40]
    first = list(make_samples(some, seed=7))
    assert first == list(make_samples(some, seed=7))
    other = list(make_samples(some, seed=8))
    assert [(s.posting_id, s.kind) for s in first] == [(s.posting_id, s.kind) for s in other]
    assert sum(a.question != b.question for a, b in zip(first, other, strict=True)) > len(first) // 3
    # A posting's samples do not depend on which other postings are converted with it.
    assert list(make_samples(some[5:6], seed=7)) == [s for s in first if s.posting_id == some[5].id]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown question kinds"):
        list(make_samples([KO], seed=0, kinds=["wages", "summary"]))
