"""Weights & Biases, offline: <out>/wandb/offline-run-*, uploaded later with `wandb sync` by the user.

A resumed run continues the same W&B run: its id is kept in <out>/wandb/jai-run.json, and each
segment of the run (start, then every resume) is a run folder with that id, which `wandb sync`
uploads as one run, in order. A segment ended cleanly has logged everything up to the step the next
one resumes from; after a crash (`kill -9`), what W&B had buffered is lost, so the next segment logs
metrics.jsonl's steps again, and W&B keeps each step once (steps must increase within a run).
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from jai.atomic import write_text_atomic
from jai.reporting.records import hyperparameters, identify
from jai.reporting.reporter import Reporter

RUN_FILE = "jai-run.json"  # in <out>/wandb: {"id", "finished", "step"} of the latest segment
PROJECT = "jai"  # unless WANDB_PROJECT names another


class WandbReporter(Reporter):
    def open(self, record: dict[str, Any]) -> None:
        import wandb

        folder = self.out_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        self.run_file = folder / RUN_FILE
        earlier = self._earlier() if record["event"] == "resume" else None
        run_id = earlier["id"] if earlier else secrets.token_hex(4)  # W&B ids: letters and digits
        self.step = int(record["step"])
        self._note(run_id, finished=False)
        who = identify(record)
        self.run = wandb.init(
            dir=str(self.out_dir),
            id=run_id,
            resume="allow",
            mode="offline",  # nothing here may need a network; `wandb sync` uploads later
            project=os.environ.get("WANDB_PROJECT", PROJECT),
            name=who.name,
            group=who.group,
            tags=who.tags,
            job_type="train",
            config=hyperparameters(record),
            settings=wandb.Settings(
                silent=True, console="off"
            ),  # JAI's own log and progress bar stay as they are
        )
        if earlier is None and record["event"] == "resume":
            self.replay(self.step)  # a run reported for the first time now: its history so far
        elif earlier is not None and not (earlier["finished"] and earlier["step"] == self.step):
            self.replay(self.step)  # the earlier segment crashed: what it buffered may be lost

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)
        self.step = step

    def finish(self) -> None:
        self.run.finish()
        self._note(self.run.id, finished=True)

    def _earlier(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _note(self, run_id: str, finished: bool) -> None:
        note = {"id": run_id, "finished": finished, "step": self.step}
        write_text_atomic(self.run_file, json.dumps(note) + "\n")
