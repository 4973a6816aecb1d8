"""The batch engine (jai/inference/batching.py) on a real tiny model in both twins: a request's greedy tokens
are the same alone and in a batch (joining at once, or mid-way), queued and running requests can be
cancelled, a full queue says so, and closing cancels what is left."""

from __future__ import annotations

import threading

import pytest
import torch

from jai.config import GPTConfig
from jai.inference.batching import BatchEngine, EngineClosed, QueueFull
from jai.inference.decode import backend_for, generate_tokens
from jai.inference.sampling import SamplingConfig, SamplingError
from jai_mlx import checkpoint as mlx_ckpt
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model

CFG = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=64)
PROMPTS = [[1, 2, 3], [5, 6, 7, 8, 9], [4, 4, 4], [10], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]]
GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=24)  # past the context of 16: windows slide
FOREVER = SamplingConfig(temperature=0.0, max_new_tokens=10**6)  # runs until cancelled
WAIT = 60  # seconds: a generous bound on a loaded machine, never reached when things work


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A random GPT with unit-scale weights, so that greedy runs wander through the vocabulary."""
    model = torch_model.GPT(CFG, seed=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                scale = 2.0 if name.endswith(("c_proj.weight", "c_fc.weight")) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[-1] ** 0.5)
    path = tmp_path_factory.mktemp("batching") / "model"
    torch_ckpt.save_model(model, path)
    return path


@pytest.fixture(scope="module", params=["torch", "mlx"])
def model(request, ckpt):
    return (torch_ckpt if request.param == "torch" else mlx_ckpt).load_model(ckpt)


@pytest.fixture
def engine(model):
    engines = []

    def make(**kw):
        engines.append(BatchEngine(model, **kw))
        return engines[-1]

    yield make
    for e in engines:
        e.close(timeout=0)


def alone(model, prompt, cfg=GREEDY):
    return generate_tokens(model, [prompt], cfg)[0]


def test_greedy_tokens_are_the_same_alone_and_in_a_batch(model, engine):
    want = [alone(model, p) for p in PROMPTS]
    assert all(len(set(w)) >= 4 for w in want), "degenerate model: the test would prove little"
    eng = engine(max_batch=8)
    requests = [eng.submit(p, GREEDY) for p in PROMPTS]
    assert [r.result(WAIT) for r in requests] == want
    assert all(r.finish_reason == "length" for r in requests)


def test_requests_joining_mid_way_and_waiting_for_a_place_get_their_own_tokens(model, engine):
    want = [alone(model, p) for p in PROMPTS]
    eng = engine(max_batch=3, max_waiting=10)  # two of the five wait for a place
    started = threading.Event()
    first = eng.submit(PROMPTS[0], GREEDY, on_token=lambda e: started.set())
    assert started.wait(WAIT)  # the others join a batch that is already decoding
    rest = [eng.submit(p, GREEDY) for p in PROMPTS[1:]]
    assert [first.result(WAIT)] + [r.result(WAIT) for r in rest] == want
    stats = eng.stats()
    assert [stats[k] for k in ("running", "waiting", "submitted", "finished")] == [0, 0, 5, 5]
    assert stats["tokens"] == sum(len(w) for w in want)


def test_callbacks_get_each_token_then_the_end(model, engine):
    full = alone(model, PROMPTS[1])
    stop = full[5]
    events: list = []
    request = engine().submit(
        PROMPTS[1],
        GREEDY.replace(stop_ids=(stop,)),
        on_token=events.append,
        on_done=lambda e: events.append(e),
    )
    tokens = request.result(WAIT)
    assert tokens == full[: full.index(stop)]
    assert events == [*tokens, None] and request.finish_reason == "stop"


def test_cancel_a_running_request_frees_its_place(model, engine):
    eng = engine(max_batch=1, max_waiting=4)
    got_tokens = threading.Event()
    events: list = []

    def on_token(token):
        events.append(token)
        if len(events) == 3:
            got_tokens.set()

    running = eng.submit(PROMPTS[0], FOREVER, on_token=on_token, on_done=lambda e: events.append(("done", e)))
    queued = eng.submit(PROMPTS[1], GREEDY)  # waits for the one place
    assert got_tokens.wait(WAIT)
    assert eng.stats()["waiting"] == 1
    running.cancel()
    assert running.wait(WAIT) and running.finish_reason == "cancelled"
    assert events[-1] == ("done", None) and len(running.tokens) >= 3
    assert queued.result(WAIT) == alone(model, PROMPTS[1])  # it got the place


def test_cancel_a_queued_request_means_it_never_runs(engine):
    eng = engine(max_batch=1, max_waiting=4)
    started = threading.Event()
    running = eng.submit(PROMPTS[0], FOREVER, on_token=lambda e: started.set())
    assert started.wait(WAIT)
    queued = eng.submit(PROMPTS[1], GREEDY)
    eng.cancel(queued)
    assert eng.stats()["waiting"] == 0  # out of the queue at once
    assert queued.wait(WAIT) and queued.finish_reason == "cancelled" and queued.tokens == []
    running.cancel()
    assert running.wait(WAIT)
    assert eng.stats()["cancelled"] == 2


def test_a_full_queue_is_refused_and_a_bad_prompt_is_named(model, engine):
    eng = engine(max_batch=1, max_waiting=1)
    running = eng.submit(PROMPTS[0], FOREVER)
    eng.submit(PROMPTS[1], GREEDY)
    with pytest.raises(QueueFull, match="max_waiting=1"):
        eng.submit(PROMPTS[2], GREEDY)
    with pytest.raises(SamplingError, match="token 97 is not an id"):
        eng.submit([1, 97], GREEDY)
    running.cancel()


def test_close_cancels_what_is_left_and_refuses_new_work(engine):
    eng = engine(max_batch=1, max_waiting=2)
    events: list = []
    running = eng.submit(PROMPTS[0], FOREVER)
    queued = eng.submit(
        PROMPTS[1], FOREVER, on_token=events.append, on_done=lambda e: events.append(("done", e))
    )
    eng.close(timeout=0.2)
    assert running.done() and queued.done()
    assert (running.finish_reason, queued.finish_reason) == ("cancelled", "cancelled")
    assert events == [("done", None)]
    with pytest.raises(EngineClosed):
        eng.submit(PROMPTS[0], GREEDY)


def test_a_callback_that_raises_does_not_stop_the_others(model, engine):
    def broken(arg):
        raise RuntimeError("client bug")

    eng = engine(max_batch=4)
    bad = eng.submit(PROMPTS[0], GREEDY, on_token=broken, on_done=broken)
    good = eng.submit(PROMPTS[3], GREEDY)
    assert good.result(WAIT) == alone(model, PROMPTS[3])
    assert bad.result(WAIT) == alone(model, PROMPTS[0])


class Failing:
    """A twin's Backend whose forward pass raises while `failing` is set."""

    def __init__(self, model):
        self.backend, self.failing = backend_for(model), True

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def logits(self, windows, cache=None):
        if self.failing:
            raise RuntimeError("device lost")
        return self.backend.logits(windows, cache)


def test_a_failing_step_ends_the_running_requests_with_the_error_and_the_engine_goes_on(model):
    failing = Failing(model)
    eng = BatchEngine(failing, max_batch=4)
    try:
        errors: list = []
        request = eng.submit(PROMPTS[0], GREEDY, on_done=errors.append)
        assert request.wait(WAIT) and request.finish_reason == "error"
        assert len(errors) == 1 and str(errors[0]) == "device lost"
        with pytest.raises(RuntimeError, match="device lost"):
            request.result(0)
        failing.failing = False
        assert eng.submit(PROMPTS[1], GREEDY).result(WAIT) == alone(model, PROMPTS[1])
        assert eng.stats()["failed"] == 1
    finally:
        eng.close()
