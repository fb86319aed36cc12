"""SMS text as operators count it: GSM-7 or UCS-2, in segments; and values made to fit.

An SMS is one segment of 160 GSM-7 septets or 70 UCS-2 code units; a longer one is
split into segments of 153 septets or 67 units (the rest carries the concatenation
header), and a character is never split across two segments (a GSM-7 escape pair, a
UTF-16 surrogate pair). A single character outside GSM-7 makes the whole message UCS-2.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

#: GSM 03.38's basic character set (without ESC), one septet each.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Its extension table: an escape and the character, two septets each.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {"gsm7": 160, "ucs2": 70}
PER_SEGMENT = {"gsm7": 153, "ucs2": 67}

#: Unicode punctuation Clickpost and merchants write, as the GSM-7 characters that read the
#: same (curly quotes, dashes, the ellipsis, the bullet, the grave accent).
_GSM7_LOOKALIKES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2010": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2022": "-",
        "`": "'",
    }
)
_SPACES = re.compile(r"\s+")


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` has a GSM-7 encoding."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def encoding_of(text: str) -> Encoding:
    """The encoding an SMS with this text is sent in."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def length(text: str, encoding: Encoding) -> int:
    """`text`'s length in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    return sum(_units(c, encoding) for c in text)


def segments(text: str, encoding: Encoding | None = None) -> int:
    """How many SMS segments `text` takes (its own encoding unless one is given)."""
    encoding = encoding or encoding_of(text)
    if length(text, encoding) <= SINGLE[encoding]:
        return 1
    count, used = 1, 0
    for char in text:
        units = _units(char, encoding)
        if used + units > PER_SEGMENT[encoding]:
            count, used = count + 1, 0
        used += units
    return count


def capacity(max_segments: int, encoding: Encoding) -> int:
    """The most septets or code units `max_segments` segments can carry (no split pairs)."""
    return SINGLE[encoding] if max_segments == 1 else PER_SEGMENT[encoding] * max_segments


def clean(value: str, encoding: Encoding) -> str:
    """A value made fit for an SMS in `encoding`: one line, no control characters; for
    GSM-7, look-alikes replaced, accents dropped, and anything else left as '?'."""
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in value)
    text = _SPACES.sub(" ", text).strip()
    if encoding == "ucs2":
        return text
    text = text.translate(_GSM7_LOOKALIKES)
    kept = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENSION:
            kept.append(char)
            continue
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        kept.append(bare if bare and is_gsm7(bare) else "?")
    return "".join(kept)


def ellipsis(encoding: Encoding) -> str:
    """The mark of a shortened value: one character in UCS-2, two dots in GSM-7."""
    return "…" if encoding == "ucs2" else ".."


def cut_end(text: str, limit: int, encoding: Encoding) -> str:
    """`text` in at most `limit` characters, its end replaced by an ellipsis if cut (at a
    word's end, unless that would lose more than a third of what is kept)."""
    if len(text) <= limit:
        return text
    mark = ellipsis(encoding)
    if limit <= len(mark):
        return text[:limit]
    kept = text[: limit - len(mark)]
    space = kept.rfind(" ")
    if not text[len(kept)].isspace() and space >= len(kept) * 2 // 3:
        kept = kept[:space]
    return kept.rstrip() + mark


def cut_start(text: str, limit: int, encoding: Encoding) -> str:
    """`text` in at most `limit` characters, keeping its end (an order number's tail is
    what a customer recognises)."""
    if len(text) <= limit:
        return text
    mark = ellipsis(encoding)
    return (
        mark + text[len(text) - max(0, limit - len(mark)) :] if limit > len(mark) else text[-limit:]
    )
