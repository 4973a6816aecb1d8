"""A nanoGPT-style GPT in PyTorch: the plainest fast PyTorch GPT, as the reference the twin should beat.

Written for the benchmark after the structure of nanoGPT's model.py (one file, eager PyTorch): q, k and v
split from one matmul, SDPA with `is_causal`, nn.GELU (the exact erf form, which nanoGPT uses even for
GPT-2 weights: not the twin's default `gelu_new`), a head tied to the token embedding. Loaded from a JAI
checkpoint (the twin's parameter names under `transformer.`), so it starts from the runners' weights; its
first loss differs from theirs in the fourth decimal, by the GELU.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from jai.config import GPTConfig


class SelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.n_head = cfg.n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = nn.ModuleDict(
            {"c_fc": nn.Linear(cfg.n_embd, 4 * cfg.n_embd), "c_proj": nn.Linear(4 * cfg.n_embd, cfg.n_embd)}
        )
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp["c_proj"](self.gelu(self.mlp["c_fc"](self.ln_2(x))))


class NanoGPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(cfg.vocab_size, cfg.n_embd),
                "wpe": nn.Embedding(cfg.block_size, cfg.n_embd),
                "h": nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
                "ln_f": nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon),
            }
        )
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = self.transformer
        x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in t.h:
            x = block(x)
        return self.lm_head(t.ln_f(x))


def from_twin(twin: nn.Module) -> NanoGPT:
    """A NanoGPT holding a copy of the twin's weights (same names, under `transformer.`)."""
    ref = NanoGPT(twin.config).to(twin.wte.weight.device)
    state = {f"transformer.{k}": v for k, v in twin.state_dict().items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    ref.load_state_dict(state)
    return ref
