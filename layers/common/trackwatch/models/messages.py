"""Messages between trackwatch's own functions."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import ShipmentEvent
from trackwatch.models.tracking import TrackCall

#: A poll request that calls no one: the shipments' stored state is checked against the
#: clock (stuck, a missed or doomed promise). A sweep that does not poll a shipment can
#: still have it checked (docs/architecture.md, "Staleness without polling more").
CHECK_ONLY = "check"


class PollRequest(BaseModel):
    """One PollQueue message: Clickpost calls to make, each of at most 5 AWBs of one carrier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls: tuple[TrackCall, ...] = Field(min_length=1)
    #: Why the poll was asked for: "schedule" (the dispatcher), "refresh" (on demand), or
    #: CHECK_ONLY (no Clickpost call: the delay checks on the stored state alone).
    reason: str = "schedule"
    requested_at: AwareDatetime


class ScheduleTick(BaseModel):
    """The dispatcher's trigger: EventBridge Scheduler's input, or an EventBridge rule's event."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    #: Scheduler passes <aws.scheduler.scheduled-time>; a schedule rule sends `time`.
    scheduled_time: AwareDatetime | None = Field(default=None, validation_alias="scheduled_time")
    time: AwareDatetime | None = None
    #: "due" polls the shipments due this minute; "all" polls every active shipment
    #: once (a catch-up after an outage, or the local runtime's --cycles).
    scope: Literal["due", "all"] = "due"

    def at(self, fallback: AwareDatetime) -> AwareDatetime:
        """The minute this tick stands for; a retried tick dispatches the same minute."""
        return self.scheduled_time or self.time or fallback


class InboxMessage(BaseModel):
    """One event waiting in a queue a scheduled job drains (the operations digest's)."""

    model_config = ConfigDict(frozen=True)

    #: What deletes it once it has been dealt with.
    receipt: str
    #: None when the body is not an event (it is left for its queue's dead-letter queue).
    event: ShipmentEvent | None
