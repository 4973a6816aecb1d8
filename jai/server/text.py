"""Token ids -> text as they arrive, with `stop` strings, so streamed pieces join to the final text.

Each `add` decodes every id so far (a few hundred ids: microseconds in the Rust tokenizer) and hands on
only the part past what was already given. Two things are held back until more tokens settle them:
- a trailing U+FFFD: one byte-level token can be half a character (Hangul is three bytes), and
- a tail that could be the start of a stop string ("[/A" of a stop "[/ANSWER]").
A stop string ends the text just before it; the stop string itself is never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class Detokenizer:
    def __init__(self, decode: Callable[[list[int]], str], stops: Sequence[str] | None = ()) -> None:
        self.decode = decode
        self.stops = tuple(s for s in stops or () if s)
        self.ids: list[int] = []
        self.shown = ""  # the text handed on so far
        self.stopped = False  # a stop string was found; the text ends before it

    def add(self, ids: Sequence[int]) -> str:
        """The new text that `ids` make safe to show ("" while it is held back)."""
        if self.stopped or not ids:
            return ""
        self.ids.extend(ids)
        text = self.decode(self.ids)
        if not text.startswith(self.shown):  # decoding more ids changed earlier text: show it at the end
            return ""
        cut = self._stop_at(text)
        if cut is not None:
            self.stopped = True
            return self._show(text[:cut])
        safe = len(text.rstrip("\ufffd"))
        return self._show(text[: safe - self._held(text[:safe])])

    def finish(self) -> str:
        """The rest of the text once generation has ended (a held-back tail, a cut character)."""
        if self.stopped:
            return ""
        text = self.decode(self.ids)
        cut = self._stop_at(text)
        if cut is not None:
            self.stopped = True
            text = text[:cut]
        if text.startswith(self.shown):
            return self._show(text)
        return ""  # cannot happen with a byte-level tokenizer; never resend what was sent

    def _show(self, text: str) -> str:
        if len(text) <= len(self.shown):
            return ""
        piece = text[len(self.shown) :]
        self.shown = text
        return piece

    def _stop_at(self, text: str) -> int | None:
        """Where the first stop string starts in `text`, searching only where a new one can be."""
        longest = max((len(s) for s in self.stops), default=0)
        start = max(0, len(self.shown) - longest + 1)
        found = [i for s in self.stops if (i := text.find(s, start)) >= 0]
        return min(found) if found else None

    def _held(self, text: str) -> int:
        """How many trailing characters of `text` could begin a stop string."""
        held = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), held, -1):
                if text.endswith(stop[:n]):
                    held = n
                    break
        return held
