"""A JAI checkpoint as a GGUF file for llama.cpp (and Ollama), written with the `gguf` package.

llama.cpp runs GPT-2 as its `gpt2` architecture. What its own converter (convert_hf_to_gguf.py) would
write, this writes directly from the checkpoint, with NumPy only:

- tensors under llama.cpp's names (token_embd, position_embd, blk.N.attn_qkv, ...; gguf's own name map),
  the four projection matrices transposed from GPT-2's Conv1D [in, out] to [out, in]; no `output`
  tensor, so llama.cpp ties the head to token_embd as JAI does;
- `--type`: f32 keeps every tensor in float32; f16 and q8_0 store the 2-D weights that way (q8_0 needs
  rows that are a multiple of 32 values; a tensor that is not falls back to f16, with a note), while
  LayerNorms, biases and the position embeddings stay float32, as llama.cpp's converter leaves them;
- the tokenizer: byte-level BPE ("gpt2") with its merges, JAI's special tokens as control tokens,
  [BOS]/[EOS]/[UNK]/[PAD], [/ANSWER] as end-of-turn (llama.cpp stops there), [BOS] added in front of a
  prompt, and the pre-tokenizer "gpt-2". llama.cpp's converter recognises a pre-tokenizer by hashing the
  ids of a fixed text, which a freshly trained vocabulary never matches; JAI's tokenizer splits text with
  GPT-2's own regex, so "gpt-2" is the right one and is written here by name;
- the context length, and the chat template of jai.checkpoint.hf_files.

An Ollama `Modelfile` is written beside the GGUF file: `FROM` it, the prompt format as a `TEMPLATE`
(the posting as the system message, the question as the prompt), `num_ctx` set to the model's context
(Ollama's default of 2048 is past the position embeddings) and the stops.

llama.cpp's gpt2 graph computes the tanh GELU. A model trained with the exact one ("gelu") exports with
a warning: its logits in llama.cpp differ slightly from JAI's.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jai.atomic import atomic_file, write_text_atomic
from jai.checkpoint import folder, weights
from jai.checkpoint.hf_files import CHAT_TEMPLATE
from jai.config import GPTConfig
from jai.errors import InputError
from jai.prompt import ANSWER_END
from jai.tokenizer import BOS, CONTROL_TOKENS, EOS, PAD, SPECIAL_TOKENS, UNK

TYPES = ("f32", "f16", "q8_0")
MODELFILE = "Modelfile"


class ExportError(InputError):
    """A checkpoint that cannot be exported; the message names the file and says why."""


class ActivationWarning(UserWarning):
    """llama.cpp runs the tanh GELU; the model was trained with the exact one."""


@dataclass
class Exported:
    path: Path
    modelfile: Path | None
    config: GPTConfig
    type: str
    notes: list[str] = field(default_factory=list)


def _gguf():
    try:
        import gguf
    except ImportError as e:
        raise ImportError(
            "jai export gguf needs the gguf package: pip install -e '.[gguf]'", name="gguf"
        ) from e
    return gguf


# ------------------------------------------------------------------------------------------ vocabulary


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    ids: dict[str, int]  # JAI's special tokens that the vocabulary has


def read_vocab(tokenizer_json: Path, vocab_size: int) -> Vocab:
    """Tokens by id, their llama.cpp types, and the BPE merges, from a tokenizer.json.

    The embedding table may be larger than the vocabulary: the rows past it get placeholder tokens of
    type UNUSED (llama.cpp requires one token per row).
    """
    import json

    from tokenizers import Tokenizer

    gguf = _gguf()
    try:
        tok = Tokenizer.from_file(str(tokenizer_json))
        spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    except Exception as e:  # the Rust side raises a bare Exception for a malformed file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"{tokenizer_json}: not a valid tokenizer.json ({first})") from None
    model = spec.get("model", {})
    if (
        model.get("type") != "BPE"
        or not tok.pre_tokenizer
        or "ByteLevel" not in json.dumps(spec["pre_tokenizer"])
    ):
        raise ExportError(
            f"{tokenizer_json}: not a byte-level BPE tokenizer, which is all llama.cpp's gpt2 reads"
        )
    by_id = {i: t for t, i in tok.get_vocab(with_added_tokens=True).items()}
    n = len(by_id)
    if sorted(by_id) != list(range(n)):
        raise ExportError(f"{tokenizer_json}: token ids are not 0..{n - 1} without gaps")
    if n > vocab_size:
        raise ExportError(
            f"{tokenizer_json}: {n} tokens, but the model's embedding table has only {vocab_size} rows"
        )
    specials = {t: i for t in SPECIAL_TOKENS if (i := tok.token_to_id(t)) is not None}
    added = {a["content"] for a in spec.get("added_tokens", []) if a.get("special")}
    T = gguf.TokenType
    tokens, types = [], []
    for i in range(vocab_size):
        if i >= n:
            tokens.append(f"[UNUSED{i}]")
            types.append(T.UNUSED)
            continue
        t = by_id[i]
        tokens.append(t)
        if t == UNK:
            types.append(T.UNKNOWN)
        elif t in specials or t in added:
            types.append(T.CONTROL)  # never produced by splitting text unless asked for specials
        else:
            types.append(T.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return Vocab(tokens, [int(t) for t in types], merges, specials)


# --------------------------------------------------------------------------------------------- tensors


def _f32(t) -> np.ndarray:
    from jai.convert.hf import bf16_bits_to_f32

    return bf16_bits_to_f32(t.data) if t.dtype == "BF16" else np.asarray(t.data, dtype=np.float32)


def _storage(gguf, name: str, gguf_name: str, shape: tuple[int, ...], kind: str, notes: list[str]):
    """The GGML type for one tensor under `--type kind` (see the module docstring)."""
    Q = gguf.GGMLQuantizationType
    if kind == "f32" or len(shape) < 2 or gguf_name.startswith("position_embd"):
        return Q.F32
    if kind == "f16":
        return Q.F16
    block = gguf.GGML_QUANT_SIZES[Q.Q8_0][0]
    if shape[-1] % block:
        notes.append(f"{name}: rows of {shape[-1]} values are not a multiple of {block}; stored as f16")
        return Q.F16
    return Q.Q8_0


# ---------------------------------------------------------------------------------------------- export


def modelfile_text(gguf_name: str, cfg: GPTConfig) -> str:
    """An Ollama Modelfile for the GGUF file `gguf_name` beside it."""
    # Ollama renders TEMPLATE with Go templates: .System is the system message (the posting), .Prompt
    # the user's message (the question). [BOS] is not in it: llama.cpp adds it (add_bos_token).
    return (
        f"# Ollama: ollama create jai -f {MODELFILE} && ollama run jai\n"
        "# The posting goes in the system message (/set system ... in `ollama run`), the question in the\n"
        "# prompt; the model answers it in JAI's training format.\n"
        f"FROM ./{gguf_name}\n"
        'TEMPLATE """[DOC]\n{{ .System }}\n[/DOC]\n[QUESTION] {{ .Prompt }} [/QUESTION]\n[ANSWER]"""\n'
        f"PARAMETER num_ctx {cfg.block_size}\n"
        f'PARAMETER stop "{ANSWER_END}"\n'
        f'PARAMETER stop "{EOS}"\n'
    )


def export_gguf(
    ckpt_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    kind: str = "f16",
    overwrite: bool = False,
    modelfile: bool = True,
) -> Exported:
    """Write `out_path` (atomically) from a JAI checkpoint, and an Ollama Modelfile beside it."""
    from jai.convert.hf import read_safetensors

    gguf = _gguf()
    kind = kind.lower()
    if kind not in TYPES:
        raise ExportError(f"unknown type {kind!r}: choose one of {', '.join(TYPES)}")
    ckpt_dir, out_path = Path(ckpt_dir), Path(out_path)
    cfg, _ = folder.open_checkpoint(ckpt_dir)
    tokenizer = ckpt_dir / weights.TOKENIZER_FILE
    if not tokenizer.is_file():
        raise ExportError(f"{ckpt_dir}: no tokenizer.json; llama.cpp needs the vocabulary in the GGUF file")
    mf_path = out_path.parent / MODELFILE if modelfile else None
    for path in (out_path, mf_path):
        if path is not None and path.exists() and not overwrite:
            raise ExportError(f"{path}: already exists (pass --force to replace it)")
    vocab = read_vocab(tokenizer, cfg.vocab_size)
    missing = [t for t in CONTROL_TOKENS if t not in vocab.ids]
    if missing:
        raise ExportError(f"{tokenizer}: lacks {', '.join(missing)}: not a JAI tokenizer")
    notes: list[str] = []
    if cfg.activation == "gelu":
        warnings.warn(
            ActivationWarning(
                f"{ckpt_dir} uses the exact (erf) GELU and llama.cpp's gpt2 runs the tanh one: its logits "
                "in llama.cpp will differ slightly from JAI's"
            ),
            stacklevel=2,
        )

    tensors = read_safetensors(ckpt_dir / weights.WEIGHTS_FILE)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, cfg.n_layer)
    with atomic_file(out_path) as tmp:
        w = gguf.GGUFWriter(tmp, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPT2])
        w.add_name(ckpt_dir.resolve().name)
        w.add_context_length(cfg.block_size)
        w.add_embedding_length(cfg.n_embd)
        w.add_feed_forward_length(4 * cfg.n_embd)
        w.add_block_count(cfg.n_layer)
        w.add_head_count(cfg.n_head)
        w.add_layer_norm_eps(cfg.layer_norm_epsilon)
        ftype = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0"}[kind]
        w.add_file_type(int(getattr(gguf.LlamaFileType, ftype)))

        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(vocab.tokens)
        w.add_token_types(vocab.types)
        w.add_token_merges(vocab.merges)
        w.add_bos_token_id(vocab.ids[BOS])
        w.add_eos_token_id(vocab.ids[EOS])
        w.add_unk_token_id(vocab.ids[UNK])
        w.add_pad_token_id(vocab.ids[PAD])
        if ANSWER_END in vocab.ids:
            w.add_eot_token_id(vocab.ids[ANSWER_END])  # an answer ends here: llama.cpp stops generating
        w.add_add_bos_token(True)  # every training sample starts with [BOS]
        w.add_add_eos_token(False)
        w.add_chat_template(CHAT_TEMPLATE)

        for name in weights.tensor_shapes(cfg):
            data = _f32(tensors[name])
            if weights.is_conv1d(name):
                data = np.ascontiguousarray(data.T)  # llama.cpp wants Linear [out, in], as numpy shapes go
            gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:  # pragma: no cover - the gguf package's map covers every GPT-2 tensor
                raise ExportError(f"gguf has no llama.cpp name for tensor {name!r}")
            qtype = _storage(gguf, name, gguf_name, data.shape, kind, notes)
            w.add_tensor(gguf_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    if mf_path is not None:
        write_text_atomic(mf_path, modelfile_text(out_path.name, cfg))
    return Exported(out_path, mf_path, cfg, kind, notes)
