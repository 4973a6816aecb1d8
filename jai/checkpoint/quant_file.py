"""Write a quantized checkpoint from a float one, in NumPy (jai/checkpoint/quant.py describes the result).

NumPy has no bfloat16, so tensors travel as raw bytes plus a safetensors dtype name: BF16 widens to
float32 exactly (its bits are float32's top half) and narrows back with round-to-nearest-even, as
MLX's own cast does. Tensors that stay float (LayerNorms, biases) are copied byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jai.atomic import atomic_directory
from jai.checkpoint import folder, quant, quant_pack, weights
from jai.checkpoint.quant import QuantError, QuantSpec

NUMPY = {"F32": np.float32, "F16": np.float16, "U32": np.uint32}


def read_tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Every tensor of a safetensors file: {name: (dtype, shape, raw little-endian bytes)}."""
    header = weights.read_header(path)  # checks the file is whole first
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        offsets = json.loads(f.read(n))
        data = f.read()
    return {
        name: (dtype, shape, data[offsets[name]["data_offsets"][0] : offsets[name]["data_offsets"][1]])
        for name, (dtype, shape) in header.items()
    }


def to_float32(dtype: str, shape: tuple[int, ...], raw: bytes) -> np.ndarray:
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=NUMPY[dtype]).astype(np.float32).reshape(shape)


def from_float32(a: np.ndarray, dtype: str) -> bytes:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "BF16":
        bits = a.view(np.uint32)
        rounded = bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))  # round half to even
        return (rounded >> 16).astype("<u2").tobytes()
    return a.astype(np.dtype(NUMPY[dtype]).newbyteorder("<")).tobytes()


def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]) -> None:
    header: dict[str, object] = {"__metadata__": weights.METADATA}
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, raw in tensors.values():
            f.write(raw)


def quantize_checkpoint(
    src: str | os.PathLike,
    out: str | os.PathLike,
    spec: QuantSpec,
    progress: Callable[[str], None] = lambda layer: None,
) -> Path:
    """Quantize the float checkpoint `src` into a new directory `out` (atomically); returns `out`."""
    src, out = Path(src), Path(out)
    done = quant.read_spec(src)
    if done is not None:
        raise QuantError(
            f"{src}: already quantized ({done.describe()}); quantize the float checkpoint it was made from"
        )
    cfg, dtype = folder.open_checkpoint(src)
    quant.check_fits(cfg, spec, str(src))
    tensors = read_tensors(src / weights.WEIGHTS_FILE)
    layers = set(quant.quantized_layers(cfg))
    result: dict[str, tuple[str, tuple[int, ...], bytes]] = {}
    for name, (dt, shape, raw) in tensors.items():
        layer = name.removesuffix(".weight")
        if layer not in layers:
            result[quant.PREFIX + name] = (dt, shape, raw)
            continue
        progress(layer)
        w = to_float32(dt, shape, raw)
        w = w.T if weights.is_conv1d(name) else w  # rows are grouped along the input: Linear layout
        words, scales, biases = quant_pack.quantize(w, spec)
        p = quant.PREFIX + layer
        result[p + ".weight"] = ("U32", words.shape, words.astype("<u4").tobytes())
        result[p + ".scales"] = (dtype, scales.shape, from_float32(scales, dtype))
        result[p + ".biases"] = (dtype, biases.shape, from_float32(biases, dtype))

    hf = json.loads((src / weights.CONFIG_FILE).read_text(encoding="utf-8"))
    hf["quantization"] = spec.to_config()
    hf["quantization_config"] = spec.to_config()  # mlx-lm writes both; older readers look for this one
    with atomic_directory(out) as tmp:
        write_safetensors(tmp / weights.WEIGHTS_FILE, dict(sorted(result.items())))
        (tmp / weights.CONFIG_FILE).write_text(json.dumps(hf, indent=2) + "\n", encoding="utf-8")
        for f in src.iterdir():  # tokenizer and its companions; never training state
            if f.is_file() and f.name not in (weights.WEIGHTS_FILE, weights.CONFIG_FILE):
                shutil.copyfile(f, tmp / f.name)
    return out
