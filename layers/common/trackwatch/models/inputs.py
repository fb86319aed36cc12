"""Text and times from outside: what is printable, how it is shown, which moments exist.

Callers send JSON (the API, IngestQueue), CSV cells and command-line arguments;
Clickpost sends free text. None of it can be trusted to be *text*: JSON can carry
a lone surrogate (`"\\ud800"`), which no UTF-8 store or wire accepts; any of it
can carry control characters (NUL, ESC and the terminal's escape codes), and
invisible ones (zero-width spaces, bidirectional overrides) that make two
different strings look the same. The rules here say what is refused, and
`visible` how such text is shown when it must be shown at all.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime

from trackwatch.errors import InvalidInputError

#: General categories that are not text to be shown: control (Cc), format (Cf),
#: surrogate (Cs), private use (Co), unassigned (Cn), line and paragraph separators.
#: The delivery dates a promise may name (a merchant's or a carrier's): a date outside is
#: a placeholder ("9999-12-31", "0001-01-01") or a typo, never a promise, and the
#: calendar's last day has no end to compare with.
PROMISE_DATES = (date(2000, 1, 1), date(2099, 12, 31))


def is_promise_date(day: date) -> bool:
    """Whether `day` can be a promised delivery date (see PROMISE_DATES)."""
    return PROMISE_DATES[0] <= day <= PROMISE_DATES[1]


UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Format characters that scripts need to be spelt right (Devanagari uses both): harmless
#: on a terminal, so `visible` keeps them. They are still refused in a waybill.
_JOINERS = frozenset({"\u200c", "\u200d"})


def is_surrogate(char: str) -> bool:
    """Whether `char` is half of a UTF-16 surrogate pair: never text on its own."""
    return "\ud800" <= char <= "\udfff"


def is_unprintable(char: str) -> bool:
    """Whether `char` is a control, format, surrogate, private-use or unassigned character."""
    return unicodedata.category(char) in UNPRINTABLE_CATEGORIES


def escaped(char: str) -> str:
    """One character as Python writes it escaped: \\x1b, \\u200b, \\U000e0001."""
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def describe(char: str) -> str:
    """A character named so that the name can be printed: U+200B (ZERO WIDTH SPACE)."""
    name = unicodedata.name(char, "")
    if not name:
        kind = {"Cc": "a control character", "Cs": "a lone surrogate", "Co": "private use"}
        name = kind.get(unicodedata.category(char), "unassigned")
    return f"U+{ord(char):04X} ({name})"


def visible(text: str) -> str:
    """`text` with every control, format, surrogate and unassigned character escaped.

    What a terminal would act on (ESC and its escape codes, a carriage return that
    overwrites the line, a bidirectional override that reverses it) is shown as its
    escape instead, so the line says what the value is. Everything else is kept as is.
    """
    if text.isprintable():
        return text
    return "".join(escaped(c) if is_unprintable(c) and c not in _JOINERS else c for c in text)


def lone_surrogates(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (where, surrogate) in a JSON value, keys included; `where` reads [0].waybill."""
    if isinstance(value, str):
        for char in value:
            if is_surrogate(char):
                yield path or "body", char
                return
    elif isinstance(value, dict):
        for key, item in value.items():
            name = visible(str(key))
            where = f"{path}.{name}" if path else name
            if isinstance(key, str) and any(is_surrogate(c) for c in key):
                yield where, next(c for c in key if is_surrogate(c))
            yield from lone_surrogates(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from lone_surrogates(item, f"{path}[{index}]")


def check_printable(field: str, value: str) -> str:
    """`value` unchanged if every character is printable; else InvalidInputError naming one."""
    for position, char in enumerate(value):
        if is_unprintable(char):
            raise InvalidInputError(
                field,
                f"must be printable text: {describe(char)} at position {position + 1} is not",
            )
    return value


#: The oldest and latest instants a Python datetime holds, in UTC.
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def check_since(field: str, value: datetime) -> datetime:
    """A moment with an offset, as UTC; one that falls outside years 1-9999 in UTC is refused.

    `0001-01-01T00:00:00+05:30` is a valid ISO 8601 text, but in UTC it is in year 0,
    which nothing downstream can represent.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(field, "must carry a time zone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(
            field,
            f"must be between {_EARLIEST.isoformat()} and {_LATEST.isoformat()} in UTC",
        ) from None
