"""The portable training state: everything `--resume` needs beyond the weights, readable by either twin.

A training checkpoint is an ordinary model checkpoint (jai/weights.py) with one more folder, which
`transformers`, `mlx-lm` and the twins' `load_model` do not look at:

    <out>/ckpt/
      config.json  model.safetensors  tokenizer.json     the model, as in every checkpoint (float32)
      train_state/
        optimizer.safetensors    Adam's moments, float32: exp_avg.<name> and exp_avg_sq.<name>
        state.json               step counts, configs, sampler and RNG state, progress

The moments carry the weights' names and the file's layout: the four Conv1D matrices are stored
[in, out], transposed exactly as the weights are (`jai.weights.is_conv1d`). Both twins write the same
file, so a run started in one twin continues in the other. The whole directory, model and training
state together, is replaced in one atomic step (`jai.atomic.atomic_directory`): a crash at any instant,
`kill -9` included, leaves the previous checkpoint or the new one, never a mixture.

What resuming restores, and why each is needed for a run that ends with the same weights as one that
was never interrupted: the weights and both moments; the optimizer's step count (Adam's bias
correction divides by 1 - beta^t); the step (the learning-rate schedule's position); the batch
sampler's state (the same batches follow); and the dropout RNG (the same masks follow). The RNG is the
one thing that cannot cross twins: each framework has its own generator, so a cross-twin resume reseeds
it (which matters only with dropout > 0).

This module also holds the other framework-free parts of a run, so the twins' train.py files hold
only what differs between frameworks: `plan_run` (configs, resume checks) and `MetricsLog`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from jai import weights
from jai.atomic import atomic_directory, write_text_atomic
from jai.config import ConfigError, GPTConfig
from jai.dataset import META_FILE, DatasetError, TokenBin
from jai.errors import RunFailed
from jai.train_config import TrainConfig
from jai.weights import CheckpointError

STATE_DIR = "train_state"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
FORMAT = "jai-train-state"
FORMAT_VERSION = 1
MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's first and second moments, under PyTorch's names

CKPT_DIR = "ckpt"  # <out>/ckpt: the run's one checkpoint, replaced atomically each time
METRICS_FILE = "metrics.jsonl"


class TrainingDiverged(RunFailed):
    """The loss (or the gradient norm) stopped being finite; the last good checkpoint is kept."""


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


def moment_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of optimizer.safetensors and its shape (the file's layout), in a stable order."""
    shapes = weights.tensor_shapes(cfg)
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


def check_moments(found: dict[str, tuple[str, tuple[int, ...]]], cfg: GPTConfig, path: Path) -> None:
    """Check optimizer.safetensors' header against the model config; raise on the first mismatch."""
    problem = weights.shape_mismatch({k: shape for k, (_, shape) in found.items()}, moment_shapes(cfg))
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

    Checks the model files (as `jai.weights.inspect_checkpoint` does), state.json, and every moment's
    name, shape and dtype against the checkpoint's config.json, before reading any tensor.
    """
    ckpt_dir = Path(ckpt_dir)
    cfg, _ = weights.inspect_checkpoint(ckpt_dir)
    state = read_state_json(ckpt_dir)
    if state.model_config != cfg:
        raise CheckpointError(
            f"{ckpt_dir / STATE_DIR / STATE_FILE}: model_config disagrees with "
            f"{ckpt_dir / weights.CONFIG_FILE}: {_differences(state.model_config, cfg)}"
        )
    path = ckpt_dir / STATE_DIR / OPTIMIZER_FILE
    check_moments(weights.read_header(path), cfg, path)
    return state, moments_from_file(load_file(path))


def write_training_checkpoint(
    ckpt_dir: str | os.PathLike,
    writer: str,
    save_weights: Callable[[Path], None],
    state: TrainState,
    moments: dict[str, np.ndarray],
    tokenizer: str | os.PathLike | None = None,
) -> Path:
    """Write model files and training state into `ckpt_dir` in one atomic directory replacement.

    `save_weights(path)` writes model.safetensors (the twin's own writer, as in its save_model);
    `moments` maps exp_avg.<name> / exp_avg_sq.<name> to arrays in the twin's layout.
    """
    ckpt_dir = Path(ckpt_dir)
    cfg = state.model_config
    tensors = moments_to_file(moments)
    wrong = sorted(set(moment_shapes(cfg)) ^ set(tensors))  # missing or unexpected
    if wrong:
        raise CheckpointError(f"{ckpt_dir}: the moments do not match the model: {wrong[0]!r}")
    with atomic_directory(ckpt_dir) as tmp:
        # The model part is what jai.weights.save_checkpoint writes, here inside the same atomic directory.
        weights.write_model_files(tmp, cfg, writer, save_weights, tokenizer)
        state_dir = tmp / STATE_DIR
        state_dir.mkdir()
        save_file(tensors, state_dir / OPTIMIZER_FILE, metadata={"format": "np", "jai": FORMAT})
        text = json.dumps(state.to_json(), indent=2, allow_nan=False) + "\n"
        (state_dir / STATE_FILE).write_text(text, encoding="utf-8")
    return ckpt_dir


def _differences(a: Any, b: Any) -> str:
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    return ", ".join(f"{k} {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k])


# --- the run: configs, resume checks, metrics --------------------------------------------------------


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


class MetricsLog:
    """`<out>/metrics.jsonl`: one JSON object a line, flushed as written so a crash loses nothing.

    Resuming from step k keeps the lines up to step k and drops the rest (steps the killed run took
    after its last checkpoint, which the resumed run takes again, and a torn last line), then appends.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
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

    def close(self) -> None:
        self._file.close()


@dataclass
class RunPlan:
    """What a run starts from, worked out before any framework is touched (see `plan_run`)."""

    model_config: GPTConfig
    train_config: TrainConfig
    train_tokens: np.ndarray  # memmaps of train.bin and val.bin
    val_tokens: np.ndarray
    ckpt_dir: Path
    metrics_path: Path
    tokenizer: Path | None  # copied into every checkpoint, so it is self-contained
    tokenizer_sha256: str | None
    resume: TrainState | None = None  # with `moments`, when continuing a run
    moments: dict[str, np.ndarray] | None = None
    init_from: Path | None = None  # a checkpoint whose weights start a new run
    notes: list[str] = field(default_factory=list)  # things the log should say (changed settings)


def plan_run(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_cfg: GPTConfig | None,
    train_cfg: TrainConfig | None,
    resume: bool = False,
    init_from: str | os.PathLike | None = None,
) -> RunPlan:
    """Check the data, the checkpoint and the configs against each other, and settle the configs.

    - The vocabulary (and the special-token ids) come from the data's meta.json, whatever `model_cfg` says.
    - A new run needs `model_cfg` (default: GPTConfig()) and refuses an out dir that already holds a
      checkpoint; `resume` needs that checkpoint, and refuses a `model_cfg` or data that disagree with it.
    - `train_cfg=None` means TrainConfig() for a new run and the checkpoint's own for a resumed one;
      settings that differ from the checkpoint's are allowed (a longer schedule, say) and noted.
    - `init_from` starts a new run (step 0, fresh optimizer) from a checkpoint's weights.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if resume and init_from is not None:
        raise ConfigError(
            "--resume continues this run's own checkpoint; it cannot be combined with --init-from"
        )
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: no such data directory (make one with `jai prepare`)")
    train_bin, val_bin = TokenBin(data_dir / "train.bin"), TokenBin(data_dir / "val.bin")
    meta = train_bin.meta
    if meta is None:
        raise DatasetError(f"{data_dir / META_FILE}: no such file; the model's vocabulary size comes from it")
    ids = {f"{k}_token_id": meta.get(f"{k}_id") for k in ("bos", "eos", "pad")}

    def with_data(cfg: GPTConfig) -> GPTConfig:
        return cfg.replace(vocab_size=meta["vocab_size"], **ids)

    ckpt_dir = out_dir / CKPT_DIR
    recovered = recover_checkpoint(ckpt_dir)
    tokenizer = data_dir / weights.TOKENIZER_FILE
    plan = RunPlan(
        model_config=GPTConfig(),
        train_config=train_cfg or TrainConfig(),
        train_tokens=train_bin.data,
        val_tokens=val_bin.data,
        ckpt_dir=ckpt_dir,
        metrics_path=out_dir / METRICS_FILE,
        tokenizer=tokenizer if tokenizer.is_file() else None,
        tokenizer_sha256=meta.get("tokenizer_sha256"),
        notes=[recovered] if recovered else [],
    )
    if resume:
        if not ckpt_dir.exists():
            raise CheckpointError(
                f"{ckpt_dir}: no checkpoint to resume from (start a new run without --resume)"
            )
        state, moments = read_train_state(ckpt_dir)
        cfg = state.model_config
        _check_data(cfg, meta, state.tokenizer_sha256, ckpt_dir, data_dir)
        if model_cfg is not None and with_data(model_cfg) != cfg:
            raise CheckpointError(
                f"{ckpt_dir / weights.CONFIG_FILE}: the checkpoint's model disagrees with the one asked for: "
                f"{_differences(cfg, with_data(model_cfg))} (checkpoint vs asked)"
            )
        if train_cfg is not None and train_cfg != state.train_config:
            changes = _differences(state.train_config, train_cfg)
            plan.notes.append(f"resuming with changed training settings: {changes} (checkpoint vs now)")
        plan.model_config, plan.resume, plan.moments = cfg, state, moments
        plan.train_config = train_cfg or state.train_config
        return plan
    if ckpt_dir.exists():
        raise CheckpointError(
            f"{ckpt_dir}: this out dir already holds a run; pass --resume to continue it, "
            "or choose another --out"
        )
    if init_from is not None:
        cfg, _ = weights.inspect_checkpoint(init_from)
        _check_data(cfg, meta, None, Path(init_from), data_dir)
        if model_cfg is not None and with_data(model_cfg).replace(dropout=cfg.dropout) != cfg:
            raise CheckpointError(
                f"{Path(init_from) / weights.CONFIG_FILE}: the checkpoint's model disagrees with the one "
                f"asked for: {_differences(cfg, with_data(model_cfg))} (checkpoint vs asked; only dropout "
                "may change)"
            )
        plan.init_from = Path(init_from)
        plan.model_config = cfg.replace(dropout=model_cfg.dropout) if model_cfg else cfg
        return plan
    plan.model_config = with_data(model_cfg or GPTConfig())
    return plan


def recover_checkpoint(ckpt_dir: str | os.PathLike) -> str | None:
    """Finish what a crash during a checkpoint write left behind; return a note if anything changed.

    `atomic_directory` writes the new checkpoint to `.ckpt.tmp-*`, moves the current one aside to
    `.ckpt.old-*`, moves the new one in, then deletes the old one. A `kill -9` between the two moves
    leaves no `ckpt/` but a complete `.ckpt.old-*`: it is moved back. Leftover `.ckpt.tmp-*` (never
    made current) and `.ckpt.old-*` (already replaced) directories are deleted.
    """
    ckpt_dir = Path(ckpt_dir)
    parent, name = ckpt_dir.parent, ckpt_dir.name
    if not parent.is_dir():
        return None
    olds = sorted(parent.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    note = None
    if not ckpt_dir.exists():
        for old in olds:
            try:
                weights.inspect_checkpoint(old)
                read_state_json(old)
            except CheckpointError:
                continue
            os.replace(old, ckpt_dir)
            note = f"{ckpt_dir}: restored the previous checkpoint from {old.name} (a save was interrupted)"
            break
    for leftover in [*olds, *parent.glob(f".{name}.tmp-*")]:
        if leftover.exists():
            shutil.rmtree(leftover, ignore_errors=True)
    return note


def _check_data(
    cfg: GPTConfig, meta: dict[str, Any], sha: str | None, ckpt_dir: Path, data_dir: Path
) -> None:
    if cfg.vocab_size != meta["vocab_size"]:
        raise CheckpointError(
            f"{ckpt_dir / weights.CONFIG_FILE}: vocab_size {cfg.vocab_size}, but the data in {data_dir} has "
            f"vocab_size {meta['vocab_size']} (made with another tokenizer?)"
        )
    if sha is not None and meta.get("tokenizer_sha256") not in (None, sha):
        raise CheckpointError(
            f"{ckpt_dir / STATE_DIR / STATE_FILE}: the run was trained on data from another tokenizer "
            f"(sha256 {sha[:12]}..., {data_dir} has {str(meta['tokenizer_sha256'])[:12]}...)"
        )
