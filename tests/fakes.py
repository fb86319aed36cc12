"""In-memory stand-ins for the ports; type-checked against the Protocols they replace."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Self

from trackwatch.adapters.event_log import (
    LEARN_SHARDS,
    event_order,
    learn_fields,
    parse_scans,
    sort_key,
)
from trackwatch.errors import ClickpostError, PublishError, StaleStateError, StorageError
from trackwatch.models.change_feed import FeedRead, FeedState, FeedWindow, UpdatedOrder
from trackwatch.models.clickpost import AwbResult, Meta, TrackOrderResponse
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.hints import HintBatch, QueuedMessage
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest
from trackwatch.models.record import RegistrationWrite, ShipmentRecord, StateChange
from trackwatch.models.state import ShipmentState
from trackwatch.models.tracking import AwbOutcome, AwbStatus, CallOutcome, TrackCall
from trackwatch.ports import (
    ChangeFeed,
    EventLog,
    EventPublisher,
    FeedStateStore,
    HintSink,
    HintSource,
    PollQueueWriter,
    RegistrationStore,
    RejectSink,
    ScanLog,
    ScanPoints,
    ShipmentRepository,
    ShipmentStore,
    Tracker,
    WebhookKeys,
)


class MemoryStore:
    """The shipments table, with its version condition, in a dict."""

    def __init__(self) -> None:
        self.records: dict[ShipmentKey, ShipmentRecord] = {}
        self.outboxes: list[tuple[ShipmentKey, tuple[ShipmentEvent, ...]]] = []
        self.writes = 0
        self.reads = 0
        #: Shipments created by bulk_create.
        self.bulk_writes = 0

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

    def get(self, key: ShipmentKey) -> ShipmentRecord | None:
        self.reads += 1
        return self.records.get(key)

    def save_registration(self, write: RegistrationWrite) -> None:
        current = self.records.get(write.key)
        if write.creates:
            if current is not None:
                raise StaleStateError(f"{write.key} exists")
            assert write.registered_at is not None
            self.records[write.key] = ShipmentRecord(
                key=write.key,
                version=1,
                state=write.state or ShipmentState(),
                registered_at=write.registered_at,
                contact=write.contact,
                metadata=write.metadata,
                due_key=write.due_key,
            )
        else:
            if current is None or current.version != write.expected_version:
                raise StaleStateError(f"{write.key} moved")
            self.records[write.key] = current.model_copy(
                update={
                    "version": current.version + 1,
                    "contact": write.contact,
                    "metadata": write.metadata,
                    "state": write.state or current.state,
                }
            )
        self.writes += 1

    def bulk_create(self, writes: Sequence[RegistrationWrite]) -> None:
        for write in writes:
            assert write.creates and write.registered_at is not None
            self.records[write.key] = ShipmentRecord(
                key=write.key,
                version=1,
                state=write.state or ShipmentState(),
                registered_at=write.registered_at,
                contact=write.contact,
                metadata=write.metadata,
                due_key=write.due_key,
            )
        self.writes += 1
        self.bulk_writes += len(writes)

    def due(self, due_keys: Sequence[str]) -> list[ShipmentKey]:
        wanted = set(due_keys)
        return [k for k, r in self.records.items() if r.due_key in wanted]

    def active(self) -> list[ShipmentKey]:
        return [k for k, r in self.records.items() if r.due_key is not None]

    def has_active(self) -> bool:
        return any(r.due_key is not None for r in self.records.values())


class FakeTracker:
    """Clickpost as a dict of results; a carrier can be made to fail, a waybill unreadable."""

    def __init__(self) -> None:
        self.results: dict[ShipmentKey, AwbResult] = {}
        self.fail: dict[int, ClickpostError] = {}
        #: Waybills whose entry cannot be read, with the reason the client would give.
        self.unreadable: dict[ShipmentKey, str] = {}
        #: Calls that include one of these waybills fail (a hang, a body too large...).
        self.fail_with: dict[str, ClickpostError] = {}
        self.calls: list[TrackCall] = []
        self.deadlines: list[float | None] = []

    async def track(self, call: TrackCall, *, deadline: float | None = None) -> CallOutcome:
        self.calls.append(call)
        self.deadlines.append(deadline)
        if call.cp_id in self.fail:
            raise self.fail[call.cp_id]
        for waybill in call.waybills:
            if waybill in self.fail_with:
                raise self.fail_with[waybill]
        found = {
            k.waybill: self.results[k]
            for k in call.keys
            if k in self.results and k not in self.unreadable
        }
        response = TrackOrderResponse(meta=Meta(status=200, success=True), result=found)
        outcome = CallOutcome.from_response(call, response, attempts=1, elapsed_s=0.01)
        bad = [k for k in call.keys if k in self.unreadable]
        if not bad:
            return outcome
        return outcome.model_copy(
            update={
                "awbs": tuple(a for a in outcome.awbs if a.key not in self.unreadable),
                "unreadable": tuple(
                    AwbOutcome(
                        key=k,
                        status=AwbStatus.UNREADABLE,
                        reason=self.unreadable[k],
                        fragment='{"scans": [{"timestamp": ...',
                    )
                    for k in bad
                ),
            }
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


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


class MemoryEventLog:
    """The event log as a dict keyed like the table: (shipment, change's sort key)."""

    def __init__(self) -> None:
        self.changes: dict[tuple[str, str], tuple[ShipmentEvent, ...]] = {}
        #: The LearnIndex partitions read ("<day>#<shard>"), in order.
        self.queried: list[str] = []

    @property
    def events(self) -> list[ShipmentEvent]:
        """Every logged event."""
        return [e for change in self.changes.values() for e in change]

    def append(self, changes: Sequence[Sequence[ShipmentEvent]]) -> None:
        for change in changes:
            first = change[0]
            self.changes[(f"{first.cp_id}#{first.waybill}", sort_key(change))] = tuple(change)

    def history(self, key: ShipmentKey, since: datetime | None = None) -> list[ShipmentEvent]:
        events = [e for (pk, _), change in self.changes.items() if pk == key.pk for e in change]
        return sorted(
            (e for e in events if since is None or e.occurred_at >= since), key=event_order
        )

    def scan_sequences(
        self, days: Sequence[date]
    ) -> Iterator[list[tuple[ShipmentKey, ScanPoints]]]:
        """As the table's LearnIndex: the entries of `days`, one batch per shard."""
        index: dict[str, list[tuple[ShipmentKey, ScanPoints]]] = {}
        for (pk, _), change in sorted(self.changes.items()):
            fields = learn_fields(change)
            if fields is not None:
                entry = (ShipmentKey.from_pk(pk), parse_scans(fields["scans"]))
                index.setdefault(fields["learn_key"], []).append(entry)
        for shard in range(LEARN_SHARDS):
            batch: list[tuple[ShipmentKey, ScanPoints]] = []
            for day in days:
                partition = f"{day.isoformat()}#{shard}"
                self.queried.append(partition)
                batch.extend(index.get(partition, []))
            yield batch


class MemoryRejects:
    """A dead-letter queue as a list of (body, reason)."""

    def __init__(self) -> None:
        self.rejected: list[tuple[str, str]] = []

    def reject(self, body: str, reason: str) -> None:
        self.rejected.append((body, reason))


class FakeFeed:
    """Clickpost's updated-order feed as a list of (updated_at, order); can be made to fail."""

    def __init__(self) -> None:
        self.orders: list[UpdatedOrder] = []
        self.fail: ClickpostError | None = None
        self.windows: list[FeedWindow] = []
        #: Pages each window is split into (to count them).
        self.pages = 1

    async def updated_orders(
        self, window: FeedWindow, *, max_pages: int = 100, deadline: float | None = None
    ) -> FeedRead:
        self.windows.append(window)
        if self.fail is not None:
            raise self.fail
        listed = tuple(
            o
            for o in self.orders
            if o.updated_at is not None and window.start <= o.updated_at <= window.end
        )
        return FeedRead(window=window, orders=listed, pages=self.pages, requests=self.pages)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class MemoryFeedState:
    """The change feed's state item."""

    def __init__(self, state: FeedState | None = None) -> None:
        self.state = state
        self.saves = 0

    def load(self) -> FeedState | None:
        return self.state

    def save(self, state: FeedState) -> None:
        self.saves += 1
        self.state = state


class MemoryHintQueue:
    """HintQueue as a list of message bodies; received ones stay until deleted."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: dict[str, str] = {}
        self.fail = fail
        self._next = 0
        self._taken: set[str] = set()

    def send(self, batches: Sequence[HintBatch]) -> None:
        if self.fail:
            raise StorageError("HintQueue unavailable")
        for batch in batches:
            self.put(batch.model_dump_json())

    def put(self, body: str) -> None:
        self._next += 1
        self.messages[f"m{self._next}"] = body

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        free = [m for m in self.messages if m not in self._taken][:max_messages]
        self._taken.update(free)
        return [QueuedMessage(message_id=m, receipt=m, body=self.messages[m]) for m in free]

    def delete(self, messages: Sequence[QueuedMessage]) -> None:
        for message in messages:
            self.messages.pop(message.receipt, None)
            self._taken.discard(message.receipt)

    def release(self) -> None:
        """Every received, undeleted message becomes visible again."""
        self._taken.clear()

    @property
    def hints(self) -> list[HintBatch]:
        return [HintBatch.model_validate_json(b) for b in self.messages.values()]


class StaticWebhookKeys:
    """The webhook's keys, fixed."""

    def __init__(self, *keys: str) -> None:
        self._keys = tuple(k.encode() for k in keys)

    def accepted(self) -> tuple[bytes, ...]:
        return self._keys


def _conforms() -> None:
    # mypy checks that the fakes satisfy the ports they stand in for.
    _store: ShipmentStore = MemoryStore()
    _queue: PollQueueWriter = MemoryQueue()
    _publisher: EventPublisher = MemoryPublisher()
    _registrations: RegistrationStore = MemoryStore()
    _log: EventLog = MemoryEventLog()
    _scans: ScanLog = MemoryEventLog()
    _rejects: RejectSink = MemoryRejects()
    _repository: ShipmentRepository = MemoryStore()
    _tracker: Tracker = FakeTracker()
    _feed: ChangeFeed = FakeFeed()
    _feed_state: FeedStateStore = MemoryFeedState()
    _hint_sink: HintSink = MemoryHintQueue()
    _hint_source: HintSource = MemoryHintQueue()
    _webhook_keys: WebhookKeys = StaticWebhookKeys("k" * 16)
