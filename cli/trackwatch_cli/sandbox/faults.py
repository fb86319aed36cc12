"""Faults the sandbox can inject at runtime, from any thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """What goes wrong."""

    #: HTTP 429, with `Retry-After` when `retry_after` is set.
    RATE_LIMITED = "rate_limited"
    #: HTTP 500, or `http_status` (e.g. 502, 504).
    SERVER_ERROR = "server_error"
    #: HTTP 503, with `Retry-After` when `retry_after` is set.
    UNAVAILABLE = "unavailable"
    #: Wait `delay_s` before answering normally (or as another fault says).
    SLOW = "slow"
    #: HTTP 200 with a body that is not JSON.
    MALFORMED = "malformed"
    #: HTTP 200 with meta.success false, meta.status `meta_status`.
    REJECTED = "rejected"
    #: The AWB is left out of `result`.
    MISSING_AWB = "missing_awb"
    #: The AWB is answered with `valid: false`.
    INVALID_AWB = "invalid_awb"


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
#: Faults that change how single AWBs are answered.
AWB_FAULTS = frozenset({FaultKind.MISSING_AWB, FaultKind.INVALID_AWB})


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
    delay_s: float = 0.0
    http_status: int | None = None
    meta_status: int = 354
    message: str = "Unhandled error from the carrier"

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1, or None for 'until cleared'")

    def matches(self, cp_id: int | None, waybills: tuple[str, ...]) -> bool:
        """Whether this fault is scoped to a request for `cp_id` and `waybills`."""
        if self.cp_id is not None and self.cp_id != cp_id:
            return False
        return self.waybill is None or self.waybill in waybills

    def status_code(self) -> int:
        """The HTTP status an answer fault sends."""
        if self.http_status is not None:
            return self.http_status
        return {FaultKind.RATE_LIMITED: 429, FaultKind.UNAVAILABLE: 503}.get(self.kind, 500)


@dataclass(frozen=True)
class FaultPlan:
    """The faults one request drew: a delay, at most one answer fault, AWB faults."""

    delay_s: float = 0.0
    answer: Fault | None = None
    awb_faults: tuple[Fault, ...] = ()


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
            used = [*slow, *per_awb, *([answer] if answer is not None else [])]
            for armed in used:
                if armed.remaining is not None:
                    armed.remaining -= 1
            self._armed = [a for a in self._armed if a.remaining is None or a.remaining > 0]
            return FaultPlan(
                delay_s=sum(a.fault.delay_s for a in slow),
                answer=None if answer is None else answer.fault,
                awb_faults=tuple(a.fault for a in per_awb),
            )
