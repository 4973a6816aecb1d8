"""Fault suite, serving: hostile sampling values and odd bodies against a real `jai serve`, while good
requests decode in the same batch. Only the bad request may fail, with a 422 naming its field, and both
twins answer every request with the same status: never a 500, and never a good request lost.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from jai.inference.decode import Batch, backend_for
from jai.inference.sampling import SamplingConfig, SamplingError
from jai.inference.twins import load_twin
from jai_torch import checkpoint as torch_ckpt
from tests.serve_support import LONG_TOKENS, ServerProcess, make_checkpoint, wait_until

GOOD_TOKENS = 40
# sampling values at the edges of what the schema accepts: each is a valid request, so each is a 200
HOSTILE = [
    {"top_p": 1e-46},  # rounds to 0 in float32: the nucleus must still hold the top token
    {"top_p": 5e-324},  # the smallest float64
    {"top_p": 1e-300, "temperature": 0.001},
    {"top_p": 1e-46, "top_k": 1},
    {"top_k": 10**9},
    {"temperature": 100.0, "top_p": 1e-45},
    {"seed": 2**63 - 1, "top_p": 0.5},
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("faults-serve") / "run")


def good_requests(url: str, results: list, start: threading.Event) -> list[threading.Thread]:
    """Two seeded sampling requests, streamed and not, that decode while the hostile ones come and go."""

    def one(stream: bool) -> None:
        body = {"prompt": "We are hiring", "max_tokens": GOOD_TOKENS, "temperature": 0.7, "seed": 1}
        body |= {"stop": None, "stream": stream}
        start.wait()
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as r:
            text = r.read().decode()
        results.append((stream, r.status_code, text))

    threads = [threading.Thread(target=one, args=(s,)) for s in (False, True)]
    for t in threads:
        t.start()
    return threads


def statuses(server: ServerProcess) -> list[int]:
    results: list = []
    start = threading.Event()
    threads = good_requests(server.url, results, start)
    start.set()
    got = []
    for extra in HOSTILE:
        body = {"prompt": "Requirements", "max_tokens": 8} | extra
        r = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60)
        assert r.status_code in (200, 422), (extra, r.status_code, r.text)
        got.append(r.status_code)
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2
    for stream, status, text in results:
        assert status == 200 and "error" not in text, text
        if not stream:
            assert json.loads(text)["usage"]["completion_tokens"] >= 1
    assert "Traceback" not in server.output(), server.output()
    return got


def test_hostile_sampling_fails_no_one_else_and_both_twins_agree(ckpt, tmp_path):
    seen = {}
    for twin in ("torch", "mlx"):
        server = ServerProcess(ckpt, "--backend", twin, "--max-concurrent", "4", log=tmp_path / f"{twin}.log")
        try:
            seen[twin] = statuses(server)
        finally:
            server.stop()
    assert seen["torch"] == seen["mlx"] == [200] * len(HOSTILE), seen


@pytest.mark.parametrize("twin", ["torch", "mlx"])
def test_a_top_p_below_float32_keeps_the_top_token(ckpt, twin):
    backend = backend_for(load_twin(ckpt, twin)[0])
    logits = backend.logits([[5, 6, 7]])
    top = backend.to_host(backend.argmax(logits))
    kept = backend.top_p_filter(backend.float32(logits), 1e-46)
    assert backend.to_host(backend.argmax(kept)) == top
    rng = backend.rng(0)
    assert backend.to_host(backend.draw(kept, rng)) == top  # the nucleus is that one token


def test_a_sampling_group_that_fails_ends_alone(ckpt, monkeypatch):
    """Whatever breaks one request's sampling, the rows of other requests in the batch go on."""
    backend = backend_for(torch_ckpt.load_model(ckpt))
    batch = Batch(backend, capacity=4)
    good = batch.sampler(SamplingConfig(temperature=0.7, seed=1, max_new_tokens=5))
    bad = batch.sampler(SamplingConfig(temperature=0.7, seed=2, max_new_tokens=5))
    draw = backend.draw

    def draw_or_fail(logits, rng):
        if rng is bad.rng:
            raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return draw(logits, rng)

    monkeypatch.setattr(backend, "draw", draw_or_fail)
    rows = [batch.add([5, 6, 7], good), batch.add([8, 9], bad), batch.add([5], good)]
    made = {id(r): 0 for r in rows}
    while len(batch):
        for row, token in batch.step():
            made[id(row)] += token is not None
    assert rows[1].finish_reason == "error" and isinstance(rows[1].error, SamplingError)
    assert "inf, nan" in str(rows[1].error) and made[id(rows[1])] == 0
    assert [rows[i].finish_reason for i in (0, 2)] == ["length", "length"]
    assert made[id(rows[0])] == made[id(rows[2])] == 5


@pytest.fixture(scope="module")
def server(ckpt, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "torch.log"
    proc = ServerProcess(ckpt, "--backend", "torch", "--max-new-tokens", str(LONG_TOKENS), log=log)
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    ("body", "param", "reason"),
    [
        ({"prompt": ""}, "prompt", "empty"),
        ({"prompt": "a", "logprobs": 5}, "logprobs", "not supported"),
        ({"prompt": "a", "echo": True}, "echo", "not supported"),
        ({"prompt": ["a", "b"]}, "prompt", "one prompt per request, got a list of 2"),
        ({"prompt": "a", "logit_bias": {"5": 1.0}}, "logit_bias", "not supported"),
    ],
)
def test_a_check_over_the_body_names_its_field(server, body, param, reason):
    r = httpx.post(f"{server.url}/v1/completions", json=body, timeout=30)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (
        error["param"] == param and error["message"].startswith(f"{param}: ") and reason in error["message"]
    )


def test_json_sent_as_text_plain_is_told_the_content_type(server):
    body = json.dumps({"prompt": "a", "max_tokens": 2})
    r = httpx.post(f"{server.url}/v1/completions", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Content-Type must be application/json, got 'text/plain'"


def metric_values(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line[:1] != "#"}


def test_a_streaming_client_that_leaves_is_counted_as_disconnected(server):
    before = metric_values(server.url)
    body = {"prompt": "We are hiring", "max_tokens": LONG_TOKENS, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # the first event: decoding is under way; then the client goes away
    key = 'jai_requests_total{route="/v1/completions",code="499"}'
    after = wait_until(lambda: (v := metric_values(server.url)).get(key, 0) > before.get(key, 0) and v, 10)
    assert after, "no 499 counted"
    assert after["jai_disconnected_total"] == before["jai_disconnected_total"] + 1
    ok = 'jai_requests_total{route="/v1/completions",code="200"}'
    assert after.get(ok, 0) == before.get(ok, 0)  # not counted as the 200 its response began with
    assert after["jai_requests_running"] == 0
