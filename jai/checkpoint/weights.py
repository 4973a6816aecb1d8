"""The weight-format contract: what a JAI checkpoint directory holds, checked without mlx or torch.

A checkpoint is a directory in the original GPT-2 hub layout, so `transformers` and `mlx-lm` open it as is:

    config.json         GPT-2 config (see jai.config), plus our own `jai` section
    model.safetensors   the tensors below, all of one dtype (F32, BF16 or F16)
    tokenizer.json      the tokenizer, once one exists

Tensor names are GPT-2's without the `transformer.` prefix. The four projection matrices are stored in
GPT-2's Conv1D layout, [in, out]; both twins hold them as Linear, [out, in], and transpose on the way in
and out. The head is tied to `wte` and not stored.

Both twins read the header through `read_header` before handing the file to their framework, so every
problem is reported the same way whichever twin meets it: file, tensor, expected against found.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path

from jai.config import ConfigError, GPTConfig
from jai.errors import InputError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"

DTYPES = {"F32": 4, "BF16": 2, "F16": 2}  # safetensors dtype name -> bytes per element
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
# transformers refuses a safetensors file whose metadata names no framework; the layout is GPT-2's
# original PyTorch one whichever twin wrote it.
METADATA = {"format": "pt"}


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded; the message names the file and the tensor."""


def is_conv1d(name: str) -> bool:
    """True for the matrices GPT-2 stores [in, out] (and the twins hold [out, in])."""
    return name.endswith(CONV1D_WEIGHTS)


def tensor_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every stored tensor and its shape in the file's layout, in a stable order."""
    d = cfg.n_embd
    shapes: dict[str, tuple[int, ...]] = {
        "wte.weight": (cfg.vocab_size, d),
        "wpe.weight": (cfg.block_size, d),
    }
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        shapes |= {
            p + "ln_1.weight": (d,),
            p + "ln_1.bias": (d,),
            p + "attn.c_attn.weight": (d, 3 * d),
            p + "attn.c_attn.bias": (3 * d,),
            p + "attn.c_proj.weight": (d, d),
            p + "attn.c_proj.bias": (d,),
            p + "ln_2.weight": (d,),
            p + "ln_2.bias": (d,),
            p + "mlp.c_fc.weight": (d, 4 * d),
            p + "mlp.c_fc.bias": (4 * d,),
            p + "mlp.c_proj.weight": (4 * d, d),
            p + "mlp.c_proj.bias": (d,),
        }
    shapes |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    return shapes


def memory_shape(name: str, file_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a twin holds for a stored tensor: Conv1D matrices are transposed to Linear layout."""
    return tuple(reversed(file_shape)) if is_conv1d(name) else tuple(file_shape)


def read_header(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Parse a safetensors header: {name: (dtype, shape)}, after checking the file is whole.

    A truncated download or a half-copied file is caught here, before any framework maps it.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: {size} bytes is too short to be a safetensors file")
            (n,) = struct.unpack("<Q", prefix)
            if n > _MAX_HEADER or 8 + n > size:
                raise CheckpointError(f"{path}: corrupt or truncated ({n}-byte header, {size}-byte file)")
            raw = f.read(n)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")

    data_len = size - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor {name!r}: malformed header entry {info!r}") from None
        if end > data_len:
            raise CheckpointError(
                f"{path}: tensor {name!r}: truncated file (data ends at byte {end}, file holds {data_len})"
            )
        itemsize = DTYPES.get(dtype)
        if itemsize is not None and end - begin != math.prod(shape) * itemsize:
            raise CheckpointError(
                f"{path}: tensor {name!r}: {end - begin} bytes do not hold shape {list(shape)} of {dtype}"
            )
        out[name] = (dtype, shape)
    return out


def shape_mismatch(
    found: Mapping[str, tuple[int, ...]],
    expected: Mapping[str, tuple[int, ...]],
    source: str = CONFIG_FILE,
    prefix: str = "",
) -> str | None:
    """The first thing wrong with tensor names and shapes against the expected ones, or None.

    A missing tensor, then an unexpected one, then a wrong shape (`source` is where the expected shape
    comes from). Expected names are shown with `prefix`, e.g. nanoGPT's "transformer.".
    """
    missing = [k for k in expected if k not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return f"missing tensor {prefix + missing[0]!r}{more}"
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        hint = " (the head is tied to wte and never stored)" if unexpected[0] == "lm_head.weight" else ""
        return f"unexpected tensor {unexpected[0]!r}{more}{hint}"
    for name, shape in expected.items():
        if tuple(found[name]) != shape:
            return (
                f"tensor {prefix + name!r}: expected shape {list(shape)} (from {source}), "
                f"found {list(found[name])}"
            )
    return None


def check_tensors(found: dict[str, tuple[str, tuple[int, ...]]], cfg: GPTConfig, path: Path) -> str:
    """Check a header against the config; return the checkpoint's dtype. Raises on the first mismatch."""
    problem = shape_mismatch({k: shape for k, (_, shape) in found.items()}, tensor_shapes(cfg))
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    dtypes = {dtype for dtype, _ in found.values()}
    bad = sorted(dtypes - DTYPES.keys())
    if bad:
        name = next(k for k, (dt, _) in found.items() if dt == bad[0])
        raise CheckpointError(f"{path}: tensor {name!r}: dtype {bad[0]} is not one of {', '.join(DTYPES)}")
    if len(dtypes) > 1:
        first = found["wte.weight"][0]
        name, (dtype, _) = next((k, v) for k, v in found.items() if v[0] != first)
        raise CheckpointError(f"{path}: tensor {name!r}: dtype {dtype}, expected {first} like wte.weight")
    return dtypes.pop()


def read_config(ckpt_dir: str | os.PathLike) -> GPTConfig:
    """The checkpoint's config.json as a GPTConfig (a folder that is missing is not recovered here: see
    jai.checkpoint.folder)."""
    path = Path(ckpt_dir) / CONFIG_FILE
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file (is {ckpt_dir} a JAI checkpoint directory?)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    try:
        return GPTConfig.from_hf(hf, source=str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
