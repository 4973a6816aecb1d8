"""The one decoding loop, for both twins: KV-cached, streaming, batched, rows joining and leaving.

No framework is imported here. A twin gives the loop a `Backend` (jai_mlx/generate.py,
jai_torch/generate.py): next-token logits for some token windows, a KV cache, sampling, and moving
tokens to the host. Everything else — which rows run, their windows, stopping, the sliding context —
happens here once, so greedy decoding picks the same tokens in both twins.

- `Batch` holds the rows being generated. Each `step()` gives every row one token: rows already in the
  KV cache decode together in one forward pass of one position each (each at its own position: the
  twins' caches keep a length per row and mask each row's attention to its own keys); rows that are new
  are prefilled, those of one length together, and then join the cache. Finished rows leave. The batch
  engine (jai/inference/batching.py) adds and removes rows between steps; `generate` adds all its prompts at
  once.
- The positions are learned and absolute, so cached keys cannot slide: once a row's cache is full
  (block_size tokens) every further step recomputes its window, the last block_size - 1 tokens and the
  new one, as a fresh prefill, which is exactly what generation without the cache computes. Cached and
  uncached generation therefore pick the same greedy tokens however long they run (their logits agree
  to float rounding, not bit for bit).
- Prompts are checked (non-empty, inside the vocabulary) and cropped from the left to leave room for
  generation (`jai.inference.sampling.crop_left`); callers that know the prompt's parts shorten the document
  instead, before it gets here (`jai.prompt.fit_prompt`).
- A sequence ends at the first stop id it samples (the stop id is not emitted) or after max_new_tokens.
- Penalties (repetition, no-repeat N-grams, OpenAI's frequency and presence) come first: each row that
  has any keeps a `History` of its tokens on the host, and one `Backend.penalize` call per step applies
  every row's to the batch's logits (jai/inference/penalties.py); a row without penalties is untouched,
  and a batch without any skips the step.
- Sampling (`sample`: temperature, top-k, top-p, or argmax) is composed here from the twins' ops.
  Rows that share a `Sampler` (one `generate` call) sample in one call from one seeded random stream;
  greedy rows all share one argmax. A request of its own (the engine) has its own stream, so its seeded
  draws do not depend on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jai.devices import twin_module
from jai.inference.penalties import History, entries
from jai.inference.sampling import (
    SamplingConfig,
    SamplingError,
    check_prompts,
    crop_left,
    group_by_length,
    resolve_seed,
)

Tensor = Any  # a twin's array: torch.Tensor or mx.array
TWINS = ("jai_mlx", "jai_torch")


class Backend(Protocol):
    """What a twin gives the loop; both twins' `generate.Backend` implement it."""

    block_size: int
    vocab_size: int

    def context(self) -> Any:
        """A context manager every step runs in (PyTorch: inference mode)."""

    def cache(self, rows: int, capacity: int | None = None) -> list[Any]:
        """A KV cache per layer, `rows` live rows (empty), room for `capacity` (see the twins' KVCache)."""

    def logits(self, windows: list[list[int]], cache: list[Any] | None = None) -> Tensor:
        """Next-token logits [B, vocab] after equal-length token windows, run after each row's cached
        tokens (cache None: from position 0, nothing kept)."""

    def concat(self, parts: list[Tensor]) -> Tensor:
        """Rows of several [B_i, ...] arrays, stacked."""

    def take(self, x: Tensor, rows: list[int]) -> Tensor:
        """Rows `rows` of x."""

    def rng(self, seed: int) -> Any:
        """A seeded random stream for `sample`."""

    def float32(self, logits: Tensor) -> Tensor: ...

    def argmax(self, logits: Tensor) -> Tensor:
        """The most likely token id of each row [B] (computed in float32)."""

    def top_k_filter(self, logits: Tensor, k: int) -> Tensor:
        """Logits [B, vocab] with all but each row's k largest set to -inf (ties with the k-th are kept)."""

    def top_p_filter(self, logits: Tensor, p: float) -> Tensor:
        """Logits [B, vocab] with all but each row's nucleus set to -inf (see `filter_logits`)."""

    def penalize(
        self, logits: Tensor, rows: list[int], tokens: list[int], divide: list[float], subtract: list[float]
    ) -> Tensor:
        """Float32 logits [B, vocab] with each (rows[i], tokens[i]) entry x made
        (x * divide[i] if x < 0 else x / divide[i]) - subtract[i]; the entries are distinct."""

    def draw(self, logits: Tensor, rng: Any) -> Tensor:
        """One token id per row, drawn from softmax(logits) with the next random numbers of `rng`."""

    def to_host(self, tokens: Tensor) -> list[int]:
        """The token ids as Python ints (waits for the device)."""


def filter_logits(backend: Backend, logits: Tensor, cfg: SamplingConfig) -> Tensor:
    """Float32 logits to sample from: divided by the temperature (> 0), then top-k, then top-p.

    The nucleus (top-p) is the smallest set of most likely tokens whose probabilities sum to >= p: a
    token stays if the tokens more likely than it hold less than p, so the most likely token always stays.
    """
    logits = backend.float32(logits) / cfg.temperature
    if cfg.top_k is not None:
        logits = backend.top_k_filter(logits, cfg.top_k)
    if cfg.top_p is not None:
        logits = backend.top_p_filter(logits, cfg.top_p)
    return logits


def sample(backend: Backend, logits: Tensor, cfg: SamplingConfig, rng: Any) -> Tensor:
    """One token id per row of logits [B, vocab]: the argmax when greedy, else a draw after filtering."""
    if cfg.greedy:
        return backend.argmax(logits)
    return backend.draw(filter_logits(backend, logits, cfg), rng)


def backend_for(model: Any) -> Backend:
    """The decoding backend of the twin `model` belongs to, imported lazily (a Backend is kept as is)."""
    if hasattr(model, "logits") and hasattr(model, "to_host"):
        return model
    twin = type(model).__module__.split(".")[0]
    if twin not in TWINS:
        raise TypeError(f"not a model of a JAI twin: {type(model).__qualname__} from {twin}")
    return twin_module(twin.removeprefix("jai_"), "generate").Backend(model)


@dataclass(eq=False)
class Sampler:
    """How a group of rows picks tokens: its config and its random stream."""

    cfg: SamplingConfig
    rng: Any


GREEDY = object()  # the sampling group of every greedy row: argmax needs no random stream


@dataclass(eq=False)
class Row:
    """One sequence being generated."""

    window: list[int]  # its last block_size tokens, prompt and generated
    sampler: Sampler
    owner: Any = None  # whatever the caller wants to find again (the engine's request)
    made: int = 0  # tokens sampled so far, a final stop id included
    cached: int = 0  # tokens of it in the batch's KV cache (0: not in it; prefilled next step)
    finish_reason: str | None = None  # "stop" | "length" once ended; "error" if its own sampling failed
    stops: frozenset[int] = field(default_factory=frozenset)
    error: SamplingError | None = None  # why, when finish_reason is "error"
    history: History | None = None  # the tokens its penalties count (None: it has none)


class Batch:
    """Rows generated together, one token per row per `step()`; rows may join and leave between steps."""

    def __init__(self, backend: Backend, capacity: int, cache: bool = True) -> None:
        self.backend = backend
        self.block_size = backend.block_size
        self.rows: list[Row] = []
        self.in_cache: list[Row] = []  # the rows in the KV cache, in its row order
        with backend.context():
            self.cache = backend.cache(0, capacity) if cache else None

    def __len__(self) -> int:
        return len(self.rows)

    def sampler(self, cfg: SamplingConfig) -> Sampler:
        """A sampling group of its own: `cfg`, and a random stream seeded with cfg.seed (or a fresh seed)."""
        with self.backend.context():
            return Sampler(cfg, None if cfg.greedy else self.backend.rng(resolve_seed(cfg.seed)))

    def add(self, prompt: Sequence[int], sampler: Sampler, owner: Any = None) -> Row:
        """A new row for a checked prompt; it is prefilled at the next step."""
        cfg = sampler.cfg
        row = Row(crop_left(prompt, self.block_size, cfg.max_new_tokens), sampler, owner)
        row.stops = frozenset(cfg.stop_ids)
        if cfg.penalized:
            row.history = History(cfg, row.window)
        self.rows.append(row)
        return row

    def remove(self, row: Row) -> None:
        """Take a row out (finished, or cancelled by its caller), freeing its place in the cache."""
        with self.backend.context():
            self._uncache(row)
        self.rows.remove(row)

    def step(self) -> list[tuple[Row, int | None]]:
        """One token for every row: (row, token), token None where the row sampled a stop id.

        Rows that end in this step (a stop id, or max_new_tokens) have `finish_reason` set and have left.
        """
        with self.backend.context():
            self._make_room()
            parts = self._decode() + self._prefill()  # (rows, their logits): cached rows first
            order = [row for rows, _ in parts for row in rows]
            logits = parts[0][1] if len(parts) == 1 else self.backend.concat([x for _, x in parts])
            return self._advance(order, self._sample(logits, order))

    def _make_room(self) -> None:
        """A row whose cache is full leaves it, to be prefilled again (see the module docstring)."""
        for row in [r for r in self.in_cache if r.cached == self.block_size]:
            self._uncache(row)

    def _decode(self) -> list[tuple[list[Row], Tensor]]:
        """One new position per cached row, each after its own cached tokens, in one forward pass."""
        order = list(self.in_cache)
        if not order:
            return []
        logits = self.backend.logits([[r.window[-1]] for r in order], self.cache)
        for row in order:
            row.cached += 1
        return [(order, logits)]

    def _prefill(self) -> list[tuple[list[Row], Tensor]]:
        """The rows not in the cache (new, or made room for): their whole windows, rows of one length in
        one forward pass; with a cache, their keys and values join the batch's."""
        pending = [r for r in self.rows if not r.cached]
        out = []
        for rows in group_by_length([r.window for r in pending]):
            group = [pending[i] for i in rows]
            windows = [r.window for r in group]
            if self.cache is None:
                out.append((group, self.backend.logits(windows)))
                continue
            cache = self.backend.cache(len(group))
            out.append((group, self.backend.logits(windows, cache)))
            for ours, theirs in zip(self.cache, cache, strict=True):
                ours.append_rows(theirs)
            for row in group:
                row.cached = len(row.window)
            self.in_cache += group
        return out

    def _sample(self, logits: Tensor, order: list[Row]) -> list[int]:
        found = entries([row.history for row in order])
        if found is not None:
            logits = self.backend.penalize(self.backend.float32(logits), *found)
        groups: dict[object, list[int]] = {}
        for i, row in enumerate(order):
            groups.setdefault(GREEDY if row.sampler.cfg.greedy else row.sampler, []).append(i)
        tokens: list[int | SamplingError] = [0] * len(order)
        for rows in groups.values():
            sampler = order[rows[0]].sampler
            part = logits if len(rows) == len(order) else self.backend.take(logits, rows)
            try:
                picked: list[int | SamplingError] = list(
                    self.backend.to_host(sample(self.backend, part, sampler.cfg, sampler.rng))
                )
            except Exception as e:  # this group's own sampling failed: its rows end, every other row goes on
                cfg = sampler.cfg
                how = f"temperature {cfg.temperature}, top_k {cfg.top_k}, top_p {cfg.top_p}"
                failed = SamplingError(f"sampling failed at {how}: {e}")
                picked = [failed] * len(rows)
            for i, token in zip(rows, picked, strict=True):
                tokens[i] = token
        return tokens

    def _advance(self, order: list[Row], tokens: list[int | SamplingError]) -> list[tuple[Row, int | None]]:
        out: list[tuple[Row, int | None]] = []
        for row, token in zip(order, tokens, strict=True):
            row.made += 1
            if isinstance(token, SamplingError):
                row.finish_reason, row.error = "error", token
                out.append((row, None))
            elif token in row.stops:
                row.finish_reason = "stop"
                out.append((row, None))
            else:
                row.window.append(token)
                if row.history is not None:
                    row.history.add(token)
                if len(row.window) > self.block_size:
                    del row.window[0]
                out.append((row, token))
                if row.made >= row.sampler.cfg.max_new_tokens:
                    row.finish_reason = "length"
            if row.finish_reason:
                self.remove(row)
        return out

    def _uncache(self, row: Row) -> None:
        if not row.cached or self.cache is None:
            row.cached = 0
            return
        i = self.in_cache.index(row)
        for layer in self.cache:
            layer.drop_row(i)  # the last row takes its place, in the cache and here
        self.in_cache[i] = self.in_cache[-1]
        self.in_cache.pop()
        row.cached = 0


def generate(
    model: Any, prompts: Sequence[Sequence[int]], cfg: SamplingConfig, cache: bool = True
) -> Iterator[list[int | None]]:
    """Yield, step by step, the next token of every prompt; None for a prompt whose sequence has ended.

    `model` is either twin's model (or a Backend). A sequence ends at its first stop id (which is yielded
    as None, not as itself) or after cfg.max_new_tokens steps; the generator returns once every sequence
    has ended. Prompts are checked here, before the first step.
    """
    backend = backend_for(model)
    prompts = check_prompts(prompts, backend.vocab_size)
    batch = Batch(backend, capacity=len(prompts), cache=cache)
    sampler = batch.sampler(cfg)  # one random stream for all the prompts
    rows = [batch.add(ids, sampler, owner=i) for i, ids in enumerate(prompts)]
    return _steps(batch, len(rows))


def _steps(batch: Batch, n: int) -> Iterator[list[int | None]]:
    while len(batch):
        out: list[int | None] = [None] * n
        for row, token in batch.step():
            if row.error is not None:  # a direct caller (jai sample) has one sampler: nothing else to go on
                raise row.error
            out[row.owner] = token
        yield out


def generate_tokens(
    model: Any, prompts: Sequence[Sequence[int]], cfg: SamplingConfig, cache: bool = True
) -> list[list[int]]:
    """The new tokens of every prompt, each list ending before its stop id (see `generate`)."""
    out: list[list[int]] = [[] for _ in prompts]
    for step in generate(model, prompts, cfg, cache):
        for tokens, token in zip(out, step, strict=True):
            if token is not None:
                tokens.append(token)
    return out
