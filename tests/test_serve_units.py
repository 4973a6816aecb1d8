"""The server's pieces that need no server: text with stop strings, and prompts in the training format
(checked against the chat template that outside tools use, rendered by transformers itself)."""

from __future__ import annotations

import random

import pytest

from jai.server.prompts import PromptError, chars_per_token, chat_question, question_prompt, raw_prompt
from jai.server.schemas import ChatRequest
from jai.server.text import Detokenizer
from jai.tokenizer import Tokenizer
from tests.serve_support import POSTING, make_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("units") / "run", block_size=128)


@pytest.fixture(scope="module")
def tok(ckpt):
    return Tokenizer.load(ckpt / "tokenizer.json")


def stream(tok, text: str, stops: list[str]) -> tuple[list[str], str, bool]:
    """Feed `text`'s ids one at a time; the pieces handed on, their sum with the tail, and `stopped`."""
    d = Detokenizer(tok.decode, stops)
    pieces = [d.add([i]) for i in tok.encode(text)]
    pieces.append(d.finish())
    return pieces, "".join(pieces), d.stopped


def test_pieces_join_to_the_text_and_never_split_a_character(tok):
    text = "데이터 엔지니어 채용, 근무지: 서울"
    pieces, joined, stopped = stream(tok, text, [])
    assert joined == text and not stopped
    assert all("\ufffd" not in p for p in pieces)  # a Hangul syllable is 3 bytes, often several tokens


def test_any_ids_stream_to_exactly_their_decoded_text(tok):
    """Random ids (markers, control tokens and half characters included), in random-sized batches."""
    rng = random.Random(0)
    for _ in range(50):
        ids = [rng.randrange(tok.vocab_size) for _ in range(rng.randrange(1, 40))]
        d = Detokenizer(tok.decode, [])
        pieces, i = [], 0
        while i < len(ids):
            n = rng.randrange(1, 4)
            pieces.append(d.add(ids[i : i + n]))
            i += n
        pieces.append(d.finish())
        assert "".join(pieces) == tok.decode(ids)


@pytest.mark.parametrize(
    ("stops", "want"),
    [
        (["Salary"], "We are hiring a backend engineer in Seoul. "),
        (["zzz", "Seoul."], "We are hiring a backend engineer in "),
        (["in Seoul", "engineer"], "We are hiring a backend "),  # the first to start wins
        (["zzz"], "We are hiring a backend engineer in Seoul. Salary: negotiable."),
    ],
)
def test_a_stop_string_ends_the_text_before_it_and_is_never_shown(tok, stops, want):
    text = "We are hiring a backend engineer in Seoul. Salary: negotiable."
    pieces, joined, stopped = stream(tok, text, stops)
    assert joined == want and stopped == (want != text)
    shown = ""
    for p in pieces:  # nothing past the stop was ever handed on, not even its first characters
        shown += p
        assert want.startswith(shown)


def test_chat_messages_render_exactly_as_the_checkpoints_chat_template(ckpt, tok):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    posting = POSTING.splitlines()[1]  # short enough to fit whole
    for messages in (
        [{"role": "system", "content": posting}, {"role": "user", "content": " Where is the job? "}],
        [{"role": "user", "content": "연봉은 얼마인가요?"}],
        [{"role": "user", "content": [{"type": "text", "text": "Where"}, {"type": "text", "text": "?"}]}],
    ):
        question, doc = chat_question(ChatRequest(messages=messages).messages)
        ours = question_prompt(tok, question, doc, block_size=128, max_new=16)
        assert not ours.shortened
        theirs = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        theirs = (
            theirs if isinstance(theirs, list) else theirs["input_ids"]
        )  # a BatchEncoding in new versions
        assert ours.ids == list(theirs)


@pytest.mark.parametrize(
    "messages",
    [
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
        [{"role": "system", "content": "a"}],
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        [{"role": "user", "content": "   "}],
    ],
)
def test_chats_jai_cannot_answer_as_sent_are_refused(messages):
    with pytest.raises(PromptError) as e:
        chat_question(ChatRequest(messages=messages).messages)
    assert e.value.field == "messages"


def test_the_posting_is_shortened_never_the_question(tok):
    question = "What are the requirements?"
    p = question_prompt(tok, question, POSTING * 5, block_size=128, max_new=32)
    assert p.shortened and len(p.ids) <= 128 - 32
    assert f"[QUESTION] {question} [/QUESTION]" in tok.decode(p.ids)
    # a posting far too long is cut to what could ever fit before it is tokenized, with the same result
    per_token = chars_per_token(tok)
    assert question_prompt(tok, question, POSTING * 50, 128, 32, per_token) == question_prompt(
        tok, question, POSTING * 50, 128, 32
    )
    with pytest.raises(PromptError, match="characters, more than"):
        question_prompt(tok, POSTING * 50, "", 128, 32, per_token)
    with pytest.raises(PromptError, match="characters, more than"):
        raw_prompt(tok, POSTING * 50, 128, 32, per_token)
    with pytest.raises(PromptError, match="the question alone"):
        question_prompt(tok, POSTING, "", block_size=128, max_new=64)
    with pytest.raises(PromptError, match="the prompt is"):
        raw_prompt(tok, POSTING, block_size=128, max_new=64)
