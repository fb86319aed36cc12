"""Messages between trackwatch's own functions."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.tracking import TrackCall


class PollRequest(BaseModel):
    """One PollQueue message: Clickpost calls to make, each of at most 5 AWBs of one carrier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls: tuple[TrackCall, ...] = Field(min_length=1)
    #: Why the poll was asked for: "schedule" (the dispatcher) or "refresh" (on demand).
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
