"""results.json -> report.md and PNGs, on a made-up run (no framework needed)."""

from __future__ import annotations

import ast
import inspect
import json
from string import Template

import pytest

from jai.benchmarks import flops, plots, report
from jai.benchmarks.plan import SIZES
from jai.benchmarks.stats import summarize

pytest.importorskip("matplotlib")
CFG = SIZES["tiny"][0]


def train_job(runner, tps, roof=None):
    result = {
        "tokens_per_s": summarize(tps),
        "step_s": summarize([128 / x for x in tps]),
        "losses": [5.5, 5.4, 5.3, 5.2],
        "peak_bytes": 5 << 20,
    }
    if roof:
        gemms = flops.train_gemms(CFG, 4 * CFG.block_size)
        result["gemm_s"] = {g.name: roof for g in gemms}
        result["roof"] = flops.roof(result["gemm_s"], gemms)
    spec = {
        "job": "train",
        "runner": runner,
        "size": "tiny",
        "config": CFG.__dict__.copy(),
        "batch": 4,
        "device": "cpu",
        "dtype": "float32",
    }
    return {
        "name": f"train {runner}",
        "spec": spec,
        "ok": True,
        "result": result,
        "rss_peak_bytes": 300 << 20,
    }


def infer_job(runner, decode):
    spec = {
        "job": "infer",
        "runner": runner,
        "size": "tiny",
        "batch": 1,
        "device": "cpu",
        "prompt_len": 16,
        "new_tokens": 8,
    }
    result = {
        "prefill_tokens_per_s": summarize([1000.0]),
        "decode_tokens_per_s": summarize(decode),
        "first_token_s": summarize([0.01]),
        "new_tokens": [8],
        "peak_bytes": None,
    }
    return {
        "name": f"infer {runner}",
        "spec": spec,
        "ok": True,
        "result": result,
        "rss_peak_bytes": 200 << 20,
    }


def curve_job(runner, losses):
    spec = {
        "job": "curve",
        "runner": runner,
        "size": "tiny",
        "config": CFG.__dict__.copy(),
        "batch": 2,
        "device": "cpu",
        "steps": len(losses),
    }
    result = {"losses": losses, "seconds": [0.5 * (i + 1) for i in range(len(losses))], "peak_bytes": 1}
    return {"name": f"curve {runner}", "spec": spec, "ok": True, "result": result}


@pytest.fixture
def results():
    return {
        "argv": ["--quick"],
        "size": "tiny",
        "config": CFG.__dict__.copy(),
        "wall_s": 12.0,
        "machine": {
            "cpu": "Test CPU 9000",
            "cores": 2,
            "memory_bytes": 8 << 30,
            "machine": "x86_64",
            "system": "Linux",
            "release": "6",
            "python": "3.11",
            "loadavg_start": [0.1, 0, 0],
        },
        "frameworks": {
            "mlx": {
                "ok": True,
                "result": {
                    "mlx": "0.32",
                    "mlx_lm": "0.32",
                    "blas": {
                        "status": "loaded",
                        "source": "ngsolve-openblas",
                        "library": "/x/libopenblas.so",
                        "config": "OpenBLAS",
                        "gemm_n": 512,
                        "gemm_gflops": 123.4,
                    },
                },
            },
            "torch": {"ok": True, "result": {"torch": "2.13", "transformers": "5"}},
        },
        "devices": {"mlx": ["cpu"], "torch": ["cpu"]},
        "data": "random tokens (seeded)",
        "jobs": [
            train_job("jai_torch", [1000.0, 1100.0, 900.0], roof=1e-6),
            train_job("transformers", [700.0, 720.0, 680.0]),
            train_job("jai_mlx", [500.0, 510.0, 490.0], roof=1e-6),
            train_job("mlx_lm", [505.0, 515.0, 495.0]),
            infer_job("jai_torch", [300.0, 310.0]),
            infer_job("transformers", [100.0, 110.0]),
            infer_job("jai_mlx", [400.0, 410.0]),
            infer_job("mlx_lm", [350.0, 360.0]),
            curve_job("jai_torch", [5.5, 5.0, 4.6, 4.3]),
            curve_job("jai_mlx", [5.5, 5.0000004, 4.6000009, 4.3000012]),
            {
                "name": "train broken",
                "spec": {
                    "job": "train",
                    "runner": "jai_mlx",
                    "size": "default",
                    "config": CFG.__dict__.copy(),
                    "batch": 16,
                    "device": "cpu",
                    "dtype": "float32",
                },
                "ok": False,
                "error": "RuntimeError: boom",
            },
        ],
    }


def test_targets_compare_twins_with_peers(results):
    t = {x["id"]: x for x in report.targets(results)}
    assert t["torch_vs_hf"]["value"] == pytest.approx(1000 / 700)
    assert t["torch_vs_hf"]["met"] is True
    assert t["mlx_vs_mlxlm"]["value"] == pytest.approx(500 / 505) and t["mlx_vs_mlxlm"]["met"] is False
    assert t["torch_decode_vs_hf"]["value"] == pytest.approx(305 / 105)
    assert t["mlx_decode_vs_mlxlm"]["met"] is True
    assert t["torch_roof"]["value"] is not None


def test_report_has_the_figures(results, tmp_path):
    results["plots"] = plots.write_all(results, tmp_path)
    md = report.render(results)
    assert "Test CPU 9000" in md and "ngsolve-openblas" in md and "123 GFLOP/s" in md
    assert "| tiny | cpu | float32 | jai_torch | 4 | 1,000 | 900–1,100 |" in md
    assert "| cpu | jai_mlx | 1 | 16 | 8 |" in md and "| 405 |" in md
    assert (
        "## Targets" in md and "**no**" in md and "### Missed targets: why" in md and "### Met targets" in md
    )
    assert "6 * N_mm + 6 * L * T * d" in md  # the formula is stated
    assert "Largest per-step difference between the twins: 1.20e-06" in md
    assert "failed: RuntimeError: boom" in md and "## Failed jobs" in md
    assert "![loss_vs_step](loss_vs_step.png)" in md
    json.dumps(results)  # everything in it is JSON


def test_plots_are_written(results, tmp_path):
    written = plots.write_all(results, tmp_path)
    assert set(written) == {"loss_vs_step", "loss_vs_time", "train_tokens_per_s", "decode_tokens_per_s"}
    for name in written.values():
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_no_curves_no_curve_plots(results, tmp_path):
    results["jobs"] = [j for j in results["jobs"] if j["spec"]["job"] != "curve"]
    assert "loss_vs_step" not in plots.write_all(results, tmp_path)
    assert "## Loss curves" not in report.render(results)


def test_alternating_rounds_feed_the_targets_and_their_table(results):
    """A rounds job (benchmarks/rounds.py) as cli.per_runner expands it: the targets take the per-round
    ratios' median, not the ratio of the medians, and the report lists every round."""
    from jai.benchmarks.cli import per_runner
    from jai.benchmarks.rounds import alternate

    tps = {  # one slow round (round 2: load) that a ratio of separate medians would not survive
        "jai_torch": iter([1300.0, 650.0, 1310.0, 1290.0]),
        "transformers": iter([1000.0, 500.0, 1000.0, 1000.0]),
        "nanogpt": iter([1200.0, 600.0, 1190.0, 1210.0]),
    }
    clock = {"t": 0.0}

    def step(name):  # a fake clock: each step "takes" 128 tokens / the next tokens/s of that runner
        def run():
            clock["t"] += 128 / next(tps[name]) if clock.get("timing") else 0.0
            return 5.5

        return run

    import jai.benchmarks.rounds as rounds_module

    real_clock = rounds_module.clock
    rounds_module.clock = lambda: clock["t"]
    try:
        steps = {n: step(n) for n in tps}
        for n in steps:  # warm-up without consuming the figures
            steps[n]()
        clock["timing"] = True
        gemm = {"gemm_flops": 1e9, "gemm_seconds": 0.01, "gemm_flops_per_s": 1e11}
        out = alternate(steps, 4, 0, 1, 128, roof=lambda: gemm, flops_per_token=1e6)
    finally:
        rounds_module.clock = real_clock
    out["skipped"] = {}
    spec = {
        "job": "rounds",
        "runner": "jai_torch",
        "runners": list(tps),
        "size": "tiny",
        "config": CFG.__dict__.copy(),
        "batch": 4,
        "device": "cpu",
        "dtype": "float32",
        "steps_per_window": 1,
    }
    job = {"name": "train tiny rounds", "spec": spec, "ok": True, "result": out, "rss_peak_bytes": 1 << 28}
    results["jobs"] = [j for j in results["jobs"] if j["spec"].get("runner") not in tps] + [
        job,
        *per_runner(job),
    ]
    t = {x["id"]: x for x in report.targets(results)}
    # per round: 1.30, 1.30, 1.31, 1.29 -> median 1.30 (the medians' ratio would be 1300 / 1000 too, but
    # round 2's halved speeds never enter a ratio against a round that ran at full speed)
    assert t["torch_vs_hf"]["value"] == pytest.approx(1.30)
    assert "alternating rounds" in t["torch_vs_hf"]["detail"] and t["torch_vs_hf"]["met"] is True
    assert t["torch_vs_nanogpt"]["value"] == pytest.approx(1.083, abs=2e-3) and t["torch_vs_nanogpt"]["met"]
    assert t["torch_roof"]["value"] == pytest.approx(1300 * 1e6 / 1e11, rel=0.02)
    md = report.render(results)
    assert "### Alternating rounds: tiny, cpu, float32, batch 4" in md
    assert "| jai_torch/transformers | 1.300 |" in md and "| round | load | order |" in md
    assert "| 2 |" in md and "transformers, nanogpt, jai_torch" in md  # round 2's rotated order


def test_every_placeholder_of_the_template_is_filled_and_none_is_left_over(results, tmp_path):
    """benchmarks/report_template.md against the code that fills it: every block is filled somewhere,
    each call names exactly its block's placeholders (report_text.text refuses any other at run time,
    and this reads every call, run or not), and a rendered report has no placeholder left."""
    from jai.benchmarks import report_figures, report_text, report_why

    blocks = report_text.blocks()
    calls: list[tuple[str, set[str]]] = []
    for module in (report, report_figures, report_why):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "text":
                keys = {k.arg for k in node.keywords}
                assert None not in keys, ast.unparse(node)  # text(name, **values) would hide its keys
                calls += [(name, keys) for name in block_names(node.args[0])]
    assert {name for name, _ in calls} == set(blocks)  # no block unused, no call to a missing one
    for name, keys in calls:
        assert keys == set(blocks[name].get_identifiers()), name
    results["plots"] = plots.write_all(results, tmp_path)
    results["notes"] = ["a note"]
    md = report.render(results)
    assert Template.pattern.search(md) is None, md  # nothing of the form $name, ${name} or $$


def block_names(arg: ast.expr) -> list[str]:
    """The block names a call's first argument can be: "name", "a" if x else "b", or f"target_{key}"."""
    from jai.benchmarks.report_figures import TARGETS

    if isinstance(arg, ast.Constant):
        return [arg.value]
    if isinstance(arg, ast.IfExp):
        return block_names(arg.body) + block_names(arg.orelse)
    if isinstance(arg, ast.JoinedStr) and ast.unparse(arg) == "f'target_{key}'":
        return [f"target_{key}" for key in TARGETS]
    raise AssertionError(f"a block name this test cannot read: {ast.unparse(arg)}")
