"""The report's figures, derived from results.json's job rows: training rows with their FLOP/s, roof
ratio and MFU, the targets measured against their goals, the loss curves' agreement."""

from __future__ import annotations

from typing import Any

from jai.benchmarks import flops
from jai.benchmarks.report_text import fmt, text
from jai.config import GPTConfig

# What the project promises to report (not to test): the goal of each target; its wording is the
# template's `target_<id>` block.
TARGETS = {
    "torch_roof": 0.85,
    "torch_compiled_roof": 0.85,
    "torch_vs_hf": 1.25,
    "torch_vs_nanogpt": 1.0,
    "mlx_vs_mlxlm": 1.3,
    "torch_decode_vs_hf": 1.5,
    "mlx_decode_vs_hf": 1.5,
    "torch_decode_vs_mlxlm": 1.0,
    "mlx_decode_vs_mlxlm": 1.0,
}

# Published dense peak FLOP/s of common GPUs, for MFU (tensor-core bf16; fp32 without TF32).
GPU_PEAKS = {
    "H200": {"bfloat16": 989e12, "float32": 67e12},
    "H100": {"bfloat16": 989e12, "float32": 67e12},
    "A100": {"bfloat16": 312e12, "float32": 19.5e12},
    "L40S": {"bfloat16": 362e12, "float32": 91.6e12},
    "L4": {"bfloat16": 121e12, "float32": 30.3e12},
    "A10": {"bfloat16": 125e12, "float32": 31.2e12},
    "4090": {"bfloat16": 165e12, "float32": 82.6e12},
}


def gpu_peak(name: str | None, dtype: str) -> float | None:
    if not name:
        return None
    for key, peaks in GPU_PEAKS.items():
        if key in name:
            return peaks.get(dtype)
    return None


def jobs(results: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [j for j in results.get("jobs", []) if all(j["spec"].get(k) == v for k, v in match.items())]


def one(results: dict[str, Any], **match: Any) -> dict[str, Any] | None:
    found = [j for j in jobs(results, **match) if j.get("ok")]
    return found[0] if found else None


def train_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every training job with its derived figures: model FLOP/s, roof ratio, MFU."""
    rows = []
    for j in jobs(results, job="train"):
        spec = j["spec"]
        row: dict[str, Any] = {"job": j, "spec": spec, "ok": j.get("ok")}
        if j.get("ok"):
            r = j["result"]
            cfg = GPTConfig(**spec["config"])
            fpt = flops.train_flops_per_token(cfg)
            tps = r["tokens_per_s"]["median"]
            row.update(tokens_per_s=r["tokens_per_s"], flops_per_token=fpt, model_flops_per_s=tps * fpt)
            twin = one(
                results,
                job="train",
                runner=_twin_of(spec["runner"]),
                size=spec["size"],
                device=spec["device"],
                dtype=spec["dtype"],
            )
            roof = r.get("roof") or (twin and twin["result"].get("roof"))
            if r.get("roof_ratio"):  # alternating rounds: the median of the per-round ratios
                row["roof"] = roof
                row["roof_ratio"] = r["roof_ratio"]["median"]
                row["roof_from_twin"] = False
            elif roof:
                row["roof"] = roof
                row["roof_ratio"] = flops.roof_ratio(tps, fpt, roof["gemm_flops_per_s"])
                row["roof_from_twin"] = not r.get("roof")
            fw = "torch" if spec["runner"] in ("jai_torch", "transformers") else "mlx"
            gpu = results.get("frameworks", {}).get(fw, {}).get("result", {}).get("gpu_name")
            if spec["device"] != "cpu":
                row["mfu"] = flops.mfu(tps, fpt, gpu_peak(gpu, spec["dtype"]))
        rows.append(row)
    return rows


def _twin_of(runner: str) -> str:
    return {
        "transformers": "jai_torch",
        "nanogpt": "jai_torch",
        "jai_torch_compiled": "jai_torch",
        "mlx_lm": "jai_mlx",
    }.get(runner, runner)


def rounds_ratio(results: dict[str, Any], twin: str, peer: str, size: str, device: str) -> dict | None:
    """The per-round ratio twin / peer (float32) from the alternating-rounds job, if one measured it."""
    for j in jobs(results, job="rounds", size=size, device=device, dtype="float32"):
        ratio = j.get("ok") and j["result"]["ratios"].get(f"{twin}/{peer}")
        if ratio:
            return ratio
    return None


def _rounds_detail(ratio: dict[str, Any]) -> str:
    return text("detail_rounds", n=ratio["n"], low=fmt(ratio["min"]), high=fmt(ratio["max"]))


def _ratio(a: dict | None, b: dict | None, key: str) -> tuple[float | None, str]:
    if not a or not b:
        return None, text("detail_not_measured")
    x, y = a["result"][key]["median"], b["result"][key]["median"]
    return x / y, f"{fmt(x)} / {fmt(y)}"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, on the primary size, float32, per device each side has."""
    size = results.get("size", "default")
    out = []
    for dev in sorted({j["spec"]["device"] for j in results.get("jobs", []) if "device" in j["spec"]}):
        tr = {
            r: one(results, job="train", runner=r, size=size, device=dev, dtype="float32")
            for r in ("jai_torch", "transformers", "jai_mlx", "mlx_lm")
        }
        dec = {
            r: one(results, job="infer", runner=r, size=size, device=dev, batch=1)
            for r in ("jai_torch", "transformers", "jai_mlx", "mlx_lm")
        }
        # decode across frameworks compares whatever devices each has; here both on `dev`
        measured: dict[str, tuple[float | None, str]] = {
            "torch_vs_hf": _ratio(tr["jai_torch"], tr["transformers"], "tokens_per_s"),
            "mlx_vs_mlxlm": _ratio(tr["jai_mlx"], tr["mlx_lm"], "tokens_per_s"),
            "torch_decode_vs_hf": _ratio(dec["jai_torch"], dec["transformers"], "decode_tokens_per_s"),
            "mlx_decode_vs_hf": _ratio(dec["jai_mlx"], dec["transformers"], "decode_tokens_per_s"),
            "torch_decode_vs_mlxlm": _ratio(dec["jai_torch"], dec["mlx_lm"], "decode_tokens_per_s"),
            "mlx_decode_vs_mlxlm": _ratio(dec["jai_mlx"], dec["mlx_lm"], "decode_tokens_per_s"),
        }
        for key, twin, peer in (
            ("torch_vs_hf", "jai_torch", "transformers"),
            ("torch_vs_nanogpt", "jai_torch", "nanogpt"),
            ("mlx_vs_mlxlm", "jai_mlx", "mlx_lm"),
        ):
            ratio = rounds_ratio(results, twin, peer, size, dev)
            if ratio:
                measured[key] = (ratio["median"], _rounds_detail(ratio))
        if dev == "cpu":
            row = next(
                (
                    r
                    for r in train_rows(results)
                    if r["spec"]["runner"] == "jai_torch"
                    and r["spec"]["size"] == size
                    and r["spec"]["device"] == "cpu"
                    and r["spec"]["dtype"] == "float32"
                    and r.get("roof_ratio") is not None
                ),
                None,
            )
            measured["torch_roof"] = (
                (row["roof_ratio"], text("detail_roof")) if row else (None, text("detail_not_measured"))
            )
            for key, runner in (("torch_roof", "jai_torch"), ("torch_compiled_roof", "jai_torch_compiled")):
                tj = one(results, job="train", runner=runner, size=size, device="cpu", dtype="float32")
                rr = tj and tj["result"].get("roof_ratio")
                if rr:
                    measured[key] = (rr["median"], f"{text('detail_roof')}, {_rounds_detail(rr)}")
        for key, goal in TARGETS.items():
            if key not in measured:
                continue
            value, detail = measured[key]
            out.append(
                {
                    "id": key,
                    "device": dev,
                    "target": text(f"target_{key}"),
                    "goal": goal,
                    "value": value,
                    "detail": detail,
                    "met": None if value is None else value >= goal,
                }
            )
    return out


def curve_summary(results: dict[str, Any]) -> dict[str, Any] | None:
    cs = {j["spec"]["runner"]: j for j in jobs(results, job="curve") if j.get("ok")}
    if not cs:
        return None
    out: dict[str, Any] = {"runners": {}}
    for runner, j in cs.items():
        r = j["result"]
        out["runners"][runner] = {
            "first": r["losses"][0],
            "last": r["losses"][-1],
            "seconds": r["seconds"][-1],
            "steps": len(r["losses"]),
        }
    if {"jai_torch", "jai_mlx"} <= cs.keys():
        a, b = cs["jai_torch"]["result"]["losses"], cs["jai_mlx"]["result"]["losses"]
        diffs = [abs(x - y) for x, y in zip(a, b, strict=False)]
        out["max_abs_diff"] = max(diffs)
        out["max_step"] = diffs.index(max(diffs))
        out["median_abs_diff"] = sorted(diffs)[len(diffs) // 2]
        out["first_abs_diff"] = diffs[0]
    return out
