"""--prompt-loss S: every answer target and a fixed share S of the others count in the loss; the head
computes only the rows that count; validation keeps every target; both twins train the same."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jai import cli
from jai.checkpoint.train_state import read_state_json
from jai.dataset import IGNORE, BatchSampler, TokenBin, answer_mask, sampled_targets
from jai.train_config import TrainConfig
from jai.training import plan as run_plan
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from tests.test_mask_prompt import SHAPE, qa_data  # noqa: F401  (a pytest fixture)
from tests.test_train import LOSS_TOL, QUIET, TWINS, losses, records, small


def test_sampled_targets_are_a_fixed_draw_of_the_asked_share():
    a = sampled_targets(200_000, 0.25, seed=3)
    assert abs(a.mean() - 0.25) < 0.01
    assert np.array_equal(a, sampled_targets(200_000, 0.25, seed=3))  # the same positions every run
    assert np.array_equal(a, sampled_targets(200_000, 0.25, seed=3, chunk=7_777))  # chunking changes nothing
    assert not np.array_equal(a, sampled_targets(200_000, 0.25, seed=4))
    assert sampled_targets(0, 0.5, seed=1).shape == (0,)


def test_prompt_loss_is_checked():
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="prompt_loss"):
            TrainConfig(prompt_loss=bad)
    assert not TrainConfig().sparse_targets and TrainConfig(prompt_loss=0.5).sparse_targets


def test_every_answer_target_and_a_share_of_the_others_count(tmp_path, qa_data):  # noqa: F811
    plan = run_plan.plan_run(qa_data, tmp_path / "run", SHAPE, small(prompt_loss=0.3))
    run_plan.add_loss_masks(plan)
    tokens = TokenBin(qa_data / "train.bin").data
    answers = answer_mask(tokens, *run_plan.marker_ids(qa_data))
    assert plan.train_mask[answers].all()
    assert abs(plan.train_mask[~answers].mean() - 0.3) < 0.03
    assert plan.val_mask is None  # validation loss counts every target: comparable with any run
    # what the sampler hands a twin: targets outside the mask are IGNORE, the others are the tokens
    x, y = BatchSampler(tokens, 8, 32, seed=0, loss_mask=plan.train_mask).next_batch()
    kept = y != IGNORE
    assert 0.2 < kept.mean() < 0.6
    assert np.array_equal(y[kept], np.concatenate([x[:, 1:], y[:, -1:]], axis=1)[kept])


def test_prompt_loss_training_is_the_same_in_both_twins(tmp_path, qa_data):  # noqa: F811
    vocab = json.loads((qa_data / "meta.json").read_text())["vocab_size"]
    base = tmp_path / "base"
    torch_ckpt.save_model(torch_model.GPT(SHAPE.replace(vocab_size=vocab), seed=5), base)
    for name, train in TWINS.items():
        for share in (0.25, 1.0):
            cfg = small(max_steps=20, prompt_loss=share)
            train(qa_data, tmp_path / f"{name}-{share}", None, cfg, init_from=base, **QUIET)
    mlx, torch = losses(tmp_path / "mlx-0.25"), losses(tmp_path / "torch-0.25")
    assert np.abs(mlx - torch).max() <= LOSS_TOL
    assert np.abs(torch - losses(tmp_path / "torch-1.0")).max() > 1e-2  # fewer targets, another loss

    def first_val(out):
        return next(r["val_loss"] for r in records(out) if "val_loss" in r)

    # the untrained model's validation loss is the same whatever the training targets
    assert first_val(tmp_path / "torch-0.25") == pytest.approx(first_val(tmp_path / "torch-1.0"), abs=1e-6)


def test_prompt_loss_is_kept_on_resume(tmp_path, qa_data):  # noqa: F811
    out = tmp_path / "run"
    shape = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32"]
    common = ["train", "--backend", "torch", "--data", str(qa_data), "--out", str(out), "--no-progress"]
    steps = ["--batch-size", "2", "--max-steps", "4", "--eval-batches", "1", "--max-seconds", "0"]
    assert cli.main([*common, *shape, *steps, "--prompt-loss", "0.4"]) == 0
    assert cli.main(["train", "--backend", "torch", "--out", str(out), "--resume", "--no-progress"]) == 0
    state = read_state_json(out / "ckpt")
    assert state.train_config.prompt_loss == 0.4 and state.step == 4


def test_a_bad_share_is_one_line(tmp_path, qa_data, capsys):  # noqa: F811
    out = tmp_path / "run"
    args = ["train", "--backend", "torch", "--data", str(qa_data), "--out", str(out), "--prompt-loss", "0"]
    assert cli.main(args) != 0
    err = capsys.readouterr().err
    assert "prompt_loss" in err and "Traceback" not in err
