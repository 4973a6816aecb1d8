"""`<out>/metrics.jsonl`: the run's log, one JSON object a line, written once by the training loop."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from jai.atomic import write_text_atomic


class RecordSink(Protocol):
    """Something that shows the log elsewhere (TensorBoard, W&B: jai/reporting/): it sees every record
    as it is written, the run's start or resume record first, and is closed with the log."""

    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class MetricsLog:
    """`<out>/metrics.jsonl`: one JSON object a line, flushed as written so a crash loses nothing.

    Resuming from step k keeps the lines up to step k and drops the rest (steps the killed run took
    after its last checkpoint, which the resumed run takes again, and a torn last line), then appends.
    `sink` sees each record after it is in the file.
    """

    def __init__(
        self, path: str | os.PathLike, resume_step: int | None = None, sink: RecordSink | None = None
    ) -> None:
        self.path, self.sink = Path(path), sink
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("step", 0) <= resume_step:
                    kept.append(line + "\n")
            write_text_atomic(self.path, "".join(kept))
        self._file = open(self.path, "a" if resume_step is not None else "w", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.sink is not None:
            self.sink.write(record)

    def close(self) -> None:
        self._file.close()
        if self.sink is not None:
            self.sink.close()
