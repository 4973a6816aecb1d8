"""LoRA adapters, framework-free: the config, the adapter's tensors and PEFT's file format.

A LoRA adapter adds to a frozen matrix W [out, in] the low-rank update (alpha / r) * B @ A, with
A [r, in] and B [out, r]; only A and B train. PEFT stores it as

    adapter_config.json          {"peft_type": "LORA", "r", "lora_alpha", "target_modules",
                                  "fan_in_fan_out": true, "base_model_name_or_path", ...}
    adapter_model.safetensors    base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight [r, in]
                                 base_model.model.transformer.h.{i}.attn.c_attn.lora_B.weight [out, r]

`fan_in_fan_out` says the base layer is GPT-2's Conv1D ([in, out] in the file); A and B keep Linear's
layout either way, so the twins (which hold W as [out, in]) use them as stored. The twins name the
adapter's tensors after the layer they adapt: `h.0.attn.c_attn.lora_A`, `h.0.attn.c_attn.lora_B`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from jai.checkpoint import weights
from jai.config import ConfigError, GPTConfig

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model.transformer."
# The four matrices of a GPT-2 block, by the suffix PEFT's target_modules matches (c_proj names two).
LAYERS = {"c_attn": ("attn.c_attn",), "c_proj": ("attn.c_proj", "mlp.c_proj"), "c_fc": ("mlp.c_fc",)}


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("c_attn",)  # PEFT's target_modules: c_attn, c_proj, c_fc
    seed: int = 0  # A's initialisation, drawn once here so both twins start from the same adapter

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"--lora rank must be at least 1, got {self.rank}")
        if not self.alpha > 0:
            raise ConfigError(f"--lora-alpha must be positive, got {self.alpha}")
        unknown = sorted(set(self.targets) - set(LAYERS))
        if unknown or not self.targets:
            raise ConfigError(
                f"--lora-targets: unknown layer {unknown[0] if unknown else '(none)'!r}; "
                f"choose among {', '.join(LAYERS)}"
            )

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"targets": list(self.targets)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraConfig:
        return cls(**(d | {"targets": tuple(d["targets"])}))


def adapted_layers(cfg: GPTConfig, lora: LoraConfig) -> dict[str, tuple[int, int]]:
    """Every adapted layer, `h.{i}.attn.c_attn`, with its Linear shape (out, in)."""
    out = {}
    for i in range(cfg.n_layer):
        for target in lora.targets:
            for layer in LAYERS[target]:
                file_shape = weights.tensor_shapes(cfg)[f"h.{i}.{layer}.weight"]  # Conv1D: [in, out]
                out[f"h.{i}.{layer}"] = (file_shape[1], file_shape[0])
    return dict(sorted(out.items(), key=lambda kv: _order(kv[0])))


def _order(name: str) -> tuple[int, str]:
    return int(name.split(".")[1]), name


def adapter_shapes(cfg: GPTConfig, lora: LoraConfig) -> dict[str, tuple[int, ...]]:
    """The adapter's tensors under the twins' names and their shapes: lora_A [r, in], lora_B [out, r]."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, (n_out, n_in) in adapted_layers(cfg, lora).items():
        shapes[f"{layer}.lora_A"] = (lora.rank, n_in)
        shapes[f"{layer}.lora_B"] = (n_out, lora.rank)
    return shapes


def init_adapter(cfg: GPTConfig, lora: LoraConfig) -> dict[str, np.ndarray]:
    """PEFT's initialisation, drawn in NumPy so both twins start equal: A ~ kaiming-uniform(a=sqrt(5)),
    i.e. U(-1/sqrt(in), 1/sqrt(in)), and B = 0, so the adapted model starts as the base model."""
    rng = np.random.default_rng(lora.seed)
    out = {}
    for name, shape in adapter_shapes(cfg, lora).items():
        if name.endswith("lora_A"):
            bound = 1 / math.sqrt(shape[1])
            out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
        else:
            out[name] = np.zeros(shape, np.float32)
    return out


# --- PEFT's files -----------------------------------------------------------------------------------


def peft_key(name: str) -> str:
    """`h.0.attn.c_attn.lora_A` -> `base_model.model.transformer.h.0.attn.c_attn.lora_A.weight`."""
    return f"{PEFT_PREFIX}{name}.weight"


def from_peft_key(key: str) -> str:
    if not (key.startswith(PEFT_PREFIX) and key.endswith(".weight")):
        raise ConfigError(f"{key!r} is not a GPT-2 LoRA tensor name (expected {PEFT_PREFIX}h.N....weight)")
    return key[len(PEFT_PREFIX) : -len(".weight")]


def write_adapter(folder: Path, lora: LoraConfig, tensors: dict[str, np.ndarray], base: Path) -> None:
    """adapter_config.json and adapter_model.safetensors into `folder`, as PEFT writes them."""
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(Path(base).resolve()),
        "r": lora.rank,
        "lora_alpha": lora.alpha,
        "lora_dropout": 0.0,
        "target_modules": list(lora.targets),
        "fan_in_fan_out": True,  # GPT-2's Conv1D layers
        "bias": "none",
        "inference_mode": True,
        "init_lora_weights": True,
        "modules_to_save": None,
    }
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    file = {peft_key(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    save_file(file, folder / ADAPTER_WEIGHTS, metadata={"format": "pt"})


def read_adapter_config(folder: str | os.PathLike) -> tuple[LoraConfig, Path]:
    """The adapter's LoraConfig and its base checkpoint, from adapter_config.json."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("peft_type") != "LORA":
            raise ConfigError(f"{path}: peft_type {config.get('peft_type')!r}, JAI reads LORA adapters")
        targets = config["target_modules"]
        lora = LoraConfig(
            rank=int(config["r"]),
            alpha=float(config["lora_alpha"]),
            targets=tuple([targets] if isinstance(targets, str) else targets),
        )
        return lora, Path(config["base_model_name_or_path"])
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (is {folder} a LoRA adapter?)") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a LoRA adapter config ({e})") from None


def read_adapter(folder: str | os.PathLike, cfg: GPTConfig) -> tuple[LoraConfig, Path, dict[str, np.ndarray]]:
    """The adapter in `folder`, checked tensor by tensor against the base model's config."""
    lora, base = read_adapter_config(folder)
    path = Path(folder) / ADAPTER_WEIGHTS
    found = {from_peft_key(k): (dtype, shape) for k, (dtype, shape) in weights.read_header(path).items()}
    problem = weights.shape_mismatch({k: s for k, (_, s) in found.items()}, adapter_shapes(cfg, lora))
    if problem:
        raise ConfigError(f"{path}: {problem}")
    tensors = {from_peft_key(k): v.astype(np.float32) for k, v in load_file(path).items()}
    return lora, base, tensors


def is_adapter(folder: str | os.PathLike) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def fuse(
    base_tensors: dict[str, np.ndarray], lora: LoraConfig, adapter: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The base model's file tensors with every adapter merged in: W [in, out] += scale * (B @ A).T."""
    out = dict(base_tensors)
    for name in {k.rsplit(".", 1)[0] for k in adapter}:
        delta = lora.scale * (adapter[f"{name}.lora_B"].astype(np.float64) @ adapter[f"{name}.lora_A"])
        key = f"{name}.weight"
        out[key] = (base_tensors[key].astype(np.float64) + delta.T).astype(base_tensors[key].dtype)
    return out
