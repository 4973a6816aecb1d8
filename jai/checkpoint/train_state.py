"""The portable training state: everything `--resume` needs beyond the weights, readable by either twin.

A training checkpoint is an ordinary model checkpoint (jai/checkpoint/weights.py) with one more folder, which
`transformers`, `mlx-lm` and the twins' `load_model` do not look at:

    <out>/ckpt/
      config.json  model.safetensors  tokenizer.json     the model, as in every checkpoint (float32)
      train_state/
        optimizer.safetensors    Adam's moments, float32: exp_avg.<name> and exp_avg_sq.<name>
        state.json               step counts, configs, sampler and RNG state, progress

The moments carry the weights' names and the file's layout: the four Conv1D matrices are stored
[in, out], transposed exactly as the weights are (`jai.checkpoint.weights.is_conv1d`). Both twins write the
same file, so a run started in one twin continues in the other. The whole directory, model and training
state together, is replaced in one atomic step (`jai.atomic.atomic_directory`): a crash at any instant,
`kill -9` included, leaves the previous checkpoint or the new one, never a mixture.

What resuming restores, and why each is needed for a run that ends with the same weights as one that
was never interrupted: the weights and both moments; the optimizer's step count (Adam's bias
correction divides by 1 - beta^t); the step (the learning-rate schedule's position); the batch
sampler's state (the same batches follow); and the dropout RNG (the same masks follow). The RNG is the
one thing that cannot cross twins: each framework has its own generator, so a cross-twin resume reseeds
it (which matters only with dropout > 0).

The rest of a run lives beside it: jai/training/plan.py (what a run starts from), jai/training/metrics_log.py,
jai/checkpoint/recovery.py (an interrupted save) and jai/training/loop.py (the loop itself).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from jai.atomic import atomic_directory
from jai.checkpoint import weights
from jai.checkpoint.hf_files import write_model_files
from jai.checkpoint.inspect import inspect_checkpoint
from jai.checkpoint.lora import LoraConfig, adapter_shapes, write_adapter
from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError, GPTConfig
from jai.errors import RunFailed
from jai.train_config import TrainConfig

STATE_DIR = "train_state"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
FORMAT = "jai-train-state"
FORMAT_VERSION = 1
MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's first and second moments, under PyTorch's names

DEFAULT_DATA = "out/data"  # where `jai prepare` writes, and `jai train` reads, by default
CKPT_DIR = "ckpt"  # <out>/ckpt: the run's one checkpoint, replaced atomically each time
METRICS_FILE = "metrics.jsonl"


# --- the state ---------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Where a run stands after `step` optimizer steps; `state.json` is this, as JSON."""

    step: int
    optimizer_step: int  # Adam's t, for bias correction; equals `step` in a run that started from zero
    train_config: TrainConfig
    model_config: GPTConfig
    sampler: dict[str, Any]  # jai.dataset.BatchSampler.state_dict()
    rng: dict[str, Any] = field(default_factory=dict)  # the writer's dropout RNG; {"kind": ...}
    tokens_seen: int = 0
    elapsed_seconds: float = 0.0  # wall time over all the run's invocations
    loss: float | None = None  # the last step's training loss
    val_loss: float | None = None  # the last evaluation
    best_val_loss: float | None = None
    writer: str = ""  # the twin that wrote it: jai_mlx or jai_torch
    device: str = ""
    dtype: str = "float32"
    tokenizer_sha256: str | None = None  # from the data's meta.json: resuming on other data is refused
    data_dir: str | None = None  # the data the run trains on: --resume finds it here
    lora: dict[str, Any] | None = None  # a LoRA run: its LoraConfig (jai.checkpoint.lora), and its base
    base: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (TrainConfig, GPTConfig)):
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, obj: Any, source: str = STATE_FILE) -> TrainState:
        """Parse and check `state.json`; every problem names the file and the field."""
        if not isinstance(obj, dict):
            raise CheckpointError(f"{source}: expected a JSON object, found {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise CheckpointError(f"{source}: not a JAI training state (format {obj.get('format')!r})")
        version = obj.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: format_version {version!r} is newer than this JAI reads ({FORMAT_VERSION})"
            )
        required = {
            "step": int,
            "optimizer_step": int,
            "train_config": dict,
            "model_config": dict,
            "sampler": dict,
        }
        optional = {
            "rng": dict,
            "tokens_seen": int,
            "elapsed_seconds": (int, float),
            "loss": (int, float, type(None)),
            "val_loss": (int, float, type(None)),
            "best_val_loss": (int, float, type(None)),
            "writer": str,
            "device": str,
            "dtype": str,
            "tokenizer_sha256": (str, type(None)),
            "data_dir": (str, type(None)),
            "lora": (dict, type(None)),
            "base": (str, type(None)),
        }
        for name in required:
            if name not in obj:
                raise CheckpointError(f"{source}: missing field {name!r}")
        values: dict[str, Any] = {}
        for name, kind in (required | optional).items():
            if name not in obj:
                continue
            value = obj[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
                raise CheckpointError(
                    f"{source}: field {name!r}: expected {expected}, found {type(value).__name__}"
                )
            values[name] = value
        if values["step"] < 0 or values["optimizer_step"] < 0:
            raise CheckpointError(f"{source}: step and optimizer_step must not be negative")
        values["train_config"] = _config(TrainConfig, values["train_config"], f"{source}: train_config")
        values["model_config"] = _config(GPTConfig, values["model_config"], f"{source}: model_config")
        return cls(**values)


def _config(kind: type, d: dict[str, Any], source: str) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise CheckpointError(f"{source}: unknown field {unknown[0]!r} (written by a newer JAI?)")
    try:
        return kind(**d)
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


# --- the moments -------------------------------------------------------------------------------------


def moment_shapes(cfg: GPTConfig, lora: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """Every tensor of optimizer.safetensors and its shape (the file's layout), in a stable order: the
    model's, or in a LoRA run the adapter's alone (nothing else trains)."""
    shapes = adapter_shapes(cfg, LoraConfig.from_dict(lora)) if lora else weights.tensor_shapes(cfg)
    return {f"{m}.{name}": shape for m in MOMENTS for name, shape in shapes.items()}


def moments_to_file(moments: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{exp_avg.<name>: array in the twin's layout} -> the file's tensors (Conv1D transposed, float32)."""
    out = {}
    for key, a in moments.items():
        a = np.asarray(a, dtype=np.float32)
        out[key] = np.ascontiguousarray(a.T if weights.is_conv1d(key) else a)
    return out


def moments_from_file(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of `moments_to_file`: each moment in the twins' layout (Linear: [out, in])."""
    return {k: np.ascontiguousarray(a.T) if weights.is_conv1d(k) else a for k, a in tensors.items()}


def check_moments(
    found: dict[str, tuple[str, tuple[int, ...]]],
    cfg: GPTConfig,
    path: Path,
    lora: dict[str, Any] | None = None,
) -> None:
    """Check optimizer.safetensors' header against the model config; raise on the first mismatch."""
    shapes = moment_shapes(cfg, lora)
    problem = weights.shape_mismatch({k: shape for k, (_, shape) in found.items()}, shapes)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    for name, (dtype, _) in found.items():
        if dtype != "F32":
            raise CheckpointError(f"{path}: tensor {name!r}: expected dtype F32, found {dtype}")


# --- reading and writing -----------------------------------------------------------------------------


def has_train_state(ckpt_dir: str | os.PathLike) -> bool:
    return (Path(ckpt_dir) / STATE_DIR / STATE_FILE).is_file()


def read_state_json(ckpt_dir: str | os.PathLike) -> TrainState:
    """Read and check `train_state/state.json` alone (no tensors)."""
    path = Path(ckpt_dir) / STATE_DIR / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file ({ckpt_dir} holds no training state to resume from)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    return TrainState.from_json(obj, str(path))


def read_train_state(ckpt_dir: str | os.PathLike) -> tuple[TrainState, dict[str, np.ndarray]]:
    """Validate a training checkpoint end to end; return its state and moments (twins' layout).

    Checks the model files (as `jai.checkpoint.inspect` does), state.json, and every moment's name,
    shape and dtype against the checkpoint's config.json, before reading any tensor.
    """
    ckpt_dir = Path(ckpt_dir)
    state = read_state_json(ckpt_dir)
    if state.lora is not None:  # an adapter's checkpoint: jai.training.plan checks its base and tensors
        cfg = state.model_config
    else:
        cfg, _ = inspect_checkpoint(ckpt_dir)
    if state.model_config != cfg:
        raise CheckpointError(
            f"{ckpt_dir / STATE_DIR / STATE_FILE}: model_config disagrees with "
            f"{ckpt_dir / weights.CONFIG_FILE}: {_differences(state.model_config, cfg)}"
        )
    path = ckpt_dir / STATE_DIR / OPTIMIZER_FILE
    check_moments(weights.read_header(path), cfg, path, state.lora)
    return state, moments_from_file(load_file(path))


def write_training_checkpoint(
    ckpt_dir: str | os.PathLike,
    writer: str,
    save_weights: Callable[[Path], None],
    state: TrainState,
    moments: dict[str, np.ndarray],
    tokenizer: str | os.PathLike | None = None,
    adapter: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write model files and training state into `ckpt_dir` in one atomic directory replacement.

    `save_weights(path)` writes model.safetensors (the twin's own writer, as in its save_model);
    `moments` maps exp_avg.<name> / exp_avg_sq.<name> to arrays in the twin's layout. A LoRA run
    (`state.lora`) writes its `adapter` in PEFT's format instead of the model (jai/checkpoint/lora.py).
    """
    ckpt_dir = Path(ckpt_dir)
    cfg = state.model_config
    tensors = moments_to_file(moments)
    wrong = sorted(set(moment_shapes(cfg, state.lora)) ^ set(tensors))  # missing or unexpected
    if wrong:
        raise CheckpointError(f"{ckpt_dir}: the moments do not match the model: {wrong[0]!r}")
    try:
        with atomic_directory(ckpt_dir) as tmp:
            # The model part is what hf_files.save_checkpoint writes, in the same atomic directory.
            if state.lora is None:
                write_model_files(tmp, cfg, writer, save_weights, tokenizer)
            else:
                lora = LoraConfig.from_dict(state.lora)
                write_adapter(tmp, lora, adapter or {}, Path(state.base or ""))
                if tokenizer is not None:  # the adapter's folder is self-contained for readers too
                    shutil.copyfile(tokenizer, tmp / weights.TOKENIZER_FILE)
            state_dir = tmp / STATE_DIR
            state_dir.mkdir()
            blob = save(tensors, metadata={"format": "np", "jai": FORMAT})
            (state_dir / OPTIMIZER_FILE).write_bytes(sorted_metadata(blob))
            text = json.dumps(state.to_json(), indent=2, allow_nan=False) + "\n"
            (state_dir / STATE_FILE).write_text(text, encoding="utf-8")
    except (OSError, SafetensorError) as e:  # a full disk, a folder made read-only: not a bug
        kept = (
            f"the previous checkpoint in {ckpt_dir} is intact"
            if ckpt_dir.exists()
            else "no earlier checkpoint existed"
        )
        raise CheckpointWriteError(
            f"{ckpt_dir}: could not write the checkpoint of step {state.step} "
            f"({getattr(e, 'strerror', None) or e}); {kept}"
        ) from None
    return ckpt_dir


def sorted_metadata(blob: bytes) -> bytes:
    """A safetensors file's bytes with its header metadata in key order, so equal runs give equal files.

    safetensors writes the metadata from a Rust HashMap, in an order that changes from process to process.
    Sorting keeps the header's length (the same keys and values, moved), so the tensors' offsets stand.
    """
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > size:
        raise ValueError(f"safetensors header grew from {size} to {len(text)} bytes when sorted")
    return blob[:8] + text.ljust(size) + blob[8 + size :]  # safetensors pads its header with spaces


class CheckpointWriteError(RunFailed):
    """The file system refused a checkpoint (full disk, no permission); the previous one is intact."""


def _differences(a: Any, b: Any) -> str:
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    return ", ".join(f"{k} {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k])
