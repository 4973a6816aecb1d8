"""`jai serve --index`: a real server in a subprocess with an index of the bundled postings. A question
without a posting is answered from the posting found, and the response names it in the body and in the
stream; /v1/search returns postings; / is the web page."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from jai.data.postings import load_postings
from jai.data.prepare import BUNDLED_SAMPLE
from jai.retrieval.index import add_postings
from tests.serve_support import ServerProcess, make_checkpoint

QUESTION = "What does K-Style Fashion pay its Merchandiser?"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("serve-index")
    add_postings(tmp / "index", load_postings(BUNDLED_SAMPLE)[0])
    return make_checkpoint(tmp / "run", block_size=64), tmp / "index"


@pytest.fixture(scope="module")
def server(files, tmp_path_factory):
    ckpt, index = files
    s = ServerProcess(ckpt, "--index", str(index), log=tmp_path_factory.mktemp("log") / "serve.log")
    yield s
    s.stop()


def events(response: httpx.Response) -> list[dict]:
    lines = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_search_route(server):
    r = httpx.post(f"{server.url}/v1/search", json={"query": QUESTION, "k": 2}, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["id"] for d in data][:1] == ["sg-00001"] and len(data) == 2
    assert data[0]["title"] == "Merchandiser" and data[0]["score"] > data[1]["score"]
    nothing = httpx.post(f"{server.url}/v1/search", json={"query": "zzyzx"}, timeout=30)
    assert nothing.status_code == 422 and nothing.json()["error"]["param"] == "query"
    huge = httpx.post(f"{server.url}/v1/search", json={"query": "pay " * 1000}, timeout=30)
    assert huge.status_code == 422 and "at most 2000" in huge.json()["error"]["message"]
    assert httpx.post(f"{server.url}/v1/search", json={"query": "x", "k": 0}, timeout=30).status_code == 422


def test_generate_without_a_posting_answers_from_the_one_found(server):
    body = {"question": QUESTION, "max_new_tokens": 4, "temperature": 0}
    r = httpx.post(f"{server.url}/generate", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert (
        r.json()["posting_id"] == "sg-00001"
        and r.json()["sources"][0]["company"] == "K-Style Fashion Pte. Ltd."
    )
    stream = events(httpx.post(f"{server.url}/generate", json=body | {"stream": True}, timeout=60))
    assert (
        stream[0]["posting_id"] == "sg-00001" and "text" in stream[0]
    )  # the source comes with the first text
    assert stream[-1]["posting_id"] == "sg-00001" and stream[-1]["finish_reason"]
    assert all("sources" not in e for e in stream[1:-1])
    # the same question with a posting given: that posting is used, nothing is searched
    given = httpx.post(f"{server.url}/generate", json=body | {"posting": "Baker in Tiong Bahru."}, timeout=60)
    assert "sources" not in given.json()


def test_chat_names_its_sources_in_body_and_stream(server):
    body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 4, "temperature": 0}
    r = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["jai"]["posting_id"] == "sg-00001" and len(r.json()["jai"]["sources"]) == 3
    chunks = events(httpx.post(f"{server.url}/v1/chat/completions", json=body | {"stream": True}, timeout=60))
    assert chunks[0]["jai"]["posting_id"] == "sg-00001" and chunks[0]["choices"][0]["delta"]["role"]
    assert chunks[-1]["jai"]["sources"][0]["id"] == "sg-00001"
    body["messages"][0]["content"] = "zzyzx qqq"
    miss = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
    assert miss.status_code == 422 and "no posting in the index matches" in miss.json()["error"]["message"]


def test_the_page_is_served_whole_and_offline(server):
    r = httpx.get(server.url + "/", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in r.text and "/generate" in r.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)  # nothing fetched from elsewhere
    assert "@import" not in r.text and "url(" not in r.text


def test_a_bad_index_stops_serve_before_the_model_loads(files, tmp_path):
    ckpt, _ = files
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "jai-index.json").write_text("not an index " * 100)
    run = subprocess.run(
        [sys.executable, "-m", "jai.cli", "serve", str(ckpt), "--index", str(tmp_path / "broken")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("jai serve: error: ") and "not a JAI postings index" in run.stderr
