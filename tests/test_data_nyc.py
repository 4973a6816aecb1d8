"""The NYC importer: mojibake repair, layout, field mapping, dedup by job_id, and the real files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from jai.data.nyc import relayout, repair_mojibake
from jai.data.postings import BAD_ENCODING, DUPLICATE, load_postings
from jai.data.prepare import prepare
from jai.data.text import encoding_problem
from jai.dataset import TokenBin

NYC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nyc-jobs"
needs_nyc = pytest.mark.skipif(not NYC.is_dir(), reason=f"{NYC} not present")


# Excerpts of the damage as it appears in the NYC export, and what the writer typed.
@pytest.mark.parametrize(
    "broken, fixed",
    [
        (
            "Critical functions performed include:     â€¢   Serve as",
            "Critical functions performed include:     •   Serve as",
        ),
        ("the Administration for Childrenâ€™s Services", "the Administration for Children’s Services"),
        ("experience as described in â€œ1â€\x9d above", "experience as described in “1” above"),
        ("Monday â€“ Friday â€” full time", "Monday – Friday — full time"),
        ("up to a maximum of 3Â½ years", "up to a maximum of 3½ years"),
        ("on a 90Â° day", "on a 90° day"),
        ("ServicesÂ Duties include", "Services Duties include"),
        ("Ã¢â‚¬Å“double-encodedÃ¢â‚¬Â\x9d", "“double-encoded”"),
        ("mixed: café and â€œquotesâ€\x9d", "mixed: café and “quotes”"),
        ("ì±„ìš© ê³µê³\xa0", "채용 공고"),  # 고 ends in byte A0, which cp1252 reads as a no-break space
    ],
)
def test_mojibake_repair(broken: str, fixed: str) -> None:
    assert repair_mojibake(broken) == fixed
    assert encoding_problem(repair_mojibake(broken)) is None


@pytest.mark.parametrize(
    "clean", ["café crème", "채용 공고 — “quotes” • bullets", "plain ASCII", "¿Qué tal?", "Åland"]
)
def test_correct_text_is_left_alone(clean: str) -> None:
    assert repair_mojibake(clean) == clean
    assert encoding_problem(clean) is None


@pytest.mark.parametrize(
    "broken", ["the Cityÿ¢ÿ¿ÿ¿s obligation", "Manage¿ online", "lost \ufffd byte", "a\x9dcontrol"]
)
def test_unrepairable_text_is_detected(broken: str) -> None:
    assert encoding_problem(repair_mojibake(broken)) is not None


def test_relayout_restores_lists() -> None:
    text = (
        "Duties include:     •   Lead sessions.   •  Write specs.     Requirements:  1. A degree; or  2. X."
    )
    assert relayout(text) == (
        "Duties include:\n- Lead sessions.\n- Write specs. Requirements:\n1. A degree; or\n2. X."
    )


def nyc_record(job_id: str, posting_type: str = "External", **fields: object) -> dict:
    record = {
        "id": f"{job_id}-{posting_type}",
        "job_id": job_id,
        "posting_type": posting_type,
        "agency": "DEPT OF PARKS & RECREATION",
        "business_title": "Park Supervisor",
        "civil_service_title": "PARK SUPERVISOR",
        "salary_range_from": 48000,
        "salary_range_to": 61500,
        "salary_frequency": "Annual",
        "work_location": "830 Fifth Ave",
        "job_description": "Supervise park staff.   â€¢ Plan daily routes.  â€¢ Inspect playgrounds.",
        "minimum_qual_requirements": "1. Two years of experience; or  2. A degree.",
        "preferred_skills": "Leadership; clear writing; a driver licence",
        "to_apply": "Apply online at the City careers site.",
        "recruitment_contact": "",
        "post_until": "1900-01-01T01:00:00Z",
        "posting_date": "2014-05-02T00:00:00Z",
    }
    return record | fields


def write_nyc(tmp_path: Path, records: list, name: str = "nycjobs1.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"value": records}), encoding="utf-8")
    return path


def test_fields_are_mapped(tmp_path: Path) -> None:
    (p,), report = load_postings(write_nyc(tmp_path, [nyc_record("42")]))
    assert (p.id, p.title, p.company, p.location) == (
        "nyc:42",
        "Park Supervisor",
        "DEPT OF PARKS & RECREATION",
        "830 Fifth Ave",
    )
    assert all(s in p.salary for s in ("$48,000", "$61,500", "year"))
    assert p.content.startswith("Supervise park staff.\n- Plan daily routes.\n- Inspect playgrounds.")
    assert "## Minimum qualifications" in p.content and "## Preferred skills" in p.content
    assert p.responsibilities == ("Plan daily routes.", "Inspect playgrounds.")
    assert p.requirements == ("Two years of experience; or", "A degree.")
    assert p.skills == ("Leadership", "clear writing", "a driver licence")
    assert p.contacts == {"apply": "Apply online at the City careers site."}  # empty contact dropped
    assert p.deadline is None and p.created_at == "2014-05-02"  # 1900-01-01 means "no date"
    assert p.lang == "en" and report.repaired == 1


def test_dedup_by_job_id_across_files(tmp_path: Path) -> None:
    write_nyc(tmp_path, [nyc_record("1", "Internal"), nyc_record("2")], "nycjobs1.json")
    write_nyc(tmp_path, [nyc_record("1", "External"), nyc_record("3", business_title="")], "nycjobs2.json")
    postings, report = load_postings(tmp_path)
    assert [p.id for p in postings] == ["nyc:1", "nyc:2", "nyc:3"]
    assert postings[2].title == "PARK SUPERVISOR"  # falls back to the civil service title
    assert report.skipped == Counter({DUPLICATE: 1})


def test_broken_record_skipped_and_its_twin_kept(tmp_path: Path) -> None:
    broken = nyc_record("7", "Internal", job_description="Maintain the Cityÿ¢ÿ¿ÿ¿s parks and playgrounds.")
    postings, report = load_postings(write_nyc(tmp_path, [broken, nyc_record("7", "External")]))
    assert [p.id for p in postings] == ["nyc:7"] and "ÿ" not in postings[0].content
    assert report.skipped == Counter({BAD_ENCODING: 1})
    assert "job_description" in report.examples[BAD_ENCODING][0]


def test_mixed_schemas_in_one_load(tmp_path: Path) -> None:
    write_nyc(tmp_path, [nyc_record("5")])
    (tmp_path / "ref.json").write_text(
        json.dumps([{"id": "r1", "title": "간호사", "content": "환자 간호 업무"}])
    )
    postings, _ = load_postings(tmp_path)
    assert sorted(p.id for p in postings) == ["nyc:5", "r1"]


# --- the real files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> tuple[list, object, list[dict]]:
    raw = [r for f in sorted(NYC.glob("*.json")) for r in json.loads(f.read_text(encoding="utf-8"))["value"]]
    postings, report = load_postings(NYC)
    return postings, report, raw


@needs_nyc
def test_real_files_import_clean(real: tuple) -> None:
    postings, report, raw = real
    job_ids = {r["job_id"] for r in raw}
    assert len({p.id for p in postings}) == len(postings)
    # One posting per job, except jobs whose every copy is damaged beyond repair.
    assert len(job_ids) - report.skipped[BAD_ENCODING] <= len(postings) <= len(job_ids)
    assert report.used + sum(report.skipped.values()) == len(raw)
    assert set(report.skipped) <= {DUPLICATE, BAD_ENCODING}
    raw_broken = sum("â€" in json.dumps(r, ensure_ascii=False) for r in raw)
    assert raw_broken > 0 and report.repaired > 0
    for p in postings:
        text = "\n".join([p.title, p.content, *p.skills, *p.requirements, *p.contacts.values()])
        assert "â€" not in text and "\ufffd" not in text and encoding_problem(text) is None, p.id
    assert sum(p.salary is not None for p in postings) > len(postings) * 0.9


@needs_nyc
def test_prepare_on_a_slice_of_the_real_files(tmp_path: Path) -> None:
    first = json.loads(sorted(NYC.glob("*.json"))[0].read_text(encoding="utf-8"))["value"][:40]
    path = write_nyc(tmp_path, first)
    meta = prepare(
        [path], tmp_path / "out", vocab_size=1000, val_fraction=0.25, show_progress=False, log=lambda _: None
    )
    assert meta["postings"]["used"] == len({r["job_id"] for r in first}) - meta["postings"]["skipped"].get(
        BAD_ENCODING, 0
    )
    for name in ("train", "val"):
        TokenBin(tmp_path / "out" / f"{name}.bin", vocab_size=meta["vocab_size"]).check_ids()


def test_no_import_cycle_between_the_importers() -> None:
    """nyc.py and postings.py share data/records.py; the NYC importer needs nothing of the loader."""
    code = "import sys, jai.data.nyc; assert 'jai.data.postings' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
