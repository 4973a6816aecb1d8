"""GPT-2 in PyTorch. Its twin is jai_mlx/model.py: `diff` the two to see only framework differences.

Parameter names are the checkpoint's names (jai/weights.py), so loading is a transpose of four matrices
and nothing more. The head is tied to `wte` by reusing its weight in `F.linear`: there is no `lm_head`
module, so there is nothing to untie, save twice or forget to re-tie.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from jai.config import GPTConfig


class KVCache:
    """Keys and values of one layer, preallocated to the context length and filled left to right."""

    def __init__(self, batch: int, cfg: GPTConfig, dtype: torch.dtype, device: torch.device) -> None:
        shape = (batch, cfg.n_head, cfg.block_size, cfg.head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.offset = 0

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.offset + k.shape[2]
        self.keys[:, :, self.offset : end] = k
        self.values[:, :, self.offset : end] = v
        self.offset = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def reset(self) -> None:
        self.offset = 0  # the buffers stay allocated; positions past the offset are never read


def make_cache(model: GPT, batch: int) -> list[KVCache]:
    p = model.ln_f.weight  # not wte's: a quantized wte holds uint8 codes (jai_torch/quant.py)
    return [KVCache(batch, model.config, p.dtype, p.device) for _ in model.h]


def attention_mask(q_len: int, k_len: int, device: torch.device) -> torch.Tensor | None:
    """Causal mask for `q_len` new queries after `k_len - q_len` cached positions (None: no mask needed)."""
    if q_len == 1:
        return None  # one new token may attend to everything before it
    offset = k_len - q_len
    q_pos = torch.arange(offset, k_len, device=device)[:, None]
    return q_pos >= torch.arange(k_len, device=device)[None, :]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            k, v = cache.update(k, v)
            mask = attention_mask(T, k.shape[2], x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.act = ACTIVATION_FNS[cfg.activation]  # config.json's activation_function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's "gelu_new": the tanh approximation (PyTorch's default GELU is the exact erf one)."""
    return F.gelu(x, approximate="tanh")


# "gelu" is the exact erf GELU (nanoGPT's, and the framework's default); "gelu_new" GPT-2's tanh form.
ACTIVATION_FNS = {"gelu": F.gelu, "gelu_new": gelu_new}


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln_1(x), cache))
        return x + self.dropout(self.mlp(self.ln_2(x)))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        init_weights(self, seed)

    def forward(
        self, idx: torch.Tensor, cache: list[KVCache] | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """Logits [B, T, vocab] for token ids [B, T]; with a cache, T new tokens after those cached.

        `last_only` gives logits [B, 1, vocab] of the last position alone: generation reads nothing else,
        and the head is the largest matmul of a small model (vocab x width for every position).
        """
        T = idx.shape[1]
        offset = cache[0].offset if cache else 0
        if offset + T > self.config.block_size:
            raise ValueError(f"{offset + T} tokens exceed the context of {self.config.block_size}")
        pos = torch.arange(offset, offset + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.h):
            x = block(x, cache[i] if cache else None)
        if last_only:
            x = x[:, -1:]
        return F.linear(self.ln_f(x), self.wte.weight)  # the head is tied to the token embedding


def init_weights(model: GPT, seed: int = 0) -> None:
    """GPT-2 initialisation: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 * n_layer).

    The scaling keeps the residual stream's variance from growing with depth: each block adds two
    projections to it. Twins draw different random numbers; to start them equal, initialise one and
    move the weights through the checkpoint format.
    """
    std = 0.02
    proj_std = std / math.sqrt(2 * model.config.n_layer)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            elif "ln_" in name:  # LayerNorm gains
                p.fill_(1.0)
            else:  # wte, wpe and the four projection matrices
                scale = proj_std if name.endswith("c_proj.weight") else std
                p.copy_(torch.randn(p.shape, generator=gen) * scale)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position, computed in float32."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1).long())


def loss_fn(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return cross_entropy(model(x), y)
