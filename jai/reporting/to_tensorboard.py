"""TensorBoard: <out>/tensorboard/, event files rebuilt from metrics.jsonl when a run resumes.

Written with TensorBoard's own framework-free event writer (tensorboardX would import torch into an MLX
run). A killed run's event file may lack its last steps (the writer flushes every FLUSH_SECONDS) or
hold steps past the checkpoint the run resumes from. Rather than ask every TensorBoard reader to purge
(they differ in how), a resumed run removes its event files and replays metrics.jsonl, which the loop
has already cut back to the checkpoint: the steps shown are those of metrics.jsonl, once each.
"""

from __future__ import annotations

import time
from typing import Any

from jai.reporting.records import hyperparameters
from jai.reporting.reporter import Reporter

LOG_DIR = "tensorboard"
FLUSH_SECONDS = 10  # how stale a running run may look in TensorBoard (the writer's default is 120)


class TensorBoardReporter(Reporter):
    def open(self, record: dict[str, Any]) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        log_dir = self.out_dir / LOG_DIR
        for old in log_dir.glob("events.out.tfevents.*"):  # a new run, or a resumed one rebuilt below
            old.unlink()
        self.writer = EventFileWriter(str(log_dir), flush_secs=FLUSH_SECONDS)
        self._write(0, _hparams(hyperparameters(record)))
        if record["event"] == "resume":
            self.replay(int(record["step"]))

    def log(self, step: int, values: dict[str, float]) -> None:
        from tensorboard.compat.proto import summary_pb2

        self._write(step, [summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values.items()])

    def finish(self) -> None:
        self.writer.close()

    def _write(self, step: int, values: list[Any]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=values)
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))


def _hparams(values: dict[str, str | int | float | bool]) -> list[Any]:
    """The HParams tab's two summaries: which hyperparameters and metrics exist, and this run's values."""
    from google.protobuf import struct_pb2
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    kinds = {str: api_pb2.DATA_TYPE_STRING, bool: api_pb2.DATA_TYPE_BOOL}
    infos = [
        api_pb2.HParamInfo(name=k, type=kinds.get(type(v), api_pb2.DATA_TYPE_FLOAT64))
        for k, v in values.items()
    ]
    start = plugin_data_pb2.SessionStartInfo()
    for key, value in values.items():
        if isinstance(value, str):
            start.hparams[key].CopyFrom(struct_pb2.Value(string_value=value))
        elif isinstance(value, bool):
            start.hparams[key].CopyFrom(struct_pb2.Value(bool_value=value))
        else:
            start.hparams[key].CopyFrom(struct_pb2.Value(number_value=float(value)))
    experiment = api_pb2.Experiment(
        hparam_infos=infos, metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag="val/loss"))]
    )
    return [
        summary_pb2.Summary.Value(
            tag=tag,
            metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**{field: data})),
        )
        for tag, field, data in (
            (metadata.EXPERIMENT_TAG, "experiment", experiment),
            (metadata.SESSION_START_INFO_TAG, "session_start_info", start),
        )
    ]
