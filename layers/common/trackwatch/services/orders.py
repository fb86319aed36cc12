"""Orders: each shipment write rolled up into its order's item, each closed window told as
order events, and an order shown as it stands.

The roll-up reads the shipments table's stream (a second consumer beside the publisher). For
each order a batch touches it makes one conditional write of the order's item: the members'
new steps, and the events of any window that has closed, kept on the item as `pending`; only
then are those events published, and the item told they are out. A crash between the two
leaves them pending: whoever handles the order next (the retried batch, the next change, the
settle tick) publishes them again, with the same ids. So an event is never lost, never
published without being recorded, and only repeated after a crash or a lost race.

A window that is still open asks for a settle tick (a delayed message on the roll-up's own
queue) when it opens; the tick closes it if no change of a member has done so first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from trackwatch.errors import NotFoundError, PoisonEventsError, TrackwatchError
from trackwatch.logic.orders import (
    OrderStageTable,
    Replay,
    apply,
    member_count,
    orders_of,
    replayed,
    settle,
    significant,
)
from trackwatch.models.events import OrderEvent, event_type_name
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.order_views import OrderMemberView, OrderTimelineEntry, OrderView
from trackwatch.models.orders import ENDED, MemberChange, OrderRecord, OrderState, SettleRequest
from trackwatch.models.record import StreamChange
from trackwatch.ports import (
    MemberChanges,
    OrderEventPublisher,
    OrderStore,
    SettleScheduler,
)
from trackwatch.services.conflicts import retry_on_conflict


@dataclass
class RollUpReport:
    """What one stream batch did: records to retry, orders written, events told, skips."""

    failed: list[str] = field(default_factory=list)
    orders: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def as_log(self) -> dict[str, object]:
        """The batch's summary log line (order ids and waybills stay out)."""
        return {
            "orders": self.orders,
            "failed": len(self.failed),
            "events": dict(self.events),
            "skipped": dict(self.skipped),
            "errors": dict(self.errors),
        }


class OrderRollUp:
    """Keeps every order's item in step with its members, and tells what changed."""

    def __init__(
        self,
        store: OrderStore,
        changes: MemberChanges,
        publisher: OrderEventPublisher,
        scheduler: SettleScheduler,
        table: OrderStageTable,
        *,
        window: timedelta,
        retention: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._changes = changes
        self._publisher = publisher
        self._scheduler = scheduler
        self._table = table
        self._window = window
        self._retention = retention
        self._clock = clock

    def roll_up(self, records: Sequence[StreamChange]) -> RollUpReport:
        """Apply a stream batch: one conditional write per order it touches. The records of an
        order whose write or publish failed are reported, to be retried (the others' steps
        are already there, and applying them again changes nothing)."""
        report = RollUpReport()
        now = self._clock()
        by_order: dict[str, list[tuple[str, MemberChange]]] = {}
        for record in records:
            try:
                change = self._changes.change(record, now)
            except PoisonEventsError:
                # The publisher sets the same write's outbox aside if it is broken too; a
                # state that does not decode is counted (a metric), never retried for a day.
                report.skipped["unreadable"] += 1
                continue
            if change is None:
                report.skipped["no_shipment"] += 1
                continue
            touched = orders_of(change)
            if not touched:
                report.skipped["no_order"] += 1
            for order_id in touched:
                by_order.setdefault(order_id, []).append((record.record_id, change))
        stored = self._read_all(list(by_order))
        for order_id, items in by_order.items():
            try:
                told = self._update(
                    order_id,
                    [change for _, change in items],
                    now,
                    batch=stored,
                )
            except TrackwatchError as exc:
                report.errors[exc.kind] += 1
                report.failed.extend(record_id for record_id, _ in items)
                continue
            report.orders += 1
            report.events.update(event_type_name(type(e)) for e in told)
        report.failed = list(dict.fromkeys(report.failed))
        return report

    def _read_all(self, order_ids: list[str]) -> dict[str, OrderRecord] | None:
        """The batch's orders in one read (a BatchGetItem, not a GetItem per order); None if
        that read failed: each order then reads its own, and fails on its own."""
        if len(order_ids) < 2:
            return None
        try:
            return self._store.get_many(order_ids)
        except TrackwatchError:
            return None

    def settle_tick(self, request: SettleRequest) -> str:
        """Close the order's windows that have ended; a tick that came early (SQS delays at
        most 15 minutes) asks again. Returns what it did."""
        now = self._clock()
        if now < request.settle_at:
            self._scheduler.schedule(request.order_id, request.settle_at)
            return "early"
        told = self._update(request.order_id, [], now)
        return "told" if told else "settled"

    def _update(
        self,
        order_id: str,
        changes: Sequence[MemberChange],
        now: datetime,
        *,
        batch: Mapping[str, OrderRecord] | None = None,
    ) -> list[OrderEvent]:
        """Read, apply, settle, write on condition; then publish what is pending. `batch`: the
        items of the batch's orders as the caller read them (an order not in it has none),
        for the first attempt; a conflict reads again."""

        def attempt(n: int) -> tuple[OrderRecord | None, list[OrderEvent]]:
            stored = (
                batch.get(order_id) if n == 0 and batch is not None else self._store.get(order_id)
            )
            state = stored.state if stored is not None else OrderState(order_id=order_id)
            for change in changes:
                state = apply(state, change, self._table)
            settled = settle(state, now, self._window)
            state = settled.state
            pending = (*(stored.pending if stored else ()), *settled.events)
            if stored is not None and state == stored.state and settled.next_at == stored.settle_at:
                return stored, []
            if stored is None and not state.members:
                return None, []  # a departure from an order we never knew
            if settled.next_at is not None and (
                stored is None or stored.settle_at != settled.next_at
            ):
                # Before the write: a crash after it repeats a tick, never loses one.
                self._scheduler.schedule(order_id, settled.next_at)
            record = OrderRecord(
                state=state,
                version=(stored.version + 1) if stored is not None else 1,
                settle_at=settled.next_at,
                member_count=member_count(state),
                pending=pending,
                expires_at=int((now + self._retention).timestamp()),
            )
            self._store.save(record, stored.version if stored is not None else None)
            return record, list(settled.events)

        record, told = retry_on_conflict(attempt, f"order {order_id}")
        if record is not None and record.pending:
            self._publisher.publish(record.pending)
            self._store.published(order_id, record.version)
        return told


class OrdersService:
    """What the orders API and the command line show."""

    def __init__(self, store: OrderStore, window: timedelta, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._window = window
        self._clock = clock

    def show(self, order_id: str) -> OrderView:
        """The order's members, their statuses, counts, milestone and timeline, with every
        window that has closed by now told (a settle tick may not have come yet, and an
        order of one box asks for none)."""
        record = self._store.get(order_id)
        if record is None or not record.state.members:
            raise NotFoundError(f"order {order_id!r} is not known")
        settled = settle(record.state, self._clock(), self._window)
        told, live = replayed(settled.state, self._window)
        return order_view(settled.state, told, live)


def order_view(state: OrderState, told: Replay, live: Replay) -> OrderView:
    """Map an order's state, replayed as told and as it is now."""
    members = live.current()
    counts = Counter(m.standing for m in members)
    return OrderView(
        order_id=state.order_id,
        total=len(members),
        milestone=told.milestone_stage,
        complete=bool(members) and all(m.standing in ENDED for m in members),
        counts=dict(sorted(counts.items())),
        members=[
            OrderMemberView(
                cp_id=m.key.cp_id,
                waybill=m.key.waybill,
                standing=m.standing,
                stage=m.stage,
                clickpost_status_code=m.status.clickpost_status_code,
                clickpost_status_description=m.status.clickpost_status_description,
                clickpost_status_bucket=m.status.clickpost_status_bucket,
                clickpost_status_bucket_description=m.status.clickpost_status_bucket_description,
                is_terminal=m.status.is_terminal,
                joined_at=m.joined_at,
            )
            for m in members
        ],
        told_until=state.settled_until,
        timeline=timeline(state),
    )


def timeline(state: OrderState) -> list[OrderTimelineEntry]:
    """Each member's steps (joined, a new status, left) and each event told, oldest first."""
    entries: list[OrderTimelineEntry] = []
    for pk, steps in state.members.items():
        key = ShipmentKey.from_pk(pk)
        was_in = False
        for step in significant(steps):
            what: Literal["joined", "status", "left"] = (
                ("status" if was_in else "joined") if step.in_order else "left"
            )
            was_in = step.in_order
            entries.append(
                OrderTimelineEntry(
                    at=step.at,
                    what=what,
                    cp_id=key.cp_id,
                    waybill=key.waybill,
                    clickpost_status_code=step.status.clickpost_status_code,
                    clickpost_status_description=step.status.clickpost_status_description,
                    stage=step.stage,
                )
            )
    for event in state.emitted:
        entries.append(
            OrderTimelineEntry.model_validate(
                {
                    "at": event.at,
                    "what": event.event_type,
                    "stage": event.stage,
                    "reached": event.reached,
                    "total": event.total,
                    "event_id": event.event_id,
                }
            )
        )
    return sorted(
        entries, key=lambda e: (e.at, e.event_id is not None, e.cp_id or 0, e.waybill or "")
    )
