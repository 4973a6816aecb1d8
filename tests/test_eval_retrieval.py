"""`jai eval --retrieval INDEX`: the held-out questions answered from the posting given and from the
posting the index finds, on the real bundled postings, a real index and a real tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jai import cli
from jai.cli.eval_retrieval import retrieval_cost
from jai.data.postings import load_postings
from jai.data.prepare import BUNDLED_SAMPLE, prepare, split_postings
from jai.data.qa import FIELD_KINDS
from jai.evaluation import scoring
from jai.retrieval.index import PostingIndex, add_postings
from jai.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    prepare([BUNDLED_SAMPLE], out, vocab_size=800, context=64, show_progress=False, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "index"
    add_postings(path, load_postings(BUNDLED_SAMPLE)[0])
    return path


@pytest.fixture(scope="module")
def samples(data_dir: Path) -> list:
    tok = Tokenizer.load(data_dir / "tokenizer.json")
    return scoring.spread(scoring.heldout_samples(scoring.read_meta(data_dir), tok), 60)


def test_a_wrong_posting_costs_the_answers_and_the_right_one_costs_nothing(
    data_dir, index, samples, tmp_path
):
    """Decoding here is a perfect copier: it answers a field question ("What company is this?") with the
    line of that label in the posting it was given ("Company: ..."). So the scores fall exactly where
    retrieval found another posting, by as much as that posting's facts differ."""
    tok = Tokenizer.load(data_dir / "tokenizer.json")
    labels = {s.question: s.answer.split(":")[0] for s in samples if s.kind in FIELD_KINDS}

    def echo(prompts: list[list[int]]) -> list[str]:
        answers = []
        for p in prompts:
            text = tok.decode(p)
            label = labels.get(text.split("[QUESTION]")[1].split("[/QUESTION]")[0].strip())
            lines = text.split("[DOC]", 1)[1].splitlines()
            answers.append(next((x for x in lines if label and x.startswith(f"{label}:")), ""))
        return answers

    sources = [BUNDLED_SAMPLE]
    cost = retrieval_cost(tok, samples, sources, PostingIndex.open(index), 200, echo)
    assert cost["found"] >= 0.8 and cost["found_or_twin"] >= cost["found"]
    assert cost["decoded_prompts"] < 2 * len(samples)  # a posting found is the same prompt, decoded once
    for row in cost["samples"]:
        if row["found"] == row["posting_id"]:
            assert row["given"] == row["retrieved"], row["query"]
    assert cost["retrieved"]["all"]["f1"] <= cost["given"]["all"]["f1"]
    # an index without the held-out postings: every question is answered from another posting
    train, _ = split_postings(load_postings(BUNDLED_SAMPLE)[0], 0.1, 1337)
    add_postings(tmp_path / "train-only", train)
    blind = retrieval_cost(tok, samples, sources, PostingIndex.open(tmp_path / "train-only"), 200, echo)
    assert blind["found"] == 0 and blind["given"] == cost["given"]
    assert cost["given"]["fields"]["exact"] > 0.8  # the copier reads its own posting right
    assert blind["retrieved"]["fields"]["exact"] < cost["given"]["fields"]["exact"] - 0.3


def test_jai_eval_with_retrieval_on_a_tiny_checkpoint(data_dir, index, tmp_path, capsys):
    torch_ckpt = pytest.importorskip("jai_torch.checkpoint")
    from jai.config import GPTConfig
    from jai_torch.model import GPT

    tok = Tokenizer.load(data_dir / "tokenizer.json")
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32)
    ckpt = tmp_path / "ckpt"
    torch_ckpt.save_model(GPT(cfg), ckpt, tokenizer=data_dir / "tokenizer.json")
    args = ["eval", str(ckpt), "--data", str(data_dir), "--backend", "torch", "--device", "cpu"]
    args += ["--answers", "12", "--loss-tokens", "0", "--no-progress", "--json", str(tmp_path / "e.json")]
    assert cli.main([*args, "--retrieval", str(index)]) == 0
    out = capsys.readouterr().out
    assert "answers with retrieval" in out and "all, retrieved" in out and "all, given" in out
    cost = json.loads((tmp_path / "e.json").read_text())["retrieval"]
    assert len(cost["samples"]) == 12 and cost["given"]["all"]["n"] == cost["retrieved"]["all"]["n"] == 12
    for row in cost["samples"]:  # the same prompt wherever the posting was found: the same greedy answer
        if row["found"] == row["posting_id"]:
            assert row["given"] == row["retrieved"]
    # a bad index is one line, exit 2, before any model is loaded
    assert cli.main([*args, "--retrieval", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such index" in capsys.readouterr().err
