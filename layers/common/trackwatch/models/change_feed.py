"""Clickpost's updated-order feed, and what the feed poller remembers between runs.

`GET /api/v1/updated-order?username&key&start_date&end_date` lists the account's
waybills updated in a window of epoch seconds (at most 1,800 s a call). Its shape is
documented loosely: `meta {status, message, success}` and `result[]` whose entries carry
at least `waybill`, the carrier (`carrier_partner`; older documents say
`courier_partner`), `created_at`, `updated_at`, `timestamp`, `clickpost_status_code`
and `clickpost_status_description`. Pagination is not documented: a `next` link (at the
top level or in `meta`) is followed when present. Unknown fields are ignored, and an
entry that cannot be read costs only itself (counted, never fatal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from trackwatch.errors import InvalidInputError
from trackwatch.models.clickpost import (
    Meta,
    UnreadableBodyError,
    describe_validation,
    parse_timestamp,
)
from trackwatch.models.keys import ShipmentKey, check_cp_id, check_waybill

#: Clickpost's limit on one call's window.
MAX_WINDOW_SECONDS = 1800
#: Fields that may name the carrier of an entry, in the order they are tried.
_CARRIER_FIELDS = ("carrier_partner", "courier_partner", "cp_id", "courier_partner_id")


@dataclass(frozen=True, slots=True)
class UpdatedOrder:
    """One entry of the feed: a waybill Clickpost updated in the window."""

    key: ShipmentKey
    #: When Clickpost updated the order (its own record time); None if absent or unreadable.
    updated_at: datetime | None
    #: The carrier's time of the current status, when given.
    timestamp: datetime | None
    clickpost_status_code: int | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of the feed, read entry by entry."""

    meta: Meta
    orders: tuple[UpdatedOrder, ...]
    #: Entries that could not be read (no waybill, a carrier that is not a cp_id, ...),
    #: by the field that failed.
    unreadable: tuple[str, ...]
    #: The next page's link, if the answer gives one.
    next: str | None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    meta: Meta
    next: str | None = None


def read_feed_page(body: bytes | str, tz: ZoneInfo, record_tz: ZoneInfo) -> FeedPage:
    """Read one feed answer; UnreadableBodyError when it is not JSON or has no readable meta.

    `tz` is the zone of carrier times (`timestamp`), `record_tz` of Clickpost's own
    (`updated_at`). A refused answer (`meta.success` false) has its result left unread.
    """
    document = _document(body)
    try:
        envelope = _Envelope.model_validate(
            {"meta": document.get("meta"), "next": _next_link(document)}
        )
    except ValidationError as exc:
        raise UnreadableBodyError(describe_validation(exc)) from None
    if not envelope.meta.success:
        return FeedPage(envelope.meta, (), (), None)
    entries = document.get("result")
    if entries is None:
        entries = []
    if isinstance(entries, dict):
        # A result keyed by waybill, as track-order answers: read its values.
        entries = [{"waybill": w, **e} if isinstance(e, dict) else e for w, e in entries.items()]
    if not isinstance(entries, list):
        raise UnreadableBodyError("result: not a list")
    orders: list[UpdatedOrder] = []
    unreadable: list[str] = []
    for entry in entries:
        try:
            orders.append(_order(entry, tz, record_tz))
        except InvalidInputError as exc:
            unreadable.append(exc.field)
    return FeedPage(envelope.meta, tuple(orders), tuple(unreadable), envelope.next)


def _document(body: bytes | str) -> dict[str, Any]:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableBodyError(f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise UnreadableBodyError("not JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise UnreadableBodyError("not a JSON object")
    return document


def status_code(value: object) -> int | None:
    """A clickpost_status_code as sent (a number, or digits), or None."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _next_link(document: dict[str, Any]) -> str | None:
    for holder in (document, document.get("meta")):
        if isinstance(holder, dict):
            link = holder.get("next")
            if isinstance(link, str) and link.strip():
                return link.strip()
    return None


def _order(entry: object, tz: ZoneInfo, record_tz: ZoneInfo) -> UpdatedOrder:
    if not isinstance(entry, dict):
        raise InvalidInputError("entry", "not an object")
    waybill = entry.get("waybill")
    if isinstance(waybill, int) and not isinstance(waybill, bool):
        waybill = str(waybill)
    carrier = next((entry[f] for f in _CARRIER_FIELDS if entry.get(f) is not None), None)
    if carrier is None:
        raise InvalidInputError("carrier_partner", "absent")
    try:
        key = ShipmentKey.model_construct(
            cp_id=check_cp_id(carrier), waybill=check_waybill(waybill)
        )
    except InvalidInputError as exc:
        # The carrier as a name, not an id, would land here: it names no shipment we key.
        field = "carrier_partner" if exc.field == "cp_id" else exc.field
        raise InvalidInputError(field, exc.rule) from None
    return UpdatedOrder(
        key=key,
        updated_at=parse_timestamp(entry.get("updated_at"), record_tz),
        timestamp=parse_timestamp(entry.get("timestamp"), tz),
        clickpost_status_code=status_code(entry.get("clickpost_status_code")),
    )


@dataclass(frozen=True, slots=True)
class FeedWindow:
    """One call's window: [start, end] in epoch seconds, at most MAX_WINDOW_SECONDS wide."""

    start: datetime
    end: datetime

    @property
    def start_s(self) -> int:
        """`start` as Clickpost's start_date."""
        return int(self.start.timestamp())

    @property
    def end_s(self) -> int:
        """`end` as Clickpost's end_date."""
        return int(self.end.timestamp())


class FeedState(BaseModel):
    """What the feed poller remembers between runs, and what the dispatcher judges it by."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: The high-water mark: every window up to here has been read and its hints sent.
    caught_up_to: AwareDatetime | None = None
    #: When the feed last listed anything at all (by our clock).
    last_entry_at: AwareDatetime | None = None
    #: When a run last failed, and why (an error kind, never Clickpost's text).
    last_failure_at: AwareDatetime | None = None
    last_error: str | None = None
    consecutive_failures: int = Field(default=0, ge=0)
    #: Windows skipped because they were older than the catch-up limit (the sweep covers them).
    skipped_windows: int = Field(default=0, ge=0)

    def behind(self, now: datetime) -> float | None:
        """Seconds between the high-water mark and `now`; None before the first run."""
        if self.caught_up_to is None:
            return None
        return max(0.0, (now - self.caught_up_to).total_seconds())


@dataclass(frozen=True, slots=True)
class FeedRead:
    """Everything one window listed, over all its pages."""

    window: FeedWindow
    orders: tuple[UpdatedOrder, ...]
    pages: int
    #: HTTP requests it took (retries included).
    requests: int
    #: Entries that could not be read, by the field that failed.
    unreadable: tuple[str, ...] = ()
