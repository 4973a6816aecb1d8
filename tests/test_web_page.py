"""The web page of `jai serve`, in a real headless Chromium (Debian's `chromium`, driven by Playwright):
ask a question, see the posting found and the answer streamed in, at desktop and at phone width.

Skipped, with the reason, where Playwright or a Chromium binary is missing (Playwright's own browser
download is not used: the system's browser is). JAI_SCREENSHOTS=DIR keeps the screenshots to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from jai.data.postings import load_postings
from jai.data.prepare import BUNDLED_SAMPLE
from jai.retrieval.index import add_postings
from tests.serve_support import ServerProcess, make_checkpoint

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
BROWSER = next((b for b in map(shutil.which, ("chromium", "chromium-browser")) if b), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium binary here (apt-get install chromium)")

QUESTION = "What does K-Style Fashion pay its Merchandiser?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    add_postings(tmp / "index", load_postings(BUNDLED_SAMPLE)[0])
    ckpt = make_checkpoint(tmp / "run", block_size=256)  # room for an English question of this vocabulary
    s = ServerProcess(ckpt, "--index", str(tmp / "index"), log=tmp / "serve.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """The same server started with an API key (JAI_API_KEY, as `jai serve --api-key` takes it)."""
    tmp = tmp_path_factory.mktemp("page-key")
    add_postings(tmp / "index", load_postings(BUNDLED_SAMPLE)[0])
    ckpt = make_checkpoint(tmp / "run", block_size=256)
    s = ServerProcess(
        ckpt, "--index", str(tmp / "index"), log=tmp / "serve.log", env={"JAI_API_KEY": "s3cret"}
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield b
        b.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("JAI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ask(page, url: str, question: str) -> None:
    page.goto(url + "/")
    page.fill("#question", question)
    page.click("#send")
    page.wait_for_function("document.querySelector('#answer').textContent.length > 0", timeout=60_000)
    page.wait_for_function("!document.querySelector('#send').disabled", timeout=60_000)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (375, 740)])
def test_ask_on_the_page(server, browser, tmp_path, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    ask(page, server.url, QUESTION)
    sources = page.locator("#sources li")
    assert sources.count() == 3
    assert (
        "Merchandiser — K-Style Fashion Pte. Ltd., Bugis, Singapore [sg-00001]" in sources.first.inner_text()
    )
    assert page.inner_text("#from") == "(from sg-00001)"
    assert page.inner_text("#error") == ""
    assert page.inner_text("#answer").strip()
    assert all(u.startswith(server.url) for u in requests), requests  # offline: nothing from elsewhere
    # usable at this width: nothing wider than the screen, the controls inside it
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for control in ("#question", "#send"):
        box = page.locator(control).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width and box["height"] >= 30
    page.screenshot(path=str(shots(tmp_path) / f"page-{width}.png"), full_page=True)
    page.close()


def test_the_page_says_when_nothing_matches(server, browser):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#question", "zzyzx qqq")
    page.click("#send")
    page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=60_000)
    assert "no posting in the index matches" in page.inner_text("#error")
    assert page.locator("#sources li").count() == 0
    page.close()


def test_the_page_opens_without_the_key_and_asks_with_it(keyed_server, browser):
    """The page holds no data, so it opens for anyone; what it asks for (search, answers) wants the key,
    which the user types into the page."""
    url = keyed_server.url
    assert httpx.post(f"{url}/v1/search", json={"query": QUESTION}, timeout=30).status_code == 401
    assert httpx.post(f"{url}/generate", json={"question": QUESTION}, timeout=30).status_code == 401
    page = browser.new_page()
    assert page.goto(url + "/").status == 200
    page.fill("#question", QUESTION)
    page.click("#send")
    page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=60_000)
    assert "missing or wrong API key" in page.inner_text("#error")
    assert page.inner_text("#answer") == "" and page.locator("#sources li").count() == 0
    page.click("text=API key")  # the key field sits in a closed <details>
    page.fill("#key", "s3cret")
    page.click("#send")
    page.wait_for_function("document.querySelector('#answer').textContent.length > 0", timeout=60_000)
    page.wait_for_function("!document.querySelector('#send').disabled", timeout=60_000)
    assert page.inner_text("#error") == "" and page.inner_text("#from") == "(from sg-00001)"
    page.close()
