"""Autoregressive sampling in PyTorch, KV-cached and streaming. Twin: jai_mlx/generate.py.

`generate` is a generator: each step yields the next token of every prompt in the batch, so a caller
can print text as it comes; `generate_tokens` collects them. The sampling parameters and the prompt
bookkeeping are shared with the twin (jai/sampling.py); greedy decoding gives the same tokens in both.

- Prompts are checked (non-empty, inside the vocabulary) and cropped from the left to leave room for
  generation (`jai.sampling.crop_left`).
- A batch may mix prompt lengths. The model gives every row the same positions, so prompts of one length
  share a forward pass and each length is its own `Decoder`: a prompt gets the same tokens alone or in a
  batch, and nothing is padded.
- With the cache, each new token costs one forward pass of one position. The positions are learned and
  absolute, so cached keys cannot slide: once the cache is full (offset == block_size) every further step
  recomputes the window, the last block_size - 1 tokens and the new one, into a reset cache, exactly what
  generation without the cache computes. Cached and uncached generation therefore pick the same greedy
  tokens however long they run (their logits agree to float rounding, not bit for bit).
- A sequence ends at the first stop id it samples (the stop id is not emitted) or after max_new_tokens.
- Each step's forward pass is queued before the previous step's tokens are read, so the device computes
  while the host streams; the price is one wasted step when every sequence has stopped early.
- `generate` puts the model in eval mode (no dropout) and runs under `torch.inference_mode()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from jai.sampling import SamplingConfig, check_prompts, crop_left, group_by_length, resolve_seed
from jai_torch.model import GPT, make_cache


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

    def __init__(self, seed: int, device: torch.device) -> None:
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def next(self) -> torch.Generator:
        return self.generator


def sample(logits: torch.Tensor, cfg: SamplingConfig, rng: Rng) -> torch.Tensor:
    """One token id per row of logits [B, vocab]: the argmax when greedy, else a draw after filtering."""
    if cfg.greedy:
        return logits.float().argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, cfg), dim=-1)
    return torch.multinomial(probs, 1, generator=rng.next())[:, 0]


class Decoder:
    """A batch of prompts of one length: the window of its last block_size tokens, and its KV cache."""

    def __init__(self, model: GPT, prompts: Sequence[Sequence[int]], cache: bool = True) -> None:
        self.model = model
        self.block_size = model.config.block_size
        self.window = torch.tensor(prompts, dtype=torch.long, device=model.wte.weight.device)  # [B, T]
        self.cache = make_cache(model, len(prompts)) if cache else None

    def step(self, new: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits [B, vocab] after the prompts (new=None) or after new tokens [B]."""
        if new is not None:
            self.window = torch.cat([self.window, new[:, None]], dim=1)[:, -self.block_size :]
        if self.cache is None:  # no cache: the whole window, every step
            return self.model(self.window, last_only=True)[:, -1]
        if new is None or self.cache[0].offset == self.block_size:
            # The prompts, or a full cache: recompute the window into the cache from position 0.
            for layer in self.cache:
                layer.reset()
            return self.model(self.window, self.cache, last_only=True)[:, -1]
        return self.model(new[:, None], self.cache)[:, -1]  # one new position after the cached


def _send_to_host(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event | None]:
    """Start moving sampled tokens to the host; `_receive` then waits for them alone, not for later work."""
    if tokens.device.type != "cuda":
        return tokens, None
    host = tokens.to("cpu", non_blocking=True)
    copied = torch.cuda.Event()
    copied.record()
    return host, copied


def _receive(sent: tuple[torch.Tensor, torch.cuda.Event | None]) -> list[int]:
    host, copied = sent
    if copied is not None:
        copied.synchronize()
    return host.tolist()


@torch.inference_mode()
def generate(
    model: GPT, prompts: Sequence[Sequence[int]], cfg: SamplingConfig, cache: bool = True
) -> Iterator[list[int | None]]:
    """Yield, step by step, the next token of every prompt; None for a prompt whose sequence has ended.

    A sequence ends at its first stop id (which is yielded as None, not as itself) or after
    cfg.max_new_tokens steps; the generator returns once every sequence has ended.
    """
    model.eval()
    prompts = check_prompts(prompts, model.config.vocab_size)
    prompts = [crop_left(ids, model.config.block_size, cfg.max_new_tokens) for ids in prompts]
    rng = Rng(resolve_seed(cfg.seed), model.wte.weight.device)
    groups = group_by_length(prompts)
    decoders = [Decoder(model, [prompts[i] for i in rows], cache) for rows in groups]
    stop_ids = set(cfg.stop_ids)
    ended = [False] * len(prompts)
    live = [True] * len(groups)

    tokens = [sample(d.step(), cfg, rng) for d in decoders]
    sent = [_send_to_host(t) for t in tokens]
    for step in range(cfg.max_new_tokens):
        # Queue the next step before reading this one: the device works while the host waits and yields.
        more = step + 1 < cfg.max_new_tokens
        tokens = [
            sample(d.step(t), cfg, rng) if more and g else None
            for d, t, g in zip(decoders, tokens, live, strict=True)
        ]
        out: list[int | None] = [None] * len(prompts)
        for i, rows in enumerate(groups):
            if sent[i] is None:
                continue
            for row, token in zip(rows, _receive(sent[i]), strict=True):
                if ended[row]:
                    continue
                if token in stop_ids:
                    ended[row] = True
                else:
                    out[row] = token
            live[i] = not all(ended[row] for row in rows)
        yield out
        if all(ended):
            return
        sent = [_send_to_host(t) if t is not None else None for t in tokens]


def generate_tokens(
    model: GPT, prompts: Sequence[Sequence[int]], cfg: SamplingConfig, cache: bool = True
) -> list[list[int]]:
    """The new tokens of every prompt, each list ending before its stop id (see `generate`)."""
    out: list[list[int]] = [[] for _ in prompts]
    for step in generate(model, prompts, cfg, cache):
        for tokens, token in zip(out, step, strict=True):
            if token is not None:
                tokens.append(token)
    return out
