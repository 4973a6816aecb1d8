"""--mask-prompt: the loss on the answers alone, for full and LoRA training, the same in both twins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jai import cli
from jai.checkpoint.lora import LoraConfig
from jai.config import GPTConfig
from jai.data.prepare import prepare
from jai.dataset import IGNORE, BatchSampler, TokenBin, answer_mask
from jai.tokenizer import Tokenizer
from jai.training.plan import marker_ids
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from tests.test_train import LOSS_TOL, QUIET, TWINS, losses, small

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "jobs" / "postings.json"
SHAPE = GPTConfig(vocab_size=1, block_size=64, n_layer=1, n_head=2, n_embd=32)  # vocabulary: the data's


def test_answer_mask_marks_answers_and_their_closing_marker():
    A, Z = 7, 8  # [ANSWER], [/ANSWER]
    tokens = np.array([1, 2, A, 3, 4, Z, 5, A, 6, Z, 9])
    expected = [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0]
    assert answer_mask(tokens, A, Z).astype(int).tolist() == expected
    # a window that starts inside an answer still knows it is in one
    sampler = BatchSampler(tokens, batch_size=4, block_size=3, seed=0, loss_mask=answer_mask(tokens, A, Z))
    x, y = sampler.next_batch()
    for row_x, row_y in zip(x, y, strict=True):
        start = next(i for i in range(len(tokens)) if tokens[i : i + 3].tolist() == row_x.tolist())
        for t, target in enumerate(row_y):
            inside = expected[start + t + 1]
            assert target == (tokens[start + t + 1] if inside else IGNORE)


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory) -> Path:
    records = json.loads(SAMPLE.read_text(encoding="utf-8"))[:60]
    root = tmp_path_factory.mktemp("qa")
    (root / "in.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    prepare(
        [root / "in.json"], root / "data", vocab_size=600, context=64, show_progress=False, log=lambda _: None
    )
    return root / "data"


def test_the_masked_targets_are_exactly_the_answers(qa_data):
    tokens = TokenBin(qa_data / "train.bin").data
    mask = answer_mask(tokens, *marker_ids(qa_data))
    assert 0.02 < mask.mean() < 0.6  # answers are a part of the text, not none of it, not all of it
    text = Tokenizer.load(qa_data / "tokenizer.json").decode(tokens[mask][:400])
    assert "[QUESTION]" not in text and "[DOC]" not in text and "[/ANSWER]" in text


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_masked_training_is_the_same_in_both_twins(tmp_path, qa_data, kind):
    vocab = json.loads((qa_data / "meta.json").read_text())["vocab_size"]
    base = tmp_path / "base"
    torch_ckpt.save_model(torch_model.GPT(SHAPE.replace(vocab_size=vocab), seed=5), base)
    lora = LoraConfig(rank=4, alpha=8.0, targets=("c_attn", "c_fc")) if kind == "lora" else None
    for name, train in TWINS.items():
        for masked in (True, False):
            cfg = small(max_steps=20, mask_prompt=masked)
            train(qa_data, tmp_path / f"{name}-{masked}", None, cfg, init_from=base, lora=lora, **QUIET)
    mlx, torch = losses(tmp_path / "mlx-True"), losses(tmp_path / "torch-True")
    assert np.abs(mlx - torch).max() <= LOSS_TOL
    assert np.abs(mlx - losses(tmp_path / "mlx-False")).max() > 1e-2  # the mask changes what is learned


def test_mask_prompt_is_a_flag_resume_keeps(tmp_path, qa_data, capsys):
    out = tmp_path / "run"
    shape = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32"]
    common = ["train", "--backend", "torch", "--data", str(qa_data), "--out", str(out), "--no-progress"]
    steps = ["--batch-size", "2", "--max-steps", "4", "--eval-batches", "1", "--max-seconds", "0"]
    assert cli.main([*common, *shape, *steps, "--mask-prompt"]) == 0
    assert cli.main(["train", "--backend", "torch", "--out", str(out), "--resume", "--no-progress"]) == 0
    from jai.checkpoint.train_state import read_state_json

    state = read_state_json(out / "ckpt")
    assert state.train_config.mask_prompt and state.step == 4
