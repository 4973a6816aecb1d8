"""`jai serve` as a command: its flags and help, errors before any server starts, an API key, and the
shutdown deadline with real signals sent to a real server process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from jai import cli
from jai.cli import serve as serve_cli
from jai.cli.serve import MAX_NEW_TOKENS_LIMIT
from tests.serve_support import LONG_TOKENS, ServerProcess, health, make_checkpoint, wait_until


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve_cli") / "run"
    make_checkpoint(path)
    return path


def parse(*argv: str):
    return serve_cli.build_parser().parse_args(list(argv))


def test_defaults_and_flags(monkeypatch):
    monkeypatch.delenv(serve_cli.API_KEY_ENV, raising=False)
    args = parse()
    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 8000, None)  # loopback, open
    assert args.max_new_tokens == MAX_NEW_TOKENS_LIMIT and not args.no_batching
    assert serve_cli.checkpoint_arg(args) == "out/run"
    args = parse("some/ckpt", "--backend", "mlx", "--port", "9000", "--max-concurrent", "4", "--api-key", "k")
    assert (serve_cli.checkpoint_arg(args), args.backend, args.port, args.max_concurrent, args.api_key) == (
        "some/ckpt",
        "mlx",
        9000,
        4,
        "k",
    )
    monkeypatch.setenv(serve_cli.API_KEY_ENV, "from-env")
    assert parse().api_key == "from-env"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-concurrent", "0"], "--max-concurrent must be at least 1"),
        (["--max-waiting", "-1"], "--max-waiting must be at least 0"),
        (["--port", "70000"], "--port must be in 0..65535"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--shutdown-timeout", "nan"], "--shutdown-timeout"),
        (["--api-key", ""], "--api-key is empty"),
        (["--api-key", "  "], "--api-key is empty"),
    ],
)
def test_bad_flags_exit_2_without_starting_a_server(capsys, run_dir, argv, message):
    assert cli.main(["serve", str(run_dir), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_checkpoint_is_reported(capsys, tmp_path):
    assert cli.main(["serve", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err


def test_help_explains_the_routes_with_examples(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["serve", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "usage: jai serve",
        "POST /v1/chat/completions",
        "POST /v1/completions",
        "POST /generate",
        "GET  /health",
        "GET  /metrics",
        "curl",
        "OpenAI(base_url=",
        "--api-key",
        "JAI_API_KEY",
        "--max-waiting",
        "--shutdown-timeout",
        "429",
    ):
        assert text in out, text


def test_listening_beyond_loopback_without_a_key_is_warned_about(run_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != serve_cli.API_KEY_ENV}
    cmd = [sys.executable, "-m", "jai.cli", "serve", str(run_dir), "--backend", "torch", "--port", "0"]
    proc = subprocess.Popen([*cmd, "--host", "0.0.0.0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        first_lines = [proc.stderr.readline() for _ in range(2)]
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert first_lines[0].startswith("jai serve: model 'run' (torch, context 64): up to 8 decoding together")
    assert "warning: listening on 0.0.0.0 without an API key" in first_lines[1]


def test_an_api_key_guards_every_route_but_health_and_sigterm_exits(run_dir, tmp_path):
    proc = ServerProcess(
        run_dir, "--backend", "torch", log=tmp_path / "log", env={serve_cli.API_KEY_ENV: "s3cret"}
    )
    try:
        body = {"prompt": "We are hiring", "max_tokens": 2}
        assert httpx.get(f"{proc.url}/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(f"{proc.url}/v1/completions", json=body, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert httpx.get(f"{proc.url}/v1/models").status_code == 401
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{proc.url}/v1", api_key="wrong", max_retries=0).models.list()
        headers = {"Authorization": "bearer s3cret"}  # the scheme is case-insensitive (RFC 7235)
        assert httpx.post(f"{proc.url}/v1/completions", json=body, headers=headers).status_code == 200
        good = openai.OpenAI(base_url=f"{proc.url}/v1", api_key="s3cret", max_retries=0)
        assert good.completions.create(
            model="run", prompt="We are hiring", max_tokens=2
        ).usage.completion_tokens
        # and SIGTERM on an idle server: a clean, prompt exit
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in proc.output()
        assert (
            "jai serve: model 'run' (torch, context 64)" in proc.output()
            and "API key required" in proc.output()
        )
        assert "warning" not in proc.output()  # loopback: no warning
    finally:
        proc.stop()


def long_stream(url: str) -> Iterator[str]:
    """The lines of a streamed generation that would run for minutes, once its first line has come."""
    body = {"prompt": "We are hiring", "max_tokens": LONG_TOKENS, "temperature": 0, "stream": True}
    client = httpx.Client(base_url=url, timeout=60)
    response = client.send(client.build_request("POST", "/v1/completions", json=body), stream=True)
    assert response.status_code == 200
    lines = response.iter_lines()
    assert next(lines).startswith("data: ")  # generation is under way
    return lines


def test_sigterm_cancels_in_flight_work_at_the_deadline(run_dir, tmp_path):
    args = ("--backend", "torch", "--max-new-tokens", str(LONG_TOKENS), "--shutdown-timeout", "1")
    proc = ServerProcess(run_dir, *args, log=tmp_path / "log")
    try:
        stream = long_stream(proc.url)  # about a minute of generation if nothing stopped it
        waiting: list[httpx.Response] = []  # and a client waiting for a whole long answer
        body = {"prompt": "We are hiring", "max_tokens": LONG_TOKENS, "temperature": 0}
        ask = threading.Thread(
            target=lambda: waiting.append(httpx.post(f"{proc.url}/v1/completions", json=body, timeout=60))
        )
        ask.start()
        assert wait_until(lambda: health(proc.url)["running"] == 2, 10)
        t0 = time.monotonic()
        proc.signal(signal.SIGTERM)
        rest = list(stream)  # the stream ends when the deadline cancels it
        ask.join(timeout=30)
        assert waiting[0].status_code == 503 and "shut down" in waiting[0].json()["error"]["message"]
        code = proc.proc.wait(timeout=30)
        assert time.monotonic() - t0 < 30
        assert code in (0, -signal.SIGTERM), proc.output()
        # ended cleanly before uvicorn's own deadline cut it: an error event, then [DONE]
        events = [line for line in rest if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and "shut down before this generation finished" in events[-2]
        assert "Application shutdown complete" in proc.output()
    finally:
        proc.stop()


def test_a_second_signal_exits_at_once(run_dir, tmp_path):
    args = ("--backend", "mlx", "--max-new-tokens", str(LONG_TOKENS), "--shutdown-timeout", "600")
    proc = ServerProcess(run_dir, *args, log=tmp_path / "log")
    try:
        stream = long_stream(proc.url)  # held open: the server has a request in flight
        proc.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.proc.poll() is None  # draining: the in-flight request has 600 s
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(timeout=30) == 128 + signal.SIGTERM
        assert "second signal" in proc.output()
        stream.close()
    finally:
        proc.stop()
