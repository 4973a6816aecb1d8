"""`jai bench --only quant`: a real quick run on the tiny model (PyTorch twin, the cheaper to start),
and the report section it writes."""

from __future__ import annotations

import importlib.util
import json

import pytest

from jai.benchmarks import cli, quant_bench


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_quick_quant_part_measures_every_model(tmp_path):
    out = tmp_path / "bench"
    argv = ["--quick", "--config", "tiny", "--only", "quant", "--frameworks", "torch", "--out", str(out)]
    assert cli.main(argv) == 0
    quant = json.loads((out / "results.json").read_text())["quant"]
    sizes = quant["file_bytes"]
    assert sizes["4-bit"] < sizes["8-bit"] < sizes["float"] / 2
    rows = {r["model"]: r for r in quant["rows"]}
    assert set(rows) == {"float", "8-bit", "4-bit"}
    for r in rows.values():
        assert not r.get("errors") and r["decode_b1"] > 0 and r["decode_b8"] > 0 and r["peak_b1"] > 0
        assert r["val_ppl"] > 1
    # untrained weights on random tokens: quantization barely moves a near-uniform prediction
    assert abs(rows["8-bit"]["val_ppl"] / rows["float"]["val_ppl"] - 1) < 0.01
    md = (out / "report.md").read_text()
    assert "## Quantization: float, 8-bit and 4-bit" in md and "| jai_torch | cpu | 4-bit |" in md


def test_render_says_nothing_when_the_part_did_not_run():
    assert quant_bench.render(None) == ""
