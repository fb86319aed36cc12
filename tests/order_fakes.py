"""In-memory stand-ins for the roll-up's ports; type-checked against the Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from tests.order_samples import STAGES, T0, WINDOW
from trackwatch.errors import PublishError, StaleStateError
from trackwatch.models.events import OrderEvent
from trackwatch.models.orders import MemberChange, OrderRecord
from trackwatch.models.record import StreamChange
from trackwatch.ports import (
    MemberChanges,
    OrderEventPublisher,
    OrderStore,
    SettleScheduler,
)
from trackwatch.services.orders import OrderRollUp


class MemoryOrders:
    """The orders table, with its version condition, in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, OrderRecord] = {}
        self.writes = 0
        self.reads = 0

    def get(self, order_id: str) -> OrderRecord | None:
        self.reads += 1
        return self.records.get(order_id)

    def get_many(self, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
        self.reads += 1
        return {o: self.records[o] for o in order_ids if o in self.records}

    def save(self, record: OrderRecord, expected_version: int | None) -> None:
        current = self.records.get(record.state.order_id)
        stored = None if current is None else current.version
        if stored != expected_version:
            raise StaleStateError(f"order {record.state.order_id} moved")
        self.records[record.state.order_id] = record
        self.writes += 1

    def published(self, order_id: str, version: int) -> None:
        current = self.records.get(order_id)
        if current is not None and current.version == version:
            self.records[order_id] = current.model_copy(update={"pending": ()})


class MemoryOrderPublisher:
    """The topic, for order events, as a list; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[OrderEvent] = []
        self.fail = fail

    def publish(self, events: Sequence[OrderEvent]) -> None:
        if self.fail:
            raise PublishError("topic unavailable")
        self.published.extend(events)


class MemoryScheduler:
    """The settle queue as a list of (order_id, when)."""

    def __init__(self) -> None:
        self.ticks: list[tuple[str, datetime]] = []

    def schedule(self, order_id: str, at: datetime) -> None:
        self.ticks.append((order_id, at))


class ScriptedChanges:
    """Stream records read as the member changes a test says they are (by record id)."""

    def __init__(self, changes: Mapping[str, MemberChange | None] | None = None) -> None:
        self.changes = dict(changes or {})

    def change(self, record: StreamChange, now: datetime) -> MemberChange | None:
        return self.changes.get(record.record_id)


def roll_up_over(
    store: OrderStore,
    changes: Mapping[str, MemberChange | None] | MemberChanges,
    now: datetime = T0,
) -> OrderRollUp:
    """The roll-up over `store`, reading stream records as `changes` says, at `now`."""
    return OrderRollUp(
        store,
        ScriptedChanges(changes) if isinstance(changes, Mapping) else changes,
        MemoryOrderPublisher(),
        MemoryScheduler(),
        STAGES,
        window=WINDOW,
        retention=timedelta(days=90),
        clock=lambda: now,
    )


def _conforms() -> None:
    _store: OrderStore = MemoryOrders()
    _publisher: OrderEventPublisher = MemoryOrderPublisher()
    _scheduler: SettleScheduler = MemoryScheduler()
    _changes: MemberChanges = ScriptedChanges()
