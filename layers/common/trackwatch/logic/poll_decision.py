"""What one poll means for one stored shipment: the write to make, or none."""

from __future__ import annotations

from datetime import datetime, timedelta

from trackwatch.logic.cadence import cadence_class, due_key, stop_reason
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.delays import DelayPolicy, ShipmentDelays
from trackwatch.logic.diff import diff, recheck
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
    delays: DelayPolicy | None = None,
) -> tuple[StateChange | None, tuple[int, ...]]:
    """The change to commit (None: nothing to write) and any unknown status codes."""
    outcome = diff(
        record.state,
        record.key,
        result,
        now,
        catalogue,
        future_margin=cadence.future_margin,
        delays=checks_for(record, delays),
    )
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


#: The metadata key naming a shipment's destination zone (as the notifiers read it too).
TIMEZONE_METADATA_KEY = "timezone"


def checks_for(record: ShipmentRecord, delays: DelayPolicy | None) -> ShipmentDelays | None:
    """One shipment's delay checks: its carrier, its destination's zone."""
    if delays is None:
        return None
    return delays.for_shipment(record.key.cp_id, record.metadata.get(TIMEZONE_METADATA_KEY))


def check(record: ShipmentRecord, now: datetime, delays: DelayPolicy) -> StateChange | None:
    """A visit without a Clickpost answer: the write the delay checks need (None: none)."""
    checks = checks_for(record, delays)
    assert checks is not None
    outcome = recheck(record.state, record.key, now, checks)
    if not outcome.changed:
        return None
    return StateChange(
        key=record.key,
        expected_version=record.version,
        state=outcome.state,
        events=outcome.events,
        due_key=record.due_key,
    )


#: Events one write carries at most. With Clickpost's text clipped (diff.TEXT_LIMIT) an
#: event is at most ~4 KB and the state ~100 KB, so a write stays far under DynamoDB's
#: 400 KB item limit however long the history a first sight brings.
OUTBOX_EVENTS_PER_WRITE = 50


def in_parts(
    change: StateChange, before: ShipmentRecord, per_write: int = OUTBOX_EVENTS_PER_WRITE
) -> list[StateChange]:
    """`change` as consecutive writes of at most `per_write` events each.

    Every part but the last keeps the stored state and due key and only carries events
    (each write is conditional on the version the one before it left); the last writes
    the new state. If the writer dies between parts, the next poll diffs from the old
    state again and finds the same events (same ids): some are published twice, none lost.
    """
    events = change.events
    if len(events) <= per_write:
        return [change]
    chunks = [events[i : i + per_write] for i in range(0, len(events), per_write)]
    parts = [
        StateChange(
            key=change.key,
            expected_version=before.version + i,
            state=before.state,
            events=chunk,
            due_key=before.due_key,
        )
        for i, chunk in enumerate(chunks[:-1])
    ]
    last = change.model_copy(
        update={"expected_version": before.version + len(parts), "events": chunks[-1]}
    )
    return [*parts, last]


def unreadable(
    record: ShipmentRecord,
    reason: str,
    fragment: str | None,
    now: datetime,
    catalogue: StatusCatalogue,
    cadence: Cadence,
) -> StateChange | None:
    """A waybill whose answer could not be read: remembered from the first time (no event),
    stopped with its reason once it has been unreadable for the give-up period."""
    state = record.state
    if state.unreadable_since is None:
        state = state.model_copy(
            update={
                "unreadable_since": now,
                "unreadable_reason": reason,
                "unreadable_fragment": fragment,
            }
        )
    reason_to_stop = stop_reason(state, now, cadence, catalogue)
    if reason_to_stop is not None:
        return stop(record, reason_to_stop, now, cadence, state)
    if state == record.state:
        return None
    return StateChange(
        key=record.key,
        expected_version=record.version,
        state=state,
        due_key=record.due_key,
    )


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
