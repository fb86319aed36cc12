"""Publish the events that ride in shipment writes (the stream outbox), a batch at a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trackwatch.errors import PoisonEventsError, TrackwatchError
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.record import StreamChange
from trackwatch.ports import EventLog, EventPublisher, OutboxReader, RejectSink


@dataclass
class PublishReport:
    """What one batch did: the records to retry (in order), events by type, poison set aside."""

    failed: list[str] = field(default_factory=list)
    published: Counter[str] = field(default_factory=Counter)
    poisoned: int = 0
    #: The kind of the error that failed the batch, if one did.
    error: str | None = None
    #: Seconds from Clickpost's record time to publishing, by event type (events that
    #: carry a record time).
    lags: dict[str, list[float]] = field(default_factory=dict)


class PublishService:
    """Logs, then publishes, the events of a batch of stream records; sets aside what cannot
    be published at all."""

    def __init__(
        self,
        images: OutboxReader,
        publisher: EventPublisher,
        log: EventLog,
        poison: RejectSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._images = images
        self._publisher = publisher
        self._log = log
        self._poison = poison
        self._clock = clock

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

    def publish(self, records: Sequence[StreamChange]) -> PublishReport:
        """Log every change of the batch, then publish every event, packed across records.

        The log is written first, in one BatchWriteItem per 25 changes, so that no event
        reaches a subscriber without being replayable; a retried batch writes the same
        items again. The events of the whole batch then go out ten to a PublishBatch
        request, whatever record they came from. Content that can never be published (an
        outbox that does not decode, events SNS refuses as the sender's fault) goes, whole
        and with its reason, to the publisher's dead-letter queue and is not retried. Any
        other failure of ours (TrackwatchError) fails the whole batch: its records are
        retried in order (subscribers deduplicate on event_id).
        """
        report = PublishReport()
        changes: list[list[ShipmentEvent]] = []
        for record in records:
            try:
                events = self.events_of(record.new_image, record.old_image)
            except PoisonEventsError as exc:
                self._poison.reject(exc.content, exc.reason)
                report.poisoned += 1
                continue
            if events:
                changes.append(events)
        if not changes:
            return report
        # Stamped once per batch: a retried batch is a new publish, with a new time.
        now = self._clock()
        changes = [[e.model_copy(update={"published_at": now}) for e in c] for c in changes]
        everything = [event for change in changes for event in change]
        try:
            self._log.append(changes)
            self._publisher.publish(everything)
        except PoisonEventsError as exc:
            self._poison.reject(exc.content, exc.reason)
            report.poisoned += exc.events
            refused = set(exc.event_ids)
            everything = [e for e in everything if e.event_id not in refused]
        except TrackwatchError as exc:
            report.failed = [r.record_id for r in records]
            report.error = exc.kind
            return report
        report.published.update(e.event_type for e in everything)
        for event in everything:
            if event.recorded_at is not None:
                lag = (now - event.recorded_at).total_seconds()
                report.lags.setdefault(event.event_type, []).append(lag)
        return report
