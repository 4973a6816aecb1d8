"""Generation in both twins: KV cache against recomputation, twin against twin, and the samplers' maths.

Everything runs a real model: one small random GPT, saved by the PyTorch twin and loaded by both. GPT-2's
own initialisation makes a random model repeat its last token forever (the head is tied to wte and the
residual stream barely moves), which would let a broken cache pass, so the weights are scrambled with
unit-scale matrices first: greedy runs then wander through the vocabulary (checked below).
"""

from __future__ import annotations

from types import SimpleNamespace

import mlx.core as mx
import numpy as np
import pytest
import torch

from jai.config import GPTConfig
from jai.inference import decode
from jai.inference.sampling import (
    MIN_TEMPERATURE,
    SamplingConfig,
    SamplingError,
    check_prompts,
    crop_left,
    group_by_length,
    room,
)
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import generate as mlx_gen
from jai_torch import checkpoint as torch_ckpt
from jai_torch import generate as torch_gen
from jai_torch import model as torch_model

CFG = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=64)
GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=12)
PAST_CONTEXT = 40  # new tokens: more than twice the context, so the cache fills and the window slides
PROMPTS = [[1, 2, 3], [5, 6, 7, 8, 9], [4, 4, 4], [10], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]]

TWINS = {
    "torch": SimpleNamespace(
        gen=torch_gen,
        array=lambda a: torch.tensor(np.asarray(a)),
        numpy=lambda t: t.detach().float().numpy(),
    ),
    "mlx": SimpleNamespace(gen=mlx_gen, array=lambda a: mx.array(np.asarray(a)), numpy=lambda t: np.array(t)),
}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model = torch_model.GPT(CFG, seed=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:  # wte, wpe: unit scale; the projections louder, so every layer matters
                scale = 2.0 if name.endswith(("c_proj.weight", "c_fc.weight")) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[-1] ** 0.5)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    path = tmp_path_factory.mktemp("gen") / "model"
    torch_ckpt.save_model(model, path)
    return path


@pytest.fixture(scope="module")
def models(ckpt):
    return {"torch": torch_ckpt.load_model(ckpt), "mlx": mlx_ckpt.load_model(ckpt)}


@pytest.fixture(params=list(TWINS))
def twin(request, models):
    """One twin: its generate module, its model, and array conversions."""
    t = TWINS[request.param]
    model = models[request.param]
    return SimpleNamespace(name=request.param, model=model, backend=t.gen.Backend(model), **vars(t))


def greedy(twin, prompts, max_new_tokens, cache=True, **kw):
    cfg = GREEDY.replace(max_new_tokens=max_new_tokens, **kw)
    return twin.gen.generate_tokens(twin.model, prompts, cfg, cache=cache)


# --- KV cache and parity --------------------------------------------------------------------------------


def test_greedy_with_cache_equals_without_past_the_context(twin):
    cached = greedy(twin, PROMPTS, PAST_CONTEXT, cache=True)
    uncached = greedy(twin, PROMPTS, PAST_CONTEXT, cache=False)
    assert cached == uncached
    assert all(len(seq) == PAST_CONTEXT for seq in cached)
    assert all(len(set(seq)) >= 4 for seq in cached), "degenerate model: the test would prove little"


def test_greedy_tokens_agree_between_twins(models):
    torch_tokens = torch_gen.generate_tokens(
        models["torch"], PROMPTS, GREEDY.replace(max_new_tokens=PAST_CONTEXT)
    )
    mlx_tokens = mlx_gen.generate_tokens(models["mlx"], PROMPTS, GREEDY.replace(max_new_tokens=PAST_CONTEXT))
    assert torch_tokens == mlx_tokens


class Forced:
    """A twin's decoding Backend that records each row's logits and "samples" the row's next token of
    `seqs` (teacher forcing). Each row has a Sampler of its own whose rng is the row's index."""

    def __init__(self, twin, seqs, starts):
        self.backend, self.array = twin.gen.Backend(twin.model), twin.array
        self.seqs, self.starts = seqs, starts
        self.seen = {i: [] for i in range(len(seqs))}

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def draw(self, logits, row):  # temperature 1, no top-k/top-p: the model's logits as they came
        self.seen[row].append(logits)
        return self.array(np.array([self.seqs[row][self.starts[row] + len(self.seen[row]) - 1]]))


def test_cached_logits_match_a_full_forward_every_step(twin):
    """Teacher-forced through the context's end, with rows at different positions in one batch and a row
    joining mid-way: each step's logits, cached and not, against a fresh forward pass of the window."""
    block = CFG.block_size
    seqs = np.random.default_rng(1).integers(0, CFG.vocab_size, (3, 10 + 2 * block)).tolist()
    starts = [5, 8, 3]
    cfg = SamplingConfig(temperature=1.0, max_new_tokens=2 * block + 2)  # sampled: one Sampler per row
    for cache in (True, False):
        forced = Forced(twin, seqs, starts)
        batch = decode.Batch(forced, capacity=3, cache=cache)
        for i in (0, 1):
            batch.add(seqs[i][: starts[i]], decode.Sampler(cfg, i))
        for _ in range(3):
            batch.step()
        batch.add(seqs[2][: starts[2]], decode.Sampler(cfg, 2))  # joins the two rows mid-way
        while len(batch):
            batch.step()
        for i, seen in forced.seen.items():
            assert len(seen) == cfg.max_new_tokens
            for k, logits in enumerate(seen):
                t = starts[i] + k
                window = seqs[i][max(0, t - block) : t]
                reference = twin.numpy(twin.model(twin.array(np.array([window]))))[0, -1]
                got = twin.numpy(logits)[0]
                assert got.shape == (CFG.vocab_size,)
                # Close, not bit-exact: the decoder asks for the last position's logits alone (a matmul of
                # another shape than the reference's), and with the cache one position at a time, next to
                # other rows at other positions, sums in another order.
                scale = np.abs(reference).max()
                np.testing.assert_allclose(got, reference, rtol=0, atol=(1e-5 if cache else 1e-6) * scale)


def test_batch_of_mixed_lengths_equals_each_prompt_alone(twin):
    for cache in (True, False):
        batch = greedy(twin, PROMPTS, 20, cache=cache)
        alone = [greedy(twin, [p], 20, cache=cache)[0] for p in PROMPTS]
        assert batch == alone


# --- stopping, lengths, prompts -------------------------------------------------------------------------


def test_max_new_tokens_is_respected(twin):
    for n in (1, 3, 17):
        out = twin.gen.generate_tokens(twin.model, PROMPTS[:2], SamplingConfig(max_new_tokens=n, seed=0))
        assert [len(seq) for seq in out] == [n, n]


def test_stop_ids_end_a_sequence_before_the_stop_id(twin):
    full = greedy(twin, PROMPTS, 20)
    stop = full[0][6]
    first = full[0].index(stop)
    out = greedy(twin, PROMPTS, 20, stop_ids=(stop,))
    for seq, got in zip(full, out, strict=True):
        expected = seq[: seq.index(stop)] if stop in seq else seq
        assert got == expected
    assert len(out[0]) == first < 20


def test_stream_yields_each_step_then_none_after_a_stop(twin):
    full = greedy(twin, [PROMPTS[0], PROMPTS[1]], 10)
    stop = next(t for t in full[0][1:] if t not in full[1])  # ends the first sequence only
    cfg = GREEDY.replace(max_new_tokens=10, stop_ids=(stop,))
    stream = twin.gen.generate(twin.model, [PROMPTS[0], PROMPTS[1]], cfg)
    steps = list(stream)
    assert len(steps) == 10 and all(len(s) == 2 for s in steps)
    first = full[0].index(stop)
    assert [s[0] for s in steps[:first]] == full[0][:first]
    assert all(s[0] is None for s in steps[first:])
    assert [s[1] for s in steps] == full[1]


def test_all_stopped_ends_the_stream_early(twin):
    full = greedy(twin, [PROMPTS[0]], 10)
    steps = list(twin.gen.generate(twin.model, [PROMPTS[0]], GREEDY.replace(stop_ids=(full[0][3],))))
    assert len(steps) == full[0].index(full[0][3]) + 1 and steps[-1] == [None]


def test_prompt_longer_than_the_context_is_cropped_from_the_left(twin):
    long_prompt = list(range(1, 41))  # 40 tokens, context 16
    for n in (4, 30):
        kept = crop_left(long_prompt, CFG.block_size, n)
        assert kept == long_prompt[-(CFG.block_size - room(CFG.block_size, n)) :]
        for cache in (True, False):
            assert greedy(twin, [long_prompt], n, cache=cache) == greedy(twin, [kept], n, cache=cache)


def test_empty_and_out_of_vocabulary_prompts_are_refused(twin):
    with pytest.raises(SamplingError, match="prompt 1 is empty"):
        twin.gen.generate_tokens(twin.model, [[1, 2], []], GREEDY)
    with pytest.raises(SamplingError, match="non-empty list"):
        twin.gen.generate_tokens(twin.model, [], GREEDY)
    with pytest.raises(SamplingError, match="token 97 is not an id in the vocabulary"):
        twin.gen.generate_tokens(twin.model, [[1, 97]], GREEDY)


def test_crop_left_and_grouping():
    assert crop_left([1, 2, 3], 16, 4) == [1, 2, 3]
    assert crop_left(list(range(14)), 16, 4) == list(range(2, 14))  # leaves room for the 4 new tokens
    assert crop_left(list(range(100)), 16, 200) == list(range(92, 100))  # room capped at half the context
    assert crop_left(list(range(5)), 1, 10) == [4]
    assert group_by_length([[1], [1, 2], [3], [4, 5], [6, 7, 8]]) == [[0, 2], [1, 3], [4]]
    assert check_prompts([np.array([1, 2])], 97) == [[1, 2]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"temperature": float("-inf")}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"top_p": float("nan")}, "top_p"),
        ({"top_p": float("inf")}, "top_p"),
        ({"top_k": True}, "top_k"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"seed": -1}, "seed"),
        ({"stop_ids": (1, -2)}, "stop_ids"),
        ({"stop_ids": "ab"}, "stop_ids"),
    ],
)
def test_sampling_config_refuses_bad_values(changes, message):
    with pytest.raises(SamplingError, match=message):
        SamplingConfig(**changes)


def test_tiny_and_denormal_temperatures_are_refused_and_the_smallest_allowed_one_decodes(twin):
    """Below MIN_TEMPERATURE the logits would overflow when divided (torch.multinomial then raises on NaN
    probabilities): such temperatures are refused with the rule (jai/inference/sampling.py), as the
    server does."""
    for t in (1e-40, 5e-324, MIN_TEMPERATURE / 2, 1e3):
        with pytest.raises(SamplingError, match=r"temperature must be 0 \(greedy\) or between 0.001 and 100"):
            SamplingConfig(temperature=t)
    cfg = SamplingConfig(temperature=MIN_TEMPERATURE, max_new_tokens=8, seed=1)
    assert not cfg.greedy
    out = twin.gen.generate_tokens(twin.model, PROMPTS, cfg)  # no overflow, no NaN draw
    assert all(0 < len(ids) <= 8 and all(0 <= i < twin.model.config.vocab_size for i in ids) for ids in out)


# --- samplers -------------------------------------------------------------------------------------------


def test_top_k_one_equals_greedy(twin):
    sampled = twin.gen.generate_tokens(
        twin.model, PROMPTS, SamplingConfig(temperature=1.5, top_k=1, max_new_tokens=PAST_CONTEXT, seed=5)
    )
    assert sampled == greedy(twin, PROMPTS, PAST_CONTEXT)


def test_top_k_filter_keeps_the_k_largest(twin):
    logits = np.array([[0.5, 3.0, -1.0, 2.0, 1.0], [4.0, 0.0, 1.0, -2.0, 3.0]], np.float32)
    out = twin.numpy(twin.gen.top_k_filter(twin.array(logits), 2))
    assert np.isfinite(out).tolist() == [[False, True, False, True, False], [True, False, False, False, True]]
    np.testing.assert_array_equal(out[np.isfinite(out)], logits[np.isfinite(out)])
    np.testing.assert_array_equal(twin.numpy(twin.gen.top_k_filter(twin.array(logits), 99)), logits)


@pytest.mark.parametrize(
    ("p", "kept"),
    [
        (0.3, [1]),
        (0.5, [1, 3]),
        (0.75, [1, 3, 4]),
        (0.9, [0, 1, 3, 4]),
        (0.99, [0, 1, 2, 3, 4]),
        (1.0, [0, 1, 2, 3, 4]),
    ],
)
def test_top_p_keeps_the_smallest_set_reaching_p(twin, p, kept):
    probs = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
    rows = np.log(np.stack([probs, probs[::-1]])).astype(np.float32)  # second row: the same, reversed
    out = twin.numpy(twin.gen.top_p_filter(twin.array(rows), p))
    assert np.flatnonzero(np.isfinite(out[0])).tolist() == kept
    assert np.flatnonzero(np.isfinite(out[1])).tolist() == sorted(4 - i for i in kept)
    np.testing.assert_array_equal(out[np.isfinite(out)], rows[np.isfinite(out)])  # survivors untouched


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_temperature_sharpens_and_flattens(twin):
    logits = np.array([[2.0, 1.0, 0.5, 0.0, -1.0]], np.float32)
    top, entropy = [], []
    for t in (0.25, 0.5, 1.0, 2.0, 4.0):
        cfg = SamplingConfig(temperature=t)
        p = softmax(twin.numpy(decode.filter_logits(twin.backend, twin.array(logits), cfg)))[0]
        np.testing.assert_allclose(p, softmax(logits[0] / t), rtol=1e-5)
        top.append(p.max())
        entropy.append(-(p * np.log(p)).sum())
    assert top == sorted(top, reverse=True) and entropy == sorted(entropy)

    # and the draws follow: many rows of the same logits, sampled at once
    n = 4000
    batch = twin.array(np.repeat(logits, n, axis=0))
    for t, expected in ((1.0, softmax(logits[0])), (0.25, softmax(logits[0] / 0.25))):
        rng = twin.backend.rng(0)
        draws = np.asarray(decode.sample(twin.backend, batch, SamplingConfig(temperature=t), rng).tolist())
        freq = np.bincount(draws, minlength=5) / n
        np.testing.assert_allclose(freq, expected, atol=0.03)


def test_top_k_sampling_draws_only_from_the_top_k(twin):
    logits = np.random.default_rng(0).normal(size=(2000, CFG.vocab_size)).astype(np.float32)
    rng = twin.backend.rng(1)
    draws = np.asarray(
        decode.sample(
            twin.backend, twin.array(logits), SamplingConfig(temperature=2.0, top_k=3), rng
        ).tolist()
    )
    top3 = np.argsort(-logits, axis=-1)[:, :3]
    assert (top3 == draws[:, None]).any(axis=1).all()


def test_same_seed_same_tokens_different_seed_different(twin):
    def run(seed):
        cfg = SamplingConfig(temperature=1.0, max_new_tokens=24, seed=seed)
        return twin.gen.generate_tokens(twin.model, PROMPTS[:3], cfg)

    assert run(1234) == run(1234)
    assert run(1234) != run(4321)
    assert run(None) != run(None)  # no seed: a fresh one each call
