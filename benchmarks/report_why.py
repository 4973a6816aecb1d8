"""Why each target was met or missed, from this run's own figures: step times, the GEMM roof, decode
milliseconds per token, and the spread of the timings."""

from __future__ import annotations

from typing import Any

from jai.benchmarks.report_figures import one, rounds_ratio, train_rows
from jai.benchmarks.report_text import text
from jai.config import GPTConfig


def why(results: dict[str, Any], t: dict[str, Any]) -> str:
    """The explanation of target `t` (a row of report_figures.targets)."""
    if t["value"] is None:
        return text("why_not_measured_in_run")
    if t["id"] == "torch_roof":
        return _torch_roof(results, t)
    if t["id"] == "torch_vs_hf":
        return _train(results, t, "jai_torch", "transformers")
    if t["id"] == "torch_vs_nanogpt":
        return _train(results, t, "jai_torch", "nanogpt")
    if t["id"] == "torch_compiled_roof":
        return text("why_torch_compiled_roof")
    if t["id"] == "mlx_vs_mlxlm":
        return _train(results, t, "jai_mlx", "mlx_lm")
    twin = "jai_torch" if t["id"].startswith("torch") else "jai_mlx"
    peer = "transformers" if t["id"].endswith("_hf") else "mlx_lm"
    return _decode(results, t, twin, peer)


def _torch_roof(results: dict[str, Any], t: dict[str, Any]) -> str:
    r = next(
        (
            r
            for r in train_rows(results)
            if r["spec"]["runner"] == "jai_torch"
            and r["spec"]["size"] == results.get("size")
            and r["spec"]["device"] == t["device"]
            and r["spec"]["dtype"] == "float32"
            and r.get("roof")
        ),
        None,
    )
    if not r:
        return ""
    step, gemm = r["job"]["result"]["step_s"]["median"], r["roof"]["gemm_seconds"]
    said = text("why_torch_roof", gemm=f"{gemm:.2f}", step=f"{step:.2f}", rest=f"{max(0.0, step - gemm):.2f}")
    return said + ("." if t["met"] else text("why_torch_roof_missed", share=f"{1 - t['goal']:.0%}"))


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two summaries' min-max ranges overlap: a ratio inside the run-to-run spread."""
    return a["min"] <= b["max"] and b["min"] <= a["max"]


def _train(results: dict[str, Any], t: dict[str, Any], twin: str, peer: str) -> str:
    rows = {
        r["spec"]["runner"]: r
        for r in train_rows(results)
        if r.get("ok")
        and r["spec"]["size"] == results.get("size")
        and r["spec"]["device"] == t["device"]
        and r["spec"]["dtype"] == "float32"
    }
    a, b = rows.get(twin), rows.get(peer)
    if not a or not b:
        return text("why_not_measured")
    sa, sb = a["job"]["result"]["step_s"]["median"], b["job"]["result"]["step_s"]["median"]
    said = text("why_train", twin=twin, twin_step=f"{sa:.2f}", peer=peer, peer_step=f"{sb:.2f}")
    gemm = (a.get("roof") or {}).get("gemm_seconds")
    if gemm:
        said += text(
            "why_train_gemm",
            gemm=f"{gemm:.2f}",
            twin=twin,
            twin_rest=f"{max(0.0, sa - gemm):.2f}",
            peer=peer,
            peer_rest=f"{max(0.0, sb - gemm):.2f}",
        )
    spread = text("spread_overlap" if _overlap(a["tokens_per_s"], b["tokens_per_s"]) else "spread_apart")
    ratio = rounds_ratio(results, twin, peer, results.get("size", "default"), t["device"])
    if ratio:
        spread = text("spread_rounds", low=f"{ratio['min']:.2f}", high=f"{ratio['max']:.2f}", n=ratio["n"])
    if t["met"]:
        return f"{said}; {spread}."
    if twin == "jai_torch":
        need = t["goal"] * sa
        missed = text(
            "why_train_missed_torch",
            goal=t["goal"],
            peer=peer,
            need=f"{need:.2f}",
            waste=f"{max(0.0, need - sa):.2f}",
        )
    else:
        missed = text("why_train_missed_mlx")
    return f"{said}; {spread}. {missed}."


def _decode_ms_per_token(results: dict[str, Any], runner: str, device: str) -> float | None:
    j = one(results, job="infer", runner=runner, size=results.get("size", "default"), device=device, batch=1)
    return 1e3 / j["result"]["decode_tokens_per_s"]["median"] if j else None


def _decode(results: dict[str, Any], t: dict[str, Any], twin: str, peer: str) -> str:
    a = _decode_ms_per_token(results, twin, t["device"])
    b = _decode_ms_per_token(results, peer, t["device"])
    if a is None or b is None:
        return text("why_not_measured")
    cfg = GPTConfig(**results["config"]) if "config" in results else GPTConfig()
    mb = cfg.num_params() * 4 / 1e6
    said = text(
        "why_decode",
        twin=twin,
        twin_ms=f"{a:.1f}",
        peer=peer,
        peer_ms=f"{b:.1f}",
        mb=f"{mb:.0f}",
        bandwidth=f"{mb / a:.1f}",
    )
    framework = {"jai_torch": "torch", "transformers": "torch", "jai_mlx": "mlx", "mlx_lm": "mlx"}
    across = framework[twin] != framework[peer]
    if t["met"]:
        return f"{said}{text('why_decode_across') if across else ''}."
    if across:
        return f"{said}. {text('why_decode_missed_across')}"
    return f"{said}. {text('why_decode_missed_same', goal=t['goal'])}"
