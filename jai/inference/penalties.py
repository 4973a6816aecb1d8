"""Penalties on tokens a row already holds, for the decoding loop (jai/inference/decode.py).

No framework is imported here: a row's `History` is kept on the host, one token per step, and each
step the loop hands the twin one flat list of (row, token, divide, subtract) entries for the whole batch
(`entries`); the twin's `Backend.penalize` applies them to the float32 logits in one gather and one
scatter:

    x = x * divide if x < 0 else x / divide;  x -= subtract

which holds all four penalties, in the order transformers applies its logits processors (all before
temperature, top-k and top-p):

- repetition_penalty (transformers' RepetitionPenaltyLogitsProcessor): a token the row holds has its
  logit divided by the penalty when positive, multiplied when negative; once, however often it occurs.
- frequency_penalty / presence_penalty (OpenAI's): logit -= count * frequency + (count > 0) * presence,
  count being how often the row generated the token.
- no_repeat_ngram_size N (transformers' NoRepeatNGramLogitsProcessor): a token that would complete an
  N-gram the row already holds gets -inf (subtract = inf).

Which tokens a row "holds": the tokens it generated. transformers counts its whole input_ids, prompt
included; JAI does not by default, because its answers are read from the posting in the prompt —
counting the prompt would push the model away from exactly the salary or location it must copy, and an
N-gram ban over the prompt forbids copying any N tokens of it. `penalize_prompt=True` gives
transformers' choice (the prompt the model sees, after cropping). OpenAI's frequency and presence
penalties count generated tokens only, either way, as OpenAI defines them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

Entries = tuple[list[int], list[int], list[float], list[float]]  # rows, tokens, divide, subtract


class History:
    """The tokens one row holds, as its penalties need them; `add` each generated token."""

    def __init__(self, cfg: Any, prompt: Sequence[int] = ()) -> None:
        self.repetition = cfg.repetition_penalty
        self.frequency = cfg.frequency_penalty
        self.presence = cfg.presence_penalty
        self.n = cfg.no_repeat_ngram_size
        self.tokens: list[int] = []  # every token held, in order (the N-gram prefixes are read from it)
        self.counts: Counter[int] = Counter()  # generated tokens only (OpenAI's count)
        self.follows: dict[tuple[int, ...], set[int]] = {}  # an (N-1)-gram -> the tokens seen after it
        # the repetition penalty's entries, kept as tokens arrive: rebuilt from `tokens` each step, a long
        # penalised prompt would cost a Python loop over it per row per step
        self.repeated: dict[int, tuple[float, float]] = {}
        for token in prompt if cfg.penalize_prompt else ():
            self._hold(token)

    def add(self, token: int) -> None:
        """A token the row generated."""
        self.counts[token] += 1
        self._hold(token)

    def _hold(self, token: int) -> None:
        self.tokens.append(token)
        if self.repetition != 1.0:
            self.repeated[token] = (self.repetition, 0.0)
        if self.n and len(self.tokens) >= self.n:
            *prefix, last = self.tokens[-self.n :]
            self.follows.setdefault(tuple(prefix), set()).add(last)

    def adjustments(self) -> dict[int, tuple[float, float]]:
        """token -> (divide, subtract) for the row's next step; tokens left alone are absent."""
        if not (self.frequency or self.presence or self.n):
            return self.repeated  # the common case, not copied: the caller only reads it
        out = dict(self.repeated)
        if self.frequency or self.presence:
            for token, count in self.counts.items():
                divide = out.get(token, (1.0, 0.0))[0]
                out[token] = (divide, count * self.frequency + self.presence)
        if self.n and len(self.tokens) >= self.n - 1:
            # transformers: the last N-1 tokens held, and every token that followed them before
            prefix = tuple(self.tokens[len(self.tokens) - self.n + 1 :])
            for token in self.follows.get(prefix, ()):
                out[token] = (out.get(token, (1.0, 0.0))[0], float("inf"))
        return out


def entries(histories: Sequence[History | None]) -> Entries | None:
    """Every row's adjustments as one flat list for `Backend.penalize`; None when there are none."""
    rows: list[int] = []
    tokens: list[int] = []
    divide: list[float] = []
    subtract: list[float] = []
    for i, history in enumerate(histories):
        if history is None:
            continue
        found = history.adjustments()
        if found:  # whole lists at a time: this runs for every row at every step
            rows.extend([i] * len(found))
            tokens.extend(found)
            d, s = zip(*found.values(), strict=True)
            divide.extend(d)
            subtract.extend(s)
    return (rows, tokens, divide, subtract) if rows else None
