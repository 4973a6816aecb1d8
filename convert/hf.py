"""Import a Hugging Face GPT-2 directory into a JAI checkpoint directory, with NumPy and safetensors only.

A JAI checkpoint already *is* a GPT-2 hub directory (see jai/checkpoint/weights.py): `transformers` and
`mlx-lm` open it as is, so there is no `export_hf` — point them at the JAI directory. This module goes the
other way, and cleans up what the hub layout allows but JAI does not store:

- keys with or without the `transformer.` prefix, and `torch.compile`'s `_orig_mod.`, are accepted;
- `attn.bias` / `attn.masked_bias` (causal-mask buffers, not weights) are dropped;
- `lm_head.weight` is dropped once it is checked to equal `wte.weight` bit for bit; an untied head
  cannot be represented (JAI ties the head to the token embedding) and is refused;
- config.json goes through `GPTConfig.from_hf`, which refuses anything the twins would compute
  differently (an activation other than gelu or gelu_new, an untied head, n_inner != 4 * n_embd, ...);
- bos/eos/pad ids outside the vocabulary (GPT2Config's default 50256 on a small model) are dropped with a
  note: transformers loads such a model, so JAI does too;
- every tensor's shape is checked against the config before anything is written, and the directory is
  written atomically (jai.checkpoint.hf_files.save_checkpoint), with tokenizer.json when the source has one.

Weights come from `model.safetensors` (or a sharded `model.safetensors.index.json`), read without any
framework. A directory holding only `pytorch_model.bin` is read with `torch.load(weights_only=True)`,
which needs PyTorch. Nothing is unpickled unsafely.

Dtypes: bf16 and fp16 are kept as stored unless `dtype` asks otherwise. NumPy has no bfloat16, so this
module never lets bf16 pass through a NumPy float: its bits travel as uint16, and casts to or from bf16
are done on the bits with round-to-nearest-even, bit for bit as `torch.Tensor.to(torch.bfloat16)`
(NaNs aside: any NaN becomes the canonical 0x7FC0). The output file is written by a
small safetensors writer here, so any of F32/BF16/F16 comes out unchanged.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jai.checkpoint import hf_files, weights
from jai.config import GPTConfig
from jai.convert import ConversionError

WRITER = "jai.convert.hf"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"

# Storage of each safetensors dtype we read; BF16 is carried as its raw bits.
_NP_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
_ALIASES = {
    "f32": "F32",
    "fp32": "F32",
    "float32": "F32",
    "float": "F32",
    "bf16": "BF16",
    "bfloat16": "BF16",
    "f16": "F16",
    "fp16": "F16",
    "float16": "F16",
    "half": "F16",
}
_BUFFER = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")  # causal-mask buffers, not weights


@dataclass
class Tensor:
    """A tensor as the file holds it: safetensors dtype name and an array of that storage (BF16: uint16)."""

    dtype: str
    data: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


@dataclass
class Imported:
    """What an import wrote: the checkpoint directory, its config and dtype, and notes for the user."""

    path: Path
    config: GPTConfig
    dtype: str
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- dtypes


def normalize_dtype(dtype: str | None) -> str | None:
    """'bf16', 'bfloat16', 'BF16', ... -> 'BF16'; None stays None. The JAI format holds F32, BF16, F16."""
    if dtype is None:
        return None
    name = _ALIASES.get(dtype.lower(), dtype.upper())
    if name not in weights.DTYPES:
        raise ConversionError(f"unknown dtype {dtype!r}: choose one of {', '.join(weights.DTYPES)}")
    return name


def choose_dtype(found: Iterable[str], requested: str | None) -> tuple[str, str | None]:
    """The output dtype and, when it is not simply the stored one, a note saying why.

    Kept as stored when the source has one dtype JAI can hold; a source mixing dtypes, or holding F64,
    becomes F32 (lossless from F16/BF16) unless `requested` says otherwise.
    """
    requested = normalize_dtype(requested)
    found = sorted(set(found))
    if requested is not None:
        return requested, None
    if len(found) == 1 and found[0] in weights.DTYPES:
        return found[0], None
    return "F32", f"source holds {'/'.join(found)} weights; writing F32 (pass a dtype to choose)"


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), rounding to nearest even like PyTorch and MLX.

    Every NaN becomes the canonical quiet NaN 0x7FC0, as MLX writes it (PyTorch's CPU kernel writes
    0xFFFF); any other value, infinities and subnormals included, gets PyTorch's exact bits.
    """
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    with np.errstate(over="ignore"):  # only NaN payloads can wrap, and they are replaced below
        lsb = (u >> np.uint32(16)) & np.uint32(1)
        out = ((u + np.uint32(0x7FFF) + lsb) >> np.uint32(16)).astype(np.uint16)
    out[np.isnan(a)] = 0x7FC0
    return out


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32; exact."""
    return (np.ascontiguousarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def cast(t: Tensor, dtype: str) -> Tensor:
    """`t` in `dtype` ('F32', 'BF16', 'F16'); the same object when it already is."""
    if t.dtype == dtype:
        return t
    wide = bf16_bits_to_f32(t.data) if t.dtype == "BF16" else t.data.astype(np.float32)
    if dtype == "BF16":
        return Tensor("BF16", f32_to_bf16_bits(wide))
    return Tensor(dtype, wide.astype(_NP_DTYPES[dtype]))


def _same_bits(a: Tensor, b: Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.data.tobytes() == b.data.tobytes()


# ------------------------------------------------------------------------------------ safetensors I/O


def read_safetensors(
    path: str | os.PathLike, names: Iterable[str] | None = None, packed: bool = False
) -> dict[str, Tensor]:
    """The tensors of a safetensors file (all, or those in `names`), memory-mapped, without a framework.

    Names of any dtype are listed; only floating-point tensors can be read (BF16 as raw bits), and with
    `packed`, the U32 words of quantized weights (mlx-lm's format, see jai.convert.mlxlm).
    """
    path = Path(path)
    weights.read_header(path)  # checks the file is whole: size, header, every tensor's byte count
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    wanted = set(header) if names is None else set(names)
    buf = np.memmap(path, dtype=np.uint8, mode="r") if wanted else None
    out = {}
    for name, info in header.items():
        if name not in wanted:
            continue
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        storage = _NP_DTYPES.get(dtype) or (np.dtype("<u4") if packed and dtype == "U32" else None)
        if storage is None:
            raise ConversionError(f"{path}: tensor {name!r} has dtype {dtype}, not a floating-point weight")
        data = buf[8 + n + begin : 8 + n + end].view(storage).reshape(shape)
        out[name] = Tensor(dtype, data)
    return out


def safetensors_names(path: str | os.PathLike) -> list[str]:
    """Tensor names in a safetensors file, header only."""
    return list(weights.read_header(path))


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file, in the given order. Any dtype, BF16 included, goes out bit for bit."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, t in tensors.items():
        nbytes = t.data.nbytes
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # align the data to 8 bytes, as safetensors does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for t in tensors.values():
            f.write(np.ascontiguousarray(t.data, dtype=t.data.dtype.newbyteorder("<")).tobytes())


# --------------------------------------------------------------------------------------- torch loading


def torch_load_safely(path: str | os.PathLike) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, with clear errors; never unpickles unsafely."""
    import pickle

    try:
        import torch
    except ImportError:
        raise ConversionError(
            f"{path}: reading a PyTorch pickle needs PyTorch (pip install torch), or convert it to "
            "safetensors first"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        found = re.search(r"GLOBAL (\S+)", text)
        if found is None and (
            "Unsupported operand" in text or "load key" in text or "weights" not in text.lower()
        ):
            # an opcode no pickle has: garbage, not something dangerous
            raise ConversionError(
                f"{path}: not a PyTorch checkpoint (corrupt, or not written by torch.save)"
            ) from None
        what = f" (found {found.group(1)})" if found else ""
        raise ConversionError(
            f"{path}: contains objects that cannot be loaded safely{what}; only tensors and plain "
            "containers are read (torch.load weights_only=True), never arbitrary pickled code"
        ) from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint ({_first_line(str(e))})") from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no details"


def from_torch(t: Any, where: str) -> Tensor:
    """A torch tensor as a `Tensor` (bf16 as raw bits), on the CPU."""
    import torch

    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
    if not isinstance(t, torch.Tensor):
        raise ConversionError(f"{where}: expected a tensor, found {type(t).__name__}")
    if t.dtype not in names:
        raise ConversionError(f"{where}: dtype {t.dtype} is not a floating-point weight")
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:
        return Tensor("BF16", t.view(torch.int16).numpy().view(np.uint16))
    return Tensor(names[t.dtype], t.numpy())


# ------------------------------------------------------------------------------------- key cleaning


def canonical_name(name: str) -> str:
    """GPT-2 hub key -> JAI tensor name: drop `_orig_mod.` (torch.compile) and the `transformer.` prefix."""
    name = name.replace("_orig_mod.", "")
    return name.removeprefix("transformer.")


def is_buffer(name: str) -> bool:
    """True for GPT-2's causal-mask buffers (`h.N.attn.bias`, `h.N.attn.masked_bias`): not weights."""
    return bool(_BUFFER.match(name))


def clean_tensors(tensors: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Canonical names, buffers dropped, a tied `lm_head.weight` dropped (an untied one refused)."""
    out: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key, t in tensors.items():
        name = canonical_name(key)
        if is_buffer(name):
            continue
        if name in out:
            raise ConversionError(
                f"{source}: tensor {name!r} appears twice (as {origin[name]!r} and {key!r})"
            )
        out[name], origin[name] = t, key
    head = out.pop("lm_head.weight", None)
    if head is not None and "wte.weight" in out and not _same_bits(head, out["wte.weight"]):
        raise ConversionError(
            f"{source}: lm_head.weight differs from wte.weight; JAI ties the head to the token "
            "embedding, so an untied head cannot be represented"
        )
    return out


def check_shapes(tensors: dict[str, Tensor], cfg: GPTConfig, source: str | os.PathLike) -> None:
    """Every tensor present, none extra, each of the config's shape (jai.checkpoint.weights' messages)."""
    found = {name: ("F32", t.shape) for name, t in tensors.items()}  # dtypes are settled separately
    weights.check_tensors(found, cfg, Path(source))


# ---------------------------------------------------------------------------------------- reading HF


def read_config_json(src_dir: str | os.PathLike, kind: str) -> tuple[dict[str, Any], Path, list[str]]:
    """A model directory's config.json, its path, and notes on the special ids dropped to read it
    (`kind` names what the directory should be, for the error when it holds no config.json)."""
    path = Path(src_dir) / weights.CONFIG_FILE
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file (is {src_dir} {kind}?)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path}: not valid JSON ({e})") from None
    hf, notes = drop_foreign_special_ids(hf, path)
    return hf, path, notes


def read_hf_config(src_dir: str | os.PathLike) -> tuple[GPTConfig, list[str]]:
    """The config of a GPT-2 directory, and notes on what was dropped to read it."""
    hf, path, notes = read_config_json(src_dir, "a Hugging Face model directory")
    return GPTConfig.from_hf(hf, source=str(path)), notes


def drop_foreign_special_ids(hf: Any, path: Path) -> tuple[Any, list[str]]:
    """bos/eos/pad ids outside the vocabulary, dropped with a note.

    `GPT2Config()` defaults bos and eos to 50256, GPT-2's own <|endoftext|>, whatever its vocab_size: a
    small model saved by transformers carries ids its embedding table does not have. transformers loads
    it (nothing there looks the ids up), so JAI does too, without them; the tokenizer's own files say
    which tokens are special.
    """
    if not isinstance(hf, dict) or not isinstance(hf.get("vocab_size"), int):
        return hf, []  # GPTConfig.from_hf names the problem
    hf, notes = dict(hf), []
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = hf.get(name)
        ids = value if isinstance(value, list) else [value]
        outside = [i for i in ids if isinstance(i, int) and not 0 <= i < hf["vocab_size"]]
        if outside:
            hf[name] = None
            notes.append(
                f"{path}: {name}={value} lies outside the vocabulary (size {hf['vocab_size']}); "
                "dropped (GPT2Config's default is GPT-2's own 50256)"
            )
    return hf, notes


def _shards(src_dir: Path, index_name: str) -> list[Path]:
    index = src_dir / index_name
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return [src_dir / f for f in dict.fromkeys(weight_map.values())]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ConversionError(f"{index}: not a valid shard index ({e})") from None


def read_hf_tensors(src_dir: str | os.PathLike) -> tuple[dict[str, Tensor], str, list[str]]:
    """The raw tensors of a GPT-2 directory (hub keys, buffers included), where they came from, notes."""
    src_dir = Path(src_dir)
    notes: list[str] = []
    if (src_dir / weights.WEIGHTS_FILE).is_file():
        files = [src_dir / weights.WEIGHTS_FILE]
    elif (src_dir / SAFETENSORS_INDEX).is_file():
        files = _shards(src_dir, SAFETENSORS_INDEX)
    elif (src_dir / TORCH_BIN).is_file() or (src_dir / TORCH_BIN_INDEX).is_file():
        single = (src_dir / TORCH_BIN).is_file()
        files = [src_dir / TORCH_BIN] if single else _shards(src_dir, TORCH_BIN_INDEX)
        notes.append(f"{src_dir}: no model.safetensors; read {TORCH_BIN} with torch.load(weights_only=True)")
        tensors: dict[str, Tensor] = {}
        for f in files:
            state = torch_load_safely(f)
            if not isinstance(state, dict):
                raise ConversionError(f"{f}: expected a state dict, found {type(state).__name__}")
            for key, t in state.items():
                if is_buffer(canonical_name(key)):
                    continue  # buffers may be bool/uint8: never converted
                tensors[key] = from_torch(t, f"{f}: tensor {key!r}")
        return tensors, str(files[0] if len(files) == 1 else src_dir / TORCH_BIN_INDEX), notes
    else:
        raise ConversionError(
            f"{src_dir}: no model.safetensors, {SAFETENSORS_INDEX} or {TORCH_BIN} (is it a Hugging Face "
            "model directory?)"
        )
    tensors = {}
    for f in files:
        if not f.is_file():
            raise ConversionError(f"{f}: no such file (named by the shard index)")
        names = [k for k in safetensors_names(f) if not is_buffer(canonical_name(k))]
        tensors |= read_safetensors(f, names)
    return tensors, str(files[0] if len(files) == 1 else src_dir / SAFETENSORS_INDEX), notes


# ---------------------------------------------------------------------------------------- writing JAI


def check_destination(out: Path, overwrite: bool, directory: bool = True) -> None:
    """Refuse to replace an existing output unless asked; never replace something that is not ours.

    `directory`: the output is a checkpoint directory (else a file). Only a directory holding nothing
    but JAI checkpoint files is replaced: a Hugging Face directory's vocab.json or merges.txt,
    or anything else, is never deleted.
    """
    if not out.exists():
        return
    if not overwrite:
        raise ConversionError(f"{out}: already exists (pass --force / overwrite=True to replace it)")
    if out.is_dir() != directory:
        want = "a directory" if directory else "a file"
        raise ConversionError(f"{out}: exists and is not {want}; refusing to replace it")
    if directory:
        ours = {weights.CONFIG_FILE, weights.WEIGHTS_FILE, weights.TOKENIZER_FILE}
        if _written_by_jai(out):  # then its tokenizer_config.json etc. are ours too (jai.checkpoint.hf_files)
            ours |= set(hf_files.FILES)
        other = sorted(f.name for f in out.iterdir() if f.name not in ours)
        if other:
            raise ConversionError(
                f"{out}: holds {other[0]!r}, which is not part of a JAI checkpoint; refusing to replace it"
            )


def _written_by_jai(folder: Path) -> bool:
    try:
        return "jai" in json.loads((folder / weights.CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def write_checkpoint(
    out_dir: str | os.PathLike,
    cfg: GPTConfig,
    tensors: dict[str, Tensor],
    writer: str,
    tokenizer: str | os.PathLike | None = None,
) -> Path:
    """Write a JAI checkpoint directory atomically from tensors already in JAI names and file layout.

    The weights file is checked against the contract (jai.checkpoint.weights) inside the temporary directory,
    so a bad file is never moved into place.
    """
    ordered = {name: tensors[name] for name in weights.tensor_shapes(cfg)}

    def save(path: Path) -> None:
        write_safetensors(path, ordered, weights.METADATA)
        weights.check_tensors(weights.read_header(path), cfg, path)

    return hf_files.save_checkpoint(out_dir, cfg, writer, save, tokenizer)


def import_hf(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: str | None = None,
    tokenizer: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Imported:
    """Convert a Hugging Face GPT-2 directory (or a JAI checkpoint) into a JAI checkpoint directory.

    `dtype` ('F32', 'BF16', 'F16'; aliases like 'bf16' accepted) casts the weights; by default they are
    kept as stored. `tokenizer` overrides the source's tokenizer.json. Raises ConversionError,
    ConfigError or CheckpointError with a one-line message naming the file.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: no such directory")
    requested = normalize_dtype(dtype)
    check_destination(out_dir, overwrite)
    cfg, notes = read_hf_config(src_dir)  # ConfigError for anything the twins would compute differently
    raw, source, read_notes = read_hf_tensors(src_dir)
    notes += read_notes
    if any(k.startswith("model.wte") for k in raw):
        raise ConversionError(
            f"{source}: tensors under 'model.' in Linear layout are what mlx-lm saves; convert them with "
            "`jai convert from-mlx-lm`"
        )
    tensors = clean_tensors(raw, source)
    check_shapes(tensors, cfg, source)
    target, note = choose_dtype((t.dtype for t in tensors.values()), requested)
    notes += [note] if note else []
    tensors = {name: cast(t, target) for name, t in tensors.items()}
    if tokenizer is None and (src_dir / weights.TOKENIZER_FILE).is_file():
        tokenizer = src_dir / weights.TOKENIZER_FILE
    elif tokenizer is None:
        legacy = [f for f in ("vocab.json", "merges.txt") if (src_dir / f).is_file()]
        if legacy:
            notes.append(f"{src_dir} has {' and '.join(legacy)} but no tokenizer.json; no tokenizer copied")
    if tokenizer is not None and not Path(tokenizer).is_file():
        raise FileNotFoundError(f"{tokenizer}: no such file")
    # out_dir may be src_dir (an in-place dtype change): save_checkpoint reads the weights and the
    # tokenizer into its temporary directory before the old directory is moved aside.
    write_checkpoint(out_dir, cfg, tensors, WRITER, tokenizer)
    return Imported(out_dir, cfg, target, notes)
