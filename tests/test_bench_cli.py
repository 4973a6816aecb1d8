"""`jai bench`: its options, and a whole --quick run on the tiny model, end to end."""

from __future__ import annotations

import importlib.util
import json

import pytest

from jai.benchmarks import cli, plan


def test_parser_defaults_and_choices():
    args = cli.build_parser().parse_args([])
    assert args.config == "default" and not args.quick and args.out is None
    assert set(cli._parts(args.only)) == set(plan.PARTS)
    with pytest.raises(SystemExit):
        cli._parts("train,nonsense")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--config", "huge"])


def test_default_quick_and_full_settings():
    default, quick, full = (
        plan.settings_for(False),
        plan.settings_for(True),
        plan.settings_for(False, full=True),
    )
    for s in (default, quick, full):
        assert s.windows >= 3  # a median and a spread, always
    assert default.warmup >= 2 and 50 <= default.curve_steps <= 100 and default.larger
    assert quick.curve_steps < default.curve_steps < full.curve_steps and not quick.larger
    assert full.windows * full.steps_per_window > default.windows * default.steps_per_window
    assert plan.settings_for(False, steps=7, windows=4).curve_steps == 7
    with pytest.raises(SystemExit):
        cli.main(["--quick", "--full"])
    with pytest.raises(SystemExit):
        cli.main(["--windows", "2"])


def test_plan_covers_every_part():
    jobs = plan.make_jobs(
        "tiny",
        plan.PARTS,
        {"mlx": ["cpu"], "torch": ["cpu"]},
        plan.QUICK,
        {"tiny": "/w/tiny", "curves": "/w/tiny"},
        None,
    )
    kinds = {(j.spec["job"], j.spec["runner"]) for j in jobs}
    assert {("train", r) for r in ("jai_mlx", "mlx_lm", "jai_torch", "transformers")} <= kinds
    assert {("infer", r) for r in ("jai_mlx", "mlx_lm", "jai_torch", "transformers")} <= kinds
    assert {("curve", "jai_mlx"), ("curve", "jai_torch"), ("profile", "jai_mlx")} <= kinds
    assert all(j.spec["dtype"] == "float32" for j in jobs if "dtype" in j.spec)  # no bf16 on the CPU
    gpu = plan.make_jobs("tiny", ("train",), {"torch": ["cuda"]}, plan.QUICK, {"tiny": "/w"}, None)
    assert {j.spec["dtype"] for j in gpu} == {"float32", "bfloat16"}


@pytest.mark.skipif(
    importlib.util.find_spec("mlx") is None and importlib.util.find_spec("torch") is None,
    reason="neither twin's framework is installed",
)
def test_quick_tiny_run_end_to_end(tmp_path):
    out = tmp_path / "bench"
    assert cli.main(["--quick", "--config", "tiny", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["jobs"] and all(j["ok"] for j in results["jobs"])
    kinds = {j["spec"]["job"] for j in results["jobs"]}
    assert {"train", "infer", "curve"} <= kinds
    for j in results["jobs"]:
        assert j["rss_peak_bytes"] > 0
        if j["spec"]["job"] == "train":
            assert j["result"]["tokens_per_s"]["n"] == plan.QUICK.windows
    # every runner started from the same weights: the same first loss on the same batch
    first = {round(j["result"]["losses"][0], 3) for j in results["jobs"] if j["spec"]["job"] == "train"}
    assert len(first) == 1
    md = (out / "report.md").read_text()
    assert "## Training throughput" in md and "## Targets" in md
    for name in results["plots"].values():
        assert (out / name).stat().st_size > 0
