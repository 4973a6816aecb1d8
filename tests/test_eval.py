"""`jai eval`: the scores on worked examples (Korean included), the held-out questions, the loss in bits
per byte, and a real checkpoint scored by both twins with the same result."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from jai.config import GPTConfig
from jai.data.prepare import prepare
from jai.data.qa import KINDS
from jai.evaluation import scoring
from jai.tokenizer import Tokenizer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "jobs" / "postings.json"


# --- scoring -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, normal",
    [
        ("- SGD 4,000 – 6,000 / month", "sgd 4000 6000 month"),
        ("Skills:\n- Python\n- SQL", "skills python sql"),
        ("  급여: 월 SGD 4,300~6,100 ", "급여 월 sgd 4300 6100"),
        ("ＳＧＤ　３,０００", "sgd 3000"),  # full-width forms (NFKC)
    ],
)
def test_normalize(text: str, normal: str) -> None:
    assert scoring.normalize(text) == normal


def test_exact_match_after_normalisation() -> None:
    assert scoring.exact_match("Skills: Python, SQL.", "skills - python\n- sql") == 1.0
    assert scoring.exact_match("Skills: Python", "Skills: Python, SQL") == 0.0


@pytest.mark.parametrize(
    "prediction, reference, f1",
    [
        # bigrams 서울 울강 강남 남구 / 서울 울시 시강 강남 남구: 3 shared -> 2*3 / (4+5)
        ("서울 강남구", "서울시 강남구", 6 / 9),
        ("근무지: 서울", "근무지: 서울", 1.0),
        ("연봉 협의", "정규직", 0.0),
        # 회사는 / 회사가: the particle changes one bigram of two (회사 shared): 2*1 / (2+2)
        ("회사는", "회사가", 0.5),
        ("", "", 1.0),
        ("", "정규직", 0.0),
        ("월", "월", 1.0),  # one character compares as itself
        # English too: "python sql" -> py yt th ho on ns sq ql (8); "python" -> 5 shared -> 2*5 / (8+5)
        ("Python, SQL", "python", 10 / 13),
    ],
)
def test_char_f1_worked_examples(prediction: str, reference: str, f1: float) -> None:
    assert scoring.char_f1(prediction, reference) == pytest.approx(f1)
    assert scoring.char_f1(reference, prediction) == pytest.approx(f1)  # symmetric


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    prepare([SAMPLE], out, vocab_size=800, context=64, show_progress=False, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def heldout(data_dir: Path) -> list:
    meta = scoring.read_meta(data_dir)
    return scoring.heldout_samples(meta, Tokenizer.load(data_dir / "tokenizer.json"))


def test_heldout_questions_are_the_validation_split(data_dir: Path, heldout: list) -> None:
    """The questions eval asks are exactly the samples in val.bin, documents fitted as written there."""
    tok = Tokenizer.load(data_dir / "tokenizer.json")
    ids = [i for s in heldout for i in (tok.bos_id, *tok.encode(s.text), tok.eos_id)]
    assert np.array_equal(np.fromfile(data_dir / "val.bin", dtype=np.uint16), np.array(ids, dtype=np.uint16))
    assert {s.kind for s in heldout} == set(KINDS)  # the long answers and every field question
    assert {s.lang for s in heldout} == {"ko", "en"}


def test_copying_the_references_scores_one(heldout: list) -> None:
    """A "model" that answers with the reference scores 1.0 everywhere; one that answers with another
    question's reference scores far lower (the scores tell right from wrong)."""
    right = [scoring.Answer(s.kind, s.lang, s.answer, s.answer) for s in heldout]
    scores = scoring.score_answers(right)
    assert scores["all"] == {"n": len(heldout), "exact": 1.0, "f1": 1.0}
    assert scores["fields"]["exact"] == 1.0 and scores["fields"]["n"] > scores["long"]["n"] > 0
    assert scores["repeated"] == 0.0
    assert all(
        v["exact"] == 1.0 and v["f1"] == 1.0
        for v in [*scores["by_kind"].values(), *scores["by_lang"].values()]
    )
    others = [s.answer for s in heldout]
    random.Random(0).shuffle(others)
    wrong = scoring.score_answers(
        [scoring.Answer(s.kind, s.lang, o, s.answer) for s, o in zip(heldout, others, strict=True)]
    )
    assert wrong["all"]["exact"] < 0.05 and wrong["all"]["f1"] < 0.5


def test_spread_asks_every_kind_and_language(heldout: list) -> None:
    picked = scoring.spread(heldout, 10)
    assert len(picked) == 10 and len({(s.kind, s.lang) for s in picked}) == 10
    assert scoring.spread(heldout, None) == heldout


# --- loss --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [None, 50, 64, 1000])
def test_loss_windows_cover_every_target_once(max_tokens: int | None) -> None:
    data = np.arange(200, dtype=np.uint16)
    batches = list(scoring.loss_windows(data, 16, max_tokens, batch_size=3))
    xs = np.concatenate([x.reshape(-1) for x, _ in batches])
    ys = np.concatenate([y.reshape(-1) for _, y in batches])
    n = 199 if max_tokens is None else min(199, max_tokens)
    assert np.array_equal(ys, np.arange(1, n + 1)) and np.array_equal(xs, np.arange(0, n))
    assert all(x.shape == y.shape and x.shape[1] <= 16 for x, y in batches)


def test_loss_report() -> None:
    report = scoring.loss_report(total_nats=1000 * math.log(2), n_tokens=500, n_bytes=2000)
    assert report["loss"] == pytest.approx(2 * math.log(2))
    assert report["perplexity"] == pytest.approx(4.0)
    assert report["bits_per_byte"] == pytest.approx(0.5)  # 1000 bits over 2000 bytes


# --- a real checkpoint, both twins -------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch_ckpt = pytest.importorskip("jai_torch.checkpoint")
    from jai_torch.model import GPT

    tok = Tokenizer.load(data_dir / "tokenizer.json")
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32)
    ckpt = tmp_path_factory.mktemp("run") / "ckpt"
    torch_ckpt.save_model(GPT(cfg), ckpt, tokenizer=data_dir / "tokenizer.json")
    return ckpt


def test_untrained_model_scores_near_zero_and_both_twins_agree(
    untrained: Path, data_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("mlx.core")
    from jai.cli.eval import evaluate_checkpoint, main

    kwargs = {"max_answers": 10, "loss_tokens": 300, "batch_size": 4, "progress": False}
    results = {b: evaluate_checkpoint(untrained, data_dir, b, "cpu", **kwargs) for b in ("torch", "mlx")}
    torch_r, mlx_r = results["torch"], results["mlx"]
    # Greedy tokens are the twins' shared promise: the answers, and so every answer score, are equal.
    assert [s["prediction"] for s in torch_r["samples"]] == [s["prediction"] for s in mlx_r["samples"]]
    assert torch_r["answers"] == mlx_r["answers"]
    # Loss: the same tokens through two frameworks' float32 kernels, equal to rounding.
    for key in ("loss", "bits_per_byte"):
        assert torch_r["loss"][key] == pytest.approx(mlx_r["loss"][key], rel=1e-5)
    assert torch_r["loss"]["tokens"] == 300
    # An untrained model: loss near ln(vocab), and answers that match nothing.
    vocab = json.loads((untrained / "config.json").read_text())["vocab_size"]
    assert abs(torch_r["loss"]["loss"] - math.log(vocab)) < 1.0
    assert torch_r["answers"]["all"]["exact"] == 0.0 and torch_r["answers"]["all"]["f1"] < 0.1

    # The command: a table on stdout and the same numbers as JSON.
    out = tmp_path / "eval.json"
    argv = [str(untrained), "--data", str(data_dir), "--backend", "torch", "--device", "cpu"]
    assert (
        main(
            [
                *argv,
                "--answers",
                "10",
                "--loss-tokens",
                "300",
                "--batch-size",
                "4",
                "--json",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    written = json.loads(out.read_text())
    assert written["answers"] == torch_r["answers"]


def test_missing_data_is_one_clear_error(untrained: Path, data_dir: Path, tmp_path: Path) -> None:
    from jai import cli

    assert cli.main(["eval", str(untrained), "--data", str(tmp_path)]) == 2  # no meta.json there
    moved = tmp_path / "moved"
    moved.mkdir()
    meta = json.loads((data_dir / "meta.json").read_text())
    meta["sources"] = [str(tmp_path / "gone.json")]
    (moved / "meta.json").write_text(json.dumps(meta))
    for name in ("val.bin", "train.bin"):
        (moved / name).write_bytes((data_dir / name).read_bytes())
    with pytest.raises(scoring.DatasetError, match="gone.json"):
        scoring.heldout_samples(meta, Tokenizer.load(data_dir / "tokenizer.json"))
    args = [str(untrained), "--data", str(moved), "--backend", "torch", "--device", "cpu", "--no-progress"]
    assert cli.main(["eval", *args, "--answers", "0", "--loss-tokens", "100"]) == 0  # the loss alone


def test_repeated_counts_lines_said_more_often_than_the_reference() -> None:
    ref = "Salary: SGD 4,000 - 6,000 per month\nEmployment type: Full-time"
    looping = "Employment type: Full-time\n" * 6
    assert scoring.repeats_a_line(looping, ref)
    assert not scoring.repeats_a_line(ref, ref)
    assert not scoring.repeats_a_line("- a\n- a", "- a\n- a")  # the reference repeats it too
    assert not scoring.repeats_a_line("x\n\n\n\ny", "x\ny")  # blank lines do not count
    scores = scoring.score_answers(
        [scoring.Answer("conditions", "en", looping, ref), scoring.Answer("salary", "en", ref[:35], ref[:35])]
    )
    assert scores["repeated"] == 0.5
    assert scores["fields"] == {"n": 1, "exact": 1.0, "f1": 1.0}


def test_postings_written_by_someone_else(untrained: Path, tmp_path: Path, capsys) -> None:
    """--postings asks every kind about the given postings (either schema), answers only."""
    from jai import cli

    postings = tmp_path / "theirs.json"
    postings.write_text(
        json.dumps(
            [
                {
                    "id": "x-1",
                    "title": "Line Cook",
                    "content": "## Duties\n\n- Prepare the mise en place\n- Keep the station clean",
                    "meta": {"company_name": "Harbour Grill", "location": "Jurong East", "min_salary": 2400},
                }
            ]
        )
    )
    out = tmp_path / "e.json"
    args = [str(untrained), "--postings", str(postings), "--backend", "torch", "--device", "cpu"]
    assert cli.main(["eval", *args, "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert "loss" not in result and result["postings"] == [str(postings)]
    kinds = {s["kind"] for s in result["samples"]}
    assert {"company", "location", "salary", "title", "summary"} <= kinds
    assert {s["reference"] for s in result["samples"] if s["kind"] == "company"} == {"Company: Harbour Grill"}
    assert str(postings) in capsys.readouterr().out


def test_penalties_change_the_answers_alike_in_both_twins(untrained: Path, data_dir: Path) -> None:
    pytest.importorskip("mlx.core")
    from jai.cli.eval import evaluate_checkpoint

    kwargs = {"max_answers": 4, "loss_tokens": 0, "batch_size": 4, "progress": False}
    plain = evaluate_checkpoint(untrained, data_dir, "torch", "cpu", **kwargs)
    ban = {"no_repeat_ngram_size": 1}  # no token twice: an untrained GPT repeats one token forever
    results = {
        b: evaluate_checkpoint(untrained, data_dir, b, "cpu", penalties=ban, **kwargs)
        for b in ("torch", "mlx")
    }
    answers = [[s["prediction"] for s in r["samples"]] for r in results.values()]
    assert answers[0] == answers[1] != [s["prediction"] for s in plain["samples"]]
    assert results["torch"]["decoding"] == {"greedy": True, "no_repeat_ngram_size": 1}


def test_bad_penalty_flags_are_one_line_naming_the_flag(
    untrained: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jai import cli

    args = [str(untrained), "--data", str(data_dir), "--no-progress", "--loss-tokens", "0"]
    assert cli.main(["eval", *args, "--repetition-penalty", "-1"]) == 2
    assert "--repetition-penalty must be a positive number" in capsys.readouterr().err
