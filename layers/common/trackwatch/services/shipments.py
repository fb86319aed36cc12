"""Managing one tracked shipment: show it, stop it, poll it now, replay its events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from trackwatch.errors import ConflictError, NotFoundError
from trackwatch.logic.channels import Routing, contact_recipient
from trackwatch.logic.poll_decision import stop
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Registration, Rejected
from trackwatch.models.views import RefreshView, ReplayView, ShipmentView
from trackwatch.ports import EventLog, EventPublisher, PollQueueWriter, RegistrationStore
from trackwatch.services.conflicts import retry_on_conflict
from trackwatch.services.dispatch import enqueue_polls
from trackwatch.services.registration import EntryResult, RegistrationService

STOPPED_BY_REQUEST = "stopped by request"


class ShipmentsService:
    """The use cases behind the shipments API and the command line."""

    def __init__(
        self,
        store: RegistrationStore,
        registration: RegistrationService,
        queue: PollQueueWriter,
        log: EventLog,
        publisher: EventPublisher,
        cadence: Cadence,
        clock: Callable[[], datetime],
        calls_per_message: int = 10,
        *,
        routing: Routing,
    ) -> None:
        self._store = store
        self._routing = routing
        self._registration = registration
        self._queue = queue
        self._log = log
        self._publisher = publisher
        self._cadence = cadence
        self._clock = clock
        self._per_message = calls_per_message

    def register(
        self,
        entries: Sequence[Registration | Rejected],
        *,
        workers: int = 8,
        on_done: Callable[[EntryResult], None] | None = None,
    ) -> list[EntryResult]:
        """Register the valid entries; results (rejections included) in entry order."""
        return self._registration.register(entries, workers=workers, on_done=on_done)

    def show(self, key: ShipmentKey) -> ShipmentView:
        """The shipment's status, NDRs, expected delivery, timeline and stop, if any."""
        record = self._known(key)
        return ShipmentView.of(record, self._log.history(key))

    def stop(self, key: ShipmentKey) -> ShipmentView:
        """Stop polling it (it leaves the due index; TTL removes it later). Idempotent."""

        def attempt(_n: int) -> ShipmentView:
            record = self._known(key)
            if not record.active:
                return ShipmentView.of(record, [])
            self._store.commit(stop(record, STOPPED_BY_REQUEST, self._clock(), self._cadence))
            return ShipmentView.of(self._known(key), [])

        return retry_on_conflict(attempt, key)

    def refresh(self, key: ShipmentKey) -> RefreshView:
        """Poll it now, through the dispatcher's own path into PollQueue."""
        record = self._known(key)
        if not record.active:
            raise ConflictError(f"tracking stopped: {record.stop_reason}")
        now = self._clock()
        calls, messages = enqueue_polls([key], self._queue, self._per_message, "refresh", now)
        return RefreshView(
            waybill=key.waybill, cp_id=key.cp_id, calls=calls, messages=messages, requested_at=now
        )

    def replay(self, key: ShipmentKey, since: datetime | None = None) -> ReplayView:
        """Publish its logged events again, each with its original event_id and body."""
        record = self._known(key)
        events = self._log.history(key, since)
        if events:
            recipient = contact_recipient(key, record.contact)
            audiences = {e.event_id: self._routing.audience(e, recipient) for e in events}
            self._publisher.publish(events, audiences)
        return ReplayView(
            waybill=key.waybill,
            cp_id=key.cp_id,
            replayed=len(events),
            event_ids=[e.event_id for e in events],
        )

    def _known(self, key: ShipmentKey) -> ShipmentRecord:
        record = self._store.get(key)
        if record is None:
            raise NotFoundError(f"shipment {key} is not registered")
        return record
