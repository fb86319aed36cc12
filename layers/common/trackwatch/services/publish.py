"""Publish the events that ride in shipment writes (the stream outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackwatch.errors import PoisonEventsError
from trackwatch.models.events import ShipmentEvent
from trackwatch.ports import EventLog, EventPublisher, OutboxReader, RejectSink


class PublishService:
    """Logs, then publishes, the events of each stream record; sets aside what cannot be."""

    def __init__(
        self,
        images: OutboxReader,
        publisher: EventPublisher,
        log: EventLog,
        poison: RejectSink,
    ) -> None:
        self._images = images
        self._publisher = publisher
        self._log = log
        self._poison = poison

    def events_of(
        self, new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
    ) -> list[ShipmentEvent]:
        """The events a stream record carries: the outbox, if this write put it there.

        Raises PoisonEventsError when the new image's outbox does not decode.
        """
        new = self._images.outbox(new_image)
        try:
            old_seq = self._images.outbox(old_image).seq
        except PoisonEventsError:
            old_seq = None  # an old outbox that does not decode is not what is published now
        if not new.events or new.seq == old_seq:
            return []
        return list(new.events)

    def publish_record(
        self, new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
    ) -> list[ShipmentEvent]:
        """Log, then publish, one stream record's events (all of them, or raise); returns them.

        The log is written first so that no event reaches a subscriber without being
        replayable; a retry after a failed publish rewrites the same log items (their
        key holds the event id), so the log never holds an event twice. Content that can
        never be published (an outbox that does not decode, events SNS refuses as the
        sender's fault) is not retried: it goes, whole and with its reason, to the
        publisher's dead-letter queue, and the record counts as handled.
        """
        try:
            events = self.events_of(new_image, old_image)
        except PoisonEventsError as exc:
            self._poison.reject(exc.content, exc.reason)
            return []
        if not events:
            return []
        self._log.append(events)
        try:
            self._publisher.publish(events)
        except PoisonEventsError as exc:
            self._poison.reject(exc.content, exc.reason)
        return events
