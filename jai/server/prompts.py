"""Requests -> prompt token ids, in the format the model was trained on (jai/prompt.py).

- /generate and /v1/chat/completions take a question and an optional posting and build the sample
  prompt `[BOS][DOC] posting [/DOC] [QUESTION] q [/QUESTION] [ANSWER]` with `jai.prompt.fit_prompt`:
  when it does not fit, the POSTING is shortened (from its end), never the question, and the response
  says so. A question that does not fit even with no posting is refused.
- Chat messages map onto that shape the way the checkpoint's chat template does: the last user
  message is the question, a system message is the posting. JAI answers one question at a time, so an
  earlier turn (an assistant message) is refused rather than silently dropped.
- /v1/completions continues raw text as is; a raw prompt too long to leave room to answer is refused
  (there is no posting in it to shorten, and cutting anything else would change the question).

Tokenizing holds the GIL (4 s for a 1 MB posting with a small vocabulary), which would stall every other
request and /health. No token is longer than `chars_per_token(tokenizer)` characters, so a text of more
than budget x that many characters cannot fit: a posting is cut to that length before it is tokenized,
and a question or raw prompt longer than that is refused unread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jai.inference.sampling import room
from jai.prompt import fit_prompt
from jai.server.schemas import Message


class PromptError(ValueError):
    """A prompt that cannot be served as sent; `field` names the request field (a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    shortened: bool = False  # the posting was cut to fit the context


def chars_per_token(tokenizer: Any) -> int | None:
    """The most characters one token of the vocabulary stands for (None: the tokenizer cannot say)."""
    id_to_token, size = getattr(tokenizer, "id_to_token", None), getattr(tokenizer, "vocab_size", None)
    if not callable(id_to_token) or not isinstance(size, int):
        return None
    # Byte-level tokens are written one character per byte, so this counts bytes: an upper bound.
    return max((len(id_to_token(i) or "") for i in range(size)), default=0) or None


def budget(block_size: int, max_new_tokens: int) -> int:
    """Prompt tokens that leave room to answer: the context minus `sampling.room` (at most half)."""
    return block_size - room(block_size, max_new_tokens)


def chat_question(messages: Sequence[Message]) -> tuple[str, str]:
    """(question, posting) from chat messages: one user message, and optionally one system message."""
    users = [m for m in messages if m.role == "user"]
    systems = [m for m in messages if m.role == "system"]
    others = [m.role for m in messages if m.role not in ("user", "system")]
    if others or len(users) != 1 or len(systems) > 1:
        raise PromptError(
            "messages",
            "JAI answers one question about one posting: send one user message (the question) and "
            "optionally one system message (the posting); got roles " + ", ".join(m.role for m in messages),
        )
    question = users[0].text.strip()
    if not question:
        raise PromptError("messages", "the user message is empty: it is the question to answer")
    return question, systems[0].text if systems else ""


def question_prompt(
    tokenizer: Any, question: str, posting: str, block_size: int, max_new: int, per_token: int | None = None
) -> Prompt:
    limit = budget(block_size, max_new)
    cut = False
    if per_token is not None:
        _check_length(question, "question", limit, per_token)
        cut = len(posting) > limit * per_token
        posting = posting[: limit * per_token]  # more than this could never fit: not worth tokenizing
    ids, shortened = fit_prompt(tokenizer, question, posting, limit)
    if len(ids) > limit:
        raise PromptError(
            "question",
            f"the question alone makes a prompt of {len(ids)} tokens; at most {limit} fit the model's "
            f"context of {block_size} with room for {block_size - limit} new tokens",
        )
    return Prompt(ids, shortened or cut)


def raw_prompt(
    tokenizer: Any, text: str, block_size: int, max_new: int, per_token: int | None = None
) -> Prompt:
    if per_token is not None:
        _check_length(text, "prompt", budget(block_size, max_new), per_token)
    ids = tokenizer.encode(text)
    if not ids:
        raise PromptError("prompt", "the prompt encodes to no tokens")
    limit = budget(block_size, max_new)
    if len(ids) > limit:
        raise PromptError(
            "prompt",
            f"the prompt is {len(ids)} tokens; at most {limit} fit the model's context of {block_size} "
            f"with room for {block_size - limit} new tokens (use /generate or /v1/chat/completions with "
            "a posting, which is shortened to fit)",
        )
    return Prompt(ids)


def _check_length(text: str, field: str, limit: int, per_token: int) -> None:
    if len(text) > limit * per_token:
        raise PromptError(
            field,
            f"the {field} is {len(text)} characters, more than {limit} tokens can hold "
            f"(the most that fit the model's context with room to answer)",
        )
