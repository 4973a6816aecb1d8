"""A checkpoint folder in the Hugging Face hub layout, written whole: the weights and config.json (the
contract in jai/checkpoint/weights.py), tokenizer.json, and the side files that show outside tools
JAI's tokens, stops and prompt.

`config.json` and `model.safetensors` make a JAI checkpoint a GPT-2 that `transformers` and `mlx-lm`
load; these files make its tokenizer and its prompt format theirs too:

    tokenizer_config.json     a fast tokenizer (the tokenizer.json as it is), JAI's special tokens, the
                              context length, and the chat template
    special_tokens_map.json   [BOS] [EOS] [UNK] [PAD], the sample markers as additional special tokens
    generation_config.json    bos/eos/pad ids; generation stops at [EOS] or [/ANSWER]

Without tokenizer_config.json, `AutoTokenizer` falls back to a GPT2Tokenizer that appends its own
`<|endoftext|>` one id past the embedding table and makes it bos, eos and unk.

The chat template renders a conversation into the exact text JAI trains on (jai/prompt.py): the last
user message is the question, the posting comes from `documents` (transformers' RAG argument) or a system
message, and an assistant message after the question renders as the answer, closed by [/ANSWER][EOS]:

    [BOS][DOC]\\n{posting}\\n[/DOC]\\n[QUESTION] {question} [/QUESTION]\\n[ANSWER]

The template always ends the prompt with [ANSWER] (it is part of JAI's prompt, so it does not wait for
`add_generation_prompt`). It cannot shorten a posting to fit the context the way `jai sample` does
(that needs the tokenizer); callers with long postings shorten them first.

`write_model_files` writes them beside every tokenizer.json, so training and conversion both produce
them. Framework-free: only the `tokenizers` library reads the vocabulary.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as HFTokenizer

from jai.atomic import atomic_directory
from jai.checkpoint.weights import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, CheckpointError
from jai.config import GPTConfig
from jai.prompt import ANSWER, ANSWER_END, DOC, DOC_END, MARKERS, QUESTION, QUESTION_END
from jai.tokenizer import BOS, EOS, PAD, UNK

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
GENERATION_CONFIG_FILE = "generation_config.json"
FILES = (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, GENERATION_CONFIG_FILE)

ROLES = {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": PAD}
STOP_TOKENS = (EOS, ANSWER_END)  # an answer ends at [/ANSWER]; [EOS] ends the sample

# Every piece of text is a Jinja string expression, so the output does not depend on the whitespace
# options of the environment that renders it (transformers and llama-cpp-python both set trim_blocks,
# which would otherwise eat the newline after a block tag).
CHAT_TEMPLATE = (
    "{%- set ns = namespace(question=none, answer=none, doc='') -%}"
    "{%- if documents -%}"
    "{%- set d = documents[0] -%}"
    "{%- set ns.doc = d if d is string else (d['text'] or d['content'] or '') -%}"
    "{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set text = m['content'] -%}"
    "{%- elif m['content'] -%}"
    "{%- set text = m['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') -%}"
    "{%- set text = text | join('') -%}"
    "{%- else -%}{%- set text = '' -%}{%- endif -%}"
    "{%- if m['role'] == 'system' and not documents -%}{%- set ns.doc = text -%}"
    "{%- elif m['role'] == 'user' -%}{%- set ns.question = text -%}{%- set ns.answer = none -%}"
    "{%- elif m['role'] == 'assistant' and ns.question is not none -%}{%- set ns.answer = text -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if ns.question is none -%}"
    "{{- raise_exception('JAI answers a question: the conversation needs a user message') -}}"
    "{%- endif -%}"
    "{{- bos_token + '" + DOC + "\\n' + ns.doc | trim + '\\n" + DOC_END + "\\n' -}}"
    "{{- '" + QUESTION + " ' + ns.question | trim + ' " + QUESTION_END + "\\n" + ANSWER + "' -}}"
    "{%- if ns.answer is not none -%}"
    "{{- '\\n' + ns.answer | trim + '\\n" + ANSWER_END + "' + eos_token -}}"
    "{%- endif -%}"
)


def _ids(tokenizer: HFTokenizer, tokens: tuple[str, ...] | list[str]) -> dict[str, int]:
    """The id of each token the vocabulary has (a foreign tokenizer may lack JAI's)."""
    return {t: i for t in tokens if (i := tokenizer.token_to_id(t)) is not None}


def hf_files(cfg: GPTConfig, tokenizer_json: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The three files for a checkpoint of `cfg` with this tokenizer.json: {file name: JSON object}.

    Special tokens the vocabulary lacks (a tokenizer that is not JAI's) are left out; the chat template
    is written only when all of JAI's sample markers are there.
    """
    try:
        tok = HFTokenizer.from_file(str(tokenizer_json))
    except Exception as e:  # the Rust side raises a bare Exception for a malformed file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{tokenizer_json}: not a valid tokenizer.json ({first})") from None
    roles = {role: token for role, token in ROLES.items() if tok.token_to_id(token) is not None}
    # a tokenizer that is not JAI's (an imported model's): config.json's ids name its specials
    by_config = {"bos_token": cfg.bos_token_id, "eos_token": cfg.eos_token_id, "pad_token": cfg.pad_token_id}
    for role, i in by_config.items():
        if role not in roles and i is not None and (token := tok.id_to_token(i)) is not None:
            roles[role] = token
    markers = list(_ids(tok, MARKERS))
    specials = _ids(tok, [*roles.values(), *markers])

    tokenizer_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **roles,
        "additional_special_tokens": markers,
        "model_max_length": cfg.block_size,
        # decode() must give back the text as it was: no space clean-up around punctuation.
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",  # batched generation pads on the left in a decoder-only model
        "added_tokens_decoder": {
            str(i): {
                "content": t,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "single_word": False,
                "special": True,
            }
            for t, i in sorted(specials.items(), key=lambda kv: kv[1])
        },
    }
    if len(markers) == len(MARKERS) and BOS in specials and EOS in specials:
        tokenizer_config["chat_template"] = CHAT_TEMPLATE

    stops = list(_ids(tok, STOP_TOKENS).values())
    if not stops and "eos_token" in roles:
        stops = [specials[roles["eos_token"]]]
    generation_config: dict[str, Any] = {
        "bos_token_id": specials.get(roles.get("bos_token", BOS)),
        "eos_token_id": stops if len(stops) > 1 else (stops[0] if stops else None),
        "pad_token_id": specials.get(roles.get("pad_token", PAD)),
    }
    return {
        TOKENIZER_CONFIG_FILE: tokenizer_config,
        SPECIAL_TOKENS_MAP_FILE: {**roles, "additional_special_tokens": markers},
        GENERATION_CONFIG_FILE: generation_config,
    }


def write_hf_files(folder: str | os.PathLike, cfg: GPTConfig, tokenizer_json: str | os.PathLike) -> None:
    """Write the three files into `folder` (the caller makes the folder atomic)."""
    for name, obj in hf_files(cfg, tokenizer_json).items():
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
        (Path(folder) / name).write_text(text, encoding="utf-8")


def save_checkpoint(
    ckpt_dir: str | os.PathLike,
    cfg: GPTConfig,
    writer: str,
    save_weights: Callable[[Path], None],
    tokenizer: str | os.PathLike | None = None,
) -> Path:
    """Write a checkpoint directory atomically; `save_weights(path)` writes the safetensors file."""
    ckpt_dir = Path(ckpt_dir)
    with atomic_directory(ckpt_dir) as tmp:
        write_model_files(tmp, cfg, writer, save_weights, tokenizer)
    return ckpt_dir


def write_model_files(
    folder: Path,
    cfg: GPTConfig,
    writer: str,
    save_weights: Callable[[Path], None],
    tokenizer: str | os.PathLike | None = None,
) -> None:
    """The files of a checkpoint, into a folder that the caller makes atomic (see `save_checkpoint`)."""
    save_weights(folder / WEIGHTS_FILE)
    text = json.dumps(cfg.to_hf(writer), indent=2) + "\n"
    (folder / CONFIG_FILE).write_text(text, encoding="utf-8")
    if tokenizer is not None:
        shutil.copyfile(tokenizer, folder / TOKENIZER_FILE)
        # tokenizer_config.json, special_tokens_map.json, generation_config.json: what transformers,
        # mlx-lm and llama.cpp's converter need to find the specials, the stops and the prompt format.
        write_hf_files(folder, cfg, tokenizer)  # the source's name in any error, not the temporary copy's
