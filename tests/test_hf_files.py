"""A JAI checkpoint as transformers and mlx-lm users open it: tokenizer, specials, stops, chat template.

Everything here runs the real tools on a real (tiny, trained) checkpoint written the way `jai train`
writes one: `AutoTokenizer`, a transformers `pipeline("text-generation")`, `mlx_lm.load`/`generate`.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from jai import cli
from jai.checkpoint import weights
from jai.checkpoint.hf_files import FILES, GENERATION_CONFIG_FILE, hf_files
from jai.config import GPTConfig
from jai.data.qa import build_prompt, format_sample
from jai.tokenizer import SPECIAL_TOKENS
from tests.eco_model import trained

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model():
    return trained()


@pytest.fixture(scope="module")
def hf_tok(model):
    return transformers.AutoTokenizer.from_pretrained(model.ckpt)


def chat(s, answer: bool = False) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": s.doc}, {"role": "user", "content": s.question}]
    return [*messages, {"role": "assistant", "content": s.answer}] if answer else messages


def test_every_checkpoint_carries_the_files(model):
    names = {p.name for p in model.ckpt.iterdir()}
    assert set(FILES) <= names and weights.TOKENIZER_FILE in names
    gen = json.loads((model.ckpt / GENERATION_CONFIG_FILE).read_text())
    tok = model.tokenizer
    assert gen["eos_token_id"] == [tok.eos_id, tok.token_id("[/ANSWER]")]
    assert (gen["bos_token_id"], gen["pad_token_id"]) == (tok.bos_id, tok.pad_id)
    loaded = transformers.GenerationConfig.from_pretrained(model.ckpt)
    assert loaded.eos_token_id == gen["eos_token_id"]


def test_auto_tokenizer_has_the_vocabulary_and_specials_of_the_model(model, hf_tok):
    cfg = weights.read_config(model.ckpt)
    tok = model.tokenizer
    assert len(hf_tok) == cfg.vocab_size == tok.vocab_size  # no <|endoftext|> one past the table
    assert (hf_tok.bos_token, hf_tok.eos_token, hf_tok.unk_token, hf_tok.pad_token) == (
        "[BOS]",
        "[EOS]",
        "[UNK]",
        "[PAD]",
    )
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id) == (
        tok.bos_id,
        tok.eos_id,
        tok.pad_id,
    )
    assert set(hf_tok.all_special_tokens) == set(SPECIAL_TOKENS)
    assert hf_tok.model_max_length == cfg.block_size


def test_auto_tokenizer_ids_equal_jai_ids_on_every_bundled_sample(model, hf_tok):
    texts = [s.text for s in model.every]
    assert any("[ANSWER]" in t for t in texts) and any(ord(c) >= 0xAC00 for t in texts for c in t)  # Korean
    ours = model.tokenizer.encode_batch(texts)
    theirs = hf_tok(texts, add_special_tokens=True)["input_ids"]
    for text, a, b in zip(texts, ours, theirs, strict=True):
        assert a == b, text[:80]
    for text, ids in zip(texts[:50], ours, strict=False):
        assert hf_tok.decode(ids) == text  # no clean-up of spaces: the text comes back as it was


def test_chat_template_renders_exactly_the_training_format(model, hf_tok):
    tok = model.tokenizer
    for s in model.every[:200]:
        whole = hf_tok.apply_chat_template(chat(s, answer=True), tokenize=False)
        assert whole == f"[BOS]{format_sample(s.question, s.doc, s.answer)}[EOS]"
        # ... token for token what jai prepare writes into train.bin for this sample
        ids = hf_tok.apply_chat_template(chat(s, answer=True), tokenize=True, return_dict=False)
        assert list(ids) == [tok.bos_id, *tok.encode(s.text), tok.eos_id]
        prompt = hf_tok.apply_chat_template(chat(s), tokenize=False, add_generation_prompt=True)
        assert prompt == "[BOS]" + build_prompt(s.question, s.doc)
    s = model.every[0]
    # the posting may come as a RAG document instead of a system message; or not at all
    docs = hf_tok.apply_chat_template(
        chat(s)[1:],
        documents=[{"title": "posting", "text": s.doc}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert docs == "[BOS]" + build_prompt(s.question, s.doc)
    bare = hf_tok.apply_chat_template(chat(s)[1:], tokenize=False, add_generation_prompt=True)
    assert bare == "[BOS]" + build_prompt(s.question, "")
    parts = [{"role": "user", "content": [{"type": "text", "text": s.question}]}]
    assert hf_tok.apply_chat_template(parts, tokenize=False) == bare
    with pytest.raises(Exception, match="needs a user message"):
        hf_tok.apply_chat_template([{"role": "system", "content": s.doc}], tokenize=False)


def jai_sample_greedy(ckpt, s, max_new: int) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        argv = ["sample", str(ckpt), "--question", s.question, "--doc", s.doc, "--temperature", "0"]
        code = cli.main([*argv, "--max-new-tokens", str(max_new), "--no-stream"])
    assert code == 0
    return out.getvalue()


def room(model, s) -> int:
    """New tokens that fit after the prompt, so that no tool crops it."""
    return (
        weights.read_config(model.ckpt).block_size
        - 1
        - len(model.tokenizer.encode(build_prompt(s.question, s.doc)))
    )


def test_transformers_pipeline_greedy_answer_is_the_learnt_one_and_stops_at_answer_end(model):
    pipe = transformers.pipeline("text-generation", model=str(model.ckpt), device="cpu")
    for s in model.train[:4]:
        n = room(model, s)
        out = pipe(chat(s), max_new_tokens=n, do_sample=False)[0]["generated_text"][-1]
        assert out["role"] == "assistant"
        # the model learnt these answers: it stops at [/ANSWER], before the token budget runs out
        assert out["content"].strip() == s.answer.strip()
        full = pipe(chat(s), max_new_tokens=n, do_sample=False, skip_special_tokens=False)[0]
        assert full["generated_text"][-1]["content"] == f"\n{s.answer.strip()}\n[/ANSWER]"


def test_mlx_lm_generate_greedy_answer_is_the_learnt_one_and_stops_at_answer_end(model):
    mlx_lm = pytest.importorskip("mlx_lm")
    mlx_model, mlx_tok = mlx_lm.load(str(model.ckpt))
    tok = model.tokenizer
    assert tok.token_id("[/ANSWER]") in mlx_tok.eos_token_ids  # from generation_config.json
    for s in model.train[:4]:
        prompt = mlx_tok.apply_chat_template(chat(s), add_generation_prompt=True)
        assert list(prompt) == [tok.bos_id, *tok.encode(build_prompt(s.question, s.doc))]
        text = mlx_lm.generate(mlx_model, mlx_tok, prompt, max_tokens=room(model, s))
        assert text == f"\n{s.answer.strip()}\n"  # stopped at [/ANSWER], which it does not print


def test_jai_sample_greedy_gives_the_same_answers(model):
    """The answers the two tests above get from transformers and mlx-lm are the ones `jai sample` gives."""
    for s in model.train[:4]:
        ours = jai_sample_greedy(model.ckpt, s, room(model, s))
        assert ours.strip().removesuffix("[/ANSWER]").strip() == s.answer.strip()


def test_a_foreign_tokenizer_gets_no_jai_specials_and_no_template(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.add_special_tokens(["<|endoftext|>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    files = hf_files(
        GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8), tmp_path / "tokenizer.json"
    )
    config = files["tokenizer_config.json"]
    assert "chat_template" not in config and "bos_token" not in config
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and config["model_max_length"] == 8
    assert files[GENERATION_CONFIG_FILE]["eos_token_id"] is None
    # ... unless config.json names them, as an imported GPT-2's does
    cfg = GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8, bos_token_id=0, eos_token_id=0)
    files = hf_files(cfg, tmp_path / "tokenizer.json")
    assert (
        files["tokenizer_config.json"]["eos_token"]
        == files["special_tokens_map.json"]["bos_token"]
        == "<|endoftext|>"
    )
    assert files[GENERATION_CONFIG_FILE]["eos_token_id"] == files[GENERATION_CONFIG_FILE]["bos_token_id"] == 0
