"""mlx-lm's saved GPT-2 -> JAI checkpoint: what `mlx_lm.convert`, `mlx_lm.fuse` and quantization write.

mlx-lm loads a JAI checkpoint as it is (it is the hub layout), but its `sanitize()` rearranges the
weights on load, and what it saves afterwards is its own in-memory layout:

- every name under `model.` (`model.h.0.attn.c_attn.weight`, `model.wte.weight`, ...);
- the four projection matrices as Linear [out, in], not GPT-2's Conv1D [in, out];
- when quantized (`quantization: {group_size, bits, mode}` in config.json), each quantized layer as
  `weight` (U32 words packing `bits`-bit integers), `scales` and `biases` (one per group of `group_size`
  values along a row), embeddings included; a layer mlx-lm left unquantized, or quantized differently,
  has its own entry under its name in `quantization` (False, or its own group_size/bits).

This module undoes all three with NumPy: names lose `model.`, matrices are transposed back, and
quantized weights are dequantized, w = scales * q + biases (mlx's affine mode; other modes are refused).
Dequantizing gives back the quantized model's exact function, not the weights it was quantized from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from jai.checkpoint import weights
from jai.config import GPTConfig
from jai.convert import ConversionError
from jai.convert.hf import (
    SAFETENSORS_INDEX,
    Imported,
    Tensor,
    _shards,
    bf16_bits_to_f32,
    cast,
    check_destination,
    check_shapes,
    choose_dtype,
    clean_tensors,
    normalize_dtype,
    read_config_json,
    read_safetensors,
    write_checkpoint,
)

WRITER = "jai.convert.mlxlm"
PREFIX = "model."


def _config(src_dir: Path) -> tuple[GPTConfig, dict[str, Any], list[str]]:
    hf, path, notes = read_config_json(src_dir, "a model directory mlx-lm saved")
    quant = hf.get("quantization") or hf.get("quantization_config") or {}
    if not isinstance(quant, dict):
        raise ConversionError(f"{path}: 'quantization' is not an object")
    return GPTConfig.from_hf(hf, source=str(path)), quant, notes


def _files(src_dir: Path) -> list[Path]:
    if (src_dir / weights.WEIGHTS_FILE).is_file():
        return [src_dir / weights.WEIGHTS_FILE]
    if (src_dir / SAFETENSORS_INDEX).is_file():
        return _shards(src_dir, SAFETENSORS_INDEX)
    raise ConversionError(f"{src_dir}: no model.safetensors or {SAFETENSORS_INDEX} (did mlx-lm save it?)")


def unpack(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first `count` unsigned `bits`-bit integers of each row of U32 words, as MLX packs them.

    MLX lays the integers out as one little-endian bit stream per row (for 2, 4 and 8 bits this is
    "element j of a word sits at bits j*bits"; 3, 5 and 6 bits run across word boundaries).
    """
    rows = words.shape[0]
    stream = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8), axis=1, bitorder="little")
    stream = stream[:, : count * bits].reshape(rows, count, bits).astype(np.uint32)
    return (stream << np.arange(bits, dtype=np.uint32)).sum(axis=2, dtype=np.uint32)


def dequantize(q: Tensor, scales: Tensor, biases: Tensor, bits: int, group_size: int) -> np.ndarray:
    """mlx's affine dequantization, float32: each group of `group_size` values is scale * q + bias."""

    def f32(t: Tensor) -> np.ndarray:
        return bf16_bits_to_f32(t.data) if t.dtype == "BF16" else t.data.astype(np.float32)

    rows, groups = scales.shape
    ints = unpack(q.data, bits, groups * group_size).reshape(rows, groups, group_size)
    out = ints.astype(np.float32) * f32(scales)[:, :, None] + f32(biases)[:, :, None]
    return out.reshape(rows, groups * group_size)


def _layer_quant(name: str, quant: dict[str, Any], source: str) -> tuple[int, int]:
    """(bits, group_size) for the layer `name` (without .weight), from its own entry or the defaults."""
    own = quant.get(PREFIX + name, quant.get(name))
    spec = own if isinstance(own, dict) else quant
    mode = spec.get("mode", "affine")
    if mode != "affine":
        raise ConversionError(
            f"{source}: layer {name!r} is quantized in mode {mode!r}; only 'affine' is read"
        )
    try:
        return int(spec["bits"]), int(spec["group_size"])
    except (KeyError, TypeError, ValueError):
        raise ConversionError(f"{source}: no bits/group_size for quantized layer {name!r}") from None


def read_mlx_lm_tensors(
    src_dir: Path, quant: dict[str, Any]
) -> tuple[dict[str, Tensor], str, list[str], set[str]]:
    """JAI names and file layout: `model.` dropped, quantized layers dequantized, matrices transposed.

    Returns the tensors, where they came from, notes, and the names of the dequantized ones (F32).
    """
    files = _files(src_dir)
    raw: dict[str, Tensor] = {}
    for f in files:
        if not f.is_file():
            raise ConversionError(f"{f}: no such file (named by the shard index)")
        raw |= read_safetensors(f, packed=True)
    source = str(files[0] if len(files) == 1 else src_dir / SAFETENSORS_INDEX)
    if raw and not any(k.startswith(PREFIX) for k in raw):
        raise ConversionError(
            f"{source}: no tensor under 'model.': not mlx-lm's layout (a hub layout directory, a JAI "
            "checkpoint among them, converts with `jai convert from-hf`)"
        )
    names = {k.removeprefix(PREFIX): t for k, t in raw.items()}
    out: dict[str, Tensor] = {}
    notes: list[str] = []
    quantized = sorted(k.removesuffix(".scales") for k in names if k.endswith(".scales"))
    for base in quantized:
        w, s, b = (names.pop(f"{base}.{part}", None) for part in ("weight", "scales", "biases"))
        if w is None or b is None or w.dtype != "U32":
            raise ConversionError(
                f"{source}: quantized layer {PREFIX + base!r} lacks a U32 weight or its biases"
            )
        bits, group_size = _layer_quant(base, quant, source)
        if w.shape[1] * 32 != s.shape[1] * group_size * bits:
            raise ConversionError(
                f"{source}: {PREFIX + base}.weight: {w.shape[1]} words do not hold {s.shape[1]} groups of "
                f"{group_size} {bits}-bit values"
            )
        out[base + ".weight"] = Tensor("F32", dequantize(w, s, b, bits, group_size))
    if quantized:
        bits, group_size = _layer_quant("", quant, source)
        notes.append(
            f"{source}: dequantized {len(quantized)} layers ({bits}-bit, groups of {group_size}): the "
            "checkpoint computes the quantized model's function, in floating point"
        )
    packed = [k for k, t in names.items() if t.dtype == "U32"]
    if packed:
        raise ConversionError(f"{source}: tensor {PREFIX + packed[0]!r} is U32 without scales: not a weight")
    out |= names
    # mlx-lm holds the four projections as Linear [out, in]; the file layout is GPT-2's Conv1D [in, out]
    out = {
        k: Tensor(t.dtype, np.ascontiguousarray(t.data.T)) if weights.is_conv1d(k) else t
        for k, t in out.items()
    }
    return out, source, notes, {base + ".weight" for base in quantized}


def import_mlx_lm(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: str | None = None,
    tokenizer: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Imported:
    """Convert a GPT-2 directory saved by mlx-lm (plain or quantized) into a JAI checkpoint directory.

    Dequantized weights come out in the dtype of the layers mlx-lm kept in floating point (its model
    dtype) unless `dtype` says otherwise; `tokenizer` overrides the source's tokenizer.json.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: no such directory")
    requested = normalize_dtype(dtype)
    check_destination(out_dir, overwrite)
    cfg, quant, notes = _config(src_dir)
    tensors, source, read_notes, dequantized = read_mlx_lm_tensors(src_dir, quant)
    notes += read_notes
    tensors = clean_tensors(tensors, source)  # a tied lm_head, if any
    check_shapes(tensors, cfg, source)
    # the layers stored as floats tell the model's dtype; dequantized ones are F32 by construction
    stored = {t.dtype for name, t in tensors.items() if name not in dequantized}
    target, note = choose_dtype(stored or {"F32"}, requested)
    notes += [note] if note else []
    tensors = {name: cast(t, target) for name, t in tensors.items()}
    if tokenizer is None and (src_dir / weights.TOKENIZER_FILE).is_file():
        tokenizer = src_dir / weights.TOKENIZER_FILE
    if tokenizer is not None and not Path(tokenizer).is_file():
        raise FileNotFoundError(f"{tokenizer}: no such file")
    write_checkpoint(out_dir, cfg, tensors, WRITER, tokenizer)
    return Imported(out_dir, cfg, target, notes)
