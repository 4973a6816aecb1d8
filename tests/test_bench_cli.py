"""`jai bench`: its options, the alternating rounds, and a whole --quick run on the tiny model, end to end."""

from __future__ import annotations

import importlib.util
import json

import pytest

from jai.benchmarks import cli, plan, rounds


def test_parser_defaults_and_choices():
    args = cli.build_parser().parse_args([])
    assert args.config is None and not args.quick and args.out is None  # main: default, or tiny if quick
    assert set(cli._parts(args.only)) == set(plan.PARTS)
    assert "quant" not in cli._parts(None, quick=True) and "quant" in cli._parts("train,quant", quick=True)
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
        plan.Settings(**{**plan.QUICK.__dict__, "profile": True}),
        {"tiny": "/w/tiny", "curves": "/w/tiny"},
        None,
    )
    kinds = {(j.spec["job"], j.spec["runner"]) for j in jobs}
    rounds_jobs = {j.spec["runner"]: j.spec["runners"] for j in jobs if j.spec["job"] == "rounds"}
    assert rounds_jobs == {
        "jai_mlx": ["jai_mlx", "mlx_lm"],
        "jai_torch": ["jai_torch", "transformers", "nanogpt"],
    }
    default = plan.make_jobs(
        "tiny",
        ("train", "peers"),
        {"torch": ["cpu"]},
        plan.settings_for(False),
        {"tiny": "/w", "default": "/d"},
        None,
    )
    assert [j.spec["runners"] for j in default if j.spec["job"] == "rounds"] == [
        ["jai_torch", "transformers", "nanogpt", "jai_torch_compiled"]  # the compiled twin outside --quick
    ]
    assert [(j.spec["job"], j.spec["size"]) for j in default if j.spec["job"] == "train"] == [
        ("train", "default")
    ]
    assert {("infer", r) for r in ("jai_mlx", "mlx_lm", "jai_torch", "transformers")} <= kinds
    assert {("curve", "jai_mlx"), ("curve", "jai_torch"), ("profile", "jai_mlx")} <= kinds
    assert all(j.spec["dtype"] == "float32" for j in jobs if "dtype" in j.spec)  # no bf16 on the CPU
    gpu = plan.make_jobs("tiny", ("train",), {"torch": ["cuda"]}, plan.QUICK, {"tiny": "/w"}, None)
    assert {j.spec["dtype"] for j in gpu} == {"float32", "bfloat16"}


def test_help_has_examples():
    text = cli.build_parser().format_help()
    assert "examples:" in text and "jai bench --quick" in text and "--rounds" in text


def test_alternate_rotates_the_order_and_takes_ratios_within_rounds():
    calls: list[str] = []

    def step(name: str, loss: float):
        def run() -> float:
            calls.append(name)
            return loss

        return run

    ticks: list[int] = []
    roof = {"gemm_flops": 1e9, "gemm_seconds": 0.5, "gemm_flops_per_s": 2e9}
    out = rounds.alternate(
        {"twin": step("twin", 1.0), "peer": step("peer", 2.0), "ref": step("ref", 3.0)},
        rounds=4,
        warmup=2,
        steps_per_window=1,
        tokens_per_step=64,
        roof=lambda: roof,
        progress=lambda: ticks.append(1),
        flops_per_token=1e6,
    )
    assert len(ticks) == rounds.ticks(3, 4, 2) == 18
    assert calls[:6] == ["twin", "twin", "peer", "peer", "ref", "ref"]  # the warm-up, runner by runner
    assert [r["order"] for r in out["rounds"]] == [
        ["twin", "peer", "ref"],
        ["peer", "ref", "twin"],
        ["ref", "twin", "peer"],
        ["twin", "peer", "ref"],
    ]
    assert calls[6:] == [n for r in out["rounds"] for n in r["order"]]
    assert set(out["ratios"]) == {"twin/peer", "twin/ref"}
    for i, r in enumerate(out["rounds"]):  # each ratio sample is that round's own twin / peer
        tps = r["tokens_per_s"]
        assert out["ratios"]["twin/peer"]["samples"][i] == pytest.approx(tps["twin"] / tps["peer"])
        roof_ratio = out["runners"]["ref"]["roof_ratio"]["samples"][i]
        assert roof_ratio == pytest.approx(tps["ref"] * 1e6 / 2e9)
    assert out["runners"]["peer"]["losses"] == [2.0] * 6 and out["runners"]["twin"]["tokens_per_s"]["n"] == 4
    assert out["roof"]["gemm_seconds_per_round"] == [0.5] * 4


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_nanogpt_reference_is_the_twin_with_exact_gelu():
    import torch

    from jai.benchmarks.nanogpt_ref import from_twin
    from jai.config import GPTConfig
    from jai_torch.model import GPT

    cfg = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=32, activation="gelu")
    twin = GPT(cfg, seed=3)
    ref = from_twin(twin)
    x = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ref(x), twin(x), rtol=1e-5, atol=1e-5)
    assert ref.lm_head.weight is ref.transformer.wte.weight  # tied, as nanoGPT ties it


@pytest.mark.skipif(
    importlib.util.find_spec("mlx") is None and importlib.util.find_spec("torch") is None,
    reason="neither twin's framework is installed",
)
def test_quick_tiny_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench"
    assert cli.main(["--quick", "--out", str(out)]) == 0  # --quick: the tiny model
    results = json.loads((out / "results.json").read_text())
    assert results["size"] == "tiny" and "quant" not in results["parts"]
    assert results["jobs"] and all(j["ok"] for j in results["jobs"])
    kinds = {j["spec"]["job"] for j in results["jobs"]}
    assert {"rounds", "train", "infer", "curve"} <= kinds
    for j in results["jobs"]:
        assert j["rss_peak_bytes"] > 0
        if j["spec"]["job"] == "train":  # one entry per runner of a rounds job
            assert j["result"]["tokens_per_s"]["n"] == plan.QUICK.rounds
        if j["spec"]["job"] == "rounds":
            assert all(r["n"] == plan.QUICK.rounds for r in j["result"]["ratios"].values())
    # every runner started from the same weights: the same first loss on the same batch (the nanoGPT-style
    # reference runs the exact GELU, not the twins' gelu_new: close, not equal)
    train = [j for j in results["jobs"] if j["spec"]["job"] == "train"]
    first = {round(j["result"]["losses"][0], 3) for j in train if j["spec"]["runner"] != "nanogpt"}
    assert len(first) == 1
    for j in train:
        assert j["result"]["losses"][0] == pytest.approx(next(iter(first)), abs=0.05)
    # not a terminal (pytest captures stdout): plain progress lines instead of a bar
    printed = capsys.readouterr().out
    assert "jai bench: env torch: started" in printed or "jai bench: env mlx: started" in printed
    assert "steps; results in" in printed and ": done in " in printed
    md = (out / "report.md").read_text()
    assert "## Training throughput" in md and "## Targets" in md
    for name in results["plots"].values():
        assert (out / name).stat().st_size > 0
