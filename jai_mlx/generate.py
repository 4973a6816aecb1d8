"""What the shared decoding loop (jai/inference/decode.py) asks of the MLX twin. Twin:
jai_torch/generate.py.

The loop — which rows run, prefill and decode, the sliding context, stopping — is written once in
jai/inference/decode.py; `generate` and `generate_tokens` are its, re-exported so `jai_mlx.generate` reads
as it always did. Here is only what needs the framework: the model's logits for token windows, the KV cache,
the sampling ops (penalties, top-k, top-p, argmax, a draw) and the random stream. MLX is lazy: a step's
work runs when its tokens are read (`to_host`), and the model is put in eval mode (no dropout).
"""

from __future__ import annotations

import mlx.core as mx

from jai.inference.decode import generate, generate_tokens  # noqa: F401  (the loop, shared by both twins)
from jai_mlx.model import GPT, KVCache, make_cache


def top_k_filter(logits: mx.array, k: int) -> mx.array:
    """Logits [B, vocab] with all but each row's k largest set to -inf (ties with the k-th are kept)."""
    if k >= logits.shape[-1]:
        return logits
    kth = mx.topk(logits, k, axis=-1).min(axis=-1, keepdims=True)
    return mx.where(logits < kth, float("-inf"), logits)


def top_p_filter(logits: mx.array, p: float) -> mx.array:
    """Logits [B, vocab] with all but each row's nucleus (jai.inference.decode.filter_logits) set to -inf."""
    if p >= 1.0:
        return logits
    order = mx.argsort(-logits, axis=-1)
    ranked = mx.take_along_axis(logits, order, axis=-1)
    probs = mx.softmax(ranked, axis=-1, precise=True)
    ahead = mx.cumsum(probs, axis=-1) - probs  # probability held by the tokens ranked above
    # the top token always stays: a p below float32's smallest number rounds to 0, and 0 >= 0 would drop it
    below_top = mx.arange(ranked.shape[-1]) > 0
    ranked = mx.where((ahead >= p) & below_top, float("-inf"), ranked)
    return mx.put_along_axis(mx.full(logits.shape, float("-inf"), logits.dtype), order, ranked, axis=-1)


def penalize(
    logits: mx.array, rows: list[int], tokens: list[int], divide: list[float], subtract: list[float]
) -> mx.array:
    """Float32 logits with the penalty entries applied (jai.inference.penalties): one gather, one scatter."""
    at = (mx.array(rows), mx.array(tokens))
    x = logits[at]
    by = mx.array(divide, dtype=mx.float32)
    x = mx.where(x < 0, x * by, x / by) - mx.array(subtract, dtype=mx.float32)
    out = mx.array(logits)
    out[at] = x
    return out


class Rng:
    """The seeded random stream of one generation: each draw takes the next random numbers from it."""

    def __init__(self, seed: int) -> None:
        self.key = mx.random.key(seed)

    def next(self) -> mx.array:
        self.key, key = mx.random.split(self.key)
        return key


_streams: dict[str, mx.ThreadLocalStream] = {}


def thread_stream(device: mx.Device) -> mx.ThreadLocalStream:
    """One stream per device that each thread sees as its own: MLX streams belong to a thread, and the
    batch engine decodes in a worker thread. Made once per device (each new stream costs for good)."""
    key = str(device)
    if key not in _streams:
        _streams[key] = mx.new_thread_local_stream(device)
    return _streams[key]


class Backend:
    """The MLX model as the decoding loop's `Backend`: logits, cache, sampling ops, host transfer."""

    def __init__(self, model: GPT) -> None:
        self.model = model.eval()
        self.block_size = model.config.block_size
        self.vocab_size = model.config.vocab_size
        self.stream = thread_stream(mx.default_device())

    def context(self) -> mx.StreamContext:
        return mx.stream(self.stream)

    def cache(self, rows: int, capacity: int | None = None) -> list[KVCache]:
        return make_cache(self.model, rows, capacity)

    def logits(self, windows: list[list[int]], cache: list[KVCache] | None = None) -> mx.array:
        idx = mx.array(windows, dtype=mx.int32)
        return self.model(idx, cache, last_only=True)[:, -1]

    def concat(self, parts: list[mx.array]) -> mx.array:
        return mx.concatenate(parts)

    def take(self, x: mx.array, rows: list[int]) -> mx.array:
        return x[mx.array(rows)]

    def rng(self, seed: int) -> Rng:
        return Rng(seed)

    top_k_filter = staticmethod(top_k_filter)
    top_p_filter = staticmethod(top_p_filter)
    penalize = staticmethod(penalize)

    def float32(self, logits: mx.array) -> mx.array:
        return logits.astype(mx.float32)

    def argmax(self, logits: mx.array) -> mx.array:
        return mx.argmax(logits.astype(mx.float32), axis=-1).astype(mx.int32)

    def draw(self, logits: mx.array, rng: Rng) -> mx.array:
        return mx.random.categorical(logits, key=rng.next()).astype(mx.int32)

    def to_host(self, tokens: mx.array) -> list[int]:
        return tokens.tolist()
