"""Publish the events that ride in shipment writes (the stream outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackwatch.adapters.shipments_table import outbox_of
from trackwatch.models.events import ShipmentEvent
from trackwatch.ports import EventLog, EventPublisher


def events_to_publish(
    new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
) -> list[ShipmentEvent]:
    """The events a stream record carries: the outbox, if this write put it there."""
    new_seq, events = outbox_of(dict(new_image) if new_image else None)
    old_seq, _ = outbox_of(dict(old_image) if old_image else None)
    if not events or new_seq == old_seq:
        return []
    return events


def publish_record(
    new_image: Mapping[str, Any] | None,
    old_image: Mapping[str, Any] | None,
    publisher: EventPublisher,
    log: EventLog,
) -> list[ShipmentEvent]:
    """Log, then publish, one stream record's events (all of them, or raise); returns them.

    The log is written first so that no event reaches a subscriber without being
    replayable; a retry after a failed publish rewrites the same log items (their
    key holds the event id), so the log never holds an event twice.
    """
    events = events_to_publish(new_image, old_image)
    if events:
        log.append(events)
        publisher.publish(events)
    return events
