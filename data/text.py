"""Text hygiene shared by every importer: placeholders, whitespace, Hangul, and mojibake.

Mojibake is UTF-8 text that was once decoded as cp1252 (or Latin-1): `’` (bytes E2 80 99) comes back
as the three characters `â€™`. The repair is the inverse: turn each suspicious run back into the
bytes it came from and decode those as UTF-8. We do it per run, not per string, so one character that
cp1252 cannot encode (or one correct `é` beside the damage) does not block the rest of the repair,
and we only accept a run whose bytes form valid UTF-8 for named characters - otherwise a correct
Latin-1 word such as "café…" would be "repaired" into garbage. What re-encoding cannot undo (a byte
that was lost and replaced by `¿` or a plain space) goes through a small replacement table; whatever
is still damaged after that is reported by `encoding_problem` so the importer can skip the record.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata

# --- placeholders ------------------------------------------------------------------------------------

# Values that mean "nobody filled this in". Compared after strip() and lower().
_PLACEHOLDER_WORDS = {"", "n/a", "na", "n.a.", "-", "--", "—", "none", "null", "nil", "tbd"} | {
    "없음",
    "해당 없음",
}
# "000", "000-0000-0000", "0000 0000": withheld phone numbers, salaries and the like.
_ZEROS = re.compile(r"[0\s\-.+()/]*0[0\s\-.+()/]*")


def is_placeholder(value: str) -> bool:
    """True for a value that stands for "absent": "", "000", "N/A", "-", "없음", ..."""
    v = value.strip().lower()
    return v in _PLACEHOLDER_WORDS or _ZEROS.fullmatch(v) is not None


# --- Hangul ------------------------------------------------------------------------------------------

# Syllables (가-힣) plus the compatibility jamo (ㄱ-ㅣ) people type on their own ("ㅇㅇ", "ㅎㅎ").
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_WORD = re.compile(r"[^\W\d_]+")


def has_hangul(text: str) -> bool:
    return _HANGUL.search(text) is not None


def hangul_ratio(text: str) -> float:
    """Share of words that are Hangul. Words, not letters: one syllable (개) carries as much as three
    Latin letters, and a Korean posting is still full of English names (Python, AWS, Pte. Ltd.)."""
    words = _WORD.findall(text)
    return sum(1 for w in words if _HANGUL.search(w)) / len(words) if words else 0.0


# --- mojibake ----------------------------------------------------------------------------------------


def _chars_for_bytes(byte_values: range) -> str:
    """Every character a byte may have become: its cp1252 character and its Latin-1 one (C1 controls)."""
    out = set()
    for b in byte_values:
        out.add(chr(b))
        with contextlib.suppress(UnicodeDecodeError):  # 81, 8D, 8F, 90, 9D are undefined in cp1252
            out.add(bytes([b]).decode("cp1252"))
    return "[" + "".join(re.escape(c) for c in sorted(out)) + "]"


_CONT = _chars_for_bytes(range(0x80, 0xC0))  # UTF-8 continuation bytes
_MOJIBAKE = re.compile(
    f"{_chars_for_bytes(range(0xF0, 0xF5))}{_CONT}{{3}}"  # a 4-byte sequence (emoji)
    f"|{_chars_for_bytes(range(0xE0, 0xF0))}{_CONT}{{2}}"  # 3 bytes: Hangul, ’ “ ” •
    f"|{_chars_for_bytes(range(0xC2, 0xE0))}{_CONT}"  # 2 bytes: é, °, NBSP
)

# What re-encoding cannot undo: sequences whose bytes were partly lost (replaced by "¿" or a space)
# before the text was stored. Seen in the NYC postings; applied after the byte-level repair.
REPLACEMENTS = {
    "â¿¢": "•",  # a bullet whose middle byte was lost, twice mis-decoded
    "â¿¿": "’",
    "â¿\x9d": "”",
    "•¿": "•",
    "¿\t": "•\t",  # a lost bullet at the start of a tab-indented list item
    "¿¿": "’",  # a lost apostrophe ("Division'¿¿s")
    "Â ": " ",  # a non-breaking space whose second byte became a plain space
    "Â\xa0": " ",
}


_C1 = re.compile(r"[\x80-\x9f]")  # C1 control characters: never text, often a mis-decoded byte


def _cp1252_byte(ch: str) -> int:
    code = ord(ch)
    return code if code < 0x100 else ch.encode("cp1252")[0]


def _unmangle(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        fixed = bytes(_cp1252_byte(c) for c in run).decode("utf-8")
    except UnicodeDecodeError:
        return run
    # Unassigned characters mean we decoded noise, not text: keep the original. C1 controls are let
    # through: in double-encoded text they stand for a byte the next pass turns back into text.
    if any(unicodedata.name(c, None) is None and not c.isspace() and not _C1.match(c) for c in fixed):
        return run
    return fixed


def repair_mojibake(text: str) -> str:
    """Undo UTF-8-read-as-cp1252 damage: 'â€¢ Lead' -> '• Lead', 'ì±„ìš©' -> '채용'.

    Text that is already correct comes back unchanged (the fast path is a single regex search).
    Double-encoded text ('Ã¢â‚¬â„¢') needs two passes; we stop at three.
    """
    if text.isascii():
        return text
    for _ in range(3):
        fixed = _MOJIBAKE.sub(_unmangle, text)
        if fixed == text:
            break
        text = fixed
    if any(bad in text for bad in REPLACEMENTS):
        for bad, good in REPLACEMENTS.items():
            text = text.replace(bad, good)
    return text


# A "¿" right after a letter or digit is a lost character, never Spanish punctuation.
_LOST_CHAR = re.compile(r"[^\W_]¿")


def encoding_problem(text: str) -> str | None:
    """Why `text` is still broken after repair ("replacement character", "mojibake ..."), or None."""
    if text.isascii():
        return None
    if "\ufffd" in text:
        return "contains U+FFFD replacement characters (bytes lost in a bad decode)"
    m = _MOJIBAKE.search(text)
    if m is not None:
        return f"contains mojibake {m.group(0)!r} that re-encoding cannot repair"
    m = _C1.search(text)
    if m is not None:
        return f"contains the control character {m.group(0)!r} (a byte left over from a bad decode)"
    m = _LOST_CHAR.search(text)
    if m is not None:
        return f"contains a lost character {m.group(0)!r}"
    return None


# --- whitespace --------------------------------------------------------------------------------------

# Zero-width characters, the BOM, and control characters other than \t and \n.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200c\u200d\u2060\ufeff]")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFC, \\n line ends, no invisible or control characters, no trailing spaces, <= 1 blank line.

    NFC matters for Korean: a syllable typed as decomposed jamo (ᄒ+ᅡ+ᆫ) and the same syllable
    precomposed (한) must become the same tokens. Tabs and inner spacing are kept - they may be markdown.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = _INVISIBLE.sub("", text)
    text = _TRAILING.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def clean_line(text: str) -> str:
    """clean_text, then every whitespace run becomes one space: for titles, names, list items."""
    return " ".join(clean_text(text).split())
