"""The JAI tokenizer: byte-level BPE (GPT-2 style) trained with the `tokenizers` library.

Byte-level means the base alphabet is the 256 bytes, so any text - Korean, emoji, tabs - can be
encoded without an [UNK], and decoding gives back exactly the input (lossless). The pre-tokenizer
splits on GPT-2's regex (words, numbers, punctuation, whitespace runs) without adding a prefix space,
which would otherwise change the text.

Ids 0-3 are the control tokens [PAD] [UNK] [BOS] [EOS]; after them come the six sample markers
([DOC] ... [/ANSWER]) that structure every training sample, as special tokens so they are always
one id each and can never be split or merged with neighbouring text.

Two decode paths:
- `decode(ids)`: for people. Drops [BOS]/[EOS]/[PAD] but keeps the markers, which are part of the text.
- `decode(ids, keep_control=True)`: everything, for debugging a .bin file token by token.

The saved tokenizer.json is the ordinary `tokenizers` format: `transformers.PreTrainedTokenizerFast(
tokenizer_file=...)` loads it and produces the same ids.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from jai.atomic import write_text_atomic
from jai.prompt import MARKERS

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
CONTROL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3

# The markers of a sample ([DOC] posting [/DOC] [QUESTION] q [/QUESTION] [ANSWER] a [/ANSWER]) belong to
# the prompt format (jai/prompt.py); the vocabulary holds each as one special token.
SPECIAL_TOKENS = CONTROL_TOKENS + MARKERS

DEFAULT_VOCAB_SIZE = 24_000


class Tokenizer:
    """A thin wrapper over `tokenizers.Tokenizer` with JAI's special tokens and conventions."""

    def __init__(self, tok: HFTokenizer) -> None:
        self._tok = tok
        for i, name in enumerate(CONTROL_TOKENS):
            if tok.token_to_id(name) != i:
                raise ValueError(f"tokenizer must have {name} at id {i}, has it at {tok.token_to_id(name)}")
        self._control_ids = frozenset((self.pad_id, self.bos_id, self.eos_id))

    # --- building -----------------------------------------------------------------------------------

    @staticmethod
    def _blank(split_digits: bool) -> HFTokenizer:
        tok = HFTokenizer(models.BPE(unk_token=UNK))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        if split_digits:
            # Every digit its own token (as LLaMA's tokenizer does): a number is then copied digit by
            # digit through ten well-trained embeddings, not as one of thousands of rare tokens like
            # " 8762". No merge ever spans a digit, so a reader that pre-splits numbers GPT-2's way
            # (llama.cpp's "gpt2" pre-tokenizer) still gets the same ids.
            digits = pre_tokenizers.Digits(individual_digits=True)
            tok.pre_tokenizer = pre_tokenizers.Sequence([digits, byte_level])
        else:
            tok.pre_tokenizer = byte_level
        tok.decoder = decoders.ByteLevel()
        return tok

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        min_frequency: int = 2,
        show_progress: bool = True,
        length: int | None = None,
        split_digits: bool = False,
    ) -> Tokenizer:
        """Learn BPE merges from `texts` (any iterable, consumed once, streamed by the Rust trainer).

        The vocabulary holds the special tokens, the 256 bytes, then merges up to `vocab_size`; a small
        corpus may stop short of it (see the `vocab_size` property for the real size).
        """
        floor = len(SPECIAL_TOKENS) + 256
        if vocab_size <= floor:
            raise ValueError(f"vocab_size must exceed {floor} (special tokens + 256 bytes), got {vocab_size}")
        tok = cls._blank(split_digits)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),  # in this order: ids 0..9
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, so never an [UNK]
            show_progress=show_progress,
        )
        tok.train_from_iterator(texts, trainer=trainer, length=length)
        return cls(tok)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such tokenizer file (train one with `jai prepare`)")
        try:
            tok = HFTokenizer.from_file(str(path))
        except Exception as e:  # the Rust side raises a bare Exception for malformed files
            raise ValueError(f"{path}: not a valid tokenizer.json ({e})") from e
        return cls(tok)

    def to_json(self) -> str:
        return self._tok.to_str(pretty=True)

    def save(self, path: str | os.PathLike) -> None:
        """Write tokenizer.json atomically; its bytes hash to `sha256`."""
        write_text_atomic(path, self.to_json())

    @property
    def sha256(self) -> str:
        """Hash of the tokenizer.json text: datasets and checkpoints record it to catch a mismatch."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    # --- using --------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Text -> ids, no [BOS]/[EOS] added (the dataset writer wraps samples itself)."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Many texts at once: the Rust side spreads them over all cores."""
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], keep_control: bool = False) -> str:
        """Ids -> text. Markers always stay; [BOS]/[EOS]/[PAD] are dropped unless `keep_control`."""
        ids = [int(i) for i in ids]
        if not keep_control:
            ids = [i for i in ids if i not in self._control_ids]
        # skip_special_tokens=False: the library would otherwise drop the markers with the rest.
        return self._tok.decode(ids, skip_special_tokens=False)

    def token_id(self, token: str) -> int:
        i = self._tok.token_to_id(token)
        if i is None:
            raise KeyError(f"{token!r} is not a token of this tokenizer")
        return i

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(i)

    @property
    def splits_digits(self) -> bool:
        """Whether every digit is its own token (`Tokenizer.train(split_digits=True)`)."""
        pre = json.loads(self.to_json()).get("pre_tokenizer") or {}
        steps = pre.get("pretokenizers", [pre])
        return any(p.get("type") == "Digits" and p.get("individual_digits") for p in steps)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return self.token_id(PAD)

    @property
    def unk_id(self) -> int:
        return self.token_id(UNK)

    @property
    def bos_id(self) -> int:
        return self.token_id(BOS)

    @property
    def eos_id(self) -> int:
        return self.token_id(EOS)

    @property
    def backend(self) -> HFTokenizer:
        """The underlying `tokenizers.Tokenizer`, for anything this wrapper does not cover."""
        return self._tok
