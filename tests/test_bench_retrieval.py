"""`jai bench --only retrieval`'s measurements, run small: real postings, real index, real figures."""

from __future__ import annotations

from jai.benchmarks import cli, retrieval_bench


def test_retrieval_figures_on_small_corpora(monkeypatch, tmp_path):
    monkeypatch.setattr(retrieval_bench, "NYC", tmp_path / "no-nyc-here")
    out = retrieval_bench.run(300, engines=("tantivy",), say=lambda line: None)
    assert list(out["corpora"]) == ["bundled", "generated_300"]
    bundled = out["corpora"]["bundled"]
    assert bundled["postings"] == 300 and bundled["questions"] == 2 * 30  # the validation split, 2 languages
    r = bundled["tantivy"]
    assert r["recall@1"] >= 0.9 and r["recall@5"] >= 0.98
    assert 0 < r["p50_ms"] <= r["p99_ms"] and r["build_s"] > 0 and r["size_mb"] > 0
    assert r["by_lang"]["ko"]["recall@5"] >= 0.9 and r["by_lang"]["en"]["recall@5"] >= 0.9
    table = retrieval_bench.render(out)
    assert "| bundled | 300 | tantivy |" in table and "| generated_300 |" in table


def test_retrieval_is_a_part_of_its_own():
    assert cli._parts("retrieval") == ("retrieval",)
    assert "retrieval" not in cli._parts(None, quick=True)
