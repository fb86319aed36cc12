"""Publish the events that ride in shipment writes (the stream outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackwatch.models.events import ShipmentEvent
from trackwatch.ports import EventLog, EventPublisher, OutboxReader


class PublishService:
    """Logs, then publishes, the events of each stream record."""

    def __init__(self, images: OutboxReader, publisher: EventPublisher, log: EventLog) -> None:
        self._images = images
        self._publisher = publisher
        self._log = log

    def events_of(
        self, new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
    ) -> list[ShipmentEvent]:
        """The events a stream record carries: the outbox, if this write put it there."""
        new = self._images.outbox(new_image)
        old = self._images.outbox(old_image)
        if not new.events or new.seq == old.seq:
            return []
        return list(new.events)

    def publish_record(
        self, new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
    ) -> list[ShipmentEvent]:
        """Log, then publish, one stream record's events (all of them, or raise); returns them.

        The log is written first so that no event reaches a subscriber without being
        replayable; a retry after a failed publish rewrites the same log items (their
        key holds the event id), so the log never holds an event twice.
        """
        events = self.events_of(new_image, old_image)
        if events:
            self._log.append(events)
            self._publisher.publish(events)
        return events
