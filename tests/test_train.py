"""Training in both twins: the same step, the same loss curve, a falling loss, a NaN stop, and the CLI.

Everything runs for real on the CPU in float32 with a tiny model (2 layers, width 64, context 16,
batch 4) on structured tokens (a noisy permutation chain, so there is something to learn). Twins that
must agree start from one checkpoint (`init_from`), and the shared sampler gives them the same batches.
The helpers here are shared with test_train_resume.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from jai import cli
from jai.checkpoint import train_state
from jai.cli import train as train_cli
from jai.config import GPTConfig
from jai.train_config import TrainConfig
from jai.training import loop as train_loop
from jai.training.loop import TrainingDiverged
from jai_mlx import checkpoint as mlx_ckpt
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model

ROOT = Path(__file__).resolve().parents[1]
CFG = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=64)
TWINS = {"mlx": partial(train_loop.train, "mlx"), "torch": partial(train_loop.train, "torch")}
QUIET = {"device": "cpu", "progress": False, "log": lambda _: None}

# float32 reassociation noise, measured: over 50 steps from the same checkpoint on the same batches,
# the twins' per-step losses differ by at most 1.2e-6 (2-3 float32 ulps of a loss near 4), and their
# weights by 4e-5 after 50 steps. The bound sits ~100x above that, so it survives other BLAS builds and
# thread counts; yet it is far below what a real discrepancy costs (measured on this setup): the loss
# moves ~0.1 per step, shifting the warmup by one step (an off-by-one in the schedule) moves the curve by
# 3e-2, and even changing Adam's beta2 from 0.95 to 0.951 moves it by 8e-4.
LOSS_TOL = 1e-4


def make_data(path: Path, vocab: int = 97, n_train: int = 20_000, n_val: int = 2_000, seed: int = 0) -> Path:
    """A data dir like `jai prepare` writes: train.bin, val.bin (uint16) and meta.json.

    Tokens follow a random permutation (token t is followed by perm[t]) 90% of the time and are
    uniformly random otherwise, so a model can learn the chain and the loss falls well below log(vocab).
    """
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(vocab)
    splits = {}
    for name, n in (("train", n_train), ("val", n_val)):
        jumps, noise = rng.random(n) < 0.1, rng.integers(0, vocab, n)
        tokens, t = np.empty(n, np.uint16), 0
        for i in range(n):
            t = noise[i] if jumps[i] else perm[t]
            tokens[i] = t
        tokens.tofile(path / f"{name}.bin")
        splits[name] = {"file": f"{name}.bin", "tokens": n, "samples": 1}
    meta = {"format": "jai-tokens-v1", "dtype": "uint16", "vocab_size": vocab, "splits": splits}
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def small(**changes) -> TrainConfig:
    base = TrainConfig(
        batch_size=4,
        max_steps=50,
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=5,
        eval_interval=25,
        eval_batches=2,
        ckpt_interval=25,
    )
    return base.replace(**changes)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / train_state.METRICS_FILE).read_text().splitlines()]


def losses(out: Path) -> np.ndarray:
    return np.array([r["loss"] for r in records(out) if "loss" in r and "event" not in r])


def weights_of(out: Path) -> dict[str, np.ndarray]:
    return load_file(out / train_state.CKPT_DIR / "model.safetensors")


def max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def mean_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return float(np.mean(np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a])))


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("train") / "data")


@pytest.fixture(scope="session")
def init_ckpt(tmp_path_factory) -> Path:
    """One set of initial weights for both twins (their initialisers draw different numbers)."""
    path = tmp_path_factory.mktemp("init") / "ckpt"
    torch_ckpt.save_model(torch_model.GPT(CFG, seed=7), path)
    return path


@pytest.fixture(scope="session")
def curves(tmp_path_factory, data, init_ckpt) -> dict[str, Path]:
    """A 50-step run of each twin from the same checkpoint; their out dirs."""
    root = tmp_path_factory.mktemp("curves")
    for name, train in TWINS.items():
        summary = train(data, root / name, None, small(), init_from=init_ckpt, **QUIET)
        assert summary["step"] == 50 and summary["stopped"] == "max_steps"
    return {name: root / name for name in TWINS}


def test_one_step_agrees_between_twins(tmp_path, data, init_ckpt):
    cfg = small(max_steps=1, warmup_steps=0)
    for name, train in TWINS.items():
        train(data, tmp_path / name, None, cfg, init_from=init_ckpt, **QUIET)
    wm, wt = weights_of(tmp_path / "mlx"), weights_of(tmp_path / "torch")
    start = load_file(init_ckpt / "model.safetensors")
    assert max_diff(wt, start) > 1e-3  # the step moved the weights (Adam's first step is ~lr per weight)
    # Adam's first step moves a weight by lr * g / (|g| + eps): about lr * sign(g), but where |g| is near
    # eps (1e-8) float rounding in g moves the step by a sizeable fraction of lr (measured: up to 0.4%).
    # So the worst weight may differ by 1% of lr; the mean difference (measured: 2e-9) must stay below
    # 3e-7, 20x under what a wrong weight decay (lr * wd * |w| ~ 6e-6) or no bias correction (~lr) leaves.
    assert max_diff(wm, wt) <= 1e-2 * cfg.lr
    assert mean_diff(wm, wt) <= 1e-4 * cfg.lr
    # The moments agree too, in the shared file layout: this is what makes cross-twin resume work
    # (c_proj is square, so a missing transpose would pass a shape check and fail here).
    om, ot = (load_file(tmp_path / n / "ckpt/train_state/optimizer.safetensors") for n in ("mlx", "torch"))
    assert max_diff(om, ot) <= 1e-5 * max(float(np.abs(ot[k]).max()) for k in ot)
    assert max(float(np.abs(ot[k]).max()) for k in ot) > 0


def test_loss_curves_agree_between_twins(curves):
    lm, lt = losses(curves["mlx"]), losses(curves["torch"])
    assert len(lm) == len(lt) == 50
    diff = np.abs(lm - lt)
    worst = f"{diff.max():.3g} at step {diff.argmax() + 1}"
    assert diff.max() <= LOSS_TOL, f"largest per-step |loss difference| {worst}"


def test_loss_decreases_on_structured_data(curves):
    for name, out in curves.items():
        curve = losses(out)
        assert curve[0] > 4.0  # about log(97) = 4.57 at the start
        assert curve[-5:].mean() < curve[0] - 1.5, name
        evals = [r for r in records(out) if "val_loss" in r]
        assert [r["step"] for r in evals] == [0, 25, 50]  # step 0: the untrained baseline
        val = [r["val_loss"] for r in evals]
        assert val[0] > 4.0 and val[2] < val[1] < val[0] - 1.0, name


def test_metrics_log_and_checkpoint(curves):
    for name, out in curves.items():
        recs = records(out)
        assert recs[0]["event"] == "start" and recs[0]["backend"] == f"jai_{name}"
        steps = [r for r in recs if "loss" in r]
        assert [r["step"] for r in steps] == list(range(1, 51))
        assert set(steps[0]) == {"step", "loss", "lr", "grad_norm", "tokens", "elapsed", "tok_s"}
        assert steps[-1]["tokens"] == 50 * 4 * 16
        assert steps[0]["lr"] == pytest.approx(3e-3 / 6)  # warmup: lr * 1 / (warmup + 1)
        # the checkpoint is an ordinary one for both twins, its train_state/ ignored
        ckpt = out / "ckpt"
        assert (ckpt / "train_state" / "state.json").is_file()
        assert torch_ckpt.load_model(ckpt).config == CFG
        assert mlx_ckpt.load_model(ckpt).config == CFG
        state, _ = train_state.read_train_state(ckpt)
        assert state.step == state.optimizer_step == 50 and state.writer == f"jai_{name}"
        assert state.best_val_loss == min(r["val_loss"] for r in recs if "val_loss" in r)


@pytest.mark.parametrize("twin", TWINS)
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data, twin):
    train = TWINS[twin]
    out = tmp_path / "run"
    train(data, out, CFG, small(ckpt_interval=5), stop_at=5, **QUIET)
    good = weights_of(out)
    # Resume with an absurd learning rate: the weights blow up and the loss turns NaN two steps later.
    message = r"diverged at step 7: loss nan, .*last finite loss .* at step 6"
    with pytest.raises(TrainingDiverged, match=message) as e:
        train(data, out, None, small(ckpt_interval=5, lr=1e30, min_lr=1e30), resume=True, **QUIET)
    assert f"{out / 'ckpt'} (step 5), is kept" in str(e.value)
    state, _ = train_state.read_train_state(out / "ckpt")
    assert state.step == 5
    assert max_diff(weights_of(out), good) == 0.0
    assert all(np.isfinite(p).all() for p in weights_of(out).values())
    assert torch_ckpt.load_model(out / "ckpt").config == CFG  # still loadable
    assert records(out)[-1] == {"step": 7, "event": "diverged", "loss": "nan", "grad_norm": "nan"}


@pytest.mark.parametrize("twin", TWINS)
def test_max_seconds_stops_with_a_checkpoint(tmp_path, data, twin):
    summary = TWINS[twin](data, tmp_path / "run", CFG, small(), max_seconds=0, **QUIET)
    assert summary["stopped"] == "max_seconds" and summary["step"] == 1
    assert summary["val_loss"] is not None
    assert train_state.read_state_json(tmp_path / "run" / "ckpt").step == 1


def test_cli_help():
    command = [sys.executable, "-m", "jai.cli", "train", "--help"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--backend", "--resume", "--init-from", "--max-seconds", "--n-layer", "--lr", "--dtype"):
        assert flag in result.stdout
    assert "(default: 16)" in result.stdout and "examples:" in result.stdout


def test_cli_bad_data_dir_exits_2_with_one_line(tmp_path, capsys):
    code = cli.main(["train", "--backend", "torch", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no such data directory" in err and "Traceback" not in err


def test_cli_bad_setting_exits_2(tmp_path, data, capsys):
    code = cli.main(["train", "--backend", "mlx", "--data", str(data), "--out", str(tmp_path), "--lr", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "lr" in err


def test_cli_trains_then_resumes_with_the_other_twin(tmp_path, data, capsys):
    out = str(tmp_path / "run")
    shape = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "8"]
    common = ["--data", str(data), "--out", out, "--device", "cpu", "--no-progress"]
    steps = ["--batch-size", "2", "--max-steps", "6", "--eval-interval", "3", "--eval-batches", "1"]
    assert train_cli.main(["--backend", "mlx", *common, *shape, *steps, "--max-seconds", "0"]) == 0
    assert train_state.read_state_json(Path(out) / "ckpt").step == 1
    # --resume takes the model and the settings from the checkpoint; only what is given changes
    assert train_cli.main(["--backend", "torch", *common, "--resume"]) == 0
    state = train_state.read_state_json(Path(out) / "ckpt")
    assert state.step == 6 and state.writer == "jai_torch" and state.model_config.n_embd == 32
    assert "step 6 (max_steps)" in capsys.readouterr().out
    # a new run into the same out dir is refused rather than overwriting it
    assert cli.main(["train", "--backend", "torch", *common]) == 2  # reported by the `jai` dispatcher
    assert "pass --resume" in capsys.readouterr().err
