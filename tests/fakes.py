"""In-memory stand-ins for the ports; type-checked against the Protocols they replace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from trackwatch.errors import PublishError, StaleStateError
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest
from trackwatch.models.record import ShipmentRecord, StateChange
from trackwatch.models.state import ShipmentState
from trackwatch.ports import EventPublisher, PollQueueWriter, ShipmentStore


class MemoryStore:
    """The shipments table, with its version condition, in a dict."""

    def __init__(self) -> None:
        self.records: dict[ShipmentKey, ShipmentRecord] = {}
        self.outboxes: list[tuple[ShipmentKey, tuple[ShipmentEvent, ...]]] = []
        self.writes = 0
        self.reads = 0

    def add(self, key: ShipmentKey, due_key: str, now: datetime) -> ShipmentRecord:
        record = ShipmentRecord(
            key=key, version=1, state=ShipmentState(), registered_at=now, due_key=due_key
        )
        self.records[key] = record
        return record

    def get_many(
        self, keys: Iterable[ShipmentKey], *, consistent: bool = False
    ) -> dict[ShipmentKey, ShipmentRecord]:
        self.reads += 1
        return {k: self.records[k] for k in keys if k in self.records}

    def commit(self, change: StateChange) -> None:
        current = self.records.get(change.key)
        if current is None or current.version != change.expected_version:
            raise StaleStateError(f"{change.key} moved")
        self.writes += 1
        self.records[change.key] = current.model_copy(
            update={
                "version": current.version + 1,
                "state": change.state,
                "due_key": change.due_key,
                "stop_reason": change.stop_reason or current.stop_reason,
                "stopped_at": change.stopped_at or current.stopped_at,
                "outbox_seq": current.outbox_seq + (1 if change.events else 0),
            }
        )
        if change.events:
            self.outboxes.append((change.key, change.events))

    def due(self, due_keys: Sequence[str]) -> list[ShipmentKey]:
        wanted = set(due_keys)
        return [k for k, r in self.records.items() if r.due_key in wanted]

    def active(self) -> list[ShipmentKey]:
        return [k for k, r in self.records.items() if r.due_key is not None]


class MemoryQueue:
    """PollQueue as a list."""

    def __init__(self) -> None:
        self.sent: list[PollRequest] = []

    def send(self, requests: Sequence[PollRequest]) -> None:
        self.sent.extend(requests)


class MemoryPublisher:
    """The topic as a list; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[ShipmentEvent] = []
        self.fail = fail

    def publish(self, events: Sequence[ShipmentEvent]) -> None:
        if self.fail:
            raise PublishError("topic unavailable")
        self.published.extend(events)


def _conforms() -> None:
    # mypy checks that the fakes satisfy the ports they stand in for.
    _store: ShipmentStore = MemoryStore()
    _queue: PollQueueWriter = MemoryQueue()
    _publisher: EventPublisher = MemoryPublisher()
