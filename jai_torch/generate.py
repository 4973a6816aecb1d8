"""What the shared decoding loop (jai/decode.py) asks of the PyTorch twin. Twin: jai_mlx/generate.py.

The loop — which rows run, prefill and decode, the sliding context, stopping — is written once in
jai/decode.py; `generate` and `generate_tokens` are its, re-exported so `jai_torch.generate` reads as it
always did. Here is only what needs the framework: the model's logits for token windows, the KV cache,
the samplers (temperature, top-k, top-p) and the random stream. Every step runs under
`torch.inference_mode()`, and the model is put in eval mode (no dropout).
"""

from __future__ import annotations

import contextlib

import torch

from jai.decode import generate, generate_tokens  # noqa: F401  (the loop, shared by both twins)
from jai.sampling import SamplingConfig
from jai_torch.model import GPT, KVCache, make_cache


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits [B, vocab] with all but each row's k largest set to -inf (ties with the k-th are kept)."""
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values.amin(dim=-1, keepdim=True)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits [B, vocab] with all but each row's nucleus set to -inf.

    The nucleus is the smallest set of most likely tokens whose probabilities sum to >= p: a token stays
    if the tokens more likely than it hold less than p, so the most likely token always stays.
    """
    if p >= 1.0:
        return logits
    order = torch.argsort(logits, dim=-1, descending=True)
    ranked = torch.take_along_dim(logits, order, dim=-1)
    probs = torch.softmax(ranked, dim=-1)
    ahead = torch.cumsum(probs, dim=-1) - probs  # probability held by the tokens ranked above
    ranked = ranked.masked_fill(ahead >= p, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, ranked)


def filter_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Float32 logits to sample from: divided by the temperature (> 0), then top-k, then top-p."""
    logits = logits.float() / cfg.temperature
    if cfg.top_k is not None:
        logits = top_k_filter(logits, cfg.top_k)
    if cfg.top_p is not None:
        logits = top_p_filter(logits, cfg.top_p)
    return logits


class Rng:
    """The seeded random stream of one generation: each draw takes the next random numbers from it."""

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def next(self) -> torch.Generator:
        return self.generator


def sample(logits: torch.Tensor, cfg: SamplingConfig, rng: Rng | None) -> torch.Tensor:
    """One token id per row of logits [B, vocab]: the argmax when greedy, else a draw after filtering."""
    if cfg.greedy:
        return logits.float().argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, cfg), dim=-1)
    return torch.multinomial(probs, 1, generator=rng.next())[:, 0]


class Backend:
    """The PyTorch model as jai/decode.py's `Backend`: logits, cache, sampling, host transfer."""

    def __init__(self, model: GPT) -> None:
        self.model = model.eval()
        self.block_size = model.config.block_size
        self.vocab_size = model.config.vocab_size
        self.device = model.ln_f.weight.device  # not wte: a quantized one holds codes

    def context(self) -> contextlib.AbstractContextManager:
        return torch.inference_mode()

    def cache(self, rows: int, capacity: int | None = None) -> list[KVCache]:
        return make_cache(self.model, rows, capacity)

    def logits(self, windows: list[list[int]], cache: list[KVCache] | None = None) -> torch.Tensor:
        idx = torch.tensor(windows, dtype=torch.long, device=self.device)
        return self.model(idx, cache, last_only=True)[:, -1]

    def concat(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts)

    def take(self, x: torch.Tensor, rows: list[int]) -> torch.Tensor:
        return x[torch.tensor(rows, device=x.device)]

    def rng(self, seed: int) -> Rng:
        return Rng(seed, self.device)

    def sample(self, logits: torch.Tensor, cfg: SamplingConfig, rng: Rng | None) -> torch.Tensor:
        return sample(logits, cfg, rng)

    def to_host(self, tokens: torch.Tensor) -> list[int]:
        return tokens.tolist()
