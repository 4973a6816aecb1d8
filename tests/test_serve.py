"""The HTTP server: routes, validation, the concurrency bound, and both twins behind it.

Requests go only to FastAPI's in-process TestClient. A character-level tokenizer stands in for the real
one, so these tests do not depend on jai/tokenizer.py.
"""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from jai.config import GPTConfig
from jai.sampling import SamplingConfig
from jai.serve import create_app, default_stop_ids, load_generate_fn

ALPHABET = "\x00abcdefghijklmnopqrstuvwxyz ,.?!"  # id 0 is end-of-text


class CharTokenizer:
    """One id per character of ALPHABET; characters outside it are dropped."""

    eos_id = 0

    def encode(self, text: str) -> list[int]:
        return [ALPHABET.index(c) for c in text if c in ALPHABET[1:]]

    def decode(self, ids: list[int]) -> str:
        return "".join(ALPHABET[i] for i in ids)

    def token_id(self, name: str) -> int:
        if name == "[EOS]":
            return 0
        raise KeyError(name)


def echo(ids: list[int], cfg: SamplingConfig) -> list[int]:
    """A stand-in model: the prompt backwards, as many tokens as asked for."""
    echo.last_cfg = cfg
    return (ids[::-1] * cfg.max_new_tokens)[: cfg.max_new_tokens]


@pytest.fixture
def client():
    with TestClient(create_app(echo, CharTokenizer(), max_concurrent=2, max_new_tokens_limit=64)) as c:
        yield c


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "max_concurrent": 2, "running": 0, "waiting": 0}


def test_generate_returns_text_and_passes_the_parameters(client):
    r = client.post(
        "/generate",
        json={"prompt": "abc", "max_new_tokens": 5, "temperature": 0.5, "top_k": 3, "top_p": 0.9, "seed": 7},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "cbacb", "tokens": 5, "finish_reason": "length"}
    assert echo.last_cfg == SamplingConfig(
        temperature=0.5, top_k=3, top_p=0.9, max_new_tokens=5, seed=7, stop_ids=(0,)
    )


def test_generate_defaults(client):
    r = client.post("/generate", json={"prompt": "hi"})
    assert r.status_code == 200
    # SamplingConfig's defaults, but no more new tokens than the app allows
    assert echo.last_cfg == SamplingConfig(stop_ids=(0,), max_new_tokens=64)
    assert r.json()["tokens"] == 64


def test_finish_reason_stop_when_fewer_tokens_come_back():
    app = create_app(lambda ids, cfg: ids[:1], CharTokenizer())
    with TestClient(app) as c:
        assert c.post("/generate", json={"prompt": "xyz", "max_new_tokens": 4}).json() == {
            "text": "x",
            "tokens": 1,
            "finish_reason": "stop",
        }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "€€"}, "prompt"),  # encodes to no tokens
        ({"prompt": 5}, "prompt"),
        ({"prompt": "a", "max_new_tokens": 0}, "max_new_tokens"),
        ({"prompt": "a", "max_new_tokens": 65}, "max_new_tokens"),  # over the app's limit
        ({"prompt": "a", "max_new_tokens": "5"}, "max_new_tokens"),
        ({"prompt": "a", "max_new_tokens": 2.5}, "max_new_tokens"),
        ({"prompt": "a", "temperature": -1}, "temperature"),
        ({"prompt": "a", "temperature": "hot"}, "temperature"),
        ({"prompt": "a", "top_k": 0}, "top_k"),
        ({"prompt": "a", "top_p": 0}, "top_p"),
        ({"prompt": "a", "top_p": 1.5}, "top_p"),
        ({"prompt": "a", "seed": -3}, "seed"),
        ({"prompt": "a", "temprature": 1.0}, "temprature"),  # a typo is not silently ignored
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, body, field):
    r = client.post("/generate", json=body)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(field in e["loc"] for e in errors), errors
    assert all(e["msg"] for e in errors)


def test_not_json_is_a_422(client):
    r = client.post("/generate", content=b"prompt=hi", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_default_stop_ids_from_the_tokenizer():
    assert default_stop_ids(CharTokenizer()) == (0,)
    assert default_stop_ids(object()) == ()
    with pytest.raises(ValueError, match="max_concurrent"):
        create_app(echo, CharTokenizer(), max_concurrent=0)


def test_the_semaphore_bounds_concurrent_generations():
    lock = threading.Lock()
    state = {"active": 0, "peak": 0, "calls": 0}
    release = threading.Event()

    def slow(ids: list[int], cfg: SamplingConfig) -> list[int]:
        with lock:
            state["active"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["active"])
        try:
            release.wait(timeout=10)
            time.sleep(0.02)
            return ids
        finally:
            with lock:
                state["active"] -= 1

    n = 6
    with TestClient(create_app(slow, CharTokenizer(), max_concurrent=2)) as client:
        results: list[int] = []

        def call(i: int) -> None:
            r = client.post("/generate", json={"prompt": "ab" * (i + 1), "max_new_tokens": 3})
            results.append(r.status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        # Every request arrives; two run, four wait; the event loop still answers /health meanwhile.
        deadline = time.monotonic() + 10
        while True:
            health = client.get("/health").json()
            if health["running"] + health["waiting"] == n or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        time.sleep(0.1)  # give a broken bound the chance to start a third
        assert health == {"status": "ok", "max_concurrent": 2, "running": 2, "waiting": 4}
        assert state["peak"] == 2
        release.set()
        for t in threads:
            t.join(timeout=20)
        assert client.get("/health").json()["running"] == 0
    assert results == [200] * n
    assert state["calls"] == n and state["peak"] == 2


TINY = GPTConfig(vocab_size=len(ALPHABET), block_size=16, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from jai_torch.checkpoint import save_model
    from jai_torch.model import GPT

    path = tmp_path_factory.mktemp("serve") / "model"
    save_model(GPT(TINY, seed=1), path)
    return path


def test_both_twins_serve_the_same_greedy_text(ckpt):
    texts = {}
    for backend in ("torch", "mlx"):
        generate_fn, config = load_generate_fn(ckpt, backend)
        assert config == TINY
        with TestClient(create_app(generate_fn, CharTokenizer(), stop_ids=())) as client:
            body = {"prompt": "what is the salary?", "max_new_tokens": 24, "temperature": 0}
            replies = [client.post("/generate", json=body) for _ in range(2)]
            assert [r.status_code for r in replies] == [200, 200], replies[0].text
            assert replies[0].json() == replies[1].json()
            assert replies[0].json()["tokens"] == 24
            texts[backend] = replies[0].json()["text"]
            # a seeded sample is repeatable too, and concurrent requests do not disturb each other
            body = {"prompt": "hello", "max_new_tokens": 10, "temperature": 1.0, "seed": 3}
            out: list[str] = []

            def ask(payload: dict, sink: list[str]) -> None:
                sink.append(client.post("/generate", json=payload).json()["text"])

            threads = [threading.Thread(target=ask, args=(body, out)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert len(out) == 4 and len(set(out)) == 1
    assert texts["torch"] == texts["mlx"]


def test_unknown_backend_is_refused(ckpt):
    with pytest.raises(ValueError, match="backend"):
        load_generate_fn(ckpt, "jax")
