"""Token files: write_bins streams samples to uint16 bins and meta.json; TokenBin validates them;
prepare() runs the whole pipeline end to end on a slice of the bundled sample."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models

from jai import cli
from jai.data.postings import load_postings
from jai.data.prepare import generated_postings, main, prepare, split_postings
from jai.data.qa import DOC, DOC_END, drill_samples, render_doc
from jai.dataset import MAX_VOCAB, DatasetError, TokenBin, check_vocab, write_bins
from jai.tokenizer import CONTROL_TOKENS, Tokenizer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "jobs" / "postings.json"

TRAIN = [
    f"[QUESTION] 질문 {i} [/QUESTION]\n[DOC]\nJob {i}: 바리스타 at cafe #{i * 7}\n[/DOC]" for i in range(23)
]
VAL = ["short", "마지막 샘플\n\twith a tab", ""]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(TRAIN + VAL, vocab_size=400, min_frequency=1, show_progress=False)


def split_samples(tokens: np.ndarray, tok: Tokenizer) -> list[list[int]]:
    """Cut a token stream back into samples at [BOS] ... [EOS]."""
    out, current = [], None
    for t in tokens.tolist():
        if t == tok.bos_id:
            assert current is None, "a [BOS] inside a sample"
            current = []
        elif t == tok.eos_id:
            assert current is not None, "an [EOS] without its [BOS]"
            out.append(current)
            current = None
        else:
            current.append(t)
    assert current is None, "the stream ends inside a sample"
    return out


def test_bins_hold_exactly_the_encoded_samples(tok: Tokenizer, tmp_path: Path) -> None:
    meta = write_bins({"train": iter(TRAIN), "val": VAL}, tok, tmp_path, batch_size=4)
    for name, texts in (("train", TRAIN), ("val", VAL)):
        data = TokenBin(tmp_path / f"{name}.bin", vocab_size=tok.vocab_size, tokenizer_sha256=tok.sha256).data
        assert data.dtype == np.uint16
        pieces = split_samples(data, tok)
        assert pieces == [tok.encode(t) for t in texts]
        assert [tok.decode(p) for p in pieces] == texts
        assert tok.decode(data, keep_control=True) == "".join(f"[BOS]{t}[EOS]" for t in texts)
        assert meta["splits"][name] == {"file": f"{name}.bin", "tokens": len(data), "samples": len(texts)}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_meta_json(tok: Tokenizer, tmp_path: Path) -> None:
    returned = write_bins(
        {"train": TRAIN, "val": VAL}, tok, tmp_path, meta={"seed": 5, "sources": ["a.json"]}
    )
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta == returned
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == tok.vocab_size
    assert meta["tokenizer_sha256"] == tok.sha256
    assert (meta["bos_id"], meta["eos_id"], meta["pad_id"]) == (tok.bos_id, tok.eos_id, tok.pad_id)
    assert (meta["seed"], meta["sources"]) == (5, ["a.json"])
    for name in ("train", "val"):
        assert meta["splits"][name]["tokens"] * 2 == (tmp_path / f"{name}.bin").stat().st_size


class CountingTokenizer:
    """Wraps a Tokenizer and records, at each encode_batch, how far the sample generator had run ahead."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok, self.produced, self.encoded, self.ahead = tok, 0, 0, []

    def __getattr__(self, name: str) -> object:
        return getattr(self.tok, name)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        self.ahead.append(self.produced - self.encoded)
        self.encoded += len(texts)
        return self.tok.encode_batch(texts)


def test_write_bins_streams_a_generator(tok: Tokenizer, tmp_path: Path) -> None:
    counting = CountingTokenizer(tok)

    def samples() -> Iterator[str]:
        for i in range(1000):
            counting.produced += 1
            yield TRAIN[i % len(TRAIN)]

    meta = write_bins({"train": samples()}, counting, tmp_path, batch_size=64)  # type: ignore[arg-type]
    assert meta["splits"]["train"]["samples"] == 1000
    # Never more than one batch of samples in memory: the generator is pulled batch by batch.
    assert max(counting.ahead) <= 64 and len(counting.ahead) == -(-1000 // 64)
    expected = sum(len(tok.encode(TRAIN[i % len(TRAIN)])) + 2 for i in range(1000))
    assert len(TokenBin(tmp_path / "train.bin").data) == expected


def test_interrupted_write_leaves_nothing(tok: Tokenizer, tmp_path: Path) -> None:
    def failing() -> Iterator[str]:
        yield from TRAIN
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_bins({"train": failing()}, tok, tmp_path, batch_size=4)
    assert list(tmp_path.iterdir()) == []


def test_empty_split_is_refused(tok: Tokenizer, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="'val' has no samples"):
        write_bins({"train": TRAIN, "val": []}, tok, tmp_path)


def test_vocab_over_uint16_is_refused(tmp_path: Path) -> None:
    vocab = {t: i for i, t in enumerate(CONTROL_TOKENS)} | {f"t{i}": i for i in range(4, MAX_VOCAB + 5)}
    big = Tokenizer(HFTokenizer(models.BPE(vocab=vocab, merges=[])))
    assert big.vocab_size > 65_535
    with pytest.raises(DatasetError, match="too large for uint16"):
        write_bins({"train": ["x"]}, big, tmp_path)
    assert not (tmp_path / "train.bin").exists()
    check_vocab(65_535)
    with pytest.raises(DatasetError):
        check_vocab(65_536)


# --- TokenBin validation -------------------------------------------------------------------------------


def test_tokenbin_errors(tok: Tokenizer, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.bin: no such token file"):
        TokenBin(tmp_path / "nope.bin")
    (tmp_path / "odd.bin").write_bytes(b"\x01\x00\x02")
    with pytest.raises(DatasetError, match=r"odd\.bin: 3 bytes"):
        TokenBin(tmp_path / "odd.bin")

    write_bins({"train": TRAIN, "val": VAL}, tok, tmp_path)
    with pytest.raises(DatasetError, match="vocab_size is"):
        TokenBin(tmp_path / "train.bin", vocab_size=tok.vocab_size + 1)
    with pytest.raises(DatasetError, match="another tokenizer"):
        TokenBin(tmp_path / "train.bin", tokenizer_sha256="0" * 64)
    (tmp_path / "other.bin").write_bytes(b"\x01\x00\x02\x00")
    with pytest.raises(DatasetError, match="does not list other.bin"):
        TokenBin(tmp_path / "other.bin")  # a meta.json is beside it, and it does not list this file
    with (tmp_path / "val.bin").open("ab") as f:  # a stale meta.json: the file grew
        f.write(b"\x00\x00")
    with pytest.raises(DatasetError, match="meta.json says"):
        TokenBin(tmp_path / "val.bin")


def test_check_ids(tmp_path: Path) -> None:
    ids = np.array([2, 5, 9, 3, 2, 11, 3], dtype=np.uint16)
    ids.tofile(tmp_path / "x.bin")
    TokenBin(tmp_path / "x.bin", vocab_size=12).check_ids()
    with pytest.raises(DatasetError, match="token 11 at position 5"):
        TokenBin(tmp_path / "x.bin").check_ids(vocab_size=10, chunk=3)
    with pytest.raises(DatasetError, match="token 11 at position 5"):  # opening checks a known vocabulary
        TokenBin(tmp_path / "x.bin", vocab_size=10)
    with pytest.raises(DatasetError, match="vocab_size unknown"):
        TokenBin(tmp_path / "x.bin").check_ids()


# --- prepare(): the whole pipeline -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 70 records of the bundled sample (good and bad ones) as an input file."""
    records = json.loads(SAMPLE.read_text(encoding="utf-8"))[:70]
    path = tmp_path_factory.mktemp("in") / "slice.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def titles_in(path: Path, tok: Tokenizer) -> set[str]:
    """The title line of every document in a token file: every question about a posting keeps it,
    however much of its document was cut to fit the context (data/fit.py)."""
    text = tok.decode(TokenBin(path).data)
    return {doc.split(DOC_END)[0].strip().split("\n")[0] for doc in text.split(DOC)[1:]}


def test_prepare_end_to_end(sample_slice: Path, tmp_path: Path) -> None:
    logs: list[str] = []
    out = tmp_path / "out"
    meta = prepare(
        [sample_slice], out, vocab_size=1200, val_fraction=0.2, seed=3, show_progress=False, log=logs.append
    )
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "tokenizer.json", "train.bin", "val.bin"]
    postings, report = load_postings(sample_slice)
    tok = Tokenizer.load(out / "tokenizer.json")
    assert meta["tokenizer_sha256"] == tok.sha256 and meta["vocab_size"] == tok.vocab_size <= 1200
    assert meta["postings"]["used"] == len(postings) == meta["postings"]["train"] + meta["postings"]["val"]
    assert meta["postings"]["skipped"] == dict(report.skipped) and report.skipped
    assert meta["seed"] == 3 and meta["sources"] == [str(sample_slice)]
    train, val = split_postings(postings, 0.2, 3)
    assert {p.id for p in train}.isdisjoint({p.id for p in val})
    assert len(val) == round(len(postings) * 0.2)
    # The bins themselves: each split's documents come from its own postings; every id is in range.
    for name, split in (("train", train), ("val", val)):
        assert titles_in(out / f"{name}.bin", tok) == {render_doc(p).split("\n")[0] for p in split}
    for name in ("train", "val"):
        TokenBin(out / f"{name}.bin", vocab_size=tok.vocab_size, tokenizer_sha256=tok.sha256).check_ids()
    summary = "\n".join(logs)
    assert "skipped" in summary and "train" in summary and "val" in summary
    # Progress as plain lines: one per file read and per stage, with the time so far.
    assert any(line.startswith("[") and f"read {sample_slice}" in line for line in logs)
    assert meta["fit"]["train"]["samples"] == meta["splits"]["train"]["samples"]
    assert "fit in the context of 256 tokens" in summary

    # Same inputs and seed: the same bytes. A reused tokenizer: the same tokenizer hash.
    again = tmp_path / "again"
    prepare(
        [sample_slice], again, vocab_size=1200, val_fraction=0.2, seed=3, show_progress=False, log=logs.append
    )
    for name in ("train.bin", "val.bin", "tokenizer.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    reused = tmp_path / "reused"
    meta2 = prepare(
        [sample_slice], reused, seed=4, tokenizer=out / "tokenizer.json", show_progress=False, log=logs.append
    )
    assert meta2["tokenizer_sha256"] == tok.sha256 and meta2["tokenizer_source"] == str(
        out / "tokenizer.json"
    )
    assert (reused / "train.bin").read_bytes() != (
        out / "train.bin"
    ).read_bytes()  # another seed, another split


def test_drills_go_to_the_train_split_only(sample_slice: Path, tmp_path: Path) -> None:
    kw = {"vocab_size": 1200, "val_fraction": 0.2, "seed": 3, "show_progress": False, "log": lambda _: None}
    plain = prepare([sample_slice], tmp_path / "plain", **kw)
    drilled = prepare([sample_slice], tmp_path / "drilled", drills=True, **kw)
    assert (plain["drills"], drilled["drills"]) == (False, True)
    # the same validation samples (their token counts differ: the tokenizer learned from the drills too)
    assert drilled["splits"]["val"]["samples"] == plain["splits"]["val"]["samples"]
    added = drilled["splits"]["train"]["samples"] - plain["splits"]["train"]["samples"]
    assert added == sum(
        1 for _ in drill_samples(split_postings(load_postings(sample_slice)[0], 0.2, 3)[0], 3)
    )
    # a drill's document is a header: its title line, then only "Label: value" lines up to [/DOC]
    tok = Tokenizer.load(tmp_path / "drilled" / "tokenizer.json")
    docs = [
        d.split(DOC_END)[0].strip()
        for d in tok.decode(TokenBin(tmp_path / "drilled" / "train.bin").data).split(DOC)[1:]
    ]
    headers = [d for d in docs if "\n\n" not in d and "…" not in d]  # not a posting shortened to fit
    assert len(headers) >= added and all(all(": " in line for line in d.splitlines()) for d in headers)


def test_echo_goes_to_the_train_split_only(sample_slice: Path, tmp_path: Path) -> None:
    kw = {"vocab_size": 1200, "val_fraction": 0.2, "seed": 3, "show_progress": False, "log": lambda _: None}
    plain = prepare([sample_slice], tmp_path / "plain", **kw)
    echoed = prepare([sample_slice], tmp_path / "echoed", echo=True, **kw)
    assert (plain["echo"], echoed["echo"]) == (False, True)
    assert echoed["splits"]["val"]["samples"] == plain["splits"]["val"]["samples"]
    train = split_postings(load_postings(sample_slice)[0], 0.2, 3)[0]
    assert echoed["splits"]["train"]["samples"] - plain["splits"]["train"]["samples"] == len(train)
    assert echoed["fit"]["train"]["by_kind"]["echo"]["samples"] == len(train)


def test_echo_extra_adds_headers_seen_nowhere_else(sample_slice: Path, tmp_path: Path) -> None:
    kw = {"vocab_size": 1200, "val_fraction": 0.2, "seed": 3, "show_progress": False, "log": lambda _: None}
    plain = prepare([sample_slice], tmp_path / "plain", **kw)
    extra = prepare([sample_slice], tmp_path / "extra", echo_extra=5, **kw)
    assert extra["echo_extra"] == 5 and extra["echo"] is False
    assert extra["splits"]["val"]["samples"] == plain["splits"]["val"]["samples"]  # scores: the inputs
    assert extra["fit"]["train"]["by_kind"]["echo"]["samples"] == 5
    assert extra["splits"]["train"]["samples"] - plain["splits"]["train"]["samples"] == 5
    tok = Tokenizer.load(tmp_path / "extra" / "tokenizer.json")
    text = tok.decode(TokenBin(tmp_path / "extra" / "train.bin").data)
    plain_text = Tokenizer.load(tmp_path / "plain" / "tokenizer.json").decode(
        TokenBin(tmp_path / "plain" / "train.bin").data
    )
    # the extra headers' made-up e-mails are in the training text, and come from nowhere but them
    emails = [e for p in generated_postings(3, 5, stream="echo") if (e := p.contacts.get("email"))]
    assert emails and all(text.count(e) >= 1 and plain_text.count(e) == 0 for e in emails)
    with pytest.raises(ValueError, match="--echo-extra"):
        prepare([sample_slice], tmp_path / "bad", echo_extra=-1, **kw)


def test_split_digits_is_recorded_and_reused(sample_slice: Path, tmp_path: Path) -> None:
    kw = {"vocab_size": 1200, "val_fraction": 0.2, "seed": 3, "show_progress": False, "log": lambda _: None}
    plain = prepare([sample_slice], tmp_path / "plain", **kw)
    split = prepare([sample_slice], tmp_path / "split", split_digits=True, **kw)
    assert (plain["split_digits"], split["split_digits"]) == (False, True)
    tok = Tokenizer.load(tmp_path / "split" / "tokenizer.json")
    text = tok.decode(TokenBin(tmp_path / "split" / "train.bin").data)
    assert any(c.isdigit() for c in text)
    assert all(not any(c.isdigit() for c in tok.decode([i])) or len(tok.decode([i]).strip()) == 1
               for i in set(TokenBin(tmp_path / "split" / "train.bin").data.tolist()))  # fmt: skip
    # a reused tokenizer brings its own pre-tokenizer, and the meta says which it is
    reused = prepare(
        [sample_slice], tmp_path / "reused", tokenizer=tmp_path / "split" / "tokenizer.json", **kw
    )
    assert reused["split_digits"] is True
    with pytest.raises(ValueError, match="--split-digits trains a new tokenizer"):
        prepare(
            [sample_slice],
            tmp_path / "both",
            split_digits=True,
            tokenizer=tmp_path / "split" / "tokenizer.json",
            **kw,
        )


def test_prepare_refuses_bad_settings(sample_slice: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="too large for uint16"):
        prepare([sample_slice], tmp_path, vocab_size=70_000, log=lambda _: None)
    with pytest.raises(ValueError, match="val_fraction"):
        prepare([sample_slice], tmp_path, val_fraction=0.0, log=lambda _: None)
    with pytest.raises(ValueError, match="context"):
        prepare([sample_slice], tmp_path, context=8, log=lambda _: None)


def test_cli_help_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in (
        "--out",
        "--vocab-size",
        "--val-fraction",
        "--seed",
        "--tokenizer",
        "--context",
        "either schema",
    ):
        assert option in help_text
    examples = help_text.split("examples:")[1]
    assert "  jai prepare ../shared/data/nyc-jobs" in examples and "python -m" not in examples
    # errors are reported by the `jai` dispatcher, the same way in every command
    assert cli.main(["prepare", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err


def test_python_m_data_prepare_help_runs_from_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jai.data.prepare", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "--vocab-size" in result.stdout
