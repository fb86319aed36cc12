"""What a track-order call asks, and what it learned: the types the Tracker port speaks."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trackwatch.models.clickpost import AwbResult, Meta, TrackOrderResponse
from trackwatch.models.keys import CpId, ShipmentKey, Waybill

#: Clickpost accepts at most this many comma-separated waybills in one request.
MAX_WAYBILLS_PER_CALL = 5


class TrackCall(BaseModel):
    """One track-order request: one carrier, one to five distinct waybills."""

    model_config = ConfigDict(frozen=True)

    cp_id: CpId
    waybills: tuple[Waybill, ...] = Field(min_length=1, max_length=MAX_WAYBILLS_PER_CALL)

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


class AwbOutcome(BaseModel):
    """One requested waybill and, unless it is missing, Clickpost's answer for it."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    status: AwbStatus
    result: AwbResult | None = None

    @model_validator(mode="after")
    def _result_iff_present(self) -> Self:
        if (self.result is None) != (self.status is AwbStatus.MISSING):
            raise ValueError("result is required unless the status is 'missing'")
        return self


class CallOutcome(BaseModel):
    """A successful track-order call: the envelope and one outcome per requested waybill."""

    model_config = ConfigDict(frozen=True)

    call: TrackCall
    meta: Meta
    awbs: tuple[AwbOutcome, ...]
    #: HTTP requests the call took (1 when no retry was needed).
    attempts: int
    #: Seconds from the first request to the answer, back-off included.
    elapsed_s: float

    def by_status(self, status: AwbStatus) -> tuple[AwbOutcome, ...]:
        """The outcomes with `status`, in request order."""
        return tuple(a for a in self.awbs if a.status is status)

    @classmethod
    def from_response(
        cls, call: TrackCall, response: TrackOrderResponse, attempts: int, elapsed_s: float
    ) -> CallOutcome:
        """Pair every requested waybill with its entry in `response.result`."""
        awbs: list[AwbOutcome] = []
        for key in call.keys:
            result = response.result.get(key.waybill)
            if result is None:
                status = AwbStatus.MISSING
            elif result.valid:
                status = AwbStatus.FOUND
            else:
                status = AwbStatus.INVALID
            awbs.append(AwbOutcome(key=key, status=status, result=result))
        return cls(
            call=call,
            meta=response.meta,
            awbs=tuple(awbs),
            attempts=attempts,
            elapsed_s=elapsed_s,
        )
