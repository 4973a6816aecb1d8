"""The training-state format and the run's framework-free parts: checked without training anything.

A training checkpoint is built here with numpy alone (jai/checkpoint/train_state.py never imports a
framework), then read back, damaged in the ways real files get damaged, and opened by outside readers.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jai.checkpoint import recovery, train_state, weights
from jai.checkpoint.train_state import TrainState
from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError, GPTConfig
from jai.dataset import DatasetError
from jai.devices import DeviceError, default_backend, resolve_dtype
from jai.train_config import TrainConfig
from jai.training import plan as run_plan
from jai.training.metrics_log import MetricsLog
from jai_mlx import device as mlx_device
from jai_torch import device as torch_device
from tests.test_train import CFG, make_data

D = CFG.n_embd


def moments_in_memory(cfg: GPTConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random moments keyed like the twins hand them over: the twins' (Linear) layout."""
    rng = np.random.default_rng(seed)
    out = {}
    for m in train_state.MOMENTS:
        for name, shape in weights.tensor_shapes(cfg).items():
            out[f"{m}.{name}"] = rng.standard_normal(weights.memory_shape(name, shape)).astype(np.float32)
    return out


def write_ckpt(path, cfg: GPTConfig = CFG, step: int = 3, moments=None) -> TrainState:
    rng = np.random.default_rng(1)
    tensors = {n: rng.standard_normal(s).astype(np.float32) for n, s in weights.tensor_shapes(cfg).items()}
    state = TrainState(
        step=step,
        optimizer_step=step,
        train_config=TrainConfig(batch_size=4, max_steps=10),
        model_config=cfg,
        sampler={"batches_drawn": step},
        rng={"kind": "test"},
        tokens_seen=step * 64,
        elapsed_seconds=1.5,
        loss=3.0,
        val_loss=3.5,
        best_val_loss=3.5,
        writer="test",
        device="cpu",
    )
    train_state.write_training_checkpoint(
        path,
        "test",
        lambda p: save_file(tensors, p, metadata=weights.METADATA),
        state,
        moments if moments is not None else moments_in_memory(cfg),
    )
    return state


@pytest.fixture
def ckpt(tmp_path):
    write_ckpt(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def rewrite_moments(ckpt, change) -> None:
    path = ckpt / "train_state" / "optimizer.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


def test_round_trip_and_layout(tmp_path):
    moments = moments_in_memory(CFG)
    state = write_ckpt(tmp_path / "ckpt", moments=moments)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
        "train_state",
    ]
    header = weights.read_header(tmp_path / "ckpt" / "train_state" / "optimizer.safetensors")
    # Conv1D matrices are stored [in, out], transposed exactly as the weights are
    assert header["exp_avg.h.0.attn.c_attn.weight"] == ("F32", (D, 3 * D))
    assert header["exp_avg_sq.h.1.mlp.c_proj.weight"] == ("F32", (4 * D, D))
    assert header["exp_avg.wte.weight"] == ("F32", (CFG.vocab_size, D))
    stored = load_file(tmp_path / "ckpt" / "train_state" / "optimizer.safetensors")
    key = "exp_avg.h.0.attn.c_proj.weight"  # square: only the values show the transpose
    assert np.array_equal(stored[key], moments[key].T)

    got, back = train_state.read_train_state(tmp_path / "ckpt")
    assert got == state
    assert back.keys() == moments.keys()
    assert all(np.array_equal(back[k], moments[k]) for k in moments)
    obj = json.loads((tmp_path / "ckpt" / "train_state" / "state.json").read_text())
    assert obj["format"] == "jai-train-state" and obj["format_version"] == 1
    assert obj["train_config"]["batch_size"] == 4 and obj["model_config"]["n_embd"] == D


def test_missing_moment_names_file_and_tensor(ckpt):
    rewrite_moments(ckpt, lambda t: t.pop("exp_avg_sq.h.1.ln_2.bias"))
    path = ckpt / "train_state" / "optimizer.safetensors"
    with pytest.raises(CheckpointError, match=rf"{path}: missing tensor 'exp_avg_sq.h.1.ln_2.bias'"):
        train_state.read_train_state(ckpt)


def test_wrong_shape_names_file_tensor_expected_and_found(ckpt):
    def change(t):
        t["exp_avg.h.0.attn.c_attn.weight"] = np.zeros(
            (3 * D, D), np.float32
        )  # Linear layout, not the file's

    rewrite_moments(ckpt, change)
    with pytest.raises(
        CheckpointError,
        match=rf"optimizer.safetensors: tensor 'exp_avg.h.0.attn.c_attn.weight': "
        rf"expected shape \[{D}, {3 * D}\] \(from config.json\), found \[{3 * D}, {D}\]",
    ):
        train_state.read_train_state(ckpt)


def test_wrong_dtype_and_unexpected_tensor(ckpt):
    rewrite_moments(
        ckpt, lambda t: t.update({"exp_avg.wpe.weight": t["exp_avg.wpe.weight"].astype(np.float16)})
    )
    with pytest.raises(CheckpointError, match=r"tensor 'exp_avg.wpe.weight': expected dtype F32, found F16"):
        train_state.read_train_state(ckpt)
    rewrite_moments(
        ckpt,
        lambda t: t.update(
            {"exp_avg.wpe.weight": np.zeros((16, D), np.float32), "momentum.x": t["exp_avg.wpe.weight"]}
        ),
    )
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'momentum.x'"):
        train_state.read_train_state(ckpt)


def test_truncated_optimizer_file(ckpt):
    path = ckpt / "train_state" / "optimizer.safetensors"
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    with pytest.raises(CheckpointError, match=r"optimizer.safetensors: tensor '.*': truncated file"):
        train_state.read_train_state(ckpt)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("optimizer_step"), r"state.json: missing field 'optimizer_step'"),
        (lambda s: s.update(step="3"), r"state.json: field 'step': expected int, found str"),
        (lambda s: s.update(format_version=99), r"state.json: format_version 99 is newer"),
        (lambda s: s.update(format="other"), r"state.json: not a JAI training state"),
        (lambda s: s["train_config"].update(batch_size=0), r"state.json: train_config: batch_size must be"),
        (lambda s: s["train_config"].update(momentum=0.9), r"train_config: unknown field 'momentum'"),
        (
            lambda s: s["model_config"].update(n_embd=32),
            r"model_config disagrees with .*config.json: n_embd 32 vs 64",
        ),
    ],
)
def test_bad_state_json_names_file_and_field(ckpt, change, message):
    path = ckpt / "train_state" / "state.json"
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))
    with pytest.raises(CheckpointError, match=message):
        train_state.read_train_state(ckpt)


def test_state_json_missing_or_not_json(ckpt):
    path = ckpt / "train_state" / "state.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"state.json: not valid JSON"):
        train_state.read_state_json(ckpt)
    path.unlink()
    assert not train_state.has_train_state(ckpt)
    with pytest.raises(CheckpointError, match=r"state.json: no such file"):
        train_state.read_train_state(ckpt)


def test_transformers_ignores_train_state(ckpt):
    """transformers opens a training checkpoint as an ordinary GPT-2, train_state/ and all."""
    transformers = pytest.importorskip("transformers")
    model = transformers.GPT2LMHeadModel.from_pretrained(ckpt)
    assert model.config.n_embd == D
    np.testing.assert_array_equal(
        model.transformer.h[0].attn.c_attn.weight.detach().numpy(),
        load_file(ckpt / "model.safetensors")["h.0.attn.c_attn.weight"],
    )


def test_mlx_lm_ignores_train_state(ckpt):
    utils = pytest.importorskip("mlx_lm.utils")
    model, config = utils.load_model(ckpt)
    assert config["n_embd"] == D and type(model).__module__ == "mlx_lm.models.gpt2"


def test_metrics_log_keeps_lines_up_to_the_resumed_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 8):
        log.write({"step": step, "loss": 1.0})
    log.close()
    with open(path, "a") as f:
        f.write('{"step": 8, "lo')  # torn by a kill
    log = MetricsLog(path, resume_step=5)
    log.write({"event": "resume", "step": 5})
    log.close()
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 5]
    MetricsLog(path).close()  # a new run starts the log afresh
    assert path.read_text() == ""


def test_plan_run_checks(tmp_path):
    data = make_data(tmp_path / "data", n_train=500, n_val=100)
    with pytest.raises(DatasetError, match=r"no such data directory"):
        run_plan.plan_run(tmp_path / "nope", tmp_path / "out", None, None)
    plan = run_plan.plan_run(data, tmp_path / "out", CFG.replace(vocab_size=5), None)
    assert plan.model_config == CFG and plan.train_config == TrainConfig() and plan.resume is None
    with pytest.raises(CheckpointError, match=r"no checkpoint to resume from"):
        run_plan.plan_run(data, tmp_path / "out", None, None, resume=True)
    with pytest.raises(ConfigError, match=r"cannot be combined with --init-from"):
        run_plan.plan_run(data, tmp_path / "out", None, None, resume=True, init_from=tmp_path)

    state = write_ckpt(tmp_path / "out" / "ckpt")
    plan = run_plan.plan_run(data, tmp_path / "out", None, None, resume=True)
    assert plan.resume == state and plan.train_config == state.train_config and plan.notes == []
    plan = run_plan.plan_run(
        data, tmp_path / "out", CFG, state.train_config.replace(max_steps=20), resume=True
    )
    assert plan.notes == ["resuming with changed training settings: max_steps 10 vs 20 (checkpoint vs now)"]
    with pytest.raises(CheckpointError, match=r"the checkpoint's model disagrees .*n_layer 2 vs 3"):
        run_plan.plan_run(data, tmp_path / "out", CFG.replace(n_layer=3), None, resume=True)
    with pytest.raises(CheckpointError, match=r"already holds a run"):
        run_plan.plan_run(data, tmp_path / "out", CFG, None)

    other = make_data(tmp_path / "data101", vocab=101, n_train=500, n_val=100)
    with pytest.raises(
        CheckpointError, match=r"config.json: vocab_size 97, but the data in .* has vocab_size 101"
    ):
        run_plan.plan_run(other, tmp_path / "out", None, None, resume=True)
    with pytest.raises(CheckpointError, match=r"vocab_size 97, but the data"):
        run_plan.plan_run(other, tmp_path / "new", None, None, init_from=tmp_path / "out" / "ckpt")
    plan = run_plan.plan_run(
        data, tmp_path / "new", CFG.replace(dropout=0.2), None, init_from=tmp_path / "out" / "ckpt"
    )
    assert plan.model_config == CFG.replace(dropout=0.2) and plan.resume is None  # dropout may change


def test_recover_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    write_ckpt(ckpt)
    os.replace(ckpt, tmp_path / ".ckpt.old-1")
    (tmp_path / ".ckpt.tmp-2").mkdir()
    note = recovery.recover_checkpoint(ckpt)
    assert note is not None and ".ckpt.old-1" in note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert train_state.read_state_json(ckpt).step == 3
    assert recovery.recover_checkpoint(ckpt) is None


def test_devices():
    for dev in (mlx_device, torch_device):
        assert dev.resolve_device("cpu") == "cpu"
        assert dev.default_dtype("cpu") == "float32"  # CPU runs stay float32
        assert not dev.supports_bf16("cpu")
        with pytest.raises(DeviceError, match=r"bfloat16 is not supported on device 'cpu'"):
            dev.default_dtype("cpu", "bfloat16")
        with pytest.raises(DeviceError, match=r"unknown device 'tpu'"):
            dev.resolve_device("tpu")
        gpu_name = "gpu" if dev is mlx_device else dev.gpu_backend()
        assert dev.resolve_device("auto") == (gpu_name if dev.gpu_backend() else "cpu")
    if mlx_device.gpu_backend() is None:
        with pytest.raises(DeviceError, match=r"MLX sees no GPU"):
            mlx_device.resolve_device("gpu")
    if torch_device.gpu_backend() is None:
        with pytest.raises(DeviceError, match=r"PyTorch sees no CUDA device"):
            torch_device.resolve_device("cuda")
        with pytest.raises(DeviceError, match=r"PyTorch sees no GPU device"):
            torch_device.resolve_device("gpu")
    assert resolve_dtype("auto", "gpu", True) == "bfloat16"
    assert default_backend() in ("mlx", "torch")


def test_the_optimizer_file_header_is_in_key_order(tmp_path):
    """safetensors writes metadata in a per-process random order; sorted, equal runs give equal bytes."""
    from safetensors.numpy import load, save

    blob = save(
        {"b": np.ones(3, np.float32), "a": np.zeros(2, np.float32)}, {"z": "1", "jai": "x", "format": "np"}
    )
    done = train_state.sorted_metadata(blob)
    size = int.from_bytes(done[:8], "little")
    assert len(done) == len(blob) and done[8 + size :] == blob[8 + size :]
    assert list(json.loads(done[8 : 8 + size])["__metadata__"]) == ["format", "jai", "z"]
    assert {k: v.tolist() for k, v in load(done).items()} == {"a": [0, 0], "b": [1, 1, 1]}
