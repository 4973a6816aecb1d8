"""The model's shape, shared by both twins, and its round trip through a GPT-2 `config.json`.

The config file is the one the outside world already reads: `transformers` and `mlx-lm` open a JAI
checkpoint as an ordinary GPT-2. Everything that is ours (format version, which twin wrote it) lives
under the `jai` key, which both of them ignore.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from jai.errors import InputError

FORMAT_VERSION = 1

# The MLP's activation is part of the model, named as GPT-2's config.json names it: "gelu_new" is the tanh
# approximation GPT-2 (and a new JAI model) uses, "gelu" the exact erf form nanoGPT trains with. They
# differ by up to ~1e-3 per activation, so both twins run whichever config.json says, as transformers does.
ACTIVATION = "gelu_new"  # the default for new models
ACTIVATIONS = ("gelu_new", "gelu")


class ConfigError(InputError):
    """A config.json (or a config built in code) that cannot describe a JAI GPT."""


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 24_000
    block_size: int = 256  # context length: GPT-2's n_positions / n_ctx
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    activation: str = ACTIVATION  # config.json's activation_function: one of ACTIVATIONS

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.layer_norm_epsilon > 0:
            raise ConfigError(f"layer_norm_epsilon must be positive, got {self.layer_norm_epsilon!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation_function must be one of {', '.join(map(repr, ACTIVATIONS))}, "
                f"found {self.activation!r}"
            )
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            token = getattr(self, name)
            if token is not None and not 0 <= token < self.vocab_size:
                raise ConfigError(f"{name}={token} is outside the vocabulary (size {self.vocab_size})")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def replace(self, **changes: Any) -> GPTConfig:
        return dataclasses.replace(self, **changes)

    def num_params(self, include_embedding: bool = True) -> int:
        """Parameter count; the head is tied to `wte`, so it adds nothing."""
        d, L = self.n_embd, self.n_layer
        per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
        total = L * per_block + 2 * d + self.block_size * d
        return total + self.vocab_size * d if include_embedding else total

    def to_hf(self, writer: str) -> dict[str, Any]:
        """The GPT-2 `config.json` for this shape; `writer` names the twin (or tool) that saved it."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_ctx": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": None,
            "activation_function": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "initializer_range": 0.02,
            "scale_attn_weights": True,
            "tie_word_embeddings": True,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "jai": {"format_version": FORMAT_VERSION, "writer": writer},
        }

    @classmethod
    def from_hf(cls, hf: dict[str, Any], source: str = "config.json") -> GPTConfig:
        """Read a GPT-2 `config.json` dict, refusing anything our twins would compute differently."""
        if not isinstance(hf, dict):
            raise ConfigError(f"{source}: expected a JSON object, found {type(hf).__name__}")
        if hf.get("model_type") != "gpt2":
            raise ConfigError(f"{source}: model_type must be 'gpt2', found {hf.get('model_type')!r}")
        missing = [k for k in ("vocab_size", "n_embd", "n_layer", "n_head") if k not in hf]
        if "n_positions" not in hf and "n_ctx" not in hf:
            missing.append("n_positions")
        if missing:
            raise ConfigError(f"{source}: missing field(s) {', '.join(missing)}")
        # transformers' own default is "gelu_new" too, so a config without the field means the tanh form.
        act = hf.get("activation_function", ACTIVATION)
        if act not in ACTIVATIONS:
            raise ConfigError(
                f"{source}: activation_function must be one of {', '.join(map(repr, ACTIVATIONS))}, "
                f"found {act!r}"
            )
        n_inner = hf.get("n_inner")
        if n_inner is not None and n_inner != 4 * hf["n_embd"]:
            raise ConfigError(f"{source}: n_inner must be 4 * n_embd = {4 * hf['n_embd']}, found {n_inner}")
        if hf.get("tie_word_embeddings", True) is not True:
            raise ConfigError(f"{source}: JAI models tie the head to wte; tie_word_embeddings is false")
        n_positions = hf.get("n_positions", hf.get("n_ctx"))
        if "n_ctx" in hf and hf["n_ctx"] != n_positions:
            raise ConfigError(f"{source}: n_ctx ({hf['n_ctx']}) disagrees with n_positions ({n_positions})")
        try:
            return cls(
                vocab_size=hf["vocab_size"],
                block_size=n_positions,
                n_layer=hf["n_layer"],
                n_head=hf["n_head"],
                n_embd=hf["n_embd"],
                dropout=float(hf.get("resid_pdrop", 0.0) or 0.0),
                layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)),
                bos_token_id=_token_id(hf.get("bos_token_id")),
                eos_token_id=_token_id(hf.get("eos_token_id")),
                pad_token_id=_token_id(hf.get("pad_token_id")),
                activation=act,
            )
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None


def _token_id(value: Any) -> int | None:
    # HF allows a list of eos ids; JAI has exactly one of each special token.
    if isinstance(value, list):
        value = value[0] if value else None
    return value
