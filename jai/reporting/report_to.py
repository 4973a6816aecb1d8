"""`jai train --report-to`: the destinations named, checked installed, as one sink for the metrics log."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from jai.errors import InputError
from jai.reporting.reporter import Reporter
from jai.reporting.to_tensorboard import TensorBoardReporter
from jai.reporting.to_wandb import WandbReporter

# --report-to's names: each with the module it needs and the extra that installs it.
DESTINATIONS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


class MissingExtra(InputError):
    """A --report-to destination whose library is not installed."""


class Reporters:
    """Several destinations as one sink for the metrics log."""

    def __init__(self, reporters: list[Reporter]) -> None:
        self.reporters = reporters

    def write(self, record: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.write(record)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()


def parse(values: list[str] | None) -> list[str]:
    """--report-to's values (repeated or comma-separated; "none" adds nothing), checked, in order."""
    names: list[str] = []
    for value in values or []:
        for name in (v.strip() for v in value.split(",")):
            if name == "none" or not name:
                continue
            if name not in DESTINATIONS:
                raise InputError(f"--report-to {name}: choose from {', '.join(DESTINATIONS)} or none")
            if name not in names:
                names.append(name)
    return names


def require(name: str) -> None:
    """Check the library `name` needs is installed now, so a missing extra is one line before training."""
    module, extra = DESTINATIONS[name]
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(
            f"--report-to {name} needs {module}, which is not installed: pip install 'jai[{extra}]'"
        )


def reporters(names: list[str], out_dir: str | Path) -> Reporters | None:
    """The reporters for `names` into the run folder `out_dir`; None for none. Nothing opens until the
    loop writes its first record, on rank 0 alone."""
    if not names:
        return None
    for name in names:
        require(name)
    kinds = {"tensorboard": TensorBoardReporter, "wandb": WandbReporter}
    return Reporters([kinds[name](out_dir) for name in names])
