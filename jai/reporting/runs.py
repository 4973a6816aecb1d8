"""A finished (or running) run, read from its metrics.jsonl, for `jai plot`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jai.checkpoint.train_state import METRICS_FILE
from jai.errors import InputError
from jai.reporting.records import RUN_EVENTS, identify


@dataclass
class Run:
    path: Path  # the run folder
    backends: list[str]  # in the order the run's segments used them: ["mlx", "torch"] after a hand-over
    device: str
    dtype: str
    group: str  # the configuration (jai/reporting/records.py: config_group)
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training seconds when each step ended
    tokens: list[int] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)  # evaluation records, in step order
    step_keys: set[str] = field(default_factory=set)  # what a training step's record holds

    @property
    def who(self) -> str:
        return f"{'→'.join(self.backends)} {self.device} {self.dtype}"

    def scores(self) -> list[str]:
        """An evaluation's numbers besides its loss and the run's counters (the step, seconds, tokens: what
        a training step records too), in the order first met: the answer scores, whatever their names."""
        keys = {k: None for e in self.evals for k, v in e.items() if _number(v)}
        return [k for k in keys if k != "val_loss" and k not in self.step_keys]

    def series(self, key: str) -> tuple[list[int], list[float], list[float]]:
        """(steps, seconds, values) of one evaluation number."""
        rows = [e for e in self.evals if _number(e.get(key))]
        return [e["step"] for e in rows], [e.get("elapsed", 0.0) for e in rows], [e[key] for e in rows]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load(path: str | os.PathLike) -> Run:
    """The run in folder `path` (or its metrics.jsonl named directly)."""
    path = Path(path)
    metrics = path / METRICS_FILE if path.is_dir() else path
    if not metrics.is_file():
        raise InputError(f"{metrics}: no such file; give a run folder from `jai train` (with {METRICS_FILE})")
    run: Run | None = None
    for number, line in enumerate(metrics.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{metrics}, line {number}: not JSON") from None
        if record.get("event") in RUN_EVENTS:
            who = identify(record)
            if run is None:
                run = Run(metrics.parent, [who.backend], who.device, who.dtype, who.group)
            elif who.backend != run.backends[-1]:
                run.backends.append(who.backend)
        elif run is None or "event" in record:
            continue
        elif "loss" in record:
            run.steps.append(record["step"])
            run.losses.append(record["loss"])
            run.seconds.append(record.get("elapsed", 0.0))
            run.tokens.append(record.get("tokens", 0))
            run.step_keys.update(record)
        else:
            run.evals.append(record)
    if run is None or not run.steps:
        raise InputError(f"{metrics}: no training steps logged")
    return run
