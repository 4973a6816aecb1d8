"""Issue 20's goals, each met or not, from a `jai bench` run's results (report.md's "Goals" section).

The speed goals hold at batch 4, 8 and 16, each a ratio taken within alternating rounds (the median over
the rounds, with its range); the memory goal compares the training peaks of two processes (one runner
each), which must reach the same loss. A goal not measured by the run is listed as such, never as met:

    jai bench --only train,peers,memory --batch 4,8,16 --no-compile
"""

from __future__ import annotations

from typing import Any

GOAL_BATCHES = (4, 8, 16)
# id -> (what is measured, the goal it must reach)
GOALS = {
    "torch_vs_nanogpt": ("PyTorch twin / nanoGPT-style model, training tokens/s", 1.3),
    "torch_vs_hf": ("PyTorch twin / transformers, training tokens/s", 1.5),
    "torch_roof": ("PyTorch twin, roof ratio (model FLOP/s / GEMM FLOP/s)", 0.85),
    "mlx_vs_mlxlm": ("MLX twin / mlx-lm, training tokens/s", 1.3),
    "memory": ("nanoGPT-style / PyTorch twin, training peak memory", 1.5),
}
RATIO_OF = {
    "torch_vs_nanogpt": "jai_torch/nanogpt",
    "torch_vs_hf": "jai_torch/transformers",
    "mlx_vs_mlxlm": "jai_mlx/mlx_lm",
}
# The two peaks only compare if both runs computed the same thing: their losses agree to float32 noise.
SAME_LOSS_RTOL = 1e-4


def _rounds_jobs(results: dict[str, Any], device: str) -> list[dict[str, Any]]:
    return [
        j
        for j in results.get("jobs", [])
        if j["spec"].get("job") == "rounds"
        and j["spec"].get("device") == device
        and j["spec"].get("dtype") == "float32"
        and j.get("ok")
    ]


def _row(key: str, device: str, batch: int | None, summary: dict | None, detail: str = "") -> dict[str, Any]:
    desc, goal = GOALS[key]
    row: dict[str, Any] = {"id": key, "goal_text": desc, "goal": goal, "device": device, "batch": batch}
    if summary is None:
        return {**row, "value": None, "min": None, "max": None, "n": 0, "met": None, "detail": detail}
    return {
        **row,
        "value": summary["median"],
        "min": summary["min"],
        "max": summary["max"],
        "n": summary["n"],
        "met": summary["median"] >= goal,
        "detail": detail,
    }


def _speed_rows(results: dict[str, Any], device: str) -> list[dict[str, Any]]:
    rows = []
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for j in _rounds_jobs(results, device):
        by_batch.setdefault(j["spec"]["batch"], []).append(j)
    frameworks = {j["spec"]["runner"] for js in by_batch.values() for j in js}
    keys = [k for k in RATIO_OF if RATIO_OF[k].split("/")[0] in frameworks]
    if "jai_torch" in frameworks:
        keys.insert(2, "torch_roof")
    for key in keys:
        for b in sorted(set(GOAL_BATCHES) | set(by_batch)):
            found = None
            for j in by_batch.get(b, []):
                res = j["result"]
                if key == "torch_roof":
                    found = res["runners"].get("jai_torch", {}).get("roof_ratio") or found
                else:
                    found = res["ratios"].get(RATIO_OF[key]) or found
            rows.append(_row(key, device, b, found, "" if found else "not measured"))
    return rows


def _peak(job: dict[str, Any]) -> int | None:
    return job["result"].get("peak_bytes") or job.get("rss_peak_bytes")


def _memory_row(results: dict[str, Any], device: str) -> dict[str, Any] | None:
    peaks = {
        j["spec"]["runner"]: j
        for j in results.get("jobs", [])
        if j["spec"].get("job") == "peak" and j["spec"].get("device") == device and j.get("ok")
    }
    if not peaks:
        return None
    twin, ref = peaks.get("jai_torch"), peaks.get("nanogpt")
    if not twin or not ref or not _peak(twin) or not _peak(ref):
        return _row("memory", device, None, None, "not measured")
    ratio = _peak(ref) / _peak(twin)
    what = "allocator peak" if twin["result"].get("peak_bytes") else "peak RSS of the process"
    l_twin, l_ref = twin["result"]["losses"], ref["result"]["losses"]
    same = all(abs(a - b) <= SAME_LOSS_RTOL * abs(b) for a, b in zip(l_twin, l_ref, strict=True))
    vocab = twin["spec"]["config"]["vocab_size"]
    detail = (
        f"{what}, batch {twin['spec']['batch']}, vocab {vocab:,}: {_peak(twin) / 2**20:,.0f} MiB against "
        f"{_peak(ref) / 2**20:,.0f} MiB; losses {', '.join(f'{x:.6f}' for x in l_twin)} against "
        f"{', '.join(f'{x:.6f}' for x in l_ref)}" + ("" if same else " (**not the same loss**)")
    )
    row = _row("memory", device, twin["spec"]["batch"], {"median": ratio, "min": ratio, "max": ratio, "n": 1})
    return {**row, "met": row["met"] and same, "detail": detail}


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal, per device the run measured, per batch for the speed goals."""
    devices = sorted(
        {j["spec"]["device"] for j in results.get("jobs", []) if j["spec"].get("job") in ("rounds", "peak")}
    )
    out = []
    for dev in devices:
        out += _speed_rows(results, dev)
        mem = _memory_row(results, dev)
        if mem:
            out.append(mem)
    return out


def _load_range(results: dict[str, Any]) -> str:
    loads = [
        r["loadavg"]
        for j in results.get("jobs", [])
        if j["spec"].get("job") == "rounds" and j.get("ok")
        for r in j["result"]["rounds"]
        if r.get("loadavg") is not None
    ]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "not recorded"


def _host(m: dict[str, Any]) -> str:
    ids = m.get("cpu_id") or {}
    family = f" (family {ids['family']}, model {ids['model']})" if "family" in ids and "model" in ids else ""
    return f"{m.get('cpu', '?')}{family}, {m.get('cores', '?')} cores"


def render(results: dict[str, Any]) -> list[str]:
    rows = evaluate(results)
    if not rows:
        return []
    m = results.get("machine", {})
    L = [
        "## Issue 20's goals",
        "",
        f"Host: {_host(m)}; 1-minute load average "
        f"{_load_range(results)} as the rounds began. Speed: the median of the per-round ratios (range in "
        "brackets) over n alternating rounds, float32.",
        "",
        "| goal | device | batch | measured | rounds | goal | met? | detail |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for r in rows:
        met = "–" if r["met"] is None else ("yes" if r["met"] else "**no**")
        got = "–" if r["value"] is None else f"{r['value']:.2f}"
        if r["value"] is not None and r["n"] > 1:
            got += f" ({r['min']:.2f}–{r['max']:.2f})"
        batch = "–" if r["batch"] is None else str(r["batch"])
        L.append(
            f"| {r['goal_text']} | {r['device']} | {batch} | {got} | {r['n'] or '–'} | ≥ {r['goal']} "
            f"| {met} | {r['detail']} |"
        )
    L += [""]
    for key, (desc, goal) in GOALS.items():
        mine = [r for r in rows if r["id"] == key]
        if not mine:
            continue
        if any(r["met"] is None for r in mine):
            verdict = "not fully measured"
        else:
            verdict = "**met**" if all(r["met"] for r in mine) else "**not met**"
        L.append(f"- {desc} ≥ {goal}: {verdict}")
    return [*L, ""]
