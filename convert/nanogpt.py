"""nanoGPT <-> JAI: import a nanoGPT `ckpt.pt`, export one (or a plain PyTorch state dict). Needs torch.

A nanoGPT checkpoint (train.py) is a pickled dict:

    {"model": state_dict, "model_args": {n_layer, n_head, n_embd, block_size, bias, vocab_size, dropout},
     "iter_num": ..., "best_val_loss": ..., "config": {...}, "optimizer": ...}

Its state dict is GPT-2 under `transformer.` (plus `_orig_mod.` when saved from a compiled model), with
the four projection matrices as `nn.Linear` weights, [out, in]: they are transposed to GPT-2's Conv1D
layout, [in, out], on the way in and back on the way out. `lm_head.weight` is tied to
`transformer.wte.weight`; `attn.bias` causal-mask buffers (PyTorch < 2.0) are not weights.

Files are read with `torch.load(weights_only=True)` only; a checkpoint holding anything else (a pickled
class, a config object) is refused, never unpickled. Checkpoints trained with `bias=False` are refused:
JAI's layers always have biases.

GELU: nanoGPT computes the exact (erf) GELU; GPT-2 and a new JAI model the tanh approximation
("gelu_new"). The activation is part of a JAI model (config.json's `activation_function`), so an import
keeps nanoGPT's exact GELU and the checkpoint computes what nanoGPT computed. nanoGPT has no tanh form:
exporting a "gelu_new" model warns (`ActivationMismatchWarning`) that nanoGPT's logits will differ slightly.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jai.atomic import atomic_file
from jai.checkpoint import folder, weights
from jai.config import ConfigError, GPTConfig
from jai.convert import ConversionError
from jai.convert.hf import (
    Imported,
    Tensor,
    canonical_name,
    cast,
    check_destination,
    choose_dtype,
    clean_tensors,
    from_torch,
    is_buffer,
    normalize_dtype,
    torch_load_safely,
    write_checkpoint,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

WRITER = "jai.convert.nanogpt"
MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")
BEST_VAL_LOSS = 1e9  # what nanoGPT's train.py starts from: any real evaluation improves on it


class ActivationMismatchWarning(UserWarning):
    """The target runs another GELU than the model: same weights, slightly different logits."""


def _warn_gelu(out_path: Path) -> None:
    warnings.warn(
        ActivationMismatchWarning(
            f"exported {out_path}: this model uses the tanh GELU (gelu_new) and nanoGPT has only the exact "
            "(erf) one; the weights are copied exactly, but nanoGPT's logits will differ slightly"
        ),
        stacklevel=3,
    )


# -------------------------------------------------------------------------------------------- import


def _model_args(ckpt: Any, path: Path) -> GPTConfig:
    args = ckpt.get("model_args")
    if not isinstance(args, dict):
        raise ConversionError(f"{path}: no 'model_args' dict (is it a nanoGPT train.py checkpoint?)")
    missing = [k for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size") if k not in args]
    if missing:
        raise ConversionError(f"{path}: model_args lacks {', '.join(missing)}")
    if args.get("bias", True) is not True:
        raise ConversionError(
            f"{path}: trained with bias=False; JAI's linear and LayerNorm layers always have biases, so this "
            "model cannot be represented"
        )
    try:
        return GPTConfig(
            vocab_size=args["vocab_size"],
            block_size=args["block_size"],
            n_layer=args["n_layer"],
            n_head=args["n_head"],
            n_embd=args["n_embd"],
            dropout=float(args.get("dropout", 0.0) or 0.0),
            activation="gelu",  # nanoGPT's MLP is nn.GELU(): the exact erf form
        )
    except ConfigError as e:
        raise ConversionError(f"{path}: model_args: {e}") from None


def _check_linear_shapes(tensors: dict[str, Tensor], cfg: GPTConfig, path: Path) -> None:
    """Names and shapes as nanoGPT holds them (Linear layout), before anything is transposed."""
    expected = {name: weights.memory_shape(name, shape) for name, shape in weights.tensor_shapes(cfg).items()}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    problem = weights.shape_mismatch(found, expected, source="model_args", prefix="transformer.")
    if problem:
        raise ConversionError(f"{path}: {problem}")


def import_nanogpt(
    ckpt_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: str | None = None,
    tokenizer: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Imported:
    """Convert a nanoGPT `ckpt.pt` into a JAI checkpoint directory that keeps nanoGPT's exact GELU.

    `dtype` ('F32', 'BF16', 'F16') casts; by default the stored dtype is kept. nanoGPT keeps no
    tokenizer.json; pass `tokenizer` to copy one into the checkpoint (without one, the returned notes say
    that `jai sample` and `jai serve` will refuse the checkpoint).
    """
    path, out_dir = Path(ckpt_path), Path(out_dir)
    requested = normalize_dtype(dtype)
    check_destination(out_dir, overwrite)
    if tokenizer is not None and not Path(tokenizer).is_file():
        raise FileNotFoundError(f"{tokenizer}: no such file")
    ckpt = torch_load_safely(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        hint = ""
        if isinstance(ckpt, dict) and any(str(k).endswith("wte.weight") for k in ckpt):
            hint = " (this looks like a bare state dict; nanoGPT's train.py saves {'model', 'model_args'})"
        raise ConversionError(f"{path}: not a nanoGPT checkpoint: no 'model' entry{hint}")
    cfg = _model_args(ckpt, path)
    state = ckpt["model"]
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: 'model' is a {type(state).__name__}, not a state dict")

    tensors = {}
    for key, t in state.items():
        if is_buffer(canonical_name(key)):
            continue  # the causal-mask buffer (PyTorch < 2.0), float or bool: not a weight
        tensors[key] = from_torch(t, f"{path}: tensor {key!r}")
    tensors = clean_tensors(tensors, str(path))  # prefixes, buffers, tied lm_head
    _check_linear_shapes(tensors, cfg, path)
    tensors = {
        name: Tensor(t.dtype, t.data.T) if weights.is_conv1d(name) else t for name, t in tensors.items()
    }
    target, note = choose_dtype((t.dtype for t in tensors.values()), requested)
    tensors = {name: cast(t, target) for name, t in tensors.items()}
    write_checkpoint(out_dir, cfg, tensors, WRITER, tokenizer)
    notes = [note] if note else []
    if tokenizer is None:
        notes.append(
            f"{out_dir} has no tokenizer.json (nanoGPT keeps none): jai sample and jai serve will refuse it "
            "until you convert again with --tokenizer PATH (the tokenizer.json the model was trained with)"
        )
    return Imported(out_dir, cfg, target, notes)


# -------------------------------------------------------------------------------------------- export


def export_state_dict(ckpt_dir: str | os.PathLike, dtype: str | None = None) -> dict[str, torch.Tensor]:
    """A JAI checkpoint as nanoGPT's model state dict: `transformer.` names, Linear [out, in] layout,
    and `lm_head.weight` tied (the very same tensor as `transformer.wte.weight`).

    It loads with `load_state_dict` into nanoGPT's GPT (bias=True, PyTorch >= 2.0, no mask buffers);
    `dtype` ('F32', 'BF16', 'F16') casts, by default the file's dtype is kept.
    """
    from safetensors.torch import load_file

    from jai_torch.checkpoint import DTYPES

    requested = normalize_dtype(dtype)
    cfg, _ = folder.open_checkpoint(ckpt_dir)
    tensors = load_file(Path(ckpt_dir) / weights.WEIGHTS_FILE)
    out: dict[str, torch.Tensor] = {}
    for name in weights.tensor_shapes(cfg):
        t = tensors[name]
        if requested is not None:
            t = t.to(DTYPES[requested])
        out["transformer." + name] = t.t().contiguous() if weights.is_conv1d(name) else t.contiguous()
    out["lm_head.weight"] = out["transformer.wte.weight"]
    return out


def export_nanogpt(
    ckpt_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    dtype: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a nanoGPT `ckpt.pt` (atomically) that nanoGPT's sample.py loads with `init_from='resume'`.

    It holds no optimizer state (JAI checkpoints keep none), so nanoGPT's train.py cannot *resume* from
    it; to fine-tune there, load its model weights and start a fresh optimizer.
    """
    import torch

    out_path = Path(out_path)
    check_destination(out_path, overwrite, directory=False)
    cfg, _ = folder.open_checkpoint(ckpt_dir)
    ckpt = {
        "model": export_state_dict(ckpt_dir, dtype),
        "model_args": {
            "n_layer": cfg.n_layer,
            "n_head": cfg.n_head,
            "n_embd": cfg.n_embd,
            "block_size": cfg.block_size,
            "bias": True,
            "vocab_size": cfg.vocab_size,
            "dropout": cfg.dropout,
        },
        "iter_num": 0,
        "best_val_loss": BEST_VAL_LOSS,
        "config": {},
    }
    with atomic_file(out_path) as tmp:
        torch.save(ckpt, tmp)
    if cfg.activation != "gelu":
        _warn_gelu(out_path)
    return out_path
