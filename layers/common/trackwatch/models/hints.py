"""Change hints: "this waybill moved", from Clickpost's updated-order feed or its webhooks.

A hint is never news by itself: it only asks for a track-order poll, and the diff
engine decides what (if anything) changed. So a hint sent twice, late, or out of order
costs at most a call, never a wrong or duplicate event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.keys import CpId, ShipmentKey, Waybill

HintSource = Literal["feed", "webhook"]
#: Hints one HintQueue message carries at most: ~200 bytes each, well inside SQS's 256 KB.
HINTS_PER_MESSAGE = 500


class ChangeHint(BaseModel):
    """One waybill Clickpost says moved."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cp_id: CpId
    waybill: Waybill
    source: HintSource
    #: Clickpost's record time of the update (the feed's updated_at), when the source gives
    #: one it means: a shipment whose seen scans were recorded at or after it is not polled.
    recorded_at: AwareDatetime | None = None
    clickpost_status_code: int | None = None
    #: When trackwatch received the hint (the webhook's arrival, the feed run).
    received_at: AwareDatetime

    @property
    def key(self) -> ShipmentKey:
        """The shipment hinted at."""
        return ShipmentKey.model_construct(cp_id=self.cp_id, waybill=self.waybill)


class HintBatch(BaseModel):
    """One HintQueue message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hints: tuple[ChangeHint, ...] = Field(min_length=1, max_length=HINTS_PER_MESSAGE)


def batches(hints: list[ChangeHint]) -> list[HintBatch]:
    """`hints` packed into messages of at most HINTS_PER_MESSAGE."""
    return [
        HintBatch(hints=tuple(hints[i : i + HINTS_PER_MESSAGE]))
        for i in range(0, len(hints), HINTS_PER_MESSAGE)
    ]


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A HintQueue message as received: its body is read by the service (it may be junk)."""

    message_id: str
    receipt: str
    body: str
