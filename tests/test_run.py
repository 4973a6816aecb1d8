"""The main job (`jai run`) end to end on the bundled postings, cut to a step or two of training."""

from __future__ import annotations

import json

import pytest

from jai import cli
from jai.cli import run
from jai.data.qa import KINDS


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_main_job_prepares_measures_trains_and_measures_again(tmp_path, capsys, backend):
    args = [
        "--out",
        str(tmp_path),
        "--backend",
        backend,
        "--max-steps",
        "2",
        "--answers",
        "32",
        "--varied",
        "40",
    ]
    assert run.main([*args, "--questions", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out

    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["splits"]["train"]["tokens"] > 100_000  # the bundled sample, all of it
    assert meta["postings"]["varied"] == 40  # and the generated postings, for training only
    assert meta["drills"] is True  # with header drills: field questions about each header alone
    assert meta["echo"] is True  # and each header asked back whole
    # every training posting has a title: asked once about the whole posting, once about its header
    assert meta["fit"]["train"]["by_kind"]["title"]["samples"] == 2 * meta["postings"]["train"]
    assert meta["fit"]["train"]["fit"] / meta["fit"]["train"]["samples"] >= 0.95  # samples fit the context
    ckpt = tmp_path / "run" / "ckpt"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "tokenizer.json").is_file()
    config = json.loads((ckpt / "config.json").read_text())
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_ctx"]) == (3, 3, 192, 256)
    train_config = json.loads((ckpt / "train_state" / "state.json").read_text())["train_config"]
    assert train_config["lr"] == run.LR and train_config["batch_size"] == run.BATCH_SIZE
    assert train_config["prompt_loss"] == run.PROMPT_LOSS < 1  # answers + a share of the other targets

    # jai eval of both models: the untrained one is the weights training started from.
    report = json.loads((tmp_path / "eval.json").read_text())
    before, after = report["untrained"], report["trained"]
    assert before["loss"]["loss"] == pytest.approx(report["train"]["initial_val_loss"], abs=0.1)
    assert after["loss"]["loss"] < before["loss"]["loss"]  # two steps already move it
    for result in (before, after):
        assert result["answers"]["all"]["n"] == 32
        assert set(result["answers"]["by_kind"]) <= set(KINDS)
        assert {"summary", "requirements", "salary", "location"} <= set(result["answers"]["by_kind"])
        assert {"fields", "long", "repeated"} <= set(result["answers"])
    assert before["answers"]["all"]["exact"] == 0.0 and before["answers"]["all"]["f1"] < 0.1
    assert "untrained" in out and "bits per byte" in out and "char F1" in out
    assert out.count("  question:  ") == 2 and out.count("  reference: ") == 2


def test_main_job_runs_again_over_its_previous_run(tmp_path, capsys):
    args = [
        "--out",
        str(tmp_path),
        "--backend",
        "torch",
        "--max-steps",
        "1",
        "--answers",
        "5",
        "--questions",
        "1",
        "--varied",
        "0",
    ]
    assert run.main([*args, "--no-progress"]) == 0
    assert run.main([*args, "--no-progress"]) == 0  # replaces <out>/run instead of refusing to start
    assert "replacing the previous run" in capsys.readouterr().out
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log if "event" in r] == ["start"]  # a new run, not a resumed one


def test_main_job_names_a_missing_input(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert cli.main(["run", "--out", str(tmp_path), "--postings", str(missing)]) == 2  # via the dispatcher
    assert str(missing) in capsys.readouterr().err


def test_main_job_plans_its_schedule_from_a_timed_step(tmp_path, capsys):
    """Without --max-steps, a few steps are timed and the schedule fills what --minutes leaves; every
    evaluation of the run also scores held-out answers into metrics.jsonl (the answer curve)."""
    args = ["--out", str(tmp_path), "--minutes", "2", "--varied", "0", "--answers", "4", "--questions", "1"]
    assert run.main([*args, "--shape", "small", "--prompt-loss", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "steps fit the" in out and "tokens seen" in out
    report = json.loads((tmp_path / "eval.json").read_text())
    state = json.loads((tmp_path / "run" / "ckpt" / "train_state" / "state.json").read_text())
    assert report["train"]["step"] >= 1 and state["train_config"]["max_steps"] >= report["train"]["step"]
    assert state["train_config"]["prompt_loss"] == 1.0  # the other shape and every target, one flag away
    config = json.loads((tmp_path / "run" / "ckpt" / "config.json").read_text())
    assert (config["n_layer"], config["n_embd"]) == (4, 256)
    assert not (tmp_path / "calibration").exists()  # the timed steps leave nothing behind
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [r for r in log if "val_loss" in r]
    assert curve[0]["step"] == 0 and all("answers_all_f1" in r and "answers_repeated" in r for r in curve)
