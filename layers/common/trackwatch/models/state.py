"""What trackwatch remembers about one shipment between polls: the diff engine's state.

Only what the next diff needs (the scans themselves live in the event log), and
bounded whatever the carrier sends: checkpoints are remembered by a short digest,
and beyond `MAX_SEEN` they are evicted oldest first, leaving a watermark
(`seen_floor`) under which every scan counts as seen. Nothing in it changes on a
poll that brings nothing new, so an unchanged shipment is never rewritten.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import Edd, StuckReason

MAX_SEEN = 1000


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


class ShipmentState(BaseModel):
    """The diff engine's memory of one shipment."""

    model_config = ConfigDict(frozen=True)

    order_id: str | None = None
    courier_name: str | None = None
    first_polled_at: AwareDatetime | None = None
    current: CurrentStatus | None = None
    #: seen_key(checkpoint key) → the scan's trusted epoch second (0 when it has none).
    seen: dict[str, int] = Field(default_factory=dict)
    #: Scans at or before this epoch second were evicted from `seen` and count as seen.
    seen_floor: int | None = None
    scan_count: int = 0
    #: A digest of the checkpoint ids of the answer this state was last written from: an
    #: answer with the same ids has no scan the state has not seen (the steady poll's exit).
    scans_digest: str | None = None
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
    # --- delays (logic/delays.py); every field None until it means something ---------
    #: When the shipment last moved: its newest trusted scan or status time (the detection
    #: time for a scan whose own time cannot be used). The dwell clock runs from here.
    moved_at: AwareDatetime | None = None
    #: When the current status code began (its first scan's time, else when it was seen).
    status_since: AwareDatetime | None = None
    #: The earliest trusted scan time: where Clickpost's SLA days count from.
    first_scan_at: AwareDatetime | None = None
    #: Why the open stuck episode was raised. An episode is open while `stuck_changes` is
    #: odd (every stuck and unstuck counts one), so states stored before this field existed
    #: read right: their open episodes came from Clickpost's flag.
    stuck_reason: StuckReason | None = None
    #: The merchant's promised delivery date, as registered.
    promised_delivery_date: date | None = None
    #: The promise a breach was reported for, and the one a delay was predicted for:
    #: each is reported once per promise.
    breached_promise: date | None = None
    predicted_promise: date | None = None
    #: The newest time at which Clickpost recorded a scan of this shipment that has been
    #: seen (scans' created_at): a change hint recorded no later than this brings nothing new.
    recorded_until: AwareDatetime | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the current status ends the journey."""
        return self.current is not None and self.current.is_terminal

    @property
    def stuck_open(self) -> bool:
        """Whether a stuck episode is open (a stuck event not yet followed by an unstuck)."""
        return self.stuck_changes % 2 == 1
