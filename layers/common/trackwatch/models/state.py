"""What trackwatch remembers about one shipment between polls: the diff engine's state.

The state is bounded whatever the carrier sends: checkpoint ids beyond
`MAX_SEEN` are evicted oldest first, leaving a watermark (`seen_floor`) under
which every scan counts as seen; the timeline keeps the newest
`TIMELINE_LIMIT` scans. Nothing in it changes on a poll that brings nothing
new, so an unchanged shipment is never rewritten.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import Edd

MAX_SEEN = 1000
TIMELINE_LIMIT = 30


class CurrentStatus(BaseModel):
    """The shipment's status as trackwatch believes it now."""

    model_config = ConfigDict(frozen=True)

    clickpost_status_code: int | None
    clickpost_status_description: str | None = None
    clickpost_status_bucket: int | None = None
    clickpost_status_bucket_description: str | None = None
    status: str | None = None
    location: str | None = None
    remark: str | None = None
    #: The status's time, when it can be trusted (not absent, unreadable or far ahead).
    timestamp: AwareDatetime | None = None
    is_terminal: bool = False
    #: The newest trusted time of every status applied so far: a status older than this
    #: never becomes current, even after one whose own time could not be trusted.
    clock: AwareDatetime | None = None

    @property
    def ordered_until(self) -> AwareDatetime | None:
        """The time a newer status must be after (states stored before `clock` existed
        have only their own timestamp)."""
        return self.clock or self.timestamp


class TimelineEntry(BaseModel):
    """One scan, as kept for people who look a shipment up."""

    model_config = ConfigDict(frozen=True)

    checkpoint_id: int | str
    timestamp: AwareDatetime | None
    clickpost_status_code: int | None
    clickpost_status_description: str | None = None
    clickpost_status_bucket: int | None = None
    status: str | None = None
    location: str | None = None
    remark: str | None = None


class ShipmentState(BaseModel):
    """The diff engine's memory of one shipment."""

    model_config = ConfigDict(frozen=True)

    order_id: str | None = None
    courier_name: str | None = None
    first_polled_at: AwareDatetime | None = None
    current: CurrentStatus | None = None
    #: checkpoint key → the scan's epoch second (0 when the carrier gave no time).
    seen: dict[str, int] = Field(default_factory=dict)
    #: Scans at or before this epoch second were evicted from `seen` and count as seen.
    seen_floor: int | None = None
    scan_count: int = 0
    timeline: tuple[TimelineEntry, ...] = ()
    ndr_attempts: int = 0
    is_stuck: bool | None = None
    stuck_changes: int = 0
    edd: Edd | None = None
    edd_changes: int = 0
    invalid_since: AwareDatetime | None = None
    invalid_reports: int = 0
    #: Since when Clickpost's answer for this waybill could not be read (None: it can).
    unreadable_since: AwareDatetime | None = None
    #: Where the answer failed (a field path and pydantic's error type, never the value).
    unreadable_reason: str | None = None
    #: The start of the unreadable answer as sent (at most 2 KB), for diagnosis.
    unreadable_fragment: str | None = None
    terminal_at: AwareDatetime | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the current status ends the journey."""
        return self.current is not None and self.current.is_terminal
