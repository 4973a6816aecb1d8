"""`jai plot`'s figure: loss against steps and against seconds for any number of runs, answer scores
against tokens and against seconds when the runs have them (a run's minutes are what a user spends, its
tokens what the model read), and, for exactly two runs, the difference between them beneath."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jai.reporting.runs import Run

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
STYLES = ("-", "--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)))
DPI = 80


def labels(runs: list[Run]) -> list[str]:
    """Folder, twin, device and dtype; the configuration too when the runs do not share one."""
    same = len({r.group for r in runs}) == 1
    return [f"{r.path.name}: {r.who}" + ("" if same else f" ({r.group})") for r in runs]


def _common(a: list[int], av: list[float], b: list[int], bv: list[float]) -> tuple[list[int], list, list]:
    at, bt = dict(zip(a, av, strict=True)), dict(zip(b, bv, strict=True))
    steps = sorted(at.keys() & bt.keys())
    return steps, [at[s] for s in steps], [bt[s] for s in steps]


def tokens_at(run: Run, steps: list[int]) -> list[int]:
    """Tokens trained when each of `steps` ended (0 before the first step): where an evaluation sits."""
    seen = dict(zip(run.steps, run.tokens, strict=True))
    return [seen.get(step, 0) for step in steps]


def figure(runs: list[Run]) -> Any:
    """The matplotlib Figure (Agg): row 1 loss vs step and vs seconds (+ scores vs tokens and vs seconds);
    row 2 the differences."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names, scores = labels(runs), list(dict.fromkeys(k for r in runs for k in r.scores()))
    pair = len(runs) == 2
    cols, rows = 2 + 2 * bool(scores), 1 + pair
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(5.2 * cols, 3.6 + 2.2 * pair),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.6] if pair else [1]},
    )
    by_step, by_time = axes[0][0], axes[0][1]
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        color = COLORS[i % len(COLORS)]
        v_steps, v_secs, v_loss = run.series("val_loss")
        for ax, xs, vx in ((by_step, run.steps, v_steps), (by_time, run.seconds, v_secs)):
            ax.plot(xs, run.losses, color=color, lw=1.4, label=f"{name}, train")
            ax.plot(vx, v_loss, color=color, lw=1.0, ls="--", marker="o", ms=4, label=f"{name}, val")
        for j, key in enumerate(scores):
            s_steps, s_secs, values = run.series(key)
            for ax, xs in ((axes[0][2], tokens_at(run, s_steps)), (axes[0][3], s_secs)) if values else ():
                ax.plot(xs, values, color=color, ls=STYLES[j % len(STYLES)], marker=".")
    by_step.set(xlabel="step", ylabel="loss", title="Loss against steps")
    by_time.set(xlabel="training seconds", ylabel="loss", title="Loss against time")
    if scores:
        axes[0][2].set(xlabel="tokens trained", ylabel="score", title="Answers against tokens")
        axes[0][3].set(xlabel="training seconds", ylabel="score", title="Answers against time")
        # the runs' colours are in the loss panels' legend; here one line style per score says which
        key = [Line2D([], [], color="grey", ls=STYLES[j % len(STYLES)]) for j in range(len(scores))]
        axes[0][2].legend(key, scores, fontsize=7)
    if pair:
        _differences(axes[1], runs, scores)
        if scores:
            axes[1][3].remove()  # a ratio of seconds is already beside it; no fourth difference
    for ax in fig.axes:
        ax.grid(alpha=0.3)
        if ax.get_legend() is None and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if len({r.group for r in runs}) == 1:
        fig.suptitle(f"config {runs[0].group}", fontsize=10)
    fig.tight_layout()
    return fig


def _differences(axes: Any, runs: list[Run], scores: list[str]) -> None:
    """Beneath: A − B in loss (and scores) at the steps both logged, and A's seconds ÷ B's."""
    a, b = runs
    short = f"{a.path.name} − {b.path.name}"
    steps, la, lb = _common(a.steps, a.losses, b.steps, b.losses)
    axes[0].plot(steps, [x - y for x, y in zip(la, lb, strict=True)], color="black", lw=1.0, label="train")
    (va_s, _, va), (vb_s, _, vb) = a.series("val_loss"), b.series("val_loss")
    steps_v, xa, xb = _common(va_s, va, vb_s, vb)
    axes[0].plot(
        steps_v, [x - y for x, y in zip(xa, xb, strict=True)], "o--", color="grey", ms=4, label="val"
    )
    axes[0].axhline(0, color="grey", lw=0.6)
    axes[0].set(xlabel="step", ylabel=f"loss, {short}")
    axes[0].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    steps, sa, sb = _common(a.steps, a.seconds, b.steps, b.seconds)
    ratio = [x / y if y > 0 else float("nan") for x, y in zip(sa, sb, strict=True)]
    axes[1].plot(steps, ratio, color="black", lw=1.0)
    axes[1].axhline(1, color="grey", lw=0.6)
    axes[1].set(xlabel="step", ylabel=f"seconds, {a.path.name} ÷ {b.path.name}")
    for j, key in enumerate(scores):
        (sa_s, _, va), (sb_s, _, vb) = a.series(key), b.series(key)
        steps_k, xa, xb = _common(sa_s, va, sb_s, vb)
        if len(steps_k) < 2:  # evaluated at different steps (runs of different lengths): nothing to compare
            continue
        diff = [x - y for x, y in zip(xa, xb, strict=True)]
        axes[2].plot(steps_k, diff, ls=STYLES[j % len(STYLES)], marker=".", color="black", label=key)
    if scores:
        if not axes[2].get_lines():
            axes[2].text(0.5, 0.5, "no evaluation steps in common", ha="center", transform=axes[2].transAxes)
        axes[2].axhline(0, color="grey", lw=0.6)
        axes[2].set(xlabel="step", ylabel=f"score, {short}")


def save(runs: list[Run], path: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(runs)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
