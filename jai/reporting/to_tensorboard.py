"""TensorBoard: <out>/tensorboard/, event files rebuilt from metrics.jsonl when a run resumes.

A killed run's event file may lack its last steps (tensorboardX flushes every FLUSH_SECONDS) or hold
steps past the checkpoint the run resumes from. Rather than ask every TensorBoard reader to purge
(they differ in how), a resumed run removes its event files and replays metrics.jsonl, which the loop
has already cut back to the checkpoint: the steps shown are those of metrics.jsonl, once each.
"""

from __future__ import annotations

from typing import Any

from jai.reporting.records import hyperparameters
from jai.reporting.reporter import Reporter

LOG_DIR = "tensorboard"
FLUSH_SECONDS = 10  # how stale a running run may look in TensorBoard (tensorboardX's default is 120)


class TensorBoardReporter(Reporter):
    def open(self, record: dict[str, Any]) -> None:
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        log_dir = self.out_dir / LOG_DIR
        for old in log_dir.glob("events.out.tfevents.*"):  # a new run, or a resumed one rebuilt below
            old.unlink()
        self.writer = SummaryWriter(str(log_dir), flush_secs=FLUSH_SECONDS)
        # the HParams tab: the configuration beside the run's last validation loss
        for summary in hparams(hyperparameters(record), {"val/loss": None}):
            self.writer.file_writer.add_summary(summary)
        if record["event"] == "resume":
            self.replay(int(record["step"]))

    def log(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def finish(self) -> None:
        self.writer.close()
