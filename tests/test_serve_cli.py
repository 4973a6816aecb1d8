"""`jai serve`: its flags, and the app it builds from a real tiny checkpoint (in-process, no server)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jai import cli, serve_cli
from jai.sampling import SamplingConfig
from jai.serve import MAX_NEW_TOKENS_LIMIT, default_stop_ids
from jai.tokenizer import Tokenizer
from jai_torch import checkpoint as torch_ckpt
from jai_torch import generate as torch_gen
from tests.test_sample_cli import make_checkpoint

PROMPT = "We are hiring"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve_cli") / "run"
    make_checkpoint(path)
    return path


def parse(*argv: str):
    return serve_cli.build_parser().parse_args(list(argv))


def test_defaults():
    args = parse()
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert args.max_concurrent == 2 and args.max_new_tokens == MAX_NEW_TOKENS_LIMIT
    assert serve_cli.checkpoint_arg(args) == "out/run"
    args = parse("some/ckpt", "--backend", "mlx", "--port", "9000", "--max-concurrent", "4")
    assert (serve_cli.checkpoint_arg(args), args.backend, args.port, args.max_concurrent) == (
        "some/ckpt",
        "mlx",
        9000,
        4,
    )


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_the_app_serves_greedy_text_from_the_checkpoint(run_dir, backend):
    app = serve_cli.build_app(parse(str(run_dir), "--backend", backend, "--max-new-tokens", "16"))
    ckpt = run_dir / "ckpt"
    tok = Tokenizer.load(ckpt / "tokenizer.json")
    cfg = SamplingConfig(temperature=0.0, max_new_tokens=16, stop_ids=default_stop_ids(tok))
    want = torch_gen.generate_tokens(torch_ckpt.load_model(ckpt), [tok.encode(PROMPT)], cfg)[0]
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok"
        r = client.post("/generate", json={"prompt": PROMPT, "temperature": 0.0, "max_new_tokens": 16})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "text": tok.decode(want),
            "tokens": len(want),
            "finish_reason": "length" if len(want) == 16 else "stop",
        }
        # --max-new-tokens caps what a request may ask for
        r = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 17})
        assert r.status_code == 422 and "max_new_tokens" in r.text


def test_errors_exit_without_starting_a_server(capsys, run_dir, tmp_path):
    assert cli.main(["serve", str(tmp_path / "nope")]) == 2  # as for any bad input, in every command
    assert "no such checkpoint directory" in capsys.readouterr().err
    assert cli.main(["serve", str(run_dir), "--max-concurrent", "0"]) == 2
    assert "--max-concurrent must be at least 1" in capsys.readouterr().err
    assert cli.main(["serve", str(run_dir), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_help_explains_the_endpoints(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["serve", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for text in ("usage: jai serve", "POST /generate", "GET  /health", "curl", "--max-concurrent", "--port"):
        assert text in out
