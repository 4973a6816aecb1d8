"""`jai convert`: explains itself, converts for real, and fails in one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file as torch_load_st

from jai import cli as jai_cli
from jai.checkpoint import folder, weights
from jai.convert import cli
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from tests.conftest import TINY
from tests.test_convert_hf import SHAPES, assert_twins_match_hf, hf_model
from tests.test_convert_nanogpt import model_args, nanogpt_state, save_ckpt

ROOT = Path(__file__).resolve().parents[1]


def test_help_names_every_format_the_dtype_option_and_examples(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for needle in (
        "jai checkpoint dir",
        "transformers",
        "mlx-lm",
        "hf dir",
        "nanogpt ckpt.pt",
        "torch state dict",
        "--dtype",
        "BF16",
        "examples:",
        "from-hf",
        "from-nanogpt",
        "to-nanogpt",
        "to-state-dict",
    ):
        assert needle in text, needle
    assert cli.main(["from-nanogpt", "--help"]) == 0
    assert "--tokenizer" in capsys.readouterr().out


def test_jai_convert_and_python_m_both_work(capsys):
    assert jai_cli.main(["convert", "--help"]) == 0
    assert "nanogpt ckpt.pt" in capsys.readouterr().out
    cmd = [sys.executable, "-m", "jai.convert.cli", "--help"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "torch state dict" in result.stdout


def test_from_hf_converts(tmp_path, capsys):
    model = hf_model(SHAPES[1], seed=3)
    model.save_pretrained(tmp_path / "hf")
    assert cli.main(["from-hf", str(tmp_path / "hf"), str(tmp_path / "jai")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'jai'} (F32, 2 layers")
    assert_twins_match_hf(tmp_path / "jai", model)
    assert cli.main(["from-hf", str(tmp_path / "hf"), str(tmp_path / "bf16"), "--dtype", "bf16"]) == 0
    assert folder.open_checkpoint(tmp_path / "bf16")[1] == "BF16"


def test_nanogpt_round_trip_through_the_cli(tmp_path, capsys):
    save_ckpt(tmp_path / "ckpt.pt", nanogpt_state(TINY, seed=4), model_args(TINY))
    assert cli.main(["from-nanogpt", str(tmp_path / "ckpt.pt"), str(tmp_path / "jai")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err  # nanoGPT's exact GELU is kept
    assert "jai convert: note:" in err and "jai sample and jai serve will refuse it" in err

    assert cli.main(["to-nanogpt", str(tmp_path / "jai"), str(tmp_path / "out" / "ckpt.pt")]) == 0
    assert "warning" not in capsys.readouterr().err  # an exact-GELU model goes back without one
    ckpt = torch_ckpt.save_model(torch_model.GPT(TINY), tmp_path / "tanh")
    assert cli.main(["to-nanogpt", str(ckpt), str(tmp_path / "tanh.pt")]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and warning[0].startswith("jai convert: warning:") and "GELU" in warning[0]
    back = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=True)
    assert torch.equal(
        back["model"]["transformer.h.0.attn.c_attn.weight"],
        nanogpt_state(TINY, seed=4)["transformer.h.0.attn.c_attn.weight"],
    )

    assert cli.main(["to-state-dict", str(tmp_path / "jai"), str(tmp_path / "sd.pt"), "--dtype", "F16"]) == 0
    sd = torch.load(tmp_path / "sd.pt", weights_only=True)
    assert sd["lm_head.weight"].dtype == torch.float16
    stored = torch_load_st(tmp_path / "jai" / weights.WEIGHTS_FILE)
    assert torch.equal(sd["transformer.wpe.weight"], stored["wpe.weight"].half())


def assert_one_line_error(capsys, needle: str) -> None:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("jai convert: error:") and needle in lines[0], lines[0]
    assert "Traceback" not in captured.err


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):  # reported by the `jai` dispatcher
    assert jai_cli.main(["convert", "from-hf", str(tmp_path / "nowhere"), str(tmp_path / "jai")]) == 2
    assert_one_line_error(capsys, "nowhere: no such directory")

    assert jai_cli.main(["convert", "from-nanogpt", str(tmp_path / "missing.pt"), str(tmp_path / "jai")]) == 2
    assert_one_line_error(capsys, "missing.pt: no such file")

    assert jai_cli.main(["convert", "to-nanogpt", str(tmp_path), str(tmp_path / "x.pt")]) == 2
    assert_one_line_error(capsys, "config.json: no such file")

    ckpt = torch_ckpt.save_model(torch_model.GPT(TINY), tmp_path / "jai")
    assert jai_cli.main(["convert", "from-hf", str(ckpt), str(tmp_path / "x"), "--dtype", "int4"]) == 2
    assert_one_line_error(capsys, "unknown dtype 'int4'")

    assert jai_cli.main(["convert", "from-hf", str(ckpt), str(ckpt)]) == 2
    assert_one_line_error(capsys, "already exists (pass --force")

    (tmp_path / "evil.pt").write_bytes(b"garbage bytes")
    assert jai_cli.main(["convert", "from-nanogpt", str(tmp_path / "evil.pt"), str(tmp_path / "y")]) == 2
    assert_one_line_error(capsys, "not a PyTorch checkpoint")


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert cli.main(["to-hf", "a", "b"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["to-nanogpt", "to-state-dict", "from-nanogpt"])
def test_commands_needing_torch_say_so(tmp_path, command):
    code = "import sys; sys.modules['torch'] = None\nfrom jai import cli\n"
    code += f"sys.exit(cli.main(['convert', {command!r}, 'a', 'b']))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "needs PyTorch: pip install -e '.[torch]'" in result.stderr and "Traceback" not in result.stderr
