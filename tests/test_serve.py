"""`jai serve` as users meet it: a real server process per twin on loopback, a tiny real checkpoint, and
real clients (`httpx`, the official `openai` package). Greedy text is checked against the decoding loop
run directly on the checkpoint, so both twins, batching and streaming are all held to one reference:
each twin's server gives exactly that text, so the twins give the same text.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from jai.inference.decode import generate_tokens
from jai.inference.sampling import SamplingConfig
from jai.inference.twins import default_stop_ids
from jai.prompt import fit_prompt
from jai.server.prompts import budget
from jai.tokenizer import Tokenizer
from jai_torch import checkpoint as torch_ckpt
from tests.serve_support import LONG_TOKENS, POSTING, ServerProcess, health, make_checkpoint, wait_until

PROMPTS = ["We are hiring", "Requirements: SQL", "데이터 엔지니어", "Salary", "Python 3년 이상.", "a"]
MAX = 12  # new tokens per greedy request


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("serve") / "run")


@pytest.fixture(scope="module")
def tok(ckpt):
    return Tokenizer.load(ckpt / "tokenizer.json")


@pytest.fixture(scope="module")
def reference(ckpt, tok):
    """Greedy text straight from the decoding loop on the checkpoint: what every server must give."""
    model = torch_ckpt.load_model(ckpt)
    cfg = SamplingConfig(temperature=0.0, max_new_tokens=MAX, stop_ids=default_stop_ids(tok))

    def greedy(ids: list[int], max_new: int = MAX, **penalties: float) -> tuple[str, int]:
        new = generate_tokens(model, [ids], cfg.replace(max_new_tokens=max_new, **penalties))[0]
        return tok.decode(new), len(new)

    return greedy


@pytest.fixture(scope="module", params=["torch", "mlx"])
def server(request, ckpt, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / f"{request.param}.log"
    args = ["--backend", request.param, "--max-concurrent", "4", "--max-waiting", "4"]
    proc = ServerProcess(ckpt, *args, "--max-new-tokens", str(LONG_TOKENS), log=log)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def oai(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_openai_client_completions_streamed_and_not(server, oai, tok, reference):
    assert [m.id for m in oai.models.list().data] == ["run"]
    for prompt in PROMPTS[:3]:
        want, n = reference(tok.encode(prompt))
        r = oai.completions.create(model="run", prompt=prompt, max_tokens=MAX, temperature=0)
        assert r.choices[0].text == want
        assert r.choices[0].finish_reason == ("length" if n == MAX else "stop")
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (len(tok.encode(prompt)), n)
        chunks = list(
            oai.completions.create(
                model="run",
                prompt=prompt,
                max_tokens=MAX,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert "".join(c.choices[0].text for c in chunks if c.choices) == want
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == n
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == r.choices[0].finish_reason


def test_openai_client_chat_in_the_training_format(server, oai, tok, reference):
    question = "What is the salary?"
    ids, shortened = fit_prompt(tok, question, POSTING, budget(64, MAX))
    assert shortened  # the posting is longer than the context: the server must shorten it, not the question
    want, n = reference(ids)
    messages = [{"role": "system", "content": POSTING}, {"role": "user", "content": question}]
    r = oai.chat.completions.create(model="run", messages=messages, max_tokens=MAX, temperature=0)
    assert r.choices[0].message.content == want and r.choices[0].message.role == "assistant"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (len(ids), n)
    assert r.model_extra["jai"] == {"posting_shortened": True}
    stream = oai.chat.completions.create(
        model="run", messages=messages, max_tokens=MAX, temperature=0, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == want
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == r.choices[0].finish_reason
    assert chunks[-1].usage.total_tokens == len(ids) + n  # the final chunk carries the usage

    # JAI's own route: the same question and posting give the same answer
    body = {"question": question, "posting": POSTING, "max_new_tokens": MAX, "temperature": 0}
    g = httpx.post(f"{server.url}/generate", json=body, timeout=30).json()
    assert g == {
        "text": want,
        "tokens": n,
        "prompt_tokens": len(ids),
        "finish_reason": r.choices[0].finish_reason,
        "posting_shortened": True,
    }
    with httpx.stream("POST", f"{server.url}/generate", json=body | {"stream": True}, timeout=30) as s:
        assert s.headers["x-jai-posting-shortened"] == "true"
        events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e) for e in events[:-1]]
    assert "".join(p["text"] for p in pieces) == want and pieces[-1]["tokens"] == n


def test_stop_strings_end_the_text_before_them(server, oai, tok, reference):
    prompt = PROMPTS[0]
    full, _ = reference(tok.encode(prompt))
    stop = full[4:7]
    want = full[: full.index(stop)]
    r = oai.completions.create(model="run", prompt=prompt, max_tokens=MAX, temperature=0, stop=[stop, "zzz"])
    assert (r.choices[0].text, r.choices[0].finish_reason) == (want, "stop")
    chunks = oai.completions.create(
        model="run", prompt=prompt, max_tokens=MAX, temperature=0, stop=stop, stream=True
    )
    assert "".join(c.choices[0].text for c in chunks) == want


def test_penalties_reach_the_decoding_loop_from_every_route(server, oai, tok, reference):
    long = 40  # enough tokens for the random model to repeat itself, so the penalties have work to do
    openai_style = {"frequency_penalty": 1.5, "presence_penalty": 0.5}
    prompt = PROMPTS[0]
    want, _ = reference(tok.encode(prompt), long, **openai_style)
    assert want != reference(tok.encode(prompt), long)[0]
    r = oai.completions.create(model="run", prompt=prompt, max_tokens=long, temperature=0, **openai_style)
    assert r.choices[0].text == want

    question = "What is the salary?"
    ids, _ = fit_prompt(tok, question, POSTING, budget(64, long))
    messages = [{"role": "system", "content": POSTING}, {"role": "user", "content": question}]
    chat = oai.chat.completions.create(
        model="run", messages=messages, max_tokens=long, temperature=0, **openai_style
    )
    assert chat.choices[0].message.content == reference(ids, long, **openai_style)[0]

    transformers_style = {"repetition_penalty": 1.5, "no_repeat_ngram_size": 2}
    want, n = reference(ids, long, **transformers_style)
    assert want != reference(ids, long)[0]
    body = {"question": question, "posting": POSTING, "max_new_tokens": long, "temperature": 0}
    g = httpx.post(f"{server.url}/generate", json=body | transformers_style, timeout=30).json()
    assert (g["text"], g["tokens"]) == (want, n)


def test_a_seed_repeats_a_sample_alone_and_in_a_batch(server, oai):
    ask = dict(model="run", prompt="We are hiring", max_tokens=MAX, temperature=1.0, top_p=0.9, seed=7)
    ask["extra_body"] = {"top_k": 20}  # top_k is not an OpenAI parameter: the client passes it through
    alone = [oai.completions.create(**ask).choices[0].text for _ in range(2)]
    texts: list[str] = []
    others = dict(model="run", prompt="Salary", max_tokens=MAX, temperature=0.0)
    threads = [threading.Thread(target=lambda: oai.completions.create(**others)) for _ in range(3)]
    threads.append(
        threading.Thread(target=lambda: texts.append(oai.completions.create(**ask).choices[0].text))
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert alone[0] and alone == [alone[0], *texts]  # its own random stream, whatever runs beside it


def test_greedy_text_is_the_same_alone_and_in_a_batch(server, tok, reference):
    def ask(prompt: str) -> str:
        body = {"prompt": prompt, "max_tokens": MAX, "temperature": 0}
        r = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["text"]

    h = health(server.url)
    prompts = PROMPTS[: h["max_concurrent"] + h["max_waiting"]]  # all at once, none refused
    alone = [ask(p) for p in prompts]
    before = health(server.url)
    together: dict[int, str] = {}
    threads = [
        threading.Thread(target=lambda i=i, p=p: together.update({i: ask(p)})) for i, p in enumerate(prompts)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    after = health(server.url)
    if h["max_concurrent"] > 1:  # they did share decode steps: fewer steps than tokens
        assert after["tokens"] - before["tokens"] > after["steps"] - before["steps"], (before, after)
    assert (
        [together.get(i) for i in range(len(prompts))]
        == alone
        == [reference(tok.encode(p))[0] for p in prompts]
    )


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("/v1/completions", {"prompt": "a", "temperature": float("nan")}, "temperature"),
        ("/v1/completions", {"prompt": "a", "temperature": float("inf")}, "temperature"),
        ("/v1/completions", {"prompt": "a", "temperature": 1e-40}, "temperature"),
        ("/v1/completions", {"prompt": "a", "temperature": -0.5}, "temperature"),
        ("/v1/completions", {"prompt": "a", "top_p": float("-inf")}, "top_p"),
        ("/v1/completions", {"prompt": "a", "top_p": 0}, "top_p"),
        ("/v1/completions", {"prompt": "a", "top_k": 0}, "top_k"),
        ("/v1/completions", {"prompt": "\ud800abc"}, "prompt"),
        ("/v1/completions", {"prompt": "a", "stop": ["\udfff"]}, "stop"),
        ("/v1/completions", {"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ("/v1/completions", {"prompt": "a", "max_tokens": 0}, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "max_tokens": LONG_TOKENS + 1}, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "max_tokens": "5"}, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "max_tokens": 2.5}, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "seed": -1}, "seed"),
        ("/v1/completions", {"prompt": "a", "n": 2}, "n"),
        ("/v1/completions", {"prompt": "a", "presence_penalty": 2.5}, "presence_penalty"),
        ("/v1/completions", {"prompt": "a", "frequency_penalty": -2.01}, "frequency_penalty"),
        ("/v1/completions", {"prompt": "a", "frequency_penalty": float("nan")}, "frequency_penalty"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "a"}], "presence_penalty": -3},
            "presence_penalty",
        ),
        ("/v1/completions", {"prompt": "a", "repetition_penalty": 1.2}, "repetition_penalty"),  # not OpenAI's
        ("/generate", {"question": "a", "repetition_penalty": 0}, "repetition_penalty"),
        ("/generate", {"question": "a", "repetition_penalty": float("inf")}, "repetition_penalty"),
        ("/generate", {"question": "a", "no_repeat_ngram_size": -1}, "no_repeat_ngram_size"),
        ("/generate", {"question": "a", "no_repeat_ngram_size": 2.5}, "no_repeat_ngram_size"),
        ("/generate", {"question": "a", "frequency_penalty": 1}, "frequency_penalty"),  # not this route's
        ("/v1/completions", {"prompt": "a", "stream": "yes"}, "stream"),
        ("/v1/completions", {"prompt": "a", "logprobs": 3}, "logprobs"),
        ("/v1/completions", {"prompt": "a", "temprature": 1}, "temprature"),
        ("/v1/completions", {"prompt": ""}, "prompt"),
        ("/v1/completions", {"prompt": POSTING * 3}, "prompt"),  # too long to leave room to answer
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "\ud800"}]}, "messages.content"),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": POSTING}]}, "question"),
        ("/generate", {"question": "a", "temperature": float("nan")}, "temperature"),
        ("/generate", {"question": "\ud800abc"}, "question"),
        ("/generate", {"prompt": "raw text"}, None),
    ],
)
def test_every_bad_input_is_a_422_naming_the_field(server, route, body, param):
    # json.dumps writes NaN/Infinity literals and lone surrogates as \\u escapes, as a hostile client would
    r = httpx.post(
        f"{server.url}{route}",
        content=json.dumps(body),
        timeout=30,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param and error["message"].startswith(f"{param}: "), error


def test_other_refusals(server):
    url = server.url
    post = lambda path, **kw: httpx.post(f"{url}{path}", timeout=30, **kw)  # noqa: E731
    assert (
        post(
            "/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert post("/v1/completions", json=[1, 2]).status_code == 422
    r = post("/v1/completions", json={"prompt": "a", "model": "gpt-4"})
    assert r.status_code == 404 and "'run'" in r.json()["error"]["message"]
    # a 10 MB prompt is refused before it is read: by its Content-Length, and counted when chunked
    big = json.dumps({"prompt": "x" * 10_000_000}).encode()
    assert post("/v1/completions", content=big).status_code == 413
    r = post("/v1/completions", content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]))
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    assert health(url)["status"] == "ok"
    # a posting of nearly the whole body limit is shortened to fit (and never tokenized whole)
    body = {"question": "Where?", "posting": POSTING * 800, "max_new_tokens": 4, "temperature": 0}
    r = post("/generate", json=body)
    assert r.status_code == 200 and r.json()["posting_shortened"] is True, r.text


def test_a_full_queue_gets_429_and_disconnects_free_their_slots(server):
    url = server.url
    h = health(url)
    capacity = h["max_concurrent"] + h["max_waiting"]
    body = {"prompt": "We are hiring", "max_tokens": LONG_TOKENS, "temperature": 0, "stream": True}
    with httpx.Client(base_url=url, timeout=30) as client:
        streams = [client.stream("POST", "/v1/completions", json=body) for _ in range(capacity)]
        responses = [s.__enter__() for s in streams]
        assert all(r.status_code == 200 for r in responses)
        full = wait_until(lambda: health(url)["waiting"] == h["max_waiting"], timeout=10)
        assert full, health(url)
        assert health(url)["running"] == h["max_concurrent"]
        r = httpx.post(f"{url}/v1/completions", json=body | {"stream": False}, timeout=5)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        for s in streams:  # every client goes away: running and queued work must go within a second
            s.__exit__(None, None, None)
        t0 = time.monotonic()
        idle = wait_until(lambda: (lambda x: x["running"] == 0 and x["waiting"] == 0)(health(url)), 1.0)
        assert idle, f"still busy {time.monotonic() - t0:.2f} s after every client left: {health(url)}"


def test_a_non_streaming_client_that_leaves_frees_its_slot(server):
    url = server.url
    body = {"prompt": "We are hiring", "max_tokens": LONG_TOKENS, "temperature": 0}
    for _ in range(2):  # the first runs; with max_concurrent 1 the second waits, else both run
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/completions", json=body, timeout=httpx.Timeout(10, read=0.5))
    idle = wait_until(lambda: (lambda x: x["running"] == 0 and x["waiting"] == 0)(health(url)), 1.0)
    assert idle, health(url)


# The /health probe runs in a process of its own, niced up where allowed: what is measured is the
# server's answer, not the wait of a probe sharing the GIL with 32 clients or starved by the OS.
PROBE = """
import contextlib, json, os, sys, time, httpx
with contextlib.suppress(OSError):
    os.nice(-10)
url, seconds, out = sys.argv[1], float(sys.argv[2]), []
with httpx.Client(timeout=5) as c:
    c.get(url + "/health")
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        assert c.get(url + "/health").status_code == 200
        out.append(time.perf_counter() - t0)
        time.sleep(0.02)
print(json.dumps(out))
"""


def test_32_clients_at_once_get_answers_or_a_clean_429_and_health_stays_fast(server, tok, reference):
    url = server.url
    want = {p: reference(tok.encode(p), 8)[0] for p in PROMPTS}
    outcomes: dict[int, int] = {}
    seconds = 3.0

    async def client(i: int, until: float) -> None:
        prompt = PROMPTS[i % len(PROMPTS)]
        body = {"prompt": prompt, "max_tokens": 8, "temperature": 0, "stream": i % 2 == 1}
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            while time.monotonic() < until:
                r = await c.post("/v1/completions", json=body)
                outcomes[r.status_code] = outcomes.get(r.status_code, 0) + 1
                assert r.status_code in (200, 429), r.text
                if r.status_code == 429:
                    assert r.headers["retry-after"]
                    await asyncio.sleep(0.05)
                elif body["stream"]:
                    lines = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
                    assert lines[-1] == "[DONE]"
                    assert "".join(json.loads(x)["choices"][0]["text"] for x in lines[:-1]) == want[prompt]
                else:
                    assert r.json()["choices"][0]["text"] == want[prompt]

    async def main() -> None:
        until = time.monotonic() + seconds
        await asyncio.wait_for(asyncio.gather(*(client(i, until) for i in range(32))), timeout=60)

    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, url, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert probe.stdout is not None and probe.stdout.readline().strip() == "ready"
    try:
        asyncio.run(main())
    finally:
        out, _ = probe.communicate(timeout=30)
    health_seconds = json.loads(out)
    assert outcomes.get(200, 0) > 0 and set(outcomes) <= {200, 429}, outcomes
    assert len(health_seconds) > 20
    # Within 100 ms throughout, but for at most one probe: on a 2-core machine the OS may hold back any one
    # request for a moment; an event loop blocked by generation or tokenization would delay every probe
    # sent while it is blocked (they go every 20 ms), not one, and no probe may take as long as a second.
    slow = [round(t * 1000) for t in health_seconds if t >= 0.1]
    assert len(slow) <= 1 and max(health_seconds) < 1.0, f"/health took {slow} ms under load"
    assert wait_until(lambda: health(url)["running"] == 0, 5)


def test_metrics_count_requests_tokens_and_latency(server, oai):
    oai.completions.create(model="run", prompt="Salary", max_tokens=3, temperature=0)
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }
    assert values['jai_requests_total{route="/v1/completions",code="200"}'] >= 1
    assert values["jai_completion_tokens_total"] >= 3 and values["jai_prompt_tokens_total"] >= 1
    assert values['jai_request_duration_seconds_count{route="/v1/completions"}'] >= 1
    assert values["jai_requests_running"] == 0
    assert "jai_time_to_first_token_seconds_bucket" in text and "jai_rejected_total" in text
    assert values["jai_engine_steps_total"] >= 1 and values["jai_engine_tokens_total"] >= 3


def test_the_serving_bench_measures_a_real_server(server):
    from jai.benchmarks import serve_bench

    body = {"prompt": "We are hiring", "max_tokens": 4, "temperature": 0}
    row = asyncio.run(serve_bench.load(server.url, body, concurrency=2, seconds=0.5))
    assert row["requests"] > 0 and row["errors"] == 0 and row["refused"] == 0
    assert 0 < row["p50_s"] <= row["p99_s"] and row["tokens_per_s"] > 0
    rows = [{"framework": "torch", "device": "cpu", "batching": b, **row, "concurrency": 8} for b in (1, 0)]
    table = serve_bench.render(
        {
            "size": "tiny",
            "prompt_tokens": 3,
            "new_tokens": 4,
            "seconds_per_cell": 0.5,
            "max_batch": 32,
            "cpus": 2,
            "loadavg_start": 1.0,
            "loadavg_end": 1.0,
            "rows": rows,
        }
    )
    assert "| torch | cpu | yes | 8 |" in table and "torch cpu: 1.00x" in table
