"""Token ids -> text as they arrive, with `stop` strings, so streamed pieces join to the final text.

Byte-level BPE decodes a run of ids to the concatenation of their bytes, so once the ids decoded so far
end on a whole character their text is final: later ids only add to it. `add` therefore decodes only
the ids since that point (usually one to three), which keeps each step's cost constant however long the
generation. Two things are held back until more tokens settle them:
- an unfinished character: one token can be half of one (Hangul is three bytes), and
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
        self.settled = 0  # ids[:settled] decode to whole characters, all shown or in `unshown`
        self.unshown = ""  # final text not handed on yet (it might begin a stop string)
        self.stopped = False  # a stop string was found; the text ends before it

    def add(self, ids: Sequence[int]) -> str:
        """The new text that `ids` make safe to show ("" while it is held back)."""
        if self.stopped or not ids:
            return ""
        self.ids.extend(ids)
        tail = self.decode(self.ids[self.settled :])
        if tail.endswith("\ufffd"):  # a character still missing bytes: wait for the next token
            return ""
        self.unshown += tail
        self.settled = len(self.ids)
        return self._release(final=False)

    def finish(self) -> str:
        """The rest of the text once generation has ended (a held-back tail, a cut character)."""
        if self.stopped:
            return ""
        self.unshown += self.decode(self.ids[self.settled :])
        self.settled = len(self.ids)
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        # A stop string cannot begin in text already shown: a possible beginning is always held back.
        found = [i for s in self.stops if (i := self.unshown.find(s)) >= 0]
        if found:
            self.stopped = True
            piece, self.unshown = self.unshown[: min(found)], ""
            return piece
        keep = 0 if final else self._held(self.unshown)
        piece = self.unshown[: len(self.unshown) - keep]
        self.unshown = self.unshown[len(piece) :]
        return piece

    def _held(self, text: str) -> int:
        """How many trailing characters of `text` could begin a stop string."""
        held = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), held, -1):
                if text.endswith(stop[:n]):
                    held = n
                    break
        return held
