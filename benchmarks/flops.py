"""Model FLOPs per token, the GEMM shapes that carry them, and the roof they are measured against.

Counting (2 FLOPs per multiply-add; d = n_embd, L = n_layer, V = vocab, T = context actually used):

    forward, per token        2 * N_mm + 2 * L * T * d
    training (fwd + bwd)      6 * N_mm + 6 * L * T * d

    N_mm = L * (3d*d + d*d + 4d*d + 4d*d) + d*V = 12 * L * d^2 + d * V

N_mm is the number of weights that take part in a matmul: per block the fused q/k/v projection, the
attention output projection and the two MLP matrices; then the head, which is tied to `wte` and counted
once, as the matmul it is (the embedding lookups are gathers, not FLOPs; biases, LayerNorm and GELU are
elementwise and left out, as in every MFU convention). Each matmul weight costs 2 FLOPs per token
forward and 4 backward (the gradients of its input and of the weight itself).

Attention's own two products, QK^T and AV, cost 2 * T * d each per token and layer forward over the
full T x T square; the causal mask leaves half of it to compute, so 2 * L * T * d forward and
6 * L * T * d for training. (PaLM and nanoGPT count the full square, 12 * L * T * d; at the default
shape the difference is 3% of the total.)

The roof: the same GEMMs, at the same shapes and dtype, timed on their own in the same process. The
roof ratio is model FLOP/s / GEMM FLOP/s: the share of what the hardware just showed it can do at
these shapes that the training step turns into model FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

from jai.config import GPTConfig


def matmul_params(cfg: GPTConfig) -> int:
    """N_mm: weights that enter a matmul (the tied head once; no embeddings lookups, biases or norms)."""
    d = cfg.n_embd
    return cfg.n_layer * 12 * d * d + d * cfg.vocab_size


def attention_flops_per_token(cfg: GPTConfig, seq_len: int, causal: bool = True) -> int:
    """QK^T and AV forward, per token, all layers (causal: half the T x T square)."""
    full = 4 * cfg.n_layer * seq_len * cfg.n_embd
    return full // 2 if causal else full


def forward_flops_per_token(cfg: GPTConfig, seq_len: int | None = None) -> int:
    T = cfg.block_size if seq_len is None else seq_len
    return 2 * matmul_params(cfg) + attention_flops_per_token(cfg, T)


def train_flops_per_token(cfg: GPTConfig, seq_len: int | None = None) -> int:
    """6 * N_mm + 6 * L * T * d: forward, plus backward at twice the forward's cost."""
    T = cfg.block_size if seq_len is None else seq_len
    return 6 * matmul_params(cfg) + 3 * attention_flops_per_token(cfg, T)


@dataclass(frozen=True)
class Gemm:
    """One matrix product [m, k] x [k, n], done `count` times per step."""

    name: str
    m: int
    k: int
    n: int
    count: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.count


def forward_gemms(cfg: GPTConfig, tokens: int) -> list[Gemm]:
    """The dense matmuls of one forward pass over `tokens` = batch * T positions."""
    d, L = cfg.n_embd, cfg.n_layer
    return [
        Gemm("qkv", tokens, d, 3 * d, L),
        Gemm("attn.proj", tokens, d, d, L),
        Gemm("mlp.fc", tokens, d, 4 * d, L),
        Gemm("mlp.proj", tokens, 4 * d, d, L),
        Gemm("head", tokens, d, cfg.vocab_size, 1),
    ]


def train_gemms(cfg: GPTConfig, tokens: int) -> list[Gemm]:
    """Forward and backward dense matmuls of one training step: for y = x W (x [m, k], W [k, n]),
    the backward computes dx = dy W^T ([m, n] x [n, k]) and dW = x^T dy ([k, m] x [m, n])."""
    out = []
    for g in forward_gemms(cfg, tokens):
        out += [
            g,
            Gemm(g.name + ".dx", g.m, g.n, g.k, g.count),
            Gemm(g.name + ".dw", g.k, g.m, g.n, g.count),
        ]
    return out


def roof(gemm_seconds: dict[str, float], gemms: list[Gemm]) -> dict[str, float]:
    """GEMM FLOP/s over a set of shapes: total FLOPs / total time (each shape's time is per call)."""
    total_flops = sum(g.flops for g in gemms)
    total_time = sum(gemm_seconds[g.name] * g.count for g in gemms)
    return {
        "gemm_flops": float(total_flops),
        "gemm_seconds": total_time,
        "gemm_flops_per_s": total_flops / total_time,
    }


def roof_ratio(tokens_per_s: float, flops_per_token: float, gemm_flops_per_s: float) -> float:
    """Model FLOP/s achieved as a fraction of the GEMM FLOP/s measured at the model's shapes."""
    return tokens_per_s * flops_per_token / gemm_flops_per_s


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops_per_s: float | None) -> float | None:
    return None if not peak_flops_per_s else tokens_per_s * flops_per_token / peak_flops_per_s
