"""What a track-order call asks, and what it learned: the types the Tracker port speaks."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trackwatch.models.clickpost import AwbResult, Meta, TrackOrderRead, TrackOrderResponse
from trackwatch.models.keys import CpId, KeyWaybill, ShipmentKey

#: Clickpost accepts at most this many comma-separated waybills in one request.
MAX_WAYBILLS_PER_CALL = 5


class TrackCall(BaseModel):
    """One track-order request: one carrier, one to five distinct waybills."""

    model_config = ConfigDict(frozen=True)

    cp_id: CpId
    waybills: tuple[KeyWaybill, ...] = Field(min_length=1, max_length=MAX_WAYBILLS_PER_CALL)

    @field_validator("waybills")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("waybills must be distinct")
        return value

    @property
    def keys(self) -> tuple[ShipmentKey, ...]:
        """The shipments this call asks about, in request order."""
        return tuple(
            ShipmentKey.model_construct(cp_id=self.cp_id, waybill=w) for w in self.waybills
        )


class AwbStatus(StrEnum):
    """What Clickpost said about one requested waybill."""

    FOUND = "found"
    #: Clickpost answered `valid: false`: it does not know this AWB for this carrier.
    INVALID = "invalid"
    #: The AWB is absent from `result`.
    MISSING = "missing"
    #: The AWB's entry in `result` could not be read; its call-mates were.
    UNREADABLE = "unreadable"


_ANSWERED = frozenset({AwbStatus.FOUND, AwbStatus.INVALID})


class AwbOutcome(BaseModel):
    """One requested waybill and, when it was read, Clickpost's answer for it."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    status: AwbStatus
    #: Set exactly when the status is found or invalid.
    result: AwbResult | None = None
    #: Unreadable only: where and how the entry failed (a field path and pydantic's
    #: error type), never the value.
    reason: str | None = None
    #: Unreadable only: the start of the entry as sent (at most 2 KB, credentials
    #: masked), for diagnosis. Clickpost's text: it may hold personal data, so it
    #: is not logged.
    fragment: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.result is not None) != (self.status in _ANSWERED):
            raise ValueError("result is required exactly when the status is found or invalid")
        if (self.reason is not None) != (self.status is AwbStatus.UNREADABLE):
            raise ValueError("reason is required exactly when the status is unreadable")
        return self


class CallOutcome(BaseModel):
    """A successful track-order call: the envelope and one outcome per requested waybill.

    Each requested waybill is in `awbs` or, if its entry could not be read, in
    `unreadable`.
    """

    model_config = ConfigDict(frozen=True)

    call: TrackCall
    meta: Meta
    #: The requested waybills Clickpost answered (found, invalid) or left out
    #: (missing), in request order.
    awbs: tuple[AwbOutcome, ...]
    #: The requested waybills whose entries could not be read, in request order.
    #: Kept apart from `awbs`, whose every non-missing outcome carries a result.
    unreadable: tuple[AwbOutcome, ...] = ()
    #: Entries Clickpost sent for waybills this call did not ask for; ignored.
    ignored: int = 0
    #: HTTP requests the call took (1 when no retry was needed).
    attempts: int
    #: Seconds from the first request to the answer, back-off included.
    elapsed_s: float

    def by_status(self, status: AwbStatus) -> tuple[AwbOutcome, ...]:
        """The outcomes with `status`, in request order."""
        return tuple(a for a in (*self.awbs, *self.unreadable) if a.status is status)

    @classmethod
    def from_response(
        cls, call: TrackCall, response: TrackOrderResponse, attempts: int, elapsed_s: float
    ) -> CallOutcome:
        """Pair every requested waybill with its entry in a wholly parsed response."""
        asked = set(call.waybills)
        read = TrackOrderRead(
            meta=response.meta,
            result=response.result,
            unreadable={},
            ignored=sum(1 for w in response.result if w not in asked),
        )
        return cls.from_read(call, read, attempts, elapsed_s)

    @classmethod
    def from_read(
        cls,
        call: TrackCall,
        read: TrackOrderRead,
        attempts: int,
        elapsed_s: float,
        redact: Callable[[str], str] = str,
    ) -> CallOutcome:
        """Pair every requested waybill with its entry in a body read entry by entry."""
        awbs: list[AwbOutcome] = []
        unreadable: list[AwbOutcome] = []
        for key in call.keys:
            result = read.result.get(key.waybill)
            entry = read.unreadable.get(key.waybill)
            if entry is not None:
                unreadable.append(
                    AwbOutcome(
                        key=key,
                        status=AwbStatus.UNREADABLE,
                        reason=entry.reason,
                        fragment=redact(entry.fragment),
                    )
                )
            elif result is None:
                awbs.append(AwbOutcome(key=key, status=AwbStatus.MISSING))
            else:
                status = AwbStatus.FOUND if result.valid else AwbStatus.INVALID
                awbs.append(AwbOutcome(key=key, status=status, result=result))
        return cls(
            call=call,
            meta=read.meta,
            awbs=tuple(awbs),
            unreadable=tuple(unreadable),
            ignored=read.ignored,
            attempts=attempts,
            elapsed_s=elapsed_s,
        )
