"""The main job (`jai run`) end to end on the bundled postings, cut to two training steps."""

from __future__ import annotations

import json

import pytest

from jai import cli, run


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_main_job_prepares_trains_and_answers(tmp_path, capsys, backend):
    args = ["--out", str(tmp_path), "--backend", backend, "--max-steps", "2", "--questions", "2"]
    assert run.main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out

    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["splits"]["train"]["tokens"] > 100_000  # the bundled sample, all of it
    ckpt = tmp_path / "run" / "ckpt"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "tokenizer.json").is_file()
    config = json.loads((ckpt / "config.json").read_text())
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_ctx"]) == (6, 6, 384, 256)

    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in evals if "val_loss" in r]
    assert val[-1] < val[0]  # two steps already move it; the printed pair is these two numbers
    assert f"untrained {val[0]:.3f}" in out and f"trained {val[-1]:.3f}" in out
    assert out.count("  question:  ") == 2 and out.count("  model:     ") == 2


def test_main_job_runs_again_over_its_previous_run(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--backend", "torch", "--max-steps", "1", "--questions", "1"]
    assert run.main([*args, "--no-progress"]) == 0
    assert run.main([*args, "--no-progress"]) == 0  # replaces <out>/run instead of refusing to start
    assert "replacing the previous run" in capsys.readouterr().out
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log if "event" in r] == ["start"]  # a new run, not a resumed one


def test_main_job_names_a_missing_input(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert cli.main(["run", "--out", str(tmp_path), "--postings", str(missing)]) == 2  # via the dispatcher
    assert str(missing) in capsys.readouterr().err
