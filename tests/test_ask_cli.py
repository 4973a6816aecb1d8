"""`jai index` and `jai ask` as a user runs them: real postings files, a real tiny checkpoint, both twins,
and the bad input of issue 21 (one line, exit 2, nothing half-written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jai import cli
from jai.data.prepare import BUNDLED_SAMPLE
from tests.serve_support import make_checkpoint

QUESTION = "What does K-Style Fashion pay its Merchandiser?"


def jai(capsys, *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ask") / "index"
    assert cli.main(["index", str(BUNDLED_SAMPLE), "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ask-model") / "run", block_size=64)


def test_index_counts_broken_records_and_keeps_an_id_once(tmp_path, capsys):
    records = json.loads(BUNDLED_SAMPLE.read_text(encoding="utf-8"))[:5]
    broken = [*records, "not a record", {"id": "x", "title": ""}, records[0]]
    (tmp_path / "some.json").write_text(json.dumps(broken), encoding="utf-8")
    code, out, err = jai(capsys, "index", tmp_path / "some.json", "--out", tmp_path / "i")
    assert code == 0
    assert "5 used, 3 skipped" in err and "duplicate" in err
    assert "5 added, 0 replaced, 0 already there; 5 postings" in out
    code, out, _ = jai(capsys, "index", BUNDLED_SAMPLE, "--out", tmp_path / "i")
    assert code == 0 and "5 already there; 300 postings in the index" in out


def test_ask_shows_sources_without_a_model(index, capsys):
    code, out, _ = jai(capsys, "ask", QUESTION, "--index", index, "--no-answer", "--k", "2", "--json")
    assert code == 0
    body = json.loads(out)
    assert body["sources"][0]["id"] == "sg-00001" and len(body["sources"]) == 2
    assert body["sources"][0]["company"] == "K-Style Fashion Pte. Ltd."


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_ask_answers_from_the_best_posting_with_either_twin(index, ckpt, backend, capsys):
    pytest.importorskip(backend)
    args = ["ask", QUESTION, "--index", index, "--checkpoint", ckpt, "--backend", backend, "--device", "cpu"]
    args += ["--temperature", "0", "--max-new-tokens", "8"]
    code, out, _ = jai(capsys, *args)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "sources:" and "[sg-00001] Merchandiser — K-Style Fashion Pte. Ltd." in lines[1]
    assert "answer (from sg-00001):" in lines
    assert lines[-1] == "[from posting sg-00001: Merchandiser, K-Style Fashion Pte. Ltd.]"
    code, out, _ = jai(capsys, *args, "--json")
    body = json.loads(out)
    assert body["posting_id"] == "sg-00001" and isinstance(body["answer"], str)
    assert body["posting_shortened"] is True  # a whole posting never fits a 64-token context


def test_ask_answers_as_jai_sample_does(index, ckpt, capsys):
    """The same prompt as `jai sample --question Q --doc-file POSTING`: greedy text is identical."""
    from jai.retrieval.index import PostingIndex

    doc = PostingIndex.open(index).search(QUESTION, 1)[0].doc
    common = ["--backend", "torch", "--device", "cpu", "--temperature", "0", "--max-new-tokens", "8"]
    code, out, _ = jai(capsys, "ask", QUESTION, "--index", index, "--checkpoint", ckpt, *common, "--json")
    asked = json.loads(out)["answer"]
    code, sampled, _ = jai(capsys, "sample", ckpt, "--question", QUESTION, "--doc", doc, *common)
    assert code == 0 and asked == sampled.strip()


def test_bad_input_is_one_line_and_exit_2(index, tmp_path, capsys):
    cases = [
        (["ask", QUESTION, "--index", tmp_path / "none"], "none: no such index; build one with"),
        (["ask", "zzyzx qqq", "--index", index, "--no-answer"], "no posting matches the question (300"),
        (["ask", "x" * 5000, "--index", index, "--no-answer"], "at most 2000 are searched"),
        (["ask", "  ", "--index", index], "the question is empty"),
        (["index", tmp_path / "nothing.json", "--out", tmp_path / "i"], "no such file or directory"),
    ]
    (tmp_path / "old.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)  # an index of JAI before 2
    for verb in (["ask", QUESTION, "--index"], ["index", BUNDLED_SAMPLE, "--out"]):
        cases.append(([*verb, tmp_path / "old.db"], "old.db: an index from an older JAI"))
    for argv, needle in cases:
        code, _, err = jai(capsys, *argv)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert lines[-1].startswith(f"jai {argv[0]}: error: ") and needle in lines[-1], (argv, err)
    assert not (tmp_path / "i").exists() and (tmp_path / "old.db").stat().st_size == 216


def test_the_jai_command_reports_a_missing_index_as_a_user_does(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "jai.cli", "ask", QUESTION, "--index", str(tmp_path / "no")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "no such index" in run.stderr
