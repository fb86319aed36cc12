"""Faults the sandbox can inject at runtime, from any thread.

Three families. *Answer* faults replace a whole answer (an HTTP error, a body
that is not JSON). *AWB* faults change how single waybills are answered, so the
other waybills of the same call stay healthy: they leave a waybill out, mark it
invalid, or give it hostile data as real carrier integrations send it.
*Delivery* faults change how the bytes of an answer go out (never, or one at a
time). Scan-level data faults rewrite the newest-arrived scan of the waybill
(the one its latest poll revealed last); `latest_status` mirrors that scan when
it is the one shown there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """What goes wrong; each member's docstring says which real-world case it plays."""

    _value_: str

    def __new__(cls, value: str, doc: str = "") -> FaultKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member

    # ------------------------------------------------------------ whole answers
    RATE_LIMITED = (
        "rate_limited",
        "HTTP 429, with `Retry-After` when `retry_after` is set: Clickpost throttling.",
    )
    SERVER_ERROR = (
        "server_error",
        "HTTP 500, or `http_status` (e.g. 502, 504): Clickpost or a proxy in front failing.",
    )
    UNAVAILABLE = (
        "unavailable",
        "HTTP 503, with `Retry-After` when `retry_after` is set: maintenance or overload.",
    )
    SLOW = (
        "slow",
        "Wait `delay_s` before answering normally (or as another fault says): a carrier "
        "lookup that takes long.",
    )
    MALFORMED = (
        "malformed",
        "HTTP 200 with a body that is not JSON: a truncated answer from a failing proxy.",
    )
    REJECTED = (
        "rejected",
        "HTTP 200 with meta.success false, meta.status `meta_status`: Clickpost's own "
        "service errors (354 unhandled carrier error by default).",
    )

    # ------------------------------------------------------------ single AWBs
    MISSING_AWB = ("missing_awb", "The AWB is left out of `result`, as Clickpost sometimes does.")
    INVALID_AWB = ("invalid_awb", "The AWB is answered with `valid: false`.")

    TIMESTAMP_YEAR_ONE = (
        "timestamp_year_one",
        "The scan is dated `0001-01-01 00:00:00`: a carrier's unset date serialised as its "
        "platform's minimum (.NET DateTime.MinValue), e.g. a scanner whose clock was never set.",
    )
    TIMESTAMP_YEAR_9999 = (
        "timestamp_year_9999",
        "The scan is dated `9999-12-31T23:59:59-05:00`: an 'end of time' sentinel (.NET "
        "DateTime.MaxValue, SQL Server's 9999-12-31) in ISO 8601 with a US carrier's offset; "
        "not Clickpost's format, and past the last datetime Python holds once moved to UTC.",
    )
    TIMESTAMP_ZEROS = (
        "timestamp_zeros",
        "The scan is dated `0000-00-00 00:00:00`: MySQL's zero date, which carrier databases "
        "store for 'no date' and pass through; it is no date at all.",
    )
    TIMESTAMP_DAY_FIRST = (
        "timestamp_day_first",
        "The scan's own time written day first without seconds (`27/11/2026 10:00`): an "
        "Indian carrier's local format passed through unconverted; ambiguous when the day "
        "is 12 or less.",
    )
    TIMESTAMP_EPOCH_S = (
        "timestamp_epoch_s",
        "The scan's own instant as a JSON integer of Unix seconds: an integration that "
        "forwards the carrier's epoch time, changing the field's type from string to number.",
    )
    TIMESTAMP_EPOCH_MS = (
        "timestamp_epoch_ms",
        "The scan's own instant as a JSON integer of Unix milliseconds (JavaScript's "
        "Date.now()); read as seconds it lands tens of thousands of years ahead.",
    )
    TIMESTAMP_BLANK = (
        "timestamp_blank",
        'The scan\'s timestamp is `"  "`: a fixed-width carrier field padded with spaces '
        "because the carrier had no time for the scan.",
    )
    FUTURE_SCAN = (
        "future_scan",
        "Add a scan dated `days_ahead` days (default 30) past the journey's clock; it stays "
        "in the history and the real scans keep arriving after it, dated earlier: a hub "
        "scanner with a wrong date (a month typed wrong, a device clock off).",
    )
    INVALID_UTF8 = (
        "invalid_utf8",
        "The scan's remark is the raw bytes `raw` (default: 'Renée' and an en dash in "
        "Windows-1252, then a UTF-8 Devanagari name cut mid-character), so the body is not "
        "valid UTF-8: a carrier system on a legacy code page, or a fixed-width field "
        "truncating a multi-byte name.",
    )
    LONG_HISTORY = (
        "long_history",
        "Give the AWB `scans` (default 2,000) older scans with distinct checkpoint ids, "
        "dated before its journey and kept from then on: a shipment seen for the first time "
        "with a long history, from a carrier or seller integration that records every "
        "manifest update as a scan.",
    )
    HUGE_REMARK = (
        "huge_remark",
        "The scan's remark is `size_bytes` long (default 300 KB): a carrier that pastes its "
        "error page or a concatenated scan log into the remark field.",
    )
    HUGE_BODY = (
        "huge_body",
        "The AWB's `additional.qc_images` holds one inline base64 data URI `size_bytes` long "
        "(default 50 MB), streamed, never built whole: a proof-of-delivery photo inlined "
        "instead of linked.",
    )
    DUPLICATE_KEY = (
        "duplicate_key",
        "The AWB's key appears twice in `result`: first today's answer, then a stale one (the "
        "previous step; `valid: false` at the first). Clickpost merging two carrier records "
        "for one AWB (a re-manifested or reused waybill); JSON parsers keep the last silently.",
    )
    UNASKED_AWB = (
        "unasked_awb",
        "`result` also carries `extra_waybill` (default `<waybill>-C1`), which nobody asked "
        "for, on the same journey and order: a multi-piece shipment's child piece answered "
        "with its master, or a cache mixing up neighbouring requests.",
    )
    DEEP_NESTING = (
        "deep_nesting",
        "The AWB's `additional.qc_images` is `depth` (default 100,000) nested arrays: a relay "
        "that re-wraps the carrier's payload on every hop, or an answer built to blow a "
        "recursive parser's stack.",
    )

    # ------------------------------------------------------------ delivery
    HANG = (
        "hang",
        "Accept the request, then send nothing until `release_hangs()` (the answer then goes "
        "out) or `stop()` (the connection closes unanswered): a gateway or load balancer "
        "holding the socket while the carrier's backend is down. Only a client timeout ends it.",
    )
    DRIP = (
        "drip",
        "Send the headers, then the body one byte every `delay_s` (default 2 s): a throttled "
        "or congested link, a slow-loris proxy. Every read gets a byte in time, so only a "
        "total deadline ends it.",
    )


#: Faults that replace the whole answer; the first one pushed wins.
ANSWER_FAULTS = frozenset(
    {
        FaultKind.RATE_LIMITED,
        FaultKind.SERVER_ERROR,
        FaultKind.UNAVAILABLE,
        FaultKind.MALFORMED,
        FaultKind.REJECTED,
    }
)
#: Data faults that rewrite a timestamp of the newest-arrived scan.
TIMESTAMP_FAULTS = frozenset(
    {
        FaultKind.TIMESTAMP_YEAR_ONE,
        FaultKind.TIMESTAMP_YEAR_9999,
        FaultKind.TIMESTAMP_ZEROS,
        FaultKind.TIMESTAMP_DAY_FIRST,
        FaultKind.TIMESTAMP_EPOCH_S,
        FaultKind.TIMESTAMP_EPOCH_MS,
        FaultKind.TIMESTAMP_BLANK,
    }
)
#: Faults that hostile-ise a single AWB's data while its call-mates stay healthy.
DATA_FAULTS = TIMESTAMP_FAULTS | {
    FaultKind.FUTURE_SCAN,
    FaultKind.INVALID_UTF8,
    FaultKind.LONG_HISTORY,
    FaultKind.HUGE_REMARK,
    FaultKind.HUGE_BODY,
    FaultKind.DUPLICATE_KEY,
    FaultKind.UNASKED_AWB,
    FaultKind.DEEP_NESTING,
}
#: Faults that change how single AWBs are answered.
AWB_FAULTS = frozenset({FaultKind.MISSING_AWB, FaultKind.INVALID_AWB}) | DATA_FAULTS
#: Faults that change how an answer's bytes go out; the first one pushed wins.
DELIVERY_FAULTS = frozenset({FaultKind.HANG, FaultKind.DRIP})

DEFAULT_DRIP_S = 2.0
DEFAULT_HISTORY_SCANS = 2_000
DEFAULT_REMARK_BYTES = 300_000
DEFAULT_BODY_BYTES = 50_000_000
DEFAULT_DEPTH = 100_000
DEFAULT_DAYS_AHEAD = 30.0
#: "Delivered to Renée, en dash, security," in Windows-1252, then the UTF-8 letter NA and
#: the first two of the three UTF-8 bytes of the next Devanagari letter: invalid UTF-8 two
#: ways, yet no byte a JSON string forbids, so the JSON is well-formed in every other respect.
DEFAULT_RAW_REMARK = b"Delivered to Ren\xe9e \x96 security, \xe0\xa4\xa8\xe0\xa4"


@dataclass(frozen=True)
class Fault:
    """One fault; it applies to the next `count` matching requests (None: until cleared)."""

    kind: FaultKind
    count: int | None = 1
    #: Only requests for this carrier.
    cp_id: int | None = None
    #: Only requests that include this AWB (and, for AWB faults, only this AWB).
    waybill: str | None = None
    retry_after: str | None = None
    #: SLOW: the wait (default 0). DRIP: seconds between body bytes (default 2).
    delay_s: float | None = None
    http_status: int | None = None
    meta_status: int = 354
    message: str = "Unhandled error from the carrier"
    #: HUGE_REMARK: the remark's length (default 300 KB). HUGE_BODY: the data URI's (50 MB).
    size_bytes: int | None = None
    #: LONG_HISTORY: how many older scans the AWB gains.
    scans: int = DEFAULT_HISTORY_SCANS
    #: DEEP_NESTING: how many arrays deep `additional.qc_images` goes.
    depth: int = DEFAULT_DEPTH
    #: FUTURE_SCAN: how far past the journey's clock the scan is dated.
    days_ahead: float = DEFAULT_DAYS_AHEAD
    #: INVALID_UTF8: the remark's raw bytes.
    raw: bytes = DEFAULT_RAW_REMARK
    #: UNASKED_AWB: the waybill answered unasked (default `<waybill>-C1`).
    extra_waybill: str | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1, or None for 'until cleared'")
        if self.delay_s is not None and self.delay_s < 0:
            raise ValueError("delay_s must not be negative")
        if self.size_bytes is not None and self.size_bytes < 1:
            raise ValueError("size_bytes must be at least 1")
        if self.scans < 1 or self.depth < 1:
            raise ValueError("scans and depth must be at least 1")
        if self.days_ahead <= 0:
            raise ValueError("days_ahead must be positive: the scan is in the future")
        # The fault is the encoding, not the JSON syntax around it.
        if any(byte < 0x20 or byte in b'"\\' for byte in self.raw):
            raise ValueError('raw must not contain ", \\ or control bytes')
        if self.extra_waybill is not None and (not self.extra_waybill or "," in self.extra_waybill):
            raise ValueError("extra_waybill must be non-empty and contain no comma")

    def matches(self, cp_id: int | None, waybills: tuple[str, ...]) -> bool:
        """Whether this fault is scoped to a request for `cp_id` and `waybills`."""
        if self.cp_id is not None and self.cp_id != cp_id:
            return False
        return self.waybill is None or self.waybill in waybills

    def applies_to(self, waybill: str) -> bool:
        """Whether this AWB fault touches `waybill` (an unscoped one touches every AWB)."""
        return self.waybill is None or self.waybill == waybill

    def status_code(self) -> int:
        """The HTTP status an answer fault sends."""
        if self.http_status is not None:
            return self.http_status
        return {FaultKind.RATE_LIMITED: 429, FaultKind.UNAVAILABLE: 503}.get(self.kind, 500)

    def wait_s(self) -> float:
        """SLOW's wait, or DRIP's gap between bytes, with the kind's default."""
        if self.delay_s is not None:
            return self.delay_s
        return DEFAULT_DRIP_S if self.kind is FaultKind.DRIP else 0.0

    def size(self) -> int:
        """HUGE_REMARK's or HUGE_BODY's size in bytes, with the kind's default."""
        if self.size_bytes is not None:
            return self.size_bytes
        return DEFAULT_BODY_BYTES if self.kind is FaultKind.HUGE_BODY else DEFAULT_REMARK_BYTES


@dataclass(frozen=True)
class FaultPlan:
    """The faults one request drew: a delay, at most one answer fault, AWB faults, delivery."""

    delay_s: float = 0.0
    answer: Fault | None = None
    awb_faults: tuple[Fault, ...] = ()
    delivery: Fault | None = None

    @property
    def kinds(self) -> tuple[FaultKind, ...]:
        """Every kind drawn, the whole-answer one first."""
        slow = (FaultKind.SLOW,) if self.delay_s > 0 else ()
        answer = (self.answer.kind,) if self.answer is not None else ()
        delivery = (self.delivery.kind,) if self.delivery is not None else ()
        awb = tuple(dict.fromkeys(f.kind for f in self.awb_faults))
        return (*answer, *awb, *delivery, *slow)


@dataclass
class _Armed:
    fault: Fault
    #: Requests left; None while armed until cleared.
    remaining: int | None


class FaultBoard:
    """Pending faults, consumed by requests as they match; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def push(self, fault: Fault) -> Fault:
        """Arm `fault`."""
        with self._lock:
            self._armed.append(_Armed(fault, fault.count))
        return fault

    def clear(self, kind: FaultKind | None = None) -> None:
        """Disarm every fault, or every fault of `kind`."""
        with self._lock:
            self._armed = [a for a in self._armed if kind is not None and a.fault.kind != kind]

    def pending(self) -> list[Fault]:
        """The armed faults, oldest first."""
        with self._lock:
            return [a.fault for a in self._armed]

    def draw(self, cp_id: int | None, waybills: tuple[str, ...]) -> FaultPlan:
        """Take the faults a valid request meets, counting them down."""
        with self._lock:
            matching = [a for a in self._armed if a.fault.matches(cp_id, waybills)]
            slow = [a for a in matching if a.fault.kind is FaultKind.SLOW]
            answer = next((a for a in matching if a.fault.kind in ANSWER_FAULTS), None)
            # A request that fails as a whole never reaches its AWBs.
            per_awb = [a for a in matching if a.fault.kind in AWB_FAULTS and answer is None]
            delivery = next((a for a in matching if a.fault.kind in DELIVERY_FAULTS), None)
            used = [*slow, *per_awb, *(a for a in (answer, delivery) if a is not None)]
            for armed in used:
                if armed.remaining is not None:
                    armed.remaining -= 1
            self._armed = [a for a in self._armed if a.remaining is None or a.remaining > 0]
            return FaultPlan(
                delay_s=sum(a.fault.wait_s() for a in slow),
                answer=None if answer is None else answer.fault,
                awb_faults=tuple(a.fault for a in per_awb),
                delivery=None if delivery is None else delivery.fault,
            )
