"""A reporter: one destination (TensorBoard, W&B) fed the records of metrics.jsonl as they are written.

A reporter opens on the run's first record (start, or resume at step k) and logs every record after it
at the record's own step. A resumed run's earlier steps are in metrics.jsonl (up to k, as the run kept
them) but perhaps not in the destination: both libraries buffer their files, and `kill -9` loses what
was buffered. Each reporter therefore knows when it must replay them (`replay`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jai.checkpoint.train_state import METRICS_FILE
from jai.reporting.records import RUN_EVENTS, scalars


class Reporter:
    """One destination. Subclasses implement `open`, `log` and `finish`."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.opened = False

    def write(self, record: dict[str, Any]) -> None:
        if record.get("event") in RUN_EVENTS:
            self.open(record)
            self.opened = True
            return
        values = scalars(record)
        if self.opened and values:
            self.log(int(record["step"]), values)

    def close(self) -> None:
        if self.opened:
            self.finish()
            self.opened = False

    def replay(self, through: int) -> None:
        """Log metrics.jsonl's records up to step `through`, as a resumed run found them."""
        for line in (self.out_dir / METRICS_FILE).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            values = scalars(record)
            if values and record["step"] <= through:
                self.log(int(record["step"]), values)

    def open(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def log(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError
