"""GPT-2 in MLX. Its twin is jai_torch/model.py: `diff` the two to see only framework differences.

Parameter names are the checkpoint's names (jai/checkpoint/weights.py), so loading is a transpose of
four matrices and nothing more. The head is tied to `wte` through `Embedding.as_linear`: there is
no `lm_head` module, so there is nothing to untie, save twice or forget to re-tie.
"""

from __future__ import annotations

import math
from functools import partial

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from jai.config import GPTConfig
from jai.training.target_rows import target_rows
from jai_mlx.head_loss import linear_cross_entropy


class KVCache:
    """Keys and values of one layer, preallocated to the context length for `capacity` rows.

    Each live row is filled left to right to its own length (`lengths`, one per row): rows that joined
    a batch at different times sit at different positions, and `attention_mask` keeps each row's queries
    on its own keys. Rows join by copying another cache's rows in (`append_rows`) and leave by taking
    the last row's place (`drop_row`), so the live rows are always the first len(lengths).
    """

    def __init__(self, capacity: int, cfg: GPTConfig, dtype: mx.Dtype) -> None:
        shape = (capacity, cfg.n_head, cfg.block_size, cfg.head_dim)
        self.keys = mx.zeros(shape, dtype=dtype)
        self.values = mx.zeros(shape, dtype=dtype)
        self.lengths = [0] * capacity

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array]:
        """Store T new keys/values [B, H, T, D] after each row's cached ones; all of them, [B, H, end, D]."""
        rows, T = k.shape[0], k.shape[2]
        start = self.lengths[0]
        if all(n == start for n in self.lengths):
            self.keys[:rows, :, start : start + T] = k
            self.values[:rows, :, start : start + T] = v
        else:  # one new position per row, each at its own length
            row, at = mx.arange(rows), mx.array(self.lengths)
            self.keys[row, :, at] = k[:, :, 0]
            self.values[row, :, at] = v[:, :, 0]
        self.lengths = [n + T for n in self.lengths]
        end = max(self.lengths)
        return self.keys[:rows, :, :end], self.values[:rows, :, :end]

    def reset(self) -> None:
        self.lengths = [0] * len(self.lengths)  # the buffers stay allocated; unfilled places are never read

    def append_rows(self, other: KVCache) -> None:
        """Copy every live row of `other` in, after this cache's live rows."""
        first, end = len(self.lengths), max(other.lengths)
        self.keys[first : first + len(other.lengths), :, :end] = other.keys[: len(other.lengths), :, :end]
        self.values[first : first + len(other.lengths), :, :end] = other.values[: len(other.lengths), :, :end]
        self.lengths = self.lengths + other.lengths

    def drop_row(self, row: int) -> None:
        """Remove live row `row`: the last live row takes its place."""
        last = len(self.lengths) - 1
        if row != last:
            self.keys[row] = self.keys[last]
            self.values[row] = self.values[last]
            self.lengths[row] = self.lengths[last]
        self.lengths.pop()


def make_cache(model: GPT, batch: int, capacity: int | None = None) -> list[KVCache]:
    """A cache per layer with `batch` empty live rows and room for `capacity` (default: batch) rows."""
    dtype = model.ln_f.weight.dtype  # not wte's: a quantized wte holds uint32 codes (jai_mlx/quant.py)
    cache = [KVCache(capacity or batch, model.config, dtype) for _ in model.h]
    for layer in cache:
        layer.lengths = [0] * batch
    return cache


def positions(starts: list[int], q_len: int) -> mx.array:
    """Positions of `q_len` new tokens after each row's `starts`: [q_len] when every row is at one place,
    else [B, q_len]."""
    if all(s == starts[0] for s in starts):
        return mx.arange(starts[0], starts[0] + q_len)
    return mx.array(starts)[:, None] + mx.arange(q_len)[None, :]


def attention_mask(pos: mx.array, k_len: int) -> mx.array | None:
    """Which of `k_len` cached keys each new query at `pos` (from `positions`) sees: those at or before it.

    None when no mask is needed (one new token per row, every row at one place); [q_len, k_len] for rows
    at one place; [B, 1, q_len, k_len] when rows differ, which also hides the shorter rows' unfilled tail.
    """
    if pos.ndim == 1:
        return None if pos.shape[0] == 1 else pos[:, None] >= mx.arange(k_len)[None, :]
    return pos[:, None, :, None] >= mx.arange(k_len)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.scale = 1.0 / math.sqrt(cfg.head_dim)
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def __call__(self, x: mx.array, cache: KVCache | None = None, mask: mx.array | None = None) -> mx.array:
        B, T, C = x.shape
        # Split, then one head view each, as the PyTorch twin does (there it saves a copy in backward).
        q, k, v = (
            t.reshape(B, T, self.n_head, C // self.n_head).transpose(0, 2, 1, 3)
            for t in mx.split(self.c_attn(x), 3, 2)
        )
        if cache is None:
            y = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask="causal")
        else:  # `mask` comes from `attention_mask`, made once per forward pass for every layer
            k, v = cache.update(k, v)
            y = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        return self.c_proj(y.transpose(0, 2, 1, 3).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.act = ACTIVATION_FNS[cfg.activation]  # config.json's activation_function

    def __call__(self, x: mx.array) -> mx.array:
        return self.c_proj(self.act(self.c_fc(x)))


@partial(mx.compile, shapeless=True)
def gelu_new(x: mx.array) -> mx.array:
    """GPT-2's "gelu_new": the tanh approximation (MLX's default GELU is the exact erf one).

    Written through 0.5 * (1 + tanh(z)) == sigmoid(2z): the same function as `nn.gelu_approx`, with
    one transcendental op that MLX's CPU backend runs faster than tanh, fused into one kernel.
    1.5957691216057308 is 2 * sqrt(2 / pi).
    """
    return x * mx.sigmoid(1.5957691216057308 * (x + 0.044715 * x**3))


# "gelu" is the exact erf GELU (nanoGPT's, and the framework's default); "gelu_new" GPT-2's tanh form.
ACTIVATION_FNS = {"gelu": nn.gelu, "gelu_new": gelu_new}


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def __call__(self, x: mx.array, cache: KVCache | None = None, mask: mx.array | None = None) -> mx.array:
        x = x + self.dropout(self.attn(self.ln_1(x), cache, mask))
        return x + self.dropout(self.mlp(self.ln_2(x)))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = [Block(cfg) for _ in range(cfg.n_layer)]
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        init_weights(self, seed)

    def __call__(
        self,
        idx: mx.array,
        cache: list[KVCache] | None = None,
        last_only: bool = False,
        head: bool = True,
    ) -> mx.array:
        """Logits [B, T, vocab] for token ids [B, T]; with a cache, T new tokens after those cached.

        `last_only` gives logits [B, 1, vocab] of the last position alone: generation reads nothing else,
        and the head is the largest matmul of a small model (vocab x width for every position).
        `head=False` stops before the head: the final hidden states [B, T, C], for the loss to run the
        head itself, chunk by chunk (head_loss.py).
        """
        T = idx.shape[1]
        starts = cache[0].lengths if cache else [0]  # each row's cached tokens: its next position
        if max(starts) + T > self.config.block_size:
            raise ValueError(f"{max(starts) + T} tokens exceed the context of {self.config.block_size}")
        pos = positions(starts, T)
        mask = attention_mask(pos, max(starts) + T) if cache else None
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.h):
            x = block(x, cache[i] if cache else None, mask)
        if last_only:
            x = x[:, -1:]
        if not head:
            return self.ln_f(x)
        return self.wte.as_linear(self.ln_f(x))  # the head is tied to the token embedding


def init_weights(model: GPT, seed: int = 0) -> None:
    """GPT-2 initialisation: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 * n_layer).

    The scaling keeps the residual stream's variance from growing with depth: each block adds two
    projections to it. Twins draw different random numbers; to start them equal, initialise one and
    move the weights through the checkpoint format.
    """
    std = 0.02
    proj_std = std / math.sqrt(2 * model.config.n_layer)
    keys = iter(mx.random.split(mx.random.key(seed), len(tree_flatten(model.parameters()))))
    new = []
    for name, p in tree_flatten(model.parameters()):
        key = next(keys)
        if name.endswith(".bias"):
            p = mx.zeros_like(p)
        elif "ln_" in name:  # LayerNorm gains
            p = mx.ones_like(p)
        else:  # wte, wpe and the four projection matrices
            scale = proj_std if name.endswith("c_proj.weight") else std
            p = mx.random.normal(p.shape, key=key) * scale
        new.append((name, p))
    model.update(tree_unflatten(new))
    mx.eval(model.parameters())


def cross_entropy(logits: mx.array, targets: mx.array) -> mx.array:
    """Mean next-token cross-entropy over every position, computed in float32."""
    return nn.losses.cross_entropy(logits.astype(mx.float32), targets, reduction="mean")


def head_weight(model: GPT) -> mx.array:
    """The tied head's weight (the PyTorch twin also finds it through its training wrappers)."""
    return model.wte.weight


def loss_fn(
    model: GPT, x: mx.array, y: mx.array, rows: mx.array | None = None, gradient: bool = True
) -> mx.array:
    """Mean next-token cross-entropy over the targets that are not IGNORE, the head fused with the loss
    (head_loss.py). `rows`: the flat rows holding every target (jai/training/target_rows.py), the only
    rows the head computes; None: all of them. `gradient=False` for evaluation: the loss alone."""
    return linear_cross_entropy(model(x, head=False), head_weight(model), y, rows, gradient)


def masked_loss_fn(model: GPT, x: mx.array, y: mx.array) -> mx.array:
    """The loss on the answers alone (`jai train --mask-prompt`): other targets are IGNORE, and their
    rows never reach the head. The training step passes the rows with the batch; here they are made."""
    return loss_fn(model, x, y, mx.array(target_rows(np.array(y))))
