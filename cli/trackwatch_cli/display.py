"""Values from outside on the terminal: always text, never markup; no credentials.

rich reads `[...]` in a string as markup, so a waybill `AB[/]12` or a Clickpost status
`Shipped [/]` printed inside an f-string either changes the styling or raises
MarkupError. Every value that comes from outside (Clickpost's text, a CSV cell, a
waybill, an error that quotes one) is printed through `text`, which makes a `Text`
(never parsed as markup) with control characters and terminal escape codes shown
as their escapes. A URL is printed through `redact_url`.
"""

from __future__ import annotations

import re

from rich.text import Text

from trackwatch.models.inputs import visible

#: `scheme://user:password@` (or `user:password@` with no scheme): what is before the `@`.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<userinfo>[^/?#@]*)@")
#: Query parameters that carry credentials (Clickpost's own are `key` and `username`).
_SECRET_PARAMETERS = re.compile(
    r"(?P<name>[?&;](?:key|username|user|password|pass|token|secret|api_?key|access_token|"
    r"signature|sig)=)(?P<value>[^&;#]*)",
    re.IGNORECASE,
)


def text(value: object, style: str = "") -> Text:
    """`value` as literal text: markup is not read, control characters are escaped."""
    return Text(visible(str(value)), style=style)


def message(value: object, style: str = "") -> Text:
    """A message of ours that quotes values from outside: its own line breaks are kept,
    every other control character is escaped, and markup is not read."""
    return Text("\n".join(visible(line) for line in str(value).split("\n")), style=style)


def redact_url(url: str) -> str:
    """`url` without its credentials: user and password, and secret query parameters."""
    redacted = _USERINFO.sub(lambda m: f"{m['scheme'] or ''}***@", url, count=1)
    return _SECRET_PARAMETERS.sub(lambda m: f"{m['name']}***", redacted)


def redact(message_text: str, url: str) -> str:
    """`message_text` with `url`, or the credentials part of it, redacted where it appears."""
    if not url:
        return message_text
    redacted = message_text.replace(url, redact_url(url))
    found = _USERINFO.match(url)
    if found and found["userinfo"]:
        redacted = redacted.replace(found["userinfo"] + "@", "***@")
    return redacted
