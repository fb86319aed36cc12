"""What the shipments API and the command line show: output models, mapped from storage."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import Edd, NdrRaised, ScanAdded, ShipmentEvent
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Problem
from trackwatch.models.state import CurrentStatus

#: Scans a shipment view shows: the newest ones.
TIMELINE_LIMIT = 30


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatusView(_View):
    """The shipment's current status, as Clickpost last reported it."""

    clickpost_status_code: int | None
    clickpost_status_description: str | None
    clickpost_status_bucket: int | None
    clickpost_status_bucket_description: str | None
    status: str | None = Field(description="The carrier's own status text.")
    location: str | None
    remark: str | None
    timestamp: AwareDatetime | None
    is_terminal: bool

    @classmethod
    def of(cls, current: CurrentStatus) -> StatusView:
        """Map the stored status."""
        return cls(**current.model_dump())


class ScanView(_View):
    """One scan of the timeline, newest last."""

    checkpoint_id: int | str
    timestamp: AwareDatetime | None
    clickpost_status_code: int | None
    clickpost_status_description: str | None
    clickpost_status_bucket: int | None
    status: str | None
    location: str | None
    remark: str | None

    @classmethod
    def of(cls, event: ScanAdded) -> ScanView:
        """Map one logged scan_added event (its time: the carrier's, when it could be read)."""
        scan = event.scan
        return cls(
            checkpoint_id=event.checkpoint_id,
            timestamp=event.occurred_at if event.time_quality == "carrier" else None,
            clickpost_status_code=scan.clickpost_status_code,
            clickpost_status_description=scan.clickpost_status_description,
            clickpost_status_bucket=scan.clickpost_status_bucket,
            status=scan.status,
            location=scan.location,
            remark=scan.remark,
        )


class LastNdrView(_View):
    """The latest failed delivery attempt."""

    attempt: int
    occurred_at: AwareDatetime
    ndr_bucket_code: int | None
    ndr_description: str | None
    location: str | None
    remark: str | None


class NdrView(_View):
    """Failed delivery attempts (non-delivery reports)."""

    attempts: int
    last: LastNdrView | None = None


class StopView(_View):
    """Why and when tracking ended."""

    reason: str
    stopped_at: AwareDatetime | None


class ShipmentView(_View):
    """A shipment as trackwatch knows it now."""

    waybill: str
    cp_id: int
    order_id: str | None
    courier_name: str | None
    tracked: bool = Field(description="Whether trackwatch still polls it.")
    registered_at: AwareDatetime
    status: StatusView | None = Field(description="Null until Clickpost first reports a status.")
    ndr: NdrView
    expected_delivery: Edd | None
    promised_delivery_date: date | None = Field(
        default=None, description="The promised delivery date, as registered."
    )
    is_stuck: bool = Field(
        description="Whether it is stuck now: Clickpost's flag, or no scan for too long."
    )
    stuck_reason: Literal["clickpost_flag", "no_scan_for"] | None = Field(
        default=None, description="Why it is stuck (null when it is not)."
    )
    last_scan_at: AwareDatetime | None = Field(
        default=None, description="When it last moved: its newest scan."
    )
    timeline: list[ScanView] = Field(description="The newest scans (up to 30), oldest first.")
    stopped: StopView | None = Field(description="Set when tracking stopped, with the reason.")
    language: str
    channels: list[str] = Field(
        description="Channels the customer accepts, in order of preference: whatsapp, sms, email."
    )
    opt_out: list[str] = Field(description="Channels the customer refused.")
    has_phone: bool
    has_email: bool

    @classmethod
    def of(cls, record: ShipmentRecord, events: list[ShipmentEvent]) -> ShipmentView:
        """Map a stored shipment and its logged events (oldest first): the timeline and the
        last NDR come from the log, the rest from the stored state."""
        state = record.state
        ndrs = [e for e in events if isinstance(e, NdrRaised)]
        scans = [e for e in events if isinstance(e, ScanAdded)][-TIMELINE_LIMIT:]
        last = ndrs[-1] if ndrs else None
        return cls(
            waybill=record.key.waybill,
            cp_id=record.key.cp_id,
            order_id=state.order_id,
            courier_name=state.courier_name,
            tracked=record.active,
            registered_at=record.registered_at,
            status=StatusView.of(state.current) if state.current else None,
            ndr=NdrView(
                attempts=state.ndr_attempts,
                last=LastNdrView(
                    attempt=last.attempt,
                    occurred_at=last.occurred_at,
                    ndr_bucket_code=last.ndr_bucket_code,
                    ndr_description=last.ndr_description,
                    location=last.location,
                    remark=last.remark,
                )
                if last
                else None,
            ),
            expected_delivery=state.edd,
            promised_delivery_date=state.promised_delivery_date,
            is_stuck=state.stuck_open,
            stuck_reason=(state.stuck_reason or "clickpost_flag") if state.stuck_open else None,
            last_scan_at=state.moved_at,
            timeline=[ScanView.of(event) for event in scans],
            stopped=StopView(reason=record.stop_reason, stopped_at=record.stopped_at)
            if record.stop_reason
            else None,
            language=record.contact.language,
            channels=list(record.contact.channels),
            opt_out=sorted(record.contact.opt_out),
            has_phone=record.contact.phone is not None,
            has_email=record.contact.email is not None,
        )


class EntryView(_View):
    """What became of one entry of a registration."""

    index: int = Field(description="The entry's position in the batch (0 for a single one).")
    outcome: Literal["created", "updated", "unchanged", "rejected"]
    waybill: str | None
    cp_id: int | None
    tracked: bool | None = Field(
        default=None, description="Whether it is polled: a stopped shipment stays stopped."
    )
    errors: list[Problem] = Field(default_factory=list)


class BatchView(_View):
    """A batch registration: counts, and each entry's result in order."""

    created: int
    updated: int
    unchanged: int
    rejected: int
    results: list[EntryView]


class RefreshView(_View):
    """A poll was queued."""

    waybill: str
    cp_id: int
    calls: int
    messages: int
    requested_at: AwareDatetime


class ReplayView(_View):
    """Events published again, with their original ids."""

    waybill: str
    cp_id: int
    replayed: int
    event_ids: list[str]


class ErrorView(_View):
    """What was wrong: one message, and each field with the rule it broke."""

    message: str
    errors: list[Problem] = Field(default_factory=list)
