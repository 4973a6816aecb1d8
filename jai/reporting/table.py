"""`jai plot --format md`: the runs' final figures as a Markdown table."""

from __future__ import annotations

from jai.reporting.runs import Run


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown(runs: list[Run]) -> str:
    scores = list(dict.fromkeys(k for r in runs for k in r.scores()))
    head = ["run", "twin", "device", "dtype", "config", "steps", "train loss", "val loss", "best val"]
    head += ["seconds", "tokens/s", *scores]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 5 + "---:|" * (len(head) - 5)]
    for run in runs:
        val = run.series("val_loss")[2]
        seconds = run.seconds[-1]
        row = [run.path.name, "→".join(run.backends), run.device, run.dtype, run.group, str(run.steps[-1])]
        row += [_fmt(run.losses[-1]), _fmt(val[-1] if val else None), _fmt(min(val) if val else None)]
        row += [f"{seconds:.1f}", f"{run.tokens[-1] / seconds:,.0f}" if seconds > 0 else ""]
        for key in scores:
            values = run.series(key)[2]
            row.append(_fmt(values[-1] if values else None, 3))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
