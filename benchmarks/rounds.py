"""Training speed measured in alternating rounds: every runner of one framework in one process, taking turns.

A shared machine's load changes from minute to minute. Timed one after another (each runner its own
process, minutes apart), two runners can see different machines, and their ratio says more about the load
than about the code. Here each round times one window of every runner back to back (and, where asked, the
GEMM roof), so each round's ratios compare runners under the same load; the figures reported are the
median of the per-round ratios and their spread (min-max). The order rotates from round to round, so no
runner always goes first (or always follows the one that heated the caches).

Framework-free: the runners are callables that run one training step and wait for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from jai.benchmarks.stats import clock, summarize

Step = Callable[[], float]  # one training step, waited for; returns the loss


def rotated(names: list[str], round_index: int) -> list[str]:
    """The runners' order in round `round_index`: shifted by one place per round."""
    k = round_index % len(names) if names else 0
    return names[k:] + names[:k]


def alternate(
    steps: dict[str, Step],
    rounds: int,
    warmup: int,
    steps_per_window: int,
    tokens_per_step: int,
    roof: Callable[[], dict[str, float]] | None = None,
    progress: Callable[[], None] = lambda: None,
    flops_per_token: float | None = None,
) -> dict[str, Any]:
    """Warm every runner up, then `rounds` rounds of one timed window per runner (and one roof timing).

    Returns per-runner summaries (tokens/s, s/step, losses), every round's figures, the per-round ratio
    of the first runner (the twin) to each other runner, and with `roof` (a function timing the step's
    GEMMs, returning flops.roof's dict) every runner's per-round roof ratio.
    """
    names = list(steps)
    losses: dict[str, list[float]] = {n: [] for n in names}
    for n in names:
        for _ in range(warmup):
            losses[n].append(steps[n]())
            progress()
    per_round: list[dict[str, Any]] = []
    for i in range(rounds):
        this: dict[str, Any] = {"order": rotated(names, i), "tokens_per_s": {}, "loadavg": _load()}
        if roof is not None:
            this["roof"] = roof()
        for n in this["order"]:
            t = clock()
            for _ in range(steps_per_window):
                loss = steps[n]()
            this["tokens_per_s"][n] = tokens_per_step * steps_per_window / (clock() - t)
            losses[n].append(loss)
            progress()
        per_round.append(this)
    out: dict[str, Any] = {"runners": {}, "rounds": per_round, "ratios": {}}
    for n in names:
        tps = [r["tokens_per_s"][n] for r in per_round]
        out["runners"][n] = {
            "tokens_per_s": summarize(tps),
            "step_s": summarize([tokens_per_step / x for x in tps]),
            "losses": losses[n],
        }
        if roof is not None and flops_per_token:
            ratios = [
                x * flops_per_token / r["roof"]["gemm_flops_per_s"]
                for x, r in zip(tps, per_round, strict=True)
            ]
            out["runners"][n]["roof_ratio"] = summarize(ratios)
    twin = names[0]
    for n in names[1:]:
        out["ratios"][f"{twin}/{n}"] = summarize(
            [r["tokens_per_s"][twin] / r["tokens_per_s"][n] for r in per_round]
        )
    if roof is not None:
        best = min(per_round, key=lambda r: r["roof"]["gemm_seconds"])["roof"]
        out["roof"] = dict(best)  # the fastest the GEMMs ran in any round: the roof
        out["roof"]["gemm_seconds_per_round"] = [r["roof"]["gemm_seconds"] for r in per_round]
    return out


def _load() -> float | None:
    """The 1-minute load average as the round starts: how many processes wanted the cores."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def ticks(n_runners: int, rounds: int, warmup: int) -> int:
    """How many progress ticks `alternate` prints."""
    return n_runners * (warmup + rounds)
