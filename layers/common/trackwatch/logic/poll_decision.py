"""What one poll means for one stored shipment: the write to make, or none."""

from __future__ import annotations

from datetime import datetime, timedelta

from trackwatch.logic.cadence import cadence_class, due_key, stop_reason
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.diff import diff
from trackwatch.models.clickpost import AwbResult
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord, StateChange
from trackwatch.models.state import ShipmentState


def decide(
    record: ShipmentRecord,
    result: AwbResult,
    now: datetime,
    catalogue: StatusCatalogue,
    cadence: Cadence,
) -> tuple[StateChange | None, tuple[int, ...]]:
    """The change to commit (None: nothing to write) and any unknown status codes."""
    outcome = diff(record.state, record.key, result, now, catalogue)
    reason = stop_reason(outcome.state, now, cadence, catalogue)
    if reason is not None:
        change = stop(record, reason, now, cadence, outcome.state, outcome.events)
        return change, outcome.unknown_status_codes
    new_due = due_key(record.key.pk, cadence_class(outcome.state, catalogue), cadence)
    if not outcome.changed and new_due == record.due_key:
        return None, outcome.unknown_status_codes
    change = StateChange(
        key=record.key,
        expected_version=record.version,
        state=outcome.state,
        events=outcome.events,
        due_key=new_due,
    )
    return change, outcome.unknown_status_codes


def stop(
    record: ShipmentRecord,
    reason: str,
    now: datetime,
    cadence: Cadence,
    state: ShipmentState | None = None,
    events: tuple[ShipmentEvent, ...] = (),
) -> StateChange:
    """End tracking: leave the due index, record why, and let TTL clean up later."""
    return StateChange(
        key=record.key,
        expected_version=record.version,
        state=state or record.state,
        events=events,
        due_key=None,
        stop_reason=reason,
        stopped_at=now,
        expires_at=int((now + timedelta(days=cadence.stopped_retention_days)).timestamp()),
    )
