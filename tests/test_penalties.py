"""Penalties in the decoding loop: transformers' own logits processors and OpenAI's formula as the
reference, both twins giving the same greedy tokens, and rows of one batch keeping their penalties apart.

The model is a small random GPT with unit-scale weights (as in test_generate.py), so greedy runs wander
through the vocabulary and a penalty that does nothing would be seen.
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)

from jai.config import GPTConfig
from jai.inference.batching import BatchEngine
from jai.inference.decode import generate_tokens
from jai.inference.penalties import History, entries
from jai.inference.sampling import SamplingConfig, SamplingError, crop_left
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import generate as mlx_gen
from jai_torch import checkpoint as torch_ckpt
from jai_torch import generate as torch_gen
from jai_torch import model as torch_model

CFG = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=64)
PROMPTS = [[1, 2, 3], [5, 6, 7, 8, 9], [4, 4, 4], [10], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]]
GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=30)  # past the context of 16: windows slide
PENALIZED = GREEDY.replace(repetition_penalty=1.5, no_repeat_ngram_size=2)
WAIT = 60


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model = torch_model.GPT(CFG, seed=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                scale = 2.0 if name.endswith(("c_proj.weight", "c_fc.weight")) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[-1] ** 0.5)
    path = tmp_path_factory.mktemp("penalties") / "model"
    torch_ckpt.save_model(model, path)
    return path


@pytest.fixture(scope="module")
def models(ckpt):
    return {"torch": torch_ckpt.load_model(ckpt), "mlx": mlx_ckpt.load_model(ckpt)}


def held(cfg: SamplingConfig, generated: list[int], prompt: list[int] = ()) -> History:
    h = History(cfg, prompt)
    for t in generated:
        h.add(t)
    return h


def penalized(twin: str, logits: np.ndarray, histories: list[History | None]) -> np.ndarray:
    """The twin's logits after the rows' penalties, as NumPy."""
    found = entries(histories)
    if twin == "torch":
        return torch_gen.penalize(torch.tensor(logits), *found).numpy()
    return np.array(mlx_gen.penalize(mx.array(logits), *found))


# --- the maths, against transformers and OpenAI ---------------------------------------------------------


@pytest.mark.parametrize("twin", ["torch", "mlx"])
@pytest.mark.parametrize("penalty", [0.5, 1.3, 2.0])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_repetition_and_ngram_penalties_are_transformers_own(twin, penalty, n):
    rng = np.random.default_rng(int(penalty * 10) + n)
    logits = (rng.standard_normal((3, CFG.vocab_size)) * 4).astype(np.float32)
    logits[:, :5] = [0.0, -0.0, 3.0, -3.0, 1e-30]  # signs and zero: where dividing and multiplying part
    rows = [rng.integers(0, 12, size=k).tolist() for k in (1, 9, 40)]  # short, some repeats, many
    rows[1][:5] = [0, 1, 2, 3, 4]
    cfg = SamplingConfig(temperature=0.0, repetition_penalty=penalty, no_repeat_ngram_size=n)
    got = penalized(twin, logits, [held(cfg, ids) for ids in rows])
    for i, ids in enumerate(rows):
        want = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([ids]), torch.tensor(logits[i : i + 1]))
        if n:
            want = NoRepeatNGramLogitsProcessor(n)(torch.tensor([ids]), want)
        np.testing.assert_array_equal(got[i], want[0].numpy())  # bit for bit
    assert not np.array_equal(got, logits)


def test_the_prompt_counts_only_when_asked_and_then_as_transformers_counts_it():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((1, CFG.vocab_size)).astype(np.float32)
    prompt, generated = [7, 8, 9, 7, 8], [9, 7]
    cfg = SamplingConfig(temperature=0.0, repetition_penalty=1.7, no_repeat_ngram_size=2)
    whole = torch.tensor([prompt + generated])
    want = NoRepeatNGramLogitsProcessor(2)(
        whole, RepetitionPenaltyLogitsProcessor(1.7)(whole, torch.tensor(logits))
    )
    with_prompt = penalized("torch", logits, [held(cfg.replace(penalize_prompt=True), generated, prompt)])
    np.testing.assert_array_equal(with_prompt, want.numpy())
    alone = penalized("torch", logits, [held(cfg, generated, prompt)])  # the default: the answer only
    only = torch.tensor([generated])
    want = NoRepeatNGramLogitsProcessor(2)(
        only, RepetitionPenaltyLogitsProcessor(1.7)(only, torch.tensor(logits))
    )
    np.testing.assert_array_equal(alone, want.numpy())


@pytest.mark.parametrize("twin", ["torch", "mlx"])
def test_frequency_and_presence_penalties_are_openais_formula(twin):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, CFG.vocab_size)).astype(np.float32)
    generated = [[3, 3, 3, 5, 9, 5], [42]]
    cfg = SamplingConfig(temperature=0.0, frequency_penalty=0.75, presence_penalty=-1.5)
    got = penalized(twin, logits, [held(cfg, ids, prompt=[1, 2]) for ids in generated])
    want = logits.copy()
    for row, ids in enumerate(generated):
        for token in set(ids):  # mu[j] - c[j] * frequency - (c[j] > 0) * presence, over generated tokens
            want[row, token] -= np.float32(ids.count(token) * 0.75 - 1.5)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert got[0, 3] < logits[0, 3] and got[1, 42] > logits[1, 42] and got[0, 1] == logits[0, 1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repetition_penalty", 0.0),
        ("repetition_penalty", -1.0),
        ("repetition_penalty", float("nan")),
        ("repetition_penalty", float("inf")),
        ("repetition_penalty", True),
        ("no_repeat_ngram_size", -1),
        ("no_repeat_ngram_size", 2.0),
        ("frequency_penalty", 2.01),
        ("presence_penalty", -2.5),
        ("presence_penalty", float("nan")),
        ("penalize_prompt", 1),
    ],
)
def test_bad_penalties_are_refused_naming_the_field(field, value):
    with pytest.raises(SamplingError, match=f"^{field} "):
        SamplingConfig(**{field: value})


# --- in the decoding loop ----------------------------------------------------------------------------------


def reference_greedy(model, prompt: list[int], cfg: SamplingConfig) -> list[int]:
    """transformers' greedy search, spelled out: each step the whole window without a cache, the
    processors over every generated token, then the argmax (the prompt cropped as the loop crops it)."""
    window, new = crop_left(prompt, CFG.block_size, cfg.max_new_tokens), []
    for _ in range(cfg.max_new_tokens):
        with torch.inference_mode():
            logits = model(torch.tensor([window[-CFG.block_size :]]))[:, -1].float()
        if new:
            ids = torch.tensor([new])
            logits = RepetitionPenaltyLogitsProcessor(cfg.repetition_penalty)(ids, logits)
            logits = NoRepeatNGramLogitsProcessor(cfg.no_repeat_ngram_size)(ids, logits)
        token = int(logits.argmax())
        window.append(token)
        new.append(token)
    return new


def test_greedy_with_penalties_is_transformers_greedy_search_in_both_twins(models):
    plain = generate_tokens(models["torch"], PROMPTS, GREEDY)
    want = [reference_greedy(models["torch"], p, PENALIZED) for p in PROMPTS]
    assert want != plain  # the penalties change what is generated
    for twin in ("torch", "mlx"):
        assert generate_tokens(models[twin], PROMPTS, PENALIZED) == want, twin
        assert generate_tokens(models[twin], PROMPTS, PENALIZED, cache=False) == want, twin
    for tokens in want:  # no bigram twice
        bigrams = list(itertools.pairwise(tokens))
        assert len(bigrams) == len(set(bigrams))


def test_openai_penalties_give_the_same_greedy_tokens_in_both_twins(models):
    cfg = GREEDY.replace(frequency_penalty=1.0, presence_penalty=0.5)
    tokens = {twin: generate_tokens(models[twin], PROMPTS, cfg) for twin in ("torch", "mlx")}
    assert tokens["torch"] == tokens["mlx"] != generate_tokens(models["torch"], PROMPTS, GREEDY)


@pytest.mark.parametrize("twin", ["torch", "mlx"])
def test_a_batch_keeps_each_requests_penalties_to_itself(models, twin):
    model = models[twin]
    configs = [PENALIZED if i % 2 else GREEDY for i in range(len(PROMPTS))]
    want = [generate_tokens(model, [p], cfg)[0] for p, cfg in zip(PROMPTS, configs, strict=True)]
    engine = BatchEngine(model, max_batch=8)
    try:
        requests = [engine.submit(p, cfg) for p, cfg in zip(PROMPTS, configs, strict=True)]
        assert [r.result(WAIT) for r in requests] == want
    finally:
        engine.close(timeout=0)
    assert want[1] != generate_tokens(model, [PROMPTS[1]], GREEDY)[0]  # the penalised ones did change
