"""LoRA on the one training loop: the twins train the same adapter, PEFT opens it over transformers' GPT-2,
`jai fuse` merges it exactly, and a run killed with SIGKILL resumes to the same adapter.

Tolerances: the twins' LoRA curves are held to LOSS_TOL, the full-training bound (tests/test_train.py):
an adapter is a few small matmuls on top of the same model, so the same float32 noise applies. PEFT's
logits are held to 1e-4 (transformers' own GPT-2 agrees with the twins to ~1e-6, tests/test_parity.py;
PEFT adds the update in another order). The fused model differs from base + adapter only by where the
update is rounded (once into W, in float64, vs at every forward pass): 1e-5.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from jai import cli
from jai.checkpoint import lora, train_state
from jai.checkpoint.lora import LoraConfig
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import lora as mlx_lora
from jai_torch import checkpoint as torch_ckpt
from jai_torch import lora as torch_lora
from tests.test_train import CFG, LOSS_TOL, QUIET, ROOT, TWINS, data, init_ckpt, losses, small  # noqa: F401

LORA = LoraConfig(rank=4, alpha=8.0, targets=("c_attn", "c_proj", "c_fc"), seed=3)


def adapter_of(out) -> dict[str, np.ndarray]:
    return load_file(out / "ckpt" / lora.ADAPTER_WEIGHTS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data, init_ckpt):  # noqa: F811
    """A 50-step LoRA run of each twin, from the same base and the same adapter initialisation."""
    root = tmp_path_factory.mktemp("lora")
    for name, train in TWINS.items():
        train(data, root / name, None, small(), init_from=init_ckpt, lora=LORA, **QUIET)
    return root


def test_the_twins_lora_curves_agree_as_full_trainings_do(runs):
    mlx, torch_ = losses(runs / "mlx"), losses(runs / "torch")
    assert len(mlx) == len(torch_) == 50
    assert np.abs(mlx - torch_).max() <= LOSS_TOL
    assert mlx[-1] < mlx[0] - 0.1  # the adapter learned something


@pytest.mark.parametrize("twin", TWINS)
def test_only_the_adapter_trains_and_is_saved_in_peft_format(runs, twin):
    ckpt = runs / twin / "ckpt"
    assert sorted(p.name for p in ckpt.iterdir() if p.is_file()) == [
        lora.ADAPTER_CONFIG,
        lora.ADAPTER_WEIGHTS,
    ]
    config = json.loads((ckpt / lora.ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["fan_in_fan_out"] and config["r"] == LORA.rank
    adapter = adapter_of(runs / twin)
    expected = {lora.peft_key(k): s for k, s in lora.adapter_shapes(CFG, LORA).items()}
    assert {k: v.shape for k, v in adapter.items()} == expected
    assert all(np.abs(v).max() > 0 for k, v in adapter.items() if "lora_B" in k)  # B left zero: trained
    moments = load_file(ckpt / train_state.STATE_DIR / train_state.OPTIMIZER_FILE)
    assert {k.split(".", 1)[1] for k in moments} == set(lora.adapter_shapes(CFG, LORA))  # adapter alone


def twin_logits(base, adapter_dir, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Logits of base + adapter in each twin."""
    cfg = torch_ckpt.load_model(base).config
    config, _, tensors = lora.read_adapter(adapter_dir, cfg)
    out = {}
    model = torch_ckpt.load_model(base, dtype=torch.float32)
    torch_lora.apply_lora(model, config, tensors)
    with torch.no_grad():
        out["torch"] = model(torch.from_numpy(ids)).numpy()
    import mlx.core as mx

    model = mlx_ckpt.load_model(base, dtype=mx.float32)
    mlx_lora.apply_lora(model, config, tensors)
    out["mlx"] = np.array(model(mx.array(ids)))
    return out


IDS = np.random.default_rng(0).integers(0, CFG.vocab_size, size=(2, CFG.block_size)).astype(np.int64)


@pytest.mark.parametrize("twin", TWINS)
def test_peft_opens_the_adapter_over_transformers_gpt2(runs, init_ckpt, twin):  # noqa: F811
    peft = pytest.importorskip("peft")
    from transformers import GPT2LMHeadModel

    base = GPT2LMHeadModel.from_pretrained(init_ckpt).eval()
    model = peft.PeftModel.from_pretrained(base, runs / twin / "ckpt").eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(IDS)).logits.numpy()
    for name, logits in twin_logits(init_ckpt, runs / twin / "ckpt", IDS).items():
        assert np.abs(logits - expected).max() < 1e-4, name
    plain = GPT2LMHeadModel.from_pretrained(init_ckpt).eval()  # PEFT adapted `base` in place
    with torch.no_grad():  # and the adapter matters: the base alone is far from it
        assert np.abs(plain(torch.from_numpy(IDS)).logits.numpy() - expected).max() > 1e-2


def test_jai_fuse_merges_exactly(runs, init_ckpt, tmp_path, capsys):  # noqa: F811
    assert cli.main(["fuse", str(runs / "torch"), str(tmp_path / "fused")]) == 0
    assert "wrote" in capsys.readouterr().out
    fused = torch_ckpt.load_model(tmp_path / "fused", dtype=torch.float32)
    with torch.no_grad():
        merged = fused(torch.from_numpy(IDS)).numpy()
    for name, logits in twin_logits(init_ckpt, runs / "torch" / "ckpt", IDS).items():
        assert np.abs(logits - merged).max() < 1e-5, name
    assert cli.main(["fuse", str(runs / "torch"), str(tmp_path / "fused")]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(("src", "dst"), [("torch", "mlx"), ("mlx", "torch")])
def test_a_lora_run_resumes_in_the_other_twin(tmp_path, data, init_ckpt, runs, src, dst):  # noqa: F811
    out = tmp_path / "run"
    TWINS[src](data, out, None, small(), init_from=init_ckpt, lora=LORA, stop_at=25, **QUIET)
    summary = TWINS[dst](data, out, None, None, resume=True, **QUIET)
    assert summary["start_step"] == 25 and summary["step"] == 50
    assert np.abs(losses(out) - losses(runs / src)).max() <= LOSS_TOL
    assert train_state.read_state_json(out / "ckpt").lora == LORA.to_dict()


RUN = """
import sys, time
import torch
torch.set_num_threads(1)
from jai.checkpoint.lora import LoraConfig
from jai.train_config import TrainConfig
from jai.training.loop import train
data, out, base, mode, pause = sys.argv[1:]
resume, pause = mode == "resume", float(pause)
cfg = None if resume else TrainConfig(**{train})
lora = None if resume else LoraConfig(rank=4, alpha=8.0, targets=("c_attn", "c_proj", "c_fc"), seed=3)
log = lambda _: time.sleep(pause)
kw = dict(resume=True) if resume else dict(init_from=base, lora=lora)
train("{twin}", data, out, None, cfg, device="cpu", progress=False, log=log, **kw)
"""


@pytest.mark.parametrize("twin", TWINS)
def test_kill_9_then_resume_ends_with_the_same_adapter(tmp_path, data, init_ckpt, twin):  # noqa: F811
    cfg = small(max_steps=30, ckpt_interval=5, eval_interval=1, eval_batches=1)
    code = RUN.format(twin=twin, train=cfg.to_dict())

    def run(out, mode: str, pause: float = 0.0) -> subprocess.Popen:
        command = [sys.executable, "-c", code, str(data), str(out), str(init_ckpt), mode, str(pause)]
        return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)

    def step(out) -> int:
        try:
            return train_state.read_state_json(out / "ckpt").step
        except (OSError, ValueError):
            return -1

    full, out = run(tmp_path / "full", "new"), tmp_path / "killed"
    proc = run(out, "new", pause=0.05)
    try:
        deadline = time.monotonic() + 120
        while step(out) < 10:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stderr.close()
    for p in (run(out, "resume"), full):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    done, ref = adapter_of(out), adapter_of(tmp_path / "full")
    assert train_state.read_state_json(out / "ckpt").step == 30
    assert all(np.array_equal(done[k], ref[k]) for k in ref)


def test_lora_needs_a_base(tmp_path, data, capsys):  # noqa: F811
    code = cli.main(
        ["train", "--backend", "torch", "--data", str(data), "--out", str(tmp_path / "r"), "--lora", "4"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--init-from" in err
    with pytest.raises(Exception, match="unknown layer 'c_nope'"):
        LoraConfig(targets=("c_nope",))
