"""PNG plots of a run (matplotlib, Agg): loss against step and against seconds, and throughput bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"jai_torch": "#d62728", "transformers": "#ff9896", "jai_mlx": "#1f77b4", "mlx_lm": "#aec7e8"}
DPI = 80


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        j["spec"]["runner"]: j["result"]
        for j in results.get("jobs", [])
        if j["spec"].get("job") == "curve" and j.get("ok")
    }


def loss_vs_step(results: dict[str, Any], path: Path) -> bool:
    curves = _curves(results)
    if not curves:
        return False
    plt = _plt()
    both = {"jai_torch", "jai_mlx"} <= curves.keys()
    fig, axes = plt.subplots(
        2 if both else 1,
        1,
        figsize=(7, 5.5 if both else 3.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.3]} if both else None,
        squeeze=False,
    )
    ax = axes[0][0]
    for runner, r in curves.items():
        ax.plot(
            range(len(r["losses"])),
            r["losses"],
            label=runner,
            color=COLORS.get(runner),
            lw=1.6,
            ls="-" if runner == "jai_torch" else "--",
        )
    ax.set_ylabel("training loss")
    ax.set_title("Loss against step (same weights, same batches)")
    ax.legend()
    ax.grid(alpha=0.3)
    if both:
        a, b = curves["jai_torch"]["losses"], curves["jai_mlx"]["losses"]
        diff = [x - y for x, y in zip(a, b, strict=False)]
        ax2 = axes[1][0]
        ax2.plot(range(len(diff)), diff, color="black", lw=1.2, marker=".")
        ax2.axhline(0, color="grey", lw=0.8)
        ax2.set_ylabel("torch − mlx")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax2.grid(alpha=0.3)
    axes[-1][0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def loss_vs_time(results: dict[str, Any], path: Path) -> bool:
    curves = _curves(results)
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for runner, r in curves.items():
        ax.plot(r["seconds"], r["losses"], label=runner, color=COLORS.get(runner), lw=1.6, marker=".")
    ax.set_xlabel("wall-clock seconds")
    ax.set_ylabel("training loss")
    ax.set_title("Loss against time (same batches)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def _bars(
    groups: list[tuple[str, list[tuple[str, float, float, float]]]], title: str, ylabel: str, path: Path
):
    """groups: [(group label, [(runner, median, min, max), ...])]"""
    plt = _plt()
    runners = list(dict.fromkeys(r for _, items in groups for r, *_ in items))
    width = 0.8 / max(1, len(runners))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) + 2), 3.6))
    for i, runner in enumerate(runners):
        xs, ys, lo, hi = [], [], [], []
        for g, (_, items) in enumerate(groups):
            for r, med, mn, mx in items:
                if r == runner:
                    xs.append(g + (i - (len(runners) - 1) / 2) * width)
                    ys.append(med)
                    lo.append(med - mn)
                    hi.append(mx - med)
        bars = ax.bar(xs, ys, width, label=runner, color=COLORS.get(runner), yerr=[lo, hi], capsize=3)
        ax.bar_label(bars, labels=[f"{y:,.0f}" if y >= 10 else f"{y:.1f}" for y in ys], fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g for g, _ in groups], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def train_bars(results: dict[str, Any], path: Path) -> bool:
    groups: dict[str, list] = {}
    for j in results.get("jobs", []):
        s = j["spec"]
        if s.get("job") != "train" or not j.get("ok"):
            continue
        t = j["result"]["tokens_per_s"]
        label = f"{s['size']} b{s['batch']}\n{s['device']} {s['dtype']}"
        groups.setdefault(label, []).append((s["runner"], t["median"], t["min"], t["max"]))
    if not groups:
        return False
    _bars(list(groups.items()), "Training throughput (median, min–max)", "tokens / s", path)
    return True


def decode_bars(results: dict[str, Any], path: Path) -> bool:
    groups: dict[str, list] = {}
    for j in results.get("jobs", []):
        s = j["spec"]
        if s.get("job") != "infer" or not j.get("ok"):
            continue
        t = j["result"]["decode_tokens_per_s"]
        groups.setdefault(f"decode batch {s['batch']}\n{s['device']}", []).append(
            (s["runner"], t["median"], t["min"], t["max"])
        )
    if not groups:
        return False
    _bars(list(groups.items()), "Decode throughput, KV cache (median, min–max)", "new tokens / s", path)
    return True


def write_all(results: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write every plot the results allow; returns {name: file name relative to out_dir}."""
    out = {}
    for name, fn in (
        ("loss_vs_step", loss_vs_step),
        ("loss_vs_time", loss_vs_time),
        ("train_tokens_per_s", train_bars),
        ("decode_tokens_per_s", decode_bars),
    ):
        path = Path(out_dir) / f"{name}.png"
        if fn(results, path):
            out[name] = path.name
    return out
