"""What the shared decoding loop (jai/inference/decode.py) asks of the PyTorch twin. Twin:
jai_mlx/generate.py.

The loop — which rows run, prefill and decode, the sliding context, stopping — is written once in
jai/inference/decode.py; `generate` and `generate_tokens` are its, re-exported so `jai_torch.generate` reads
as it always did. Here is only what needs the framework: the model's logits for token windows, the KV cache,
the sampling ops (penalties, top-k, top-p, argmax, a draw) and the random stream. Every step runs under
`torch.inference_mode()`, and the model is put in eval mode (no dropout).
"""

from __future__ import annotations

import torch

from jai.inference.decode import generate, generate_tokens  # noqa: F401  (the loop, shared by both twins)
from jai_torch.model import GPT, KVCache, make_cache


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits [B, vocab] with all but each row's k largest set to -inf (ties with the k-th are kept)."""
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values.amin(dim=-1, keepdim=True)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits [B, vocab] with all but each row's nucleus (jai.inference.decode.filter_logits) set to -inf."""
    if p >= 1.0:
        return logits
    order = torch.argsort(logits, dim=-1, descending=True)
    ranked = torch.take_along_dim(logits, order, dim=-1)
    probs = torch.softmax(ranked, dim=-1)
    ahead = torch.cumsum(probs, dim=-1) - probs  # probability held by the tokens ranked above
    # the top token always stays: a p below float32's smallest number rounds to 0, and 0 >= 0 would drop it
    below_top = torch.arange(ranked.shape[-1], device=ranked.device) > 0
    ranked = ranked.masked_fill((ahead >= p) & below_top, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, ranked)


def penalize(
    logits: torch.Tensor, rows: list[int], tokens: list[int], divide: list[float], subtract: list[float]
) -> torch.Tensor:
    """Float32 logits with the penalty entries applied (jai.inference.penalties): one gather, one scatter."""
    at = (torch.tensor(rows, device=logits.device), torch.tensor(tokens, device=logits.device))
    x = logits[at]
    by = torch.tensor(divide, dtype=torch.float32, device=logits.device)
    x = torch.where(x < 0, x * by, x / by) - torch.tensor(subtract, dtype=torch.float32, device=logits.device)
    return logits.index_put(at, x)


class Rng:
    """The seeded random stream of one generation: each draw takes the next random numbers from it."""

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def next(self) -> torch.Generator:
        return self.generator


class Backend:
    """The PyTorch model as the decoding loop's `Backend`: logits, cache, sampling ops, host transfer."""

    def __init__(self, model: GPT) -> None:
        self.model = model.eval()
        self.block_size = model.config.block_size
        self.vocab_size = model.config.vocab_size
        self.device = model.ln_f.weight.device  # not wte: a quantized one holds codes

    def context(self) -> torch.inference_mode:
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

    top_k_filter = staticmethod(top_k_filter)
    top_p_filter = staticmethod(top_p_filter)
    penalize = staticmethod(penalize)

    def float32(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()

    def argmax(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().argmax(dim=-1)

    def draw(self, logits: torch.Tensor, rng: Rng) -> torch.Tensor:
        return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=rng.next())[:, 0]

    def to_host(self, tokens: torch.Tensor) -> list[int]:
        return tokens.tolist()
