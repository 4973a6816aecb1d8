"""results.json -> report.md: the sections in order, each a block of report_template.md filled with the
figures of benchmarks/report_figures.py, tables row by row, and the targets met or missed with their why
(benchmarks/report_why.py)."""

from __future__ import annotations

from typing import Any

from jai.benchmarks import flops, goals
from jai.benchmarks.report_figures import curve_summary, jobs, one, targets, train_rows
from jai.benchmarks.report_text import fmt, mib, text
from jai.benchmarks.report_why import why
from jai.config import GPTConfig

__all__ = ["render", "targets"]


def render(results: dict[str, Any]) -> str:
    tg = targets(results)
    L = [text("title"), "", *_machine(results), "", _primary_size(results), ""]
    L += [text("note", note=note) for note in results.get("notes", [])]
    L += _targets(tg)
    L += goals.render(results)
    L += _training(results)
    L += _rounds(results)
    L += _roofs(results)
    L += [text("roof_formula"), ""]
    L += _inference(results)
    L += _curves(results)
    L += _profile(results)
    L += _misses(results, tg)
    L += _plots(results)
    L += _failed(results)
    return "\n".join(L) + "\n"


def _machine(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    fw = results.get("frameworks", {})
    mlx = fw.get("mlx", {}).get("result", {})
    torch = fw.get("torch", {}).get("result", {})
    mem = m.get("memory_bytes")
    flags = m.get("cpu_flags") or []
    devices = results.get("devices", {})
    L = [
        text(
            "machine",
            cpu=m.get("cpu"),
            arch=m.get("machine"),
            cores=m.get("cores"),
            memory_gib=f"{mem / 2**30:.0f}",
            system=m.get("system"),
            release=m.get("release"),
        )
        if mem
        else text("machine_bare", cpu=m.get("cpu")),
        text(
            "versions",
            python=m.get("python"),
            mlx=mlx.get("mlx", "–"),
            mlx_lm=mlx.get("mlx_lm", "–"),
            torch=torch.get("torch", "–"),
            torch_threads=torch.get("torch_threads", "–"),
            transformers=torch.get("transformers", "–"),
        ),
        text(
            "cpu",
            cpu_id=", ".join(f"{k} {v}" for k, v in (m.get("cpu_id") or {}).items()),
            flags=", ".join(flags) or "–",
            no_amx="" if any(f.startswith("amx") for f in flags) else text("no_amx"),
        ),
        text(
            "devices",
            devices=", ".join(f"{k}: {', '.join(v)}" for k, v in devices.items()),
            no_gpu="" if any(d != "cpu" for v in devices.values() for d in v) else text("no_gpu"),
        ),
        text("load", start=m.get("loadavg_start"), end=m.get("loadavg_end")),
    ]
    blas = mlx.get("blas")
    if blas:
        L.append(_blas(blas))
    L.append(text("data", data=results.get("data")))
    L.append(text("run", argv=" ".join(results.get("argv", [])), seconds=f"{results.get('wall_s', 0):.0f}"))
    return L


def _blas(blas: dict[str, Any]) -> str:
    if blas.get("status") == "loaded":
        threads = text("blas_threads", threads=blas["threads"]) if blas.get("threads") else ""
        what = text(
            "blas_loaded",
            source=blas.get("source"),
            library=blas.get("library"),
            config=blas.get("config", ""),
            threads=threads,
        )
    else:
        note = f": {blas['note']}" if blas.get("note") else ""
        what = text("blas_bundled", status=blas.get("status"), note=note)
    gemm = blas.get("gemm_gflops")
    if gemm:
        return text("blas_gemm", what=what, n=blas.get("gemm_n"), gflops=fmt(gemm))
    return text("blas", what=what)


def _primary_size(results: dict[str, Any]) -> str:
    cfg = GPTConfig(**results["config"]) if "config" in results else GPTConfig()
    return text(
        "primary_size",
        size=results.get("size", "default"),
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_embd=cfg.n_embd,
        block_size=cfg.block_size,
        vocab=f"{cfg.vocab_size:,}",
        params=f"{cfg.num_params():,}",
        mflop=f"{flops.train_flops_per_token(cfg) / 1e6:,.1f}",
    )


def _targets(tg: list[dict[str, Any]]) -> list[str]:
    L = [text("targets_table")]
    for t in tg:
        met = "–" if t["met"] is None else text("met_yes" if t["met"] else "met_no")
        L.append(
            f"| {t['target']} | {t['device']} | {fmt(t['value'])} | ≥ {t['goal']} | {met} | {t['detail']} |"
        )
    return [*L, ""]


def _training(results: dict[str, Any]) -> list[str]:
    L = [text("training_table")]
    for row in train_rows(results):
        s, j = row["spec"], row["job"]
        head = f"| {s['size']} | {s['device']} | {s['dtype']} | {s['runner']} | {s['batch']} |"
        if not row["ok"]:
            L.append(f"{head} {text('failed_cell', error=j.get('error', '?')[:80])} |||||||||")
            continue
        r = j["result"]
        tps = row["tokens_per_s"]
        roof = fmt(row.get("roof_ratio")) + (" ¹" if row.get("roof_from_twin") else "")
        L.append(
            f"{head} {fmt(tps['median'])} | {fmt(tps['min'])}–{fmt(tps['max'])} "
            f"| {fmt(r['step_s']['median'])} | {fmt(row['model_flops_per_s'] / 1e9)} | {roof} "
            f"| {fmt(row.get('mfu'))} | {mib(r.get('peak_bytes'))} | {mib(j.get('rss_peak_bytes'))} "
            f"| {r['losses'][0]:.4f} |"
        )
    return [*L, "", text("training_footnote"), ""]


def _rounds(results: dict[str, Any]) -> list[str]:
    """The alternating-rounds table: each round's tokens/s per runner, and the per-round ratios."""
    L: list[str] = []
    for j in jobs(results, job="rounds"):
        if not j.get("ok"):
            continue
        s, r = j["spec"], j["result"]
        names = list(r["runners"])
        L.append(
            text(
                "rounds_table",
                size=s["size"],
                device=s["device"],
                dtype=s["dtype"],
                batch=s["batch"],
                rounds=len(r["rounds"]),
                steps=s["steps_per_window"],
                runner_columns=" | ".join(f"{n} tok/s" for n in names),
                runner_rules="---|" * len(names),
            )
        )
        for i, rd in enumerate(r["rounds"]):
            gemm = rd.get("roof", {}).get("gemm_seconds")
            order, per_runner = ", ".join(rd["order"]), " | ".join(fmt(rd["tokens_per_s"][n]) for n in names)
            L.append(f"| {i + 1} | {fmt(rd.get('loadavg'))} | {order} | {fmt(gemm)} | {per_runner} |")
        L += ["", text("rounds_ratios_table")]
        for key, v in r["ratios"].items():
            L.append(_ratio_row(key, v))
        for n in names:
            rr = r["runners"][n].get("roof_ratio")
            if rr:
                L.append(_ratio_row(text("rounds_roof_ratio", runner=n), rr))
        cores = results.get("machine", {}).get("cores")
        L += ["", text("rounds_note", twin=names[0], cores=cores), ""]
        for n, reason in r.get("skipped", {}).items():
            L += [text("rounds_skipped", runner=n, why=reason), ""]
    return L


def _ratio_row(name: str, v: dict[str, Any]) -> str:
    per = ", ".join(f"{x:.3f}" for x in v["samples"])
    return f"| {name} | {v['median']:.3f} | {v['min']:.3f} | {v['max']:.3f} | {per} |"


def _roofs(results: dict[str, Any]) -> list[str]:
    roofs = [r for r in train_rows(results) if r.get("roof") and not r.get("roof_from_twin")]
    if not roofs:
        return []
    L = [text("roof_table")]
    for r in roofs:
        s, step = r["spec"], r["job"]["result"]["step_s"]["median"]
        g = r["roof"]
        share = max(0.0, 1 - g["gemm_seconds"] / step)
        L.append(
            f"| {s['size']} | {s['device']} | {s['dtype']} | {s['runner']} | "
            f"{fmt(g['gemm_flops_per_s'] / 1e9)} | {fmt(g['gemm_seconds'])} | {fmt(step)} | {share:.0%} |"
        )
    return [*L, ""]


def _inference(results: dict[str, Any]) -> list[str]:
    inf = jobs(results, job="infer")
    if not inf:
        return []
    L = [text("inference_table")]
    for j in inf:
        s = j["spec"]
        head = f"| {s['device']} | {s['runner']} | {s['batch']} |"
        if not j.get("ok"):
            L.append(f"{head} {text('failed_cell', error=j.get('error', '?')[:80])} |||||||")
            continue
        r = j["result"]
        d = r["decode_tokens_per_s"]
        L.append(
            f"{head} {s['prompt_len']} | {s['new_tokens']} | {fmt(r['prefill_tokens_per_s']['median'])} "
            f"| {fmt(d['median'])} | {fmt(d['min'])}–{fmt(d['max'])} "
            f"| {fmt(r['first_token_s']['median'] * 1e3)} | {mib(r.get('peak_bytes'))} "
            f"| {mib(j.get('rss_peak_bytes'))} |"
        )
    return [*L, ""]


def _curves(results: dict[str, Any]) -> list[str]:
    cs = curve_summary(results)
    if not cs:
        return []
    spec = jobs(results, job="curve")[0]["spec"]
    L = [
        text(
            "curves_table",
            steps=spec["steps"],
            batch=spec["batch"],
            block_size=spec["config"]["block_size"],
            vocab=f"{spec['config']['vocab_size']:,}",
            data=results.get("data"),
        )
    ]
    for runner, r in cs["runners"].items():
        L.append(f"| {runner} | {r['first']:.4f} | {r['last']:.4f} | {r['seconds']:.1f} |")
    if "max_abs_diff" in cs:
        difference = text(
            "curves_difference",
            largest=f"{cs['max_abs_diff']:.2e}",
            first=f"{cs['first_abs_diff']:.2e}",
            step=cs["max_step"],
            median=f"{cs['median_abs_diff']:.1e}",
        )
        L += ["", difference]
    return [*L, ""]


def _profile(results: dict[str, Any]) -> list[str]:
    j = one(results, job="profile")
    if not j:
        return []
    r = j["result"]
    rows = r["rows"]
    total = sum(x["per_step_s"] for x in rows)
    step = one(results, job="train", runner="jai_mlx", size=j["spec"]["size"], device="cpu", dtype="float32")
    compiled = text("profile_compiled", step=f"{step['result']['step_s']['median']:.2f}") if step else "."
    L = [text("profile_table", batch=r["batch"], total=f"{total:.2f}", compiled=compiled)]
    for x in sorted(rows, key=lambda x: -x["per_step_s"]):
        L.append(
            f"| {x['component']} | {x['count']} | {x['fwd_s'] * 1e3:.1f} | {x['fwd_bwd_s'] * 1e3:.1f} "
            f"| {x['per_step_s']:.3f} | {x['per_step_s'] / total:.0%} | {x['owner']} |"
        )
    rates = r.get("elementwise_per_s", {})
    if rates:
        per_s = ", ".join(f"{k} {v / 1e6:.0f} M/s" for k, v in rates.items())
        L += ["", text("profile_elementwise", batch=r["batch"], rates=per_s)]
    alt = r.get("gelu_alternatives")
    if alt:
        a, b = alt["nn.gelu_approx"], alt["x*sigmoid(2z)"]
        gelu = text(
            "profile_gelu",
            difference=f"{alt['max_abs_diff']:.1e}",
            ours=f"{b['fwd_bwd_s'] * 1e3:.1f}",
            theirs=f"{a['fwd_bwd_s'] * 1e3:.1f}",
            ratio=f"{a['fwd_bwd_s'] / b['fwd_bwd_s']:.2f}",
        )
        L += ["", gelu]
    return [*L, ""]


def _misses(results: dict[str, Any], tg: list[dict[str, Any]]) -> list[str]:
    if not tg:
        return []
    L = [text("targets_why"), ""]
    missed = [t for t in tg if t["met"] is False]
    if missed:
        L += [text("missed_heading"), ""]
        for t in missed:
            value = fmt(t["value"])
            L.append(
                text(
                    "missed",
                    target=t["target"],
                    device=t["device"],
                    value=value,
                    goal=t["goal"],
                    why=why(results, t),
                )
            )
        L += [""]
    met = [t for t in tg if t["met"]]
    if met:
        L += [text("met_heading"), ""]
        for t in met:
            value = fmt(t["value"])
            L.append(
                text(
                    "met",
                    target=t["target"],
                    device=t["device"],
                    value=value,
                    goal=t["goal"],
                    why=why(results, t),
                )
            )
        L += [""]
    rest = [t for t in tg if t["met"] is None]
    L += [text("not_measured", target=t["target"], device=t["device"]) for t in rest]
    return [*L, ""] if rest else L


def _plots(results: dict[str, Any]) -> list[str]:
    plots = results.get("plots", {})
    if not plots:
        return []
    return [text("plots"), "", *(f"![{name}]({path})" for name, path in plots.items()), ""]


def _failed(results: dict[str, Any]) -> list[str]:
    failed = [j for j in results.get("jobs", []) if not j.get("ok")]
    if not failed:
        return []
    return [
        text("failed_jobs"),
        "",
        *(text("failed_job", name=j["name"], error=j.get("error", "?")) for j in failed),
        "",
    ]
