"""Loading postings in the reference schema: normalisation, skipped records, errors, the bundled sample."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from jai.data import generator as make_sample
from jai.data.postings import (
    BAD_ENCODING,
    DUPLICATE,
    MISSING_CONTENT,
    MISSING_TITLE,
    NOT_OBJECT,
    WRONG_TYPE,
    Posting,
    PostingsError,
    is_korean,
    load_postings,
)
from jai.data.text import is_placeholder

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "jobs" / "postings.json"

GOOD = {
    "id": "sg-1",
    "title": "  백엔드   개발자 ",
    "content": "## 주요 업무\r\n\r\n- API 설계 및 개발\r\n- 코드 리뷰\r\n\r\n\r\n\r\n"
    "## 자격 요건\n- Python 경력 3년 이상  ",
    "created_at": "2025-03-01T09:00:00+08:00",
    "meta": {
        "company_name": "라이언시티랩스",
        "location": "싱가포르 원노스",
        "min_salary": 5500,
        "max_salary": "8,500",
        "salary_currency": "SGD",
        "salary_type": "monthly",
        "skills": "Python, Go, CI/CD",
        "requirements": "- Python 경력 3년 이상\n- 영어 가능자",
        "responsibilities": ["API 설계 및 개발", "코드 리뷰", "000"],
        "benefits": ["연차 14일", "성과급"],
        "remote_work": True,
        "contact_phone": "000",
        "contact_email": "N/A",
        "application_url": "https://example.sg/jobs/1",
        "deadline": "-",
    },
}


def write(tmp_path: Path, obj: object, name: str = "postings.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def load_one(tmp_path: Path, record: dict) -> Posting:
    postings, _ = load_postings(write(tmp_path, [record]))
    return postings[0]


def test_good_record_is_normalised(tmp_path: Path) -> None:
    p = load_one(tmp_path, GOOD)
    assert p.id == "sg-1"
    assert p.title == "백엔드 개발자"  # whitespace runs collapsed, ends stripped
    assert "\r" not in p.content and "\n\n\n" not in p.content and not p.content.endswith(" ")
    assert p.content.startswith("## 주요 업무\n\n- API 설계 및 개발")
    assert (p.company, p.location) == ("라이언시티랩스", "싱가포르 원노스")
    # Built from min/max: both amounts, the currency, and the Korean word for monthly.
    assert p.salary is not None and all(s in p.salary for s in ("5,500", "8,500", "SGD", "월"))
    assert p.skills == ("Python", "Go", "CI/CD")  # a comma-separated string becomes a list
    assert p.requirements == ("Python 경력 3년 이상", "영어 가능자")  # bullets stripped
    assert p.responsibilities == ("API 설계 및 개발", "코드 리뷰")  # the "000" item dropped
    assert p.benefits == ("연차 14일", "성과급")
    assert p.remote == "yes"
    assert p.contacts == {"url": "https://example.sg/jobs/1"}  # "000" phone and "N/A" email are absent
    assert p.deadline is None  # "-"
    assert p.lang == "ko"


@pytest.mark.parametrize("meta", [{}, None, "missing"])
def test_empty_or_missing_meta(tmp_path: Path, meta: object) -> None:
    record = {"id": 7, "title": "Barista", "content": "Make great coffee."}
    if meta != "missing":
        record["meta"] = meta
    p = load_one(tmp_path, record)
    assert p.id == "7" and p.title == "Barista"
    assert (p.company, p.salary, p.skills, p.contacts) == (None, None, (), {})


def test_explicit_salary_text_wins_and_negotiable_is_kept(tmp_path: Path) -> None:
    p = load_one(
        tmp_path, {"title": "Chef", "content": "Cook.", "meta": {"salary": "Negotiable", "min_salary": 3000}}
    )
    assert p.salary == "Negotiable"


@pytest.mark.parametrize(
    "meta, salary",
    [
        (
            {"min_salary": "10,001+", "salary_currency": "AED", "salary_type": "monthly"},
            "AED 10,001+ / month",
        ),
        ({"min_salary": "Average Total Pay = AED 11,244 / month"}, "Average Total Pay = AED 11,244 / month"),
        ({"min_salary": 3000, "max_salary": "Up to 4,500 with bonus"}, "Up to 4,500 with bonus"),
    ],
)
def test_salary_bound_in_words_is_kept_and_counted(tmp_path: Path, meta: dict, salary: str) -> None:
    """Real postings write bounds as text; they used to be dropped whole as wrong_type."""
    record = {"id": "ae-1", "title": "Chef", "content": "Cook.", "meta": meta}
    postings, report = load_postings(write(tmp_path, [record, {"id": "ok", "title": "t", "content": "c"}]))
    assert [p.salary for p in postings] == [salary, None]
    assert report.salary_text == 1 and not report.skipped
    assert "1 used postings have a salary bound in words" in report.summary()
    assert report.to_dict()["salary_text"] == 1


def test_escaped_line_breaks_become_lines_and_list_items(tmp_path: Path) -> None:
    """Double-escaped JSON: the line breaks arrive as the two characters backslash and n."""
    record = {
        "id": "esc",
        "title": "Line cook",
        "content": "## Duties\\n\\n- Prep\\n- Cook\\r\\n## Hours\\n\\tShifts",
        "meta": {"requirements": "- Food hygiene\\n- 2 years", "benefits": ["Meals\\nTransport"]},
    }
    path = write(tmp_path, [record])
    assert "\\\\n" in path.read_text()  # the file holds backslash-backslash-n: JSON for the two characters
    (p,), report = load_postings(path)
    assert p.content == "## Duties\n\n- Prep\n- Cook\n## Hours\n\tShifts"
    assert p.requirements == ("Food hygiene", "2 years")
    assert p.benefits == ("Meals Transport",)  # one item of a JSON list stays one item, on one line
    assert report.unescaped == 1 and "escaped line breaks" in report.summary()


def test_a_single_backslash_n_beside_real_lines_is_kept(tmp_path: Path) -> None:
    content = "Write parsers.\nKnow that \\n ends a line in C."
    (p,), report = load_postings(write(tmp_path, [{"title": "Dev", "content": content}]))
    assert p.content == content and report.unescaped == 0


def test_record_without_id_gets_file_and_index(tmp_path: Path) -> None:
    postings, _ = load_postings(
        write(tmp_path, [{"title": "A", "content": "a"}, {"title": "B", "content": "b"}])
    )
    assert [p.id for p in postings] == ["postings.json#0", "postings.json#1"]


@pytest.mark.parametrize(
    "value, absent",
    [("000", True), ("000-0000-0000", True), ("N/A", True), ("-", True), ("", True), ("없음", True)],
)
def test_placeholders(value: str, absent: bool) -> None:
    assert is_placeholder(value) is absent


@pytest.mark.parametrize("value", ["+65 6123 4567", "3000", "Python", "0.5"])
def test_real_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


BAD = [
    ("just a string", NOT_OBJECT, "got str"),
    (["a", "list"], NOT_OBJECT, "got list"),
    ({"content": "no title"}, MISSING_TITLE, "title"),
    ({"title": "  ", "content": "blank title"}, MISSING_TITLE, "title"),
    ({"title": "no content"}, MISSING_CONTENT, "content"),
    ({"title": "placeholder content", "content": "N/A"}, MISSING_CONTENT, "content"),
    ({"title": 404, "content": "numeric title"}, WRONG_TYPE, "'title'"),
    ({"title": "t", "content": ["not", "text"]}, WRONG_TYPE, "'content'"),
    ({"title": "t", "content": "c", "meta": ["Python"]}, WRONG_TYPE, "'meta'"),
    ({"title": "t", "content": "c", "meta": {"skills": 3}}, WRONG_TYPE, "meta.skills"),
    ({"title": "t", "content": "c", "meta": {"company_name": {"x": 1}}}, WRONG_TYPE, "meta.company_name"),
    ({"title": "t", "content": "c", "meta": {"min_salary": [3000]}}, WRONG_TYPE, "meta.min_salary"),
    ({"title": "t", "content": "help \ufffd\ufffd the chef"}, BAD_ENCODING, "U+FFFD"),
    ({"title": "t", "content": "the Cityÿ¢ÿ¿ÿ¿s rules"}, BAD_ENCODING, "'content'"),
]


@pytest.mark.parametrize("record, reason, detail", BAD)
def test_bad_record_is_skipped_with_reason(tmp_path: Path, record: object, reason: str, detail: str) -> None:
    good = {"id": "ok", "title": "Good", "content": "Fine."}
    postings, report = load_postings(write(tmp_path, [good, record]))
    assert [p.id for p in postings] == ["ok"]
    assert report.skipped == Counter({reason: 1})
    message = report.examples[reason][0]
    assert message.startswith("postings.json: record 1") and detail in message


def test_all_bad_kinds_counted_together(tmp_path: Path) -> None:
    records = [{"id": "ok", "title": "Good", "content": "Fine."}] + [r for r, _, _ in BAD]
    postings, report = load_postings(write(tmp_path, records))
    assert report.used == len(postings) == 1
    assert report.skipped == Counter(reason for _, reason, _ in BAD)
    assert "skipped" in report.summary() and str(len(BAD)) in report.summary()


def test_invalid_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(
        '[\n  {"title": "a", "content": "b"},\n  {"title": "c",, "content": "d"}\n]', encoding="utf-8"
    )
    with pytest.raises(PostingsError, match=r"broken\.json: invalid JSON at line 3, column 17"):
        load_postings(path)


def test_unknown_shape_names_file(tmp_path: Path) -> None:
    with pytest.raises(PostingsError, match=r"odd\.json: expected a JSON list"):
        load_postings(write(tmp_path, {"postings": []}, "odd.json"))


@pytest.mark.parametrize("content", [[], [{"title": "only bad"}, 5]])
def test_no_usable_record_fails_clearly(tmp_path: Path, content: list) -> None:
    with pytest.raises(PostingsError, match="no usable posting"):
        load_postings(write(tmp_path, content))


def test_missing_input_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(PostingsError, match="no such file"):
        load_postings(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PostingsError, match="no .json files"):
        load_postings(tmp_path / "empty")
    with pytest.raises(PostingsError, match="no input"):
        load_postings([])


def test_directory_input_and_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path, [{"id": "x", "title": "First", "content": "a"}], "b.json")
    write(
        tmp_path,
        [{"id": "x", "title": "Repost", "content": "a"}, {"id": "y", "title": "Other", "content": "c"}],
        "a.json",
    )
    (tmp_path / "notes.txt").write_text("ignored")
    postings, report = load_postings(tmp_path)
    assert [Path(f).name for f in report.files] == ["a.json", "b.json"]  # sorted
    assert [p.title for p in postings] == ["Repost", "Other"]  # a.json first; b.json's "x" is the duplicate
    assert report.skipped == Counter({DUPLICATE: 1})


def test_mojibake_is_repaired(tmp_path: Path) -> None:
    original = "## 자격 요건\n- “Python” 경력 3년 이상 — 우대"
    mangled = make_sample.as_mojibake(original)
    assert mangled != original and "ì" in mangled
    postings, report = load_postings(
        write(tmp_path, [{"title": make_sample.as_mojibake("개발자"), "content": mangled}])
    )
    assert (postings[0].title, postings[0].content) == ("개발자", original)
    assert report.repaired == 1


def test_korean_detection() -> None:
    assert is_korean("백엔드 개발자 (Python, Go, AWS, Kubernetes, PostgreSQL)")
    assert not is_korean("Backend Engineer (Python, Go)")
    assert not is_korean("Backend Engineer, 싱가포르 office, Python Go Kubernetes AWS Terraform Docker Linux")
    ko = Posting(id="1", title="간호사", content="환자 간호")
    en = Posting(id="2", title="Nurse", content="Patient care")
    assert (ko.lang, en.lang) == ("ko", "en")


# --- the bundled sample --------------------------------------------------------------------------------


def test_bundled_sample_is_the_generators_output() -> None:
    """The committed JSON is byte for byte what `python -m jai.data.generator` writes from its tables (it
    is deterministic)."""
    records = make_sample.build()
    assert json.dumps(records, ensure_ascii=False, indent=1) + "\n" == SAMPLE.read_text(encoding="utf-8")
    assert SAMPLE.stat().st_size < 1_500_000


def test_bundled_sample_loads_with_every_skip_reason() -> None:
    raw = json.loads(SAMPLE.read_text(encoding="utf-8"))
    postings, report = load_postings(SAMPLE)
    assert report.used == len(postings) and report.used + sum(report.skipped.values()) == len(raw)
    assert set(report.skipped) == {NOT_OBJECT, MISSING_CONTENT, WRONG_TYPE, BAD_ENCODING, DUPLICATE}
    assert report.repaired >= 1
    langs = Counter(p.lang for p in postings)
    assert langs["ko"] > 50 and langs["en"] > 50
    assert len({p.id for p in postings}) == len(postings)
    # Varied: many titles and companies, salaries present and absent, meta empty in some records.
    assert len({p.title for p in postings}) > 60 and len({p.company for p in postings}) > 20
    assert any(p.salary for p in postings) and any(p.salary is None for p in postings)
    assert any(isinstance(r, dict) and r.get("meta") == {} for r in raw)
    assert any(isinstance(r, dict) and (r.get("meta") or {}).get("contact_phone") == "000" for r in raw)
    assert all(p.contacts.get("phone") != "000" for p in postings)
    assert sum("\n- " in p.content or "\n1. " in p.content for p in postings) > len(postings) * 0.9
