"""`jai sample` end to end: a real tiny checkpoint (BPE tokenizer + random GPT), both twins, no mocks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jai import cli
from jai.cli import sample as sample_cli
from jai.inference.sampling import SamplingConfig
from jai.inference.twins import default_stop_ids
from jai.prompt import build_prompt, fit_prompt
from jai.tokenizer import Tokenizer
from jai_torch import checkpoint as torch_ckpt
from jai_torch import generate as torch_gen
from tests import serve_support

PROMPT = "We are hiring"
# a --question gets these penalties by default; a raw --prompt only when the flags ask for them
QUESTION_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in sample_cli.QUESTION_PENALTIES.items()]


def make_checkpoint(run_dir: Path) -> Path:
    """A tokenizer and a random GPT of its vocabulary (context 32), saved as `<run_dir>/ckpt`."""
    return serve_support.make_checkpoint(run_dir, block_size=32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "run"
    make_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def ckpt(run_dir):
    return run_dir / "ckpt"


@pytest.fixture(scope="module")
def tok(ckpt):
    return Tokenizer.load(ckpt / "tokenizer.json")


def sample(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["sample", *argv])  # through the dispatcher, which reports errors for every command
    out, err = capsys.readouterr()
    return code, out, err


def expected_greedy(ckpt, tok, text: str, max_new_tokens: int) -> str:
    cfg = SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens, stop_ids=default_stop_ids(tok))
    model = torch_ckpt.load_model(ckpt)
    return tok.decode(torch_gen.generate_tokens(model, [tok.encode(text)], cfg)[0])


def test_greedy_is_the_same_with_both_twins_and_matches_generate_tokens(capsys, ckpt, tok):
    outs = {}
    for backend in ("torch", "mlx"):
        code, outs[backend], err = sample(
            capsys, str(ckpt), "--backend", backend, "--prompt", PROMPT, "--temperature", "0",
            "--max-new-tokens", "20",
        )  # fmt: skip
        assert code == 0, err
        assert "tokens/s" in err  # the summary goes to stderr, not into the text
    want = expected_greedy(ckpt, tok, PROMPT, 20)
    assert len(want) > 5  # the random model does say something
    assert outs["torch"] == outs["mlx"] == want + "\n"


def test_no_stream_prints_the_same_text(capsys, ckpt):
    argv = [
        str(ckpt),
        "--backend",
        "torch",
        "--prompt",
        PROMPT,
        "--temperature",
        "0",
        "--max-new-tokens",
        "20",
    ]
    _, streamed, _ = sample(capsys, *argv)
    _, whole, _ = sample(capsys, *argv, "--no-stream")
    assert streamed == whole


def test_a_run_dir_and_the_ckpt_flag_are_accepted(capsys, run_dir, ckpt):
    argv = ["--backend", "torch", "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "8"]
    _, direct, _ = sample(capsys, str(ckpt), *argv)
    code, via_run, err = sample(capsys, "--ckpt", str(run_dir), *argv)
    assert code == 0, err
    assert via_run == direct


def test_question_is_wrapped_in_the_training_format(capsys, ckpt, tmp_path):
    # Short enough for the test model's context of 32 with room for 8 new tokens: nothing is shortened.
    question, doc = "Salary?", "negotiable."
    common = ["--backend", "torch", "--temperature", "0", "--max-new-tokens", "8"]
    raw_prompt = "[BOS]" + build_prompt(question, doc)
    _, raw, _ = sample(capsys, str(ckpt), *common, *QUESTION_FLAGS, "--prompt", raw_prompt)
    _, asked, err = sample(capsys, str(ckpt), *common, "--question", question, "--doc", doc)
    (tmp_path / "posting.txt").write_text(doc + "\n", encoding="utf-8")
    _, from_file, _ = sample(
        capsys, str(ckpt), *common, "--question", question, "--doc-file", str(tmp_path / "posting.txt")
    )
    assert asked == raw == from_file
    assert "shortened" not in err


def test_a_long_document_is_shortened_never_the_question(capsys, ckpt, tok):
    question = "SQL?"
    doc = (
        "We are hiring a backend engineer in Seoul. Requirements: SQL, Spark, and a love of clean pipelines."
    )
    common = ["--backend", "torch", "--temperature", "0", "--max-new-tokens", "8"]
    code, asked, err = sample(capsys, str(ckpt), *common, "--question", question, "--doc", doc)
    assert code == 0, err
    assert "the document of question 1 was shortened" in err and "only its last" not in err
    ids, shortened = fit_prompt(tok, question, doc, 32 - 8)
    assert shortened and len(ids) <= 24
    assert tok.decode(ids).endswith(build_prompt(question, "").split("[/DOC]")[1])  # the question, whole
    fitted_prompt = tok.decode(ids, keep_control=True)
    _, fitted, _ = sample(capsys, str(ckpt), *common, *QUESTION_FLAGS, "--prompt", fitted_prompt)
    assert asked == fitted


def test_a_batch_prints_each_prompt_after_the_other(capsys, ckpt, tok):
    prompts = [PROMPT, "데이터", "Requirements: SQL"]
    argv = ["--backend", "mlx", "--temperature", "0", "--max-new-tokens", "10"]
    code, out, err = sample(capsys, str(ckpt), *argv, *[a for p in prompts for a in ("--prompt", p)])
    assert code == 0, err
    for i, p in enumerate(prompts):
        header = f"{'=' * 20} sample {i + 1} of 3 {'=' * 20}\n"
        assert header in out
        assert header + expected_greedy(ckpt, tok, p, 10) + "\n" in out


def test_a_seed_makes_a_sample_repeatable(capsys, ckpt):
    argv = [str(ckpt), "--backend", "torch", "--prompt", PROMPT, "--temperature", "1.0", "--top-k", "20"]
    runs = [
        sample(capsys, *argv, "--top-p", "0.9", "--seed", "7", "--max-new-tokens", "15")[1] for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_streaming_never_splits_a_character(tok):
    text = "근무지: 서울 강남구, 연봉 협의. Python 3년 이상."
    ids = tok.encode(text)
    assert any("\ufffd" in tok.decode([i]) for i in ids)  # some tokens are bytes of a Hangul character
    pieces = list(sample_cli.stream_text(tok, ([i] for i in ids)))
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


# --- errors: a message naming the thing, a non-zero exit, no traceback ----------------------------------


def test_missing_checkpoint_dir(capsys, tmp_path):
    code, out, err = sample(capsys, str(tmp_path / "nope"), "--prompt", "hi")
    assert code == 2 and out == ""
    assert "nope" in err and "no such checkpoint directory" in err and "Traceback" not in err


def test_a_directory_that_is_not_a_checkpoint(capsys, tmp_path):
    code, _, err = sample(capsys, str(tmp_path), "--prompt", "hi")
    assert code == 2
    assert "config.json" in err


def test_missing_tokenizer_is_named_and_tokenizer_flag_fixes_it(capsys, ckpt, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(ckpt, bare)
    (bare / "tokenizer.json").unlink()
    code, _, err = sample(capsys, str(bare), "--backend", "torch", "--prompt", "hi")
    assert code == 2
    assert "tokenizer.json" in err and "--tokenizer" in err
    argv = ["--backend", "torch", "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "6"]
    code, out, err = sample(capsys, str(bare), *argv, "--tokenizer", str(ckpt / "tokenizer.json"))
    assert code == 0, err
    assert out == sample(capsys, str(ckpt), *argv)[1]


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--top-p", "1.5"], "--top-p"),
        (["--top-k", "0"], "--top-k"),
        (["--temperature", "-1"], "--temperature"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
    ],
)
def test_bad_sampling_flags_are_named(capsys, ckpt, flags, named):
    code, out, err = sample(capsys, str(ckpt), "--prompt", "hi", *flags)
    assert code == 2 and out == ""
    assert f"error: {named} must" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "give --prompt TEXT, or --question"),
        (["--prompt", "a", "--question", "b"], "not both"),
        (["--prompt", "a", "--doc", "b"], "--doc/--doc-file go with --question"),
        (["--prompt", ""], "encodes to no tokens"),
        (["--question", "q", "--doc-file", "/nonexistent/posting.txt"], "--doc-file"),
    ],
)
def test_bad_prompt_flags(capsys, ckpt, argv, message):
    code, _, err = sample(capsys, str(ckpt), *argv)
    assert code == 2
    assert message in err


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        sample_cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    flags = "--ckpt --tokenizer --backend --device --prompt --question --doc --doc-file --temperature"
    for flag in (flags + " --top-k --top-p --max-new-tokens --seed --no-stream").split():
        assert flag in out
    with pytest.raises(SystemExit) as e:
        cli.main(["sample", "--help"])
    assert e.value.code == 0
    assert "usage: jai sample" in capsys.readouterr().out


BLOCK_FASTAPI = """
import sys

class NoServeExtra:  # as if the `serve` extra were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fastapi", "starlette", "uvicorn"):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, NoServeExtra())
import jai.cli.run  # noqa: F401  (its twin loader must not need FastAPI either)
from jai.cli import main

code = main(sys.argv[1:])
assert not any(m.split(".")[0] in ("fastapi", "starlette", "uvicorn") for m in sys.modules), "imported"
sys.exit(code)
"""


def test_sample_runs_with_fastapi_unimportable(ckpt, tok):
    argv = ["sample", str(ckpt), "--backend", "torch", "--prompt", PROMPT, "--temperature", "0"]
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_FASTAPI, *argv, "--max-new-tokens", "12"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected_greedy(ckpt, tok, PROMPT, 12) + "\n"


SHOW_ENV = """
import os, sys
from jai.inference.twins import load_twin
load_twin(sys.argv[1], sys.argv[2], "cpu")
print(os.environ.get(sys.argv[3]))
"""


@pytest.mark.parametrize(
    ("backend", "env", "name", "want"),
    [
        ("torch", {}, "GOMP_SPINCOUNT", "0"),
        ("torch", {"OMP_WAIT_POLICY": "active"}, "GOMP_SPINCOUNT", "None"),
        ("mlx", {}, "OPENBLAS_NUM_THREADS", "1"),
        ("mlx", {"OPENBLAS_NUM_THREADS": "2"}, "OPENBLAS_NUM_THREADS", "2"),
    ],
)
def test_loading_a_twin_stops_busy_waiting_threads_unless_the_user_chose(ckpt, backend, env, name, want):
    """Idle BLAS / OpenMP threads that spin made decoding 10-100x slower on a busy machine
    (jai/inference/twins.py)."""
    chosen = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")
    base = {k: v for k, v in os.environ.items() if k not in chosen}
    proc = subprocess.run(
        [sys.executable, "-c", SHOW_ENV, str(ckpt), backend, name],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **env},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == want


def test_penalty_flags_reach_the_loop_in_both_twins(capsys, ckpt, tok):
    flags = ["--repetition-penalty", "1.5", "--no-repeat-ngram-size", "2"]
    argv = ["--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "30"]
    outs = {b: sample(capsys, str(ckpt), "--backend", b, *argv, *flags)[1] for b in ("torch", "mlx")}
    cfg = SamplingConfig(
        temperature=0.0,
        max_new_tokens=30,
        stop_ids=default_stop_ids(tok),
        repetition_penalty=1.5,
        no_repeat_ngram_size=2,
    )
    want = tok.decode(torch_gen.generate_tokens(torch_ckpt.load_model(ckpt), [tok.encode(PROMPT)], cfg)[0])
    assert outs["torch"] == outs["mlx"] == want + "\n"
    assert want != expected_greedy(ckpt, tok, PROMPT, 30)  # the penalties did change the text


@pytest.mark.parametrize(
    "argv, want",
    [
        (["--question", "q"], sample_cli.QUESTION_PENALTIES),
        (["--prompt", "p"], {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}),
        (["--question", "q", "--repetition-penalty", "1.7"], {"repetition_penalty": 1.7}),
        (["--prompt", "p", "--no-repeat-ngram-size", "4"], {"no_repeat_ngram_size": 4}),
    ],
)
def test_a_question_gets_the_measured_penalties_unless_a_flag_says_otherwise(argv, want):
    cfg = sample_cli.sampling_config(sample_cli.build_parser().parse_args(argv), ())
    assert {k: getattr(cfg, k) for k in want} == want


@pytest.mark.parametrize("flags", [["--repetition-penalty", "0"], ["--no-repeat-ngram-size", "-1"]])
def test_bad_penalty_flags_are_named(capsys, ckpt, flags):
    code, out, err = sample(capsys, str(ckpt), "--prompt", "hi", *flags)
    assert code == 2 and out == ""
    assert f"error: {flags[0]} must" in err
