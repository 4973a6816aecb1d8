"""Autoregressive sampling in MLX, KV-cached and streaming. Twin: jai_torch/generate.py.

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
- `generate` puts the model in eval mode (no dropout) and evaluates each step with `mx.async_eval`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import mlx.core as mx

from jai.sampling import SamplingConfig, check_prompts, crop_left, group_by_length, resolve_seed
from jai_mlx.model import GPT, make_cache


def top_k_filter(logits: mx.array, k: int) -> mx.array:
    """Logits [B, vocab] with all but each row's k largest set to -inf (ties with the k-th are kept)."""
    if k >= logits.shape[-1]:
        return logits
    kth = mx.topk(logits, k, axis=-1).min(axis=-1, keepdims=True)
    return mx.where(logits < kth, float("-inf"), logits)


def top_p_filter(logits: mx.array, p: float) -> mx.array:
    """Logits [B, vocab] with all but each row's nucleus set to -inf.

    The nucleus is the smallest set of most likely tokens whose probabilities sum to >= p: a token stays
    if the tokens more likely than it hold less than p, so the most likely token always stays.
    """
    if p >= 1.0:
        return logits
    order = mx.argsort(-logits, axis=-1)
    ranked = mx.take_along_axis(logits, order, axis=-1)
    probs = mx.softmax(ranked, axis=-1, precise=True)
    ahead = mx.cumsum(probs, axis=-1) - probs  # probability held by the tokens ranked above
    ranked = mx.where(ahead >= p, float("-inf"), ranked)
    return mx.put_along_axis(mx.full(logits.shape, float("-inf"), logits.dtype), order, ranked, axis=-1)


def filter_logits(logits: mx.array, cfg: SamplingConfig) -> mx.array:
    """Float32 logits to sample from: divided by the temperature (> 0), then top-k, then top-p."""
    logits = logits.astype(mx.float32) / cfg.temperature
    if cfg.top_k is not None:
        logits = top_k_filter(logits, cfg.top_k)
    if cfg.top_p is not None:
        logits = top_p_filter(logits, cfg.top_p)
    return logits


class Rng:
    """The seeded random stream of one generation: each draw takes the next random numbers from it."""

    def __init__(self, seed: int) -> None:
        self.key = mx.random.key(seed)

    def next(self) -> mx.array:
        self.key, key = mx.random.split(self.key)
        return key


def sample(logits: mx.array, cfg: SamplingConfig, rng: Rng) -> mx.array:
    """One token id per row of logits [B, vocab]: the argmax when greedy, else a draw after filtering."""
    if cfg.greedy:
        return mx.argmax(logits.astype(mx.float32), axis=-1).astype(mx.int32)
    return mx.random.categorical(filter_logits(logits, cfg), key=rng.next()).astype(mx.int32)


class Decoder:
    """A batch of prompts of one length: the window of its last block_size tokens, and its KV cache."""

    def __init__(self, model: GPT, prompts: Sequence[Sequence[int]], cache: bool = True) -> None:
        self.model = model
        self.block_size = model.config.block_size
        self.window = mx.array(prompts, dtype=mx.int32)  # [B, T]
        self.cache = make_cache(model, len(prompts)) if cache else None

    def step(self, new: mx.array | None = None) -> mx.array:
        """Next-token logits [B, vocab] after the prompts (new=None) or after new tokens [B]."""
        if new is not None:
            self.window = mx.concatenate([self.window, new[:, None]], axis=1)[:, -self.block_size :]
        if self.cache is None:  # no cache: the whole window, every step
            return self.model(self.window, last_only=True)[:, -1]
        if new is None or self.cache[0].offset == self.block_size:
            # The prompts, or a full cache: recompute the window into the cache from position 0.
            for layer in self.cache:
                layer.reset()
            return self.model(self.window, self.cache, last_only=True)[:, -1]
        return self.model(new[:, None], self.cache)[:, -1]  # one new position after the cached


def _send_to_host(tokens: mx.array) -> mx.array:
    """Start moving sampled tokens to the host; `_receive` then waits for them alone, not for later work."""
    mx.async_eval(tokens)
    return tokens


def _receive(sent: mx.array) -> list[int]:
    return sent.tolist()


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
    rng = Rng(resolve_seed(cfg.seed))
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
