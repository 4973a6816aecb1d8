"""What a reporter shows of a metrics.jsonl record: its numbers by tag, and who the run is."""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
from dataclasses import dataclass
from importlib import metadata
from typing import Any

RUN_EVENTS = ("start", "resume")  # the records that describe a run rather than measure it


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """Every number of a step's or an evaluation's record but its step, as `train/<key>` (a training
    step's record: it has the loss) or `val/<key>` (an evaluation's, `val_` dropped). Nothing is named
    here, so scores a later evaluation adds to its records are reported as they come."""
    if record.get("event") in RUN_EVENTS or "step" not in record:
        return {}
    prefix = "train" if "loss" in record else "val"
    return {
        f"{prefix}/{key.removeprefix('val_')}": float(value)
        for key, value in record.items()
        if key != "step" and isinstance(value, int | float) and not isinstance(value, bool)
    }


@dataclass(frozen=True)
class RunIdentity:
    """How a run is named and grouped: runs of one configuration share `group` whatever twin, device
    or dtype trained them, so MLX and PyTorch runs of the same model land side by side."""

    backend: str  # "mlx" or "torch"
    device: str
    dtype: str
    group: str  # the configuration: shape, a few settings, and a digest of all of them

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.device}-{self.dtype}"

    @property
    def tags(self) -> list[str]:
        return [self.backend, self.device, self.dtype, self.group]


def config_group(config: dict[str, Any]) -> str:
    """`L6-H6-E384-T256-b8-lr0.001-<digest>`: readable at a glance, and distinct for any two configurations
    (the digest covers the model and every training setting but the dtype, which follows the device)."""
    model, train = config.get("model", {}), dict(config.get("train", {}))
    train.pop("dtype", None)
    digest = hashlib.sha256(json.dumps([model, train], sort_keys=True).encode()).hexdigest()[:6]
    shape = (
        f"L{model.get('n_layer')}-H{model.get('n_head')}-E{model.get('n_embd')}-T{model.get('block_size')}"
    )
    return f"{shape}-b{train.get('batch_size')}-lr{train.get('lr'):g}-{digest}"


def identify(record: dict[str, Any]) -> RunIdentity:
    """The identity of a run from its start (or resume) record."""
    return RunIdentity(
        backend=str(record.get("backend", "?")).removeprefix("jai_"),
        device=str(record.get("device", "?")),
        dtype=str(record.get("dtype", "?")),
        group=config_group(record.get("config", {})),
    )


def hyperparameters(record: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """The run's configuration, flat (`model/n_layer`, `train/lr`), with who trained it and the versions
    of Python, JAI and the twin's framework: what TensorBoard's HParams and W&B's config show."""
    who = identify(record)
    flat: dict[str, str | int | float | bool] = {
        "backend": who.backend,
        "device": who.device,
        "dtype": who.dtype,
        "group": who.group,
        "world_size": int(record.get("world_size", 1)),
        "version/python": platform.python_version(),
    }
    for package in ("jai", who.backend):
        with contextlib.suppress(metadata.PackageNotFoundError):
            flat[f"version/{package}"] = metadata.version(package)
    for section, values in record.get("config", {}).items():
        for key, value in values.items():
            flat[f"{section}/{key}"] = "none" if value is None else value
    return flat
