"""The quantized checkpoint format, checked without mlx or torch: mlx-lm's affine layout, as it saves it.

A quantized checkpoint is what `mlx_lm.convert -q` would write for our GPT-2, so `mlx_lm.load` opens it:

    config.json         the float checkpoint's config, plus `quantization: {group_size, bits}`
                        (and `quantization_config`, the copy mlx-lm writes beside it)
    model.safetensors   every tensor under mlx-lm's names ("model." + ours) in Linear layout [out, in];
                        each matrix (wte, wpe, and the four projections of every block) becomes
                        `weight` (uint32, 32 // bits codes per word), `scales` and `biases` [out, in // group]
                        in the float checkpoint's dtype; LayerNorms and biases stay float

Why mlx-lm's layout and not the hub's: mlx-lm's GPT-2 `sanitize()` transposes any `h.{i}.*.weight`
found without the `model.` prefix, which would scramble a packed matrix. With the prefix it leaves
every tensor as it is. A group of `group_size` consecutive weights along a row (the input dimension)
shares one scale and bias: w ~= scale * q + bias, q in [0, 2**bits).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jai.checkpoint import weights
from jai.checkpoint.weights import CONFIG_FILE, WEIGHTS_FILE, CheckpointError
from jai.config import GPTConfig

BITS = (4, 8)
GROUP_SIZES = (32, 64, 128)  # what MLX's affine kernels accept
PREFIX = "model."  # mlx-lm's GPT-2 keeps its modules under `model`
PACKED_DTYPE = "U32"
PARTS = ("weight", "scales", "biases")


class QuantError(CheckpointError):
    """A quantization request or a quantized checkpoint that JAI cannot use; the message says which."""


@dataclass(frozen=True)
class QuantSpec:
    bits: int
    group_size: int = 64

    def __post_init__(self) -> None:
        if self.bits not in BITS:
            raise QuantError(f"--bits must be one of {', '.join(map(str, BITS))}, got {self.bits}")
        if self.group_size not in GROUP_SIZES:
            sizes = ", ".join(map(str, GROUP_SIZES))
            raise QuantError(f"--group-size must be one of {sizes}, got {self.group_size}")

    @property
    def per_word(self) -> int:
        """Codes packed into one uint32."""
        return 32 // self.bits

    def to_config(self) -> dict[str, int]:
        return {"group_size": self.group_size, "bits": self.bits}

    def describe(self) -> str:
        return f"{self.bits}-bit, group size {self.group_size}"


def quantized_layers(cfg: GPTConfig) -> list[str]:
    """The modules whose matrix is quantized (JAI names): every 2-D weight, as mlx-lm's convert does."""
    names = ["wte", "wpe"]
    for i in range(cfg.n_layer):
        names += [f"h.{i}.attn.c_attn", f"h.{i}.attn.c_proj", f"h.{i}.mlp.c_fc", f"h.{i}.mlp.c_proj"]
    return names


def matrix_shape(cfg: GPTConfig, layer: str) -> tuple[int, int]:
    """A quantized layer's matrix in Linear / Embedding layout: [out, in] (rows are grouped along `in`)."""
    name = layer + ".weight"
    shape = weights.tensor_shapes(cfg)[name]
    return weights.memory_shape(name, shape)  # type: ignore[return-value]


def check_fits(cfg: GPTConfig, spec: QuantSpec, source: str) -> None:
    """Every quantized row must split into whole groups (and whole uint32 words)."""
    for layer in quantized_layers(cfg):
        width = matrix_shape(cfg, layer)[1]
        if width % spec.group_size:
            raise QuantError(
                f"{source}: group size {spec.group_size} does not divide the width {width} of {layer} "
                f"(n_embd={cfg.n_embd}); pick a --group-size among {', '.join(map(str, GROUP_SIZES))} "
                "that divides it"
            )


def file_tensors(cfg: GPTConfig, spec: QuantSpec) -> dict[str, tuple[int, ...]]:
    """Every tensor of a quantized file (mlx-lm names) and its shape."""
    quantized = {layer + ".weight" for layer in quantized_layers(cfg)}
    out: dict[str, tuple[int, ...]] = {}
    for name, shape in weights.tensor_shapes(cfg).items():
        if name not in quantized:
            out[PREFIX + name] = shape
            continue
        layer = name.removesuffix(".weight")
        rows, width = matrix_shape(cfg, layer)
        out[PREFIX + layer + ".weight"] = (rows, width // spec.per_word)
        out[PREFIX + layer + ".scales"] = (rows, width // spec.group_size)
        out[PREFIX + layer + ".biases"] = (rows, width // spec.group_size)
    return out


def jai_name(file_name: str) -> str:
    """A file tensor's name in the twins' modules."""
    return file_name.removeprefix(PREFIX)


def spec_from_config(hf: dict[str, Any], source: str) -> QuantSpec | None:
    """The quantization recorded in a config.json dict, or None for a float checkpoint."""
    q = hf.get("quantization")
    if q is None:
        return None
    if not isinstance(q, dict) or not {"bits", "group_size"} <= q.keys():
        raise QuantError(
            f"{source}: 'quantization' must be an object with 'bits' and 'group_size', found {q!r}"
        )
    if q.get("mode", "affine") != "affine":
        raise QuantError(f"{source}: quantization mode {q['mode']!r} is not supported (only 'affine')")
    try:
        return QuantSpec(bits=q["bits"], group_size=q["group_size"])
    except QuantError as e:
        raise QuantError(f"{source}: quantization {q!r}: {str(e).replace('--', '')}") from None


def read_spec(ckpt_dir: str | os.PathLike) -> QuantSpec | None:
    """The checkpoint's quantization, or None when it is a float checkpoint (or has no config to read)."""
    path = Path(ckpt_dir) / CONFIG_FILE
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # weights.read_config gives the precise complaint
    return spec_from_config(hf, str(path)) if isinstance(hf, dict) else None


def inspect_quantized(ckpt_dir: str | os.PathLike) -> tuple[GPTConfig, QuantSpec, str]:
    """Validate a quantized checkpoint directory end to end; return its config, spec and float dtype."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir}: not a directory")
    cfg = weights.read_config(ckpt_dir)
    spec = read_spec(ckpt_dir)
    if spec is None:
        raise QuantError(f"{ckpt_dir / CONFIG_FILE}: not a quantized checkpoint (no 'quantization' field)")
    path = ckpt_dir / WEIGHTS_FILE
    found = weights.read_header(path)
    expected = file_tensors(cfg, spec)
    problem = weights.shape_mismatch({k: s for k, (_, s) in found.items()}, expected, source=spec.describe())
    if problem:
        raise QuantError(f"{path}: {problem}")
    packed = {PREFIX + layer + ".weight" for layer in quantized_layers(cfg)}
    floats = set()
    for name, (dtype, _) in found.items():
        if name in packed:
            if dtype != PACKED_DTYPE:
                raise QuantError(
                    f"{path}: tensor {name!r}: dtype {dtype}, expected {PACKED_DTYPE} (packed codes)"
                )
        elif dtype not in weights.DTYPES:
            raise QuantError(
                f"{path}: tensor {name!r}: dtype {dtype} is not one of {', '.join(weights.DTYPES)}"
            )
        else:
            floats.add(dtype)
    if len(floats) > 1:
        raise QuantError(f"{path}: float tensors mix dtypes {', '.join(sorted(floats))}")
    return cfg, spec, floats.pop()
