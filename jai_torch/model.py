"""GPT-2 in PyTorch. Its twin is jai_mlx/model.py: `diff` the two to see only framework differences.

Parameter names are the checkpoint's names (jai/checkpoint/weights.py), so loading is a transpose of
four matrices and nothing more. The head is tied to `wte` by reusing its weight in `F.linear`: there is
no `lm_head` module, so there is nothing to untie, save twice or forget to re-tie.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from jai.config import GPTConfig
from jai.training.target_rows import target_rows
from jai_torch.head_loss import linear_cross_entropy


class KVCache:
    """Keys and values of one layer, preallocated to the context length for `capacity` rows.

    Each live row is filled left to right to its own length (`lengths`, one per row): rows that joined
    a batch at different times sit at different positions, and `attention_mask` keeps each row's queries
    on its own keys. Rows join by copying another cache's rows in (`append_rows`) and leave by taking
    the last row's place (`drop_row`), so the live rows are always the first len(lengths).
    """

    def __init__(self, capacity: int, cfg: GPTConfig, dtype: torch.dtype, device: torch.device) -> None:
        shape = (capacity, cfg.n_head, cfg.block_size, cfg.head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.lengths = [0] * capacity

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store T new keys/values [B, H, T, D] after each row's cached ones; all of them, [B, H, end, D]."""
        rows, T = k.shape[0], k.shape[2]
        start = self.lengths[0]
        if all(n == start for n in self.lengths):
            self.keys[:rows, :, start : start + T] = k
            self.values[:rows, :, start : start + T] = v
        else:  # one new position per row, each at its own length
            row, at = torch.arange(rows, device=k.device), torch.tensor(self.lengths, device=k.device)
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
    p = model.ln_f.weight  # not wte's: a quantized wte holds uint8 codes (jai_torch/quant.py)
    cache = [KVCache(capacity or batch, model.config, p.dtype, p.device) for _ in model.h]
    for layer in cache:
        layer.lengths = [0] * batch
    return cache


def positions(starts: list[int], q_len: int, device: torch.device) -> torch.Tensor:
    """Positions of `q_len` new tokens after each row's `starts`: [q_len] when every row is at one place,
    else [B, q_len]."""
    if all(s == starts[0] for s in starts):
        return torch.arange(starts[0], starts[0] + q_len, device=device)
    return torch.tensor(starts, device=device)[:, None] + torch.arange(q_len, device=device)[None, :]


def attention_mask(pos: torch.Tensor, k_len: int, device: torch.device) -> torch.Tensor | None:
    """Which of `k_len` cached keys each new query at `pos` (from `positions`) sees: those at or before it.

    None when no mask is needed (one new token per row, every row at one place); [q_len, k_len] for rows
    at one place; [B, 1, q_len, k_len] when rows differ, which also hides the shorter rows' unfilled tail.
    """
    if pos.ndim == 1:
        return None if pos.shape[0] == 1 else pos[:, None] >= torch.arange(k_len, device=device)[None, :]
    return pos[:, None, :, None] >= torch.arange(k_len, device=device)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, T, C = x.shape
        # Split, then one head view each: backward writes the three gradients straight into one [B, T, 3C]
        # buffer. One view + permute of all three made it stack them and copy the stack back (an extra
        # copy of the qkv gradient in every layer, every step).
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.c_attn(x).split(C, 2)
        )
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # `mask` comes from `attention_mask`, made once per forward pass for every layer
            k, v = cache.update(k, v)
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

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln_1(x), cache, mask))
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
        self,
        idx: torch.Tensor,
        cache: list[KVCache] | None = None,
        last_only: bool = False,
        head: bool = True,
    ) -> torch.Tensor:
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
        pos = positions(starts, T, idx.device)
        mask = attention_mask(pos, max(starts) + T, idx.device) if cache else None
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.h):
            x = block(x, cache[i] if cache else None, mask)
        if last_only:
            x = x[:, -1:]
        if not head:
            return self.ln_f(x)
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


class _CrossEntropy(torch.autograd.Function):
    """F.cross_entropy's mean over rows, with a backward that turns the saved log-probabilities into
    the gradient in place: softmax - one_hot, scaled.

    The same function and the same gradient (to float32 rounding), without what PyTorch's backward
    allocates and fills: a zeroed [rows, vocab] gradient for nll_loss and a second [rows, vocab] buffer
    for log_softmax's backward; at 4,096 x 24,000 logits each is 393 MB. Measured 1.6x faster for the
    loss's forward and backward on the CPU (benchmarks; docs/benchmarks.md)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits, dim=-1)
        ctx.save_for_backward(logp, targets)
        return F.nll_loss(logp, targets)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logp, targets = ctx.saved_tensors
        g = logp.exp_()  # softmax, in the saved buffer (a second backward through it is refused)
        g[torch.arange(targets.numel(), device=g.device), targets] -= 1.0
        return g.mul_(grad / targets.numel()), None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position, computed in float32."""
    return _CrossEntropy.apply(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1).long())


def head_weight(model: GPT) -> torch.Tensor:
    """The tied head's weight, also through the wrappers the training step may call the model by
    (DistributedDataParallel keeps it as `.module`; torch.compile's wrapper passes attributes on)."""
    return getattr(model, "module", model).wte.weight


def loss_fn(
    model: GPT, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None, gradient: bool = True
) -> torch.Tensor:
    """Mean next-token cross-entropy over the targets that are not IGNORE, the head fused with the loss
    (head_loss.py). `rows`: the flat rows holding every target (jai/training/target_rows.py), the only
    rows the head computes; None: all of them. `gradient=False` for evaluation: the loss alone."""
    return linear_cross_entropy(model(x, head=False), head_weight(model), y, rows, gradient)


def masked_loss_fn(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss on the answers alone (`jai train --mask-prompt`): other targets are IGNORE, and their
    rows never reach the head. The training step passes the rows with the batch; here they are made."""
    return loss_fn(model, x, y, torch.from_numpy(target_rows(y.cpu().numpy())).to(y.device))
