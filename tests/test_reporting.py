"""`jai train --report-to tensorboard,wandb` and `jai plot`: what the loop writes to metrics.jsonl, read
back with TensorBoard's own event reader and from W&B's offline run files (tests/wandb_files.py), for
both twins, after a `kill -9` and `--resume`, and under two processes; and the figure of two real runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from jai.cli import plot as plot_cli
from jai.reporting import plot, runs
from jai.reporting.records import config_group
from jai.reporting.report_to import reporters
from jai.training import loop as train_loop
from tests.test_train import CFG, QUIET, ROOT, data, records, small  # noqa: F401
from tests.test_train_resume import checkpoint_step
from tests.wandb_files import segments

TWINS = ("mlx", "torch")
BOTH = ["tensorboard", "wandb"]


@pytest.fixture(autouse=True)
def own_wandb_service(monkeypatch):
    """Each `jai train` process starts its own W&B service, as from a shell. wandb.init in this process
    (the in-process runs here) exports WANDB_SERVICE, and a child inheriting it would share this
    process's service, which still holds a killed child's run id and refuses its resume."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


def tensorboard(out: Path) -> EventAccumulator:
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    return acc


def steps_and_values(acc: EventAccumulator, tag: str) -> tuple[list[int], np.ndarray]:
    events = acc.Scalars(tag)
    return [e.step for e in events], np.array([e.value for e in events])


def logged(out: Path, key: str, train: bool = True) -> tuple[list[int], np.ndarray]:
    rows = [r for r in records(out) if key in r and "event" not in r and (("loss" in r) == train)]
    return [r["step"] for r in rows], np.array([r[key] for r in rows])


def tb_hparams(acc: EventAccumulator) -> dict:
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.string_value or v.number_value for k, v in start.hparams.items()}


def wandb_history(out: Path) -> dict[int, dict]:
    """The run as `wandb sync` uploads its segments, in order: a row per step, a step only once (W&B
    drops a step below the run's current one), so this is what the W&B run will hold."""
    ids = {s["id"] for s in segments(out)}
    assert len(ids) == 1, f"several W&B runs: {ids}"
    rows: dict[int, dict] = {}
    for segment in segments(out):
        current = max(rows, default=-1)
        for row in segment["history"]:
            if row["_step"] > current or row["_step"] not in rows:
                rows.setdefault(row["_step"], {}).update(row)
    return rows


@pytest.fixture(scope="module")
def reported(tmp_path_factory, data) -> dict[str, Path]:  # noqa: F811
    """One short run per twin, reporting to both destinations."""
    root, outs = tmp_path_factory.mktemp("reported"), {}
    for twin in TWINS:
        out = root / twin
        cfg = small(max_steps=12, eval_interval=4, ckpt_interval=6)
        train_loop.train(twin, data, out, CFG, cfg, report_to=reporters(BOTH, out), **QUIET)
        outs[twin] = out
    return outs


@pytest.mark.parametrize("twin", TWINS)
def test_tensorboard_holds_every_step_and_the_config(reported, twin):
    out = reported[twin]
    acc = tensorboard(out)
    for key in ("loss", "lr", "grad_norm", "tok_s"):
        steps, values = steps_and_values(acc, f"train/{key}")
        want_steps, want = logged(out, key)
        assert steps == want_steps == list(range(1, 13))
        assert np.allclose(values, want, rtol=1e-6)  # TensorBoard keeps float32
    steps, values = steps_and_values(acc, "val/loss")
    want_steps, want = logged(out, "val_loss", train=False)
    assert steps == want_steps == [0, 4, 8, 12] and np.allclose(values, want, rtol=1e-6)
    hp = tb_hparams(acc)
    assert hp["backend"] == twin and hp["device"] == "cpu" and hp["dtype"] == "float32"
    assert hp["model/n_layer"] == CFG.n_layer and hp["train/max_steps"] == 12
    assert hp[f"version/{twin}"]


@pytest.mark.parametrize("twin", TWINS)
def test_wandb_offline_run_holds_every_step_and_the_config(reported, twin):
    out = reported[twin]
    (segment,) = segments(out)
    assert segment["exit"]  # finished: `wandb sync` will mark it so
    assert segment["name"] == f"{twin}-cpu-float32"
    assert twin in segment["tags"] and segment["group"] in segment["tags"]
    assert segment["config"]["backend"] == twin and segment["config"]["model/n_embd"] == CFG.n_embd
    history = wandb_history(out)
    want_steps, want = logged(out, "loss")
    assert [s for s in sorted(history) if "train/loss" in history[s]] == want_steps
    assert [history[s]["train/loss"] for s in want_steps] == list(want)  # JSON: exact
    assert [s for s in sorted(history) if "val/loss" in history[s]] == [0, 4, 8, 12]


def test_runs_of_one_config_share_a_group_across_twins(reported):
    groups = {twin: segments(out)[0]["group"] for twin, out in reported.items()}
    assert groups["mlx"] == groups["torch"]
    start = records(reported["mlx"])[0]
    assert groups["mlx"] == config_group(start["config"]) and groups["mlx"].startswith("L2-H2-E64-T16-b4-")
    other = dict(start["config"], train=dict(start["config"]["train"], lr=1e-3))
    assert config_group(other) != groups["mlx"]


@pytest.mark.parametrize("where", BOTH)
def test_every_number_of_an_evaluation_is_reported_without_being_named(tmp_path, where):
    """Scores another evaluation adds to its records (answers_*) reach the destination as they come."""
    start = {"event": "start", "step": 0, "backend": "jai_torch", "device": "cpu", "dtype": "float32"}
    start["config"] = {"model": dataclasses.asdict(CFG), "train": small().to_dict()}
    sink = reporters([where], tmp_path)
    sink.write(start)
    sink.write(
        {"step": 1, "loss": 3.5, "lr": 1e-3, "grad_norm": 0.5, "tokens": 64, "elapsed": 0.1, "tok_s": 9.0}
    )
    sink.write(
        {"step": 1, "val_loss": 3.25, "elapsed": 0.1, "answers_all_f1": 0.125, "answers_fields_exact": 2}
    )
    sink.write({"step": 2, "event": "diverged", "loss": "nan", "grad_norm": "nan"})  # not numbers: skipped
    sink.close()
    if where == "tensorboard":
        acc = tensorboard(tmp_path)
        assert steps_and_values(acc, "val/answers_all_f1") == ([1], pytest.approx([0.125]))
        assert steps_and_values(acc, "val/answers_fields_exact")[1].tolist() == [2.0]
        assert 2 not in steps_and_values(acc, "train/loss")[0]
    else:
        row = wandb_history(tmp_path)[1]
        assert row["val/answers_all_f1"] == 0.125 and row["val/answers_fields_exact"] == 2
        assert row["val/loss"] == 3.25 and 2 not in wandb_history(tmp_path)


RUN = """
import sys, time
from jai.config import GPTConfig
from jai.train_config import TrainConfig
from jai.training.loop import train
from jai.reporting.report_to import reporters
data, out, resume, pause = sys.argv[1], sys.argv[2], sys.argv[3] == "resume", float(sys.argv[4])
cfg, train_cfg = (None, None) if resume else (GPTConfig(**{model}), TrainConfig(**{train}))
log = lambda _: time.sleep(pause)  # slow enough to be killed midway
train("{twin}", data, out, cfg, train_cfg, resume=resume, device="cpu", progress=False, log=log,
      report_to=reporters(["tensorboard", "wandb"], out))
"""


@pytest.mark.parametrize("twin", TWINS)
def test_kill_9_then_resume_reports_each_step_once_in_one_run(tmp_path, data, twin):  # noqa: F811
    cfg = small(max_steps=24, ckpt_interval=4, eval_interval=2, eval_batches=1)
    code = RUN.format(twin=twin, model=dataclasses.asdict(CFG), train=cfg.to_dict())
    out = tmp_path / "run"

    def run(mode: str, pause: float = 0.0) -> subprocess.Popen:
        command = [sys.executable, "-c", code, str(data), str(out), mode, str(pause)]
        return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)

    proc = run("new", pause=0.2)
    try:
        deadline = time.monotonic() + 180
        while checkpoint_step(out) < 8:
            assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    killed_at = checkpoint_step(out)
    resumed = run("resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    want_steps, want = logged(out, "loss")
    assert want_steps == list(range(1, 25))
    steps, values = steps_and_values(tensorboard(out), "train/loss")
    assert steps == want_steps and np.allclose(values, want, rtol=1e-6)  # no step twice, none missing
    assert steps_and_values(tensorboard(out), "val/loss")[0] == list(range(0, 25, 2))
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rebuilt on resume

    parts = segments(out)
    assert len(parts) == 2 and parts[0]["id"] == parts[1]["id"]  # the same W&B run, continued
    assert parts[1]["history"][-1]["_step"] == 24 and killed_at < 24
    history = wandb_history(out)
    assert sorted(s for s in history if "train/loss" in history[s]) == want_steps
    assert [history[s]["train/loss"] for s in want_steps] == pytest.approx(list(want), rel=1e-6)


@pytest.mark.parametrize("twin", TWINS)
def test_under_two_processes_rank_0_alone_reports(tmp_path, twin):
    from tests.test_distributed_launch import FLAGS, MODEL, finish, launch, make_data

    data_dir = make_data(tmp_path / "data")
    out = tmp_path / "run"
    log = finish(
        launch(twin, 2, out, data_dir, *MODEL, "--batch-size=4", *FLAGS, "--report-to=tensorboard,wandb")
    )
    assert "step 30 (max_steps)" in log, log
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert steps_and_values(tensorboard(out), "train/loss")[0] == list(range(1, 31))
    (segment,) = segments(out)  # one W&B run: rank 1 opened none
    assert segment["config"]["world_size"] == 2
    assert sorted(s for s, row in wandb_history(out).items() if "train/loss" in row) == list(range(1, 31))


@pytest.mark.parametrize(("module", "extra"), [("wandb", "wandb"), ("tensorboard", "tensorboard")])
def test_a_missing_extra_is_one_line_naming_it_before_training(tmp_path, module, extra):
    code = (
        f"import sys; sys.modules[{module!r}] = None\nfrom jai import cli\nsys.exit(cli.main(sys.argv[1:]))"
    )
    out = tmp_path / "run"
    where = "wandb" if extra == "wandb" else "tensorboard"
    argv = ["train", "--backend", "torch", "--data", str(tmp_path), "--out", str(out), "--report-to", where]
    result = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"jai train: error: --report-to {where} needs {module}, which is not installed: "
        f"pip install 'jai[{extra}]'"
    ]
    assert not out.exists()


def test_an_unknown_destination_is_one_line(tmp_path, capsys):
    from jai import cli

    argv = [
        "train",
        "--data",
        str(tmp_path),
        "--out",
        str(tmp_path / "run"),
        "--report-to",
        "tensorboard,mlflow",
    ]
    assert cli.main(argv) == 2
    assert (
        capsys.readouterr().err
        == "jai train: error: --report-to mlflow: choose from tensorboard, wandb or none\n"
    )
    assert not (tmp_path / "run").exists()


def test_jai_plot_draws_two_real_runs_side_by_side(reported, tmp_path):
    png = tmp_path / "compare.png"
    assert plot_cli.main([str(reported["mlx"]), str(reported["torch"]), "--out", str(png)]) == 0
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600 and pixels.std() > 0.05  # drawn, not blank

    fig = plot.figure([runs.load(reported["mlx"]), runs.load(reported["torch"])])
    (by_step, by_time), (diff, ratio) = fig.axes[:2], fig.axes[2:]
    assert (by_step.get_xlabel(), by_step.get_ylabel()) == ("step", "loss")
    assert by_time.get_xlabel() == "training seconds"
    legend = [t.get_text() for t in by_step.get_legend().get_texts()]
    twins = ("mlx: mlx cpu float32", "torch: torch cpu float32")
    assert legend == [f"{twin}, {curve}" for twin in twins for curve in ("train", "val")]
    assert diff.get_ylabel() == "loss, mlx − torch" and ratio.get_ylabel() == "seconds, mlx ÷ torch"
    train_diff = diff.get_lines()[0].get_ydata()
    mlx, torch = logged(reported["mlx"], "loss")[1], logged(reported["torch"], "loss")[1]
    assert np.allclose(train_diff, mlx - torch)
    assert fig._suptitle.get_text() == f"config {runs.load(reported['mlx']).group}"


def test_jai_plot_shows_answer_scores_and_a_table(reported, tmp_path, capsys):
    scored = tmp_path / "scored"
    scored.mkdir()
    lines = (reported["torch"] / "metrics.jsonl").read_text().splitlines()
    extra = [
        json.dumps({"step": s, "val_loss": 3.0, "elapsed": 1.0, "answers_all_f1": s / 100}) for s in (4, 12)
    ]
    (scored / "metrics.jsonl").write_text("\n".join(lines + extra) + "\n")
    fig = plot.figure([runs.load(reported["mlx"]), runs.load(scored)])
    by_tokens, by_time = fig.axes[2], fig.axes[3]
    assert by_tokens.get_title() == "Answers against tokens" and by_tokens.get_ylabel() == "score"
    assert by_time.get_title() == "Answers against time" and by_time.get_xlabel() == "training seconds"
    assert [t.get_text() for t in by_tokens.get_legend().get_texts()] == ["answers_all_f1"]
    # each evaluation sits at the tokens trained by its step (only the scored run has scores)
    tokens = dict(zip(*logged(scored, "tokens"), strict=True))  # step -> tokens trained
    (line,) = by_tokens.get_lines()
    assert list(line.get_xdata()) == [tokens[4], tokens[12]] and list(line.get_ydata()) == [0.04, 0.12]
    assert list(by_time.get_lines()[0].get_xdata()) == [1.0, 1.0]
    assert len(fig.axes) == 4 + 3  # beneath: loss and seconds differences, scores (none in common)
    assert plot_cli.main([str(reported["mlx"]), str(scored), "--format", "md"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| run | twin | device |") and table[0].endswith("| answers_all_f1 |")
    assert table[2].startswith("| mlx | mlx | cpu | float32 | L2-H2-E64-T16-b4-") and table[2].endswith(
        "|  |"
    )
    assert table[3].startswith("| scored | torch |") and table[3].endswith("| 0.120 |")


def test_an_mlx_run_reports_without_loading_torch(data, tmp_path):  # noqa: F811
    """Both destinations' writers are framework-free: an MLX-only install reports as well."""
    from tests.test_imports import run_without

    pytest.importorskip("mlx.core")
    out = tmp_path / "run"
    tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "2"]
    argv = ["train", "--backend", "mlx", "--device", "cpu", "--data", data, "--out", out, *tiny]
    argv += ["--max-steps", "3", "--eval-interval", "1", "--no-progress", "--report-to", "tensorboard,wandb"]
    result = run_without(("torch",), argv)
    assert result.returncode == 0, result.stderr
    assert steps_and_values(tensorboard(out), "train/loss")[0] == [1, 2, 3]
    assert sorted(s for s, row in wandb_history(out).items() if "train/loss" in row) == [1, 2, 3]


def test_answer_scores_of_eval_answers_are_reported(tmp_path):
    """`jai train --eval-answers`'s figures join the evaluation records; both destinations show them all,
    named as metrics.jsonl names them."""
    from jai import cli
    from jai.data.prepare import BUNDLED_SAMPLE

    data_dir, out = tmp_path / "data", tmp_path / "run"
    assert cli.main(["prepare", str(BUNDLED_SAMPLE), "--out", str(data_dir), "--vocab-size", "300"]) == 0
    tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "64", "--batch-size", "2"]
    argv = [
        "train",
        "--backend",
        "torch",
        "--device",
        "cpu",
        "--data",
        str(data_dir),
        "--out",
        str(out),
        *tiny,
    ]
    argv += ["--max-steps", "2", "--eval-interval", "1", "--eval-batches", "1", "--eval-answers", "2"]
    assert cli.main([*argv, "--no-progress", "--report-to", "tensorboard,wandb"]) == 0
    evals = [r for r in records(out) if "val_loss" in r]
    scores = sorted(k for k in evals[0] if k.startswith("answers_"))
    assert "answers_all_f1" in scores and len(evals) == 3
    acc, history = tensorboard(out), wandb_history(out)
    for key in scores:
        steps, values = steps_and_values(acc, f"val/{key}")
        assert steps == [0, 1, 2] and np.allclose(values, [r[key] for r in evals], rtol=1e-6)
        assert [history[s][f"val/{key}"] for s in (0, 1, 2)] == [r[key] for r in evals]
