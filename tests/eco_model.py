"""A tiny JAI checkpoint that has learnt something, for the tests that run it in outside tools.

The bundled postings give the samples (the real training format); a byte-level BPE tokenizer is trained
on them; a small GPT is trained with plain PyTorch AdamW on a few short samples until greedy decoding
answers their questions and closes with [/ANSWER]. Samples from other postings serve as validation
prompts. Built once per test session (a few seconds on one CPU thread) and saved the way `jai train`
saves a checkpoint (jai_torch.checkpoint.save_model -> jai.checkpoint.hf_files.write_model_files).
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jai.config import GPTConfig
from jai.data.postings import load_postings
from jai.data.qa import Sample, format_sample, make_samples
from jai.tokenizer import Tokenizer

BLOCK = 96
TRAIN_SAMPLES = 12
STEPS = 200  # all TRAIN_SAMPLES answers are learnt by 150


@dataclass(frozen=True)
class Trained:
    ckpt: Path
    tokenizer: Tokenizer
    train: list[Sample]  # short samples the model has learnt (documents shortened to fit BLOCK)
    val: list[Sample]  # samples of postings it never saw, shortened the same way
    every: list[Sample]  # every sample of the bundled postings, full length


@functools.cache
def bundled_samples() -> list[Sample]:
    jobs = resources.files("jai.data") / "jobs"
    postings, _ = load_postings([Path(str(jobs / "postings.json"))])
    return list(make_samples(postings, seed=0))


def _shorten(tok: Tokenizer, s: Sample, budget: int) -> Sample:
    from jai.prompt import shorten_doc

    doc, _ = shorten_doc(tok, s.question, s.doc, budget - 1, answer=s.answer)  # - 1: [EOS]
    return Sample(s.posting_id, s.kind, s.lang, s.question, doc, s.answer)


def _ids(tok: Tokenizer, s: Sample) -> list[int]:
    return [tok.bos_id, *tok.encode(format_sample(s.question, s.doc, s.answer)), tok.eos_id]


@functools.cache
def trained() -> Trained:
    import torch
    import torch.nn.functional as F

    from jai_torch import checkpoint as torch_ckpt
    from jai_torch.model import GPT

    every = bundled_samples()
    folder = Path(tempfile.mkdtemp(prefix="jai-eco-"))
    tok = Tokenizer.train((s.text for s in every), vocab_size=1024, min_frequency=2, show_progress=False)
    tok.save(folder / "tokenizer.json")

    # short answers about different postings: learnable in a few hundred steps
    by_posting: dict[str, Sample] = {}
    for s in every:
        if len(s.answer) < 40 and s.posting_id not in by_posting:
            by_posting[s.posting_id] = _shorten(tok, s, BLOCK)
    short = [s for s in by_posting.values() if s.doc and len(_ids(tok, s)) <= BLOCK]
    train, val = short[:TRAIN_SAMPLES], short[TRAIN_SAMPLES : 2 * TRAIN_SAMPLES]

    cfg = GPTConfig(
        vocab_size=tok.vocab_size,
        block_size=BLOCK,
        n_layer=2,
        n_head=2,
        n_embd=64,
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )
    torch.manual_seed(0)
    model = GPT(cfg, seed=0)
    rows = [_ids(tok, s) for s in train]
    width = max(map(len, rows))
    x = torch.full((len(rows), width - 1), tok.pad_id)
    y = torch.full((len(rows), width - 1), -100)  # padding is not a target
    for i, r in enumerate(rows):
        x[i, : len(r) - 1] = torch.tensor(r[:-1])
        y[i, : len(r) - 1] = torch.tensor(r[1:])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(STEPS):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ckpt = torch_ckpt.save_model(model, folder / "ckpt", tokenizer=folder / "tokenizer.json")
    return Trained(ckpt, tok, train, val, every)
