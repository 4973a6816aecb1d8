"""The byte-level BPE tokenizer: special tokens, lossless round trip, save/load, transformers agreement."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFTokenizer

from jai.data.postings import load_postings
from jai.data.qa import make_samples
from jai.prompt import MARKERS
from jai.tokenizer import BOS, CONTROL_TOKENS, EOS, PAD, SPECIAL_TOKENS, UNK, Tokenizer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "jobs" / "postings.json"

TEXTS = [
    "싱가포르 래플스 플레이스에서 백엔드 개발자를 채용합니다. 경력 3년 이상, 월 SGD 5,500~8,500.",
    "We're hiring a Senior Data Engineer (Python, SQL, Airflow) — SGD 96,000 - 130,000 per year.",
    "0123456789 3.14159 1,000,000 2025-06-30 +65 6123 4567",
    "spaces:  two,   three,\ttab,\t\ttwo tabs, trailing   ",
    "\n\nleading newlines\r\nCRLF\rCR\n\n\n\nmany newlines\n",
    "## Heading\n\n- bullet **bold** _it_\n* star\n1. one\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    "\n```py\nx = 1\n```",
    "[QUESTION] 어떻게 지원하나요? [/QUESTION]\n[DOC]\n직무: 바리스타\n[/DOC]\n"
    "[ANSWER]\n이메일: hr@kopi.sg\n[/ANSWER]",
    "unseen scripts: 招聘 工程师 · งาน · вакансия · emoji 🙂👩‍💻 · nbsp\u00a0· zero-width\u200b·",
    " leading space",
    "",
]


def _train(split_digits: bool) -> Tokenizer:
    postings, _ = load_postings(SAMPLE)
    texts = [s.text for s in make_samples(postings[:80], seed=0)]
    return Tokenizer.train(
        texts, vocab_size=1500, min_frequency=2, show_progress=False, split_digits=split_digits
    )


@pytest.fixture(scope="module", params=[False, True], ids=["bpe", "split-digits"])
def tok(request: pytest.FixtureRequest) -> Tokenizer:
    """Every test below holds for both pre-tokenizers: GPT-2's alone, and digits split first."""
    return _train(request.param)


@pytest.fixture(scope="module")
def digit_tok() -> Tokenizer:
    return _train(True)


def test_split_digits_gives_every_digit_its_own_token(digit_tok: Tokenizer) -> None:
    plain = _train(False)
    for text in ("Phone: +65 8459 8762", "Deadline: 2025-03-19", "SGD 4,000 – 6,000", "x2 abc123  45"):
        pieces = [digit_tok.decode([i]) for i in digit_tok.encode(text)]
        digits = [p for p in pieces if any(c.isdigit() for c in p)]
        assert digits == [c for c in text if c.isdigit()], pieces  # one token per digit, nothing glued on
        assert "".join(pieces) == text
    # the plain tokenizer merges digits (" 2025" is one token in this corpus): the difference is real
    assert len(plain.encode("Deadline: 2025-03-19")) < len(digit_tok.encode("Deadline: 2025-03-19"))


def test_split_digits_ids_do_not_depend_on_how_numbers_are_pre_split(digit_tok: Tokenizer) -> None:
    """No merge spans a digit, so a reader that pre-tokenizes with GPT-2's regex alone (llama.cpp's "gpt2"
    pre-tokenizer, any GPT-2 tooling) gets the same ids from the same vocabulary and merges."""
    from tokenizers import pre_tokenizers

    gpt2_style = Tokenizer(HFTokenizer.from_str(digit_tok.to_json()))
    gpt2_style.backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    for text in TEXTS:
        assert gpt2_style.encode(text) == digit_tok.encode(text), text


def test_special_token_ids(tok: Tokenizer) -> None:
    assert [tok.token_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == tuple(tok.token_id(t) for t in CONTROL_TOKENS)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert 256 + len(SPECIAL_TOKENS) < tok.vocab_size <= 1500
    with pytest.raises(KeyError, match="not a token"):
        tok.token_id("[NOPE]")


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_is_lossless(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.unk_id not in ids  # byte-level: every character is representable
    assert all(0 <= i < tok.vocab_size for i in ids)


def test_markers_are_single_tokens_and_survive_decoding(tok: Tokenizer) -> None:
    for marker in MARKERS:
        assert tok.encode(marker) == [tok.token_id(marker)]
    ids = tok.encode("[QUESTION] hi [/QUESTION]")
    assert ids[0] == tok.token_id("[QUESTION]") and ids[-1] == tok.token_id("[/QUESTION]")
    assert tok.decode(ids) == "[QUESTION] hi [/QUESTION]"


def test_control_tokens_dropped_for_people_kept_on_request(tok: Tokenizer) -> None:
    body = tok.encode("[ANSWER]\n월 SGD 4,000\n[/ANSWER]")
    ids = [tok.bos_id, *body, tok.eos_id, tok.pad_id]
    assert tok.decode(ids) == "[ANSWER]\n월 SGD 4,000\n[/ANSWER]"
    assert tok.decode(ids, keep_control=True) == f"{BOS}[ANSWER]\n월 SGD 4,000\n[/ANSWER]{EOS}{PAD}"


def test_encode_batch_matches_encode(tok: Tokenizer) -> None:
    assert tok.encode_batch(TEXTS) == [tok.encode(t) for t in TEXTS]


def test_learned_merges_compress_korean(tok: Tokenizer) -> None:
    # A trained vocabulary packs a common Korean phrase into far fewer tokens than its UTF-8 bytes.
    text = "자격 요건"
    assert len(tok.encode(text)) < len(text.encode("utf-8")) / 2


def test_save_load_and_sha256(tok: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tok.sha256
    loaded = Tokenizer.load(path)
    assert loaded.sha256 == tok.sha256 and loaded.vocab_size == tok.vocab_size
    assert [loaded.encode(t) for t in TEXTS] == [tok.encode(t) for t in TEXTS]
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_transformers_fast_tokenizer_agrees(tok: Tokenizer, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    for text in TEXTS:
        ids = tok.encode(text)
        assert hf.encode(text, add_special_tokens=False) == ids
        assert hf(text)["input_ids"] == ids  # no post-processor: nothing is added by default either
        assert hf.decode(ids) == text
    assert hf.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocab_size must exceed"):
        Tokenizer.train(["abc"], vocab_size=100)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Tokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not a valid tokenizer"):
        Tokenizer.load(tmp_path / "bad.json")
    assert UNK in CONTROL_TOKENS
