"""The roll-up service over fakes: one conditional write per order, events pending until
published, settle ticks, conflicts, and the order as shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import pytest

from tests.order_fakes import (
    MemoryOrderPublisher,
    MemoryOrders,
    MemoryScheduler,
    ScriptedChanges,
    roll_up_over,
)
from tests.order_samples import ORDER, STAGES, T0, WINDOW, change
from trackwatch.errors import NotFoundError, PoisonEventsError, StaleStateError, StorageError
from trackwatch.models.events import OrderStatusChanged
from trackwatch.models.orders import MemberChange, OrderRecord, SettleRequest
from trackwatch.models.record import StreamChange
from trackwatch.services.orders import OrderRollUp, OrdersService


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def world(
    changes: Mapping[str, MemberChange | None], *, publisher: MemoryOrderPublisher | None = None
) -> tuple[OrderRollUp, MemoryOrders, MemoryOrderPublisher, MemoryScheduler, Clock]:
    orders, topic, ticks = MemoryOrders(), publisher or MemoryOrderPublisher(), MemoryScheduler()
    clock = Clock(T0)
    service = OrderRollUp(
        orders,
        ScriptedChanges(changes),
        topic,
        ticks,
        STAGES,
        window=WINDOW,
        retention=timedelta(days=90),
        clock=clock,
    )
    return service, orders, topic, ticks, clock


def records(*ids: str) -> list[StreamChange]:
    return [StreamChange(record_id=i, new_image=None, old_image=None) for i in ids]


def test_a_batch_makes_one_write_per_order_and_asks_for_one_tick() -> None:
    # Given three boxes registered, then two shipped, in one batch
    changes = {
        "1": change("A", 1, 0, None),
        "2": change("B", 1, 0, None),
        "3": change("C", 1, 0, None),
        "4": change("A", 2, 1, 4),
        "5": change("B", 2, 2, 4),
    }
    service, orders, topic, ticks, clock = world(changes)

    # When
    report = service.roll_up(records(*changes))

    # Then one write, nothing told yet, a tick for when the window closes
    assert (report.orders, report.failed, orders.writes) == (1, [], 1)
    assert topic.published == []
    assert ticks.ticks == [(ORDER, T0 + WINDOW)]

    # And the tick tells both boxes in one event
    clock.now = T0 + WINDOW
    assert service.settle_tick(SettleRequest(order_id=ORDER, settle_at=T0 + WINDOW)) == "told"
    (event,) = topic.published
    assert isinstance(event, OrderStatusChanged)
    assert (event.reached, event.total) == (2, 3)


def test_a_tick_that_comes_early_asks_again() -> None:
    service, _, topic, ticks, clock = world({"1": change("A", 1, 0, None)})
    service.roll_up(records("1"))

    clock.now = T0 + timedelta(minutes=3)
    outcome = service.settle_tick(SettleRequest(order_id=ORDER, settle_at=T0 + WINDOW))

    assert outcome == "early"
    assert ticks.ticks[-1] == (ORDER, T0 + WINDOW)
    assert topic.published == []


def test_events_stay_pending_until_published_and_go_out_with_the_next_handling() -> None:
    # Given the topic down when the window closes
    changes = {
        "1": change("A", 1, 0, None),
        "2": change("B", 1, 0, None),
        "3": change("A", 2, 60, 4),
    }
    topic = MemoryOrderPublisher(fail=True)
    service, orders, _, _, clock = world(changes, publisher=topic)
    clock.now = T0 + timedelta(hours=2)

    # When the batch is rolled up: the event is written with the state, then fails to go
    report = service.roll_up(records("1", "2", "3"))

    # Then the records are retried, and the event waits on the item
    assert report.failed == ["1", "2", "3"]
    assert report.errors == {"publish": 1}
    pending = orders.records[ORDER].pending
    assert [e.event_type for e in pending] == ["order.status_changed"]

    # And once the topic is back, the retry publishes it (same id) and clears it
    topic.fail = False
    report = service.roll_up(records("1", "2", "3"))
    assert report.failed == []
    assert [e.event_id for e in topic.published] == [e.event_id for e in pending]
    assert orders.records[ORDER].pending == ()


def test_a_lost_race_is_read_again_and_decided_again() -> None:
    # Given another writer wins the first attempt
    class Racy(MemoryOrders):
        raced = False

        def save(self, record: OrderRecord, expected_version: int | None) -> None:
            if not self.raced:
                self.raced = True
                super().save(record, expected_version)  # the other writer's identical write
                raise StaleStateError("moved")
            super().save(record, expected_version)

    orders = Racy()
    service = roll_up_over(orders, {"1": change("A", 1, 0, None), "2": change("B", 1, 0, None)})

    # When
    report = service.roll_up(records("1", "2"))

    # Then the retry found its steps there already: nothing lost, nothing doubled
    assert report.failed == []
    assert orders.records[ORDER].member_count == 2
    assert orders.records[ORDER].version == 1


def test_a_box_moving_to_another_order_leaves_the_first_and_joins_the_second() -> None:
    changes = {
        "1": change("A", 1, 0, None),
        "2": change("B", 1, 0, None),
        "3": change("B", 2, 5, None, order_id="ORD-OTHER", previous_order_id=ORDER),
    }
    service, orders, _, _, _ = world(changes)

    service.roll_up(records("1", "2", "3"))

    assert orders.records[ORDER].member_count == 1
    assert orders.records["ORD-OTHER"].member_count == 1


def test_an_unreadable_image_is_counted_and_the_batch_goes_on() -> None:
    class Broken(ScriptedChanges):
        def change(self, record: StreamChange, now: datetime) -> MemberChange | None:
            if record.record_id == "bad":
                raise PoisonEventsError("the state does not decode", "...")
            return super().change(record, now)

    orders = MemoryOrders()
    service = roll_up_over(
        orders, Broken({"1": change("A", 1, 0, None), "2": change("B", 1, 0, None)})
    )

    report = service.roll_up(records("1", "bad", "2"))

    assert report.skipped == {"unreadable": 1}
    assert report.failed == []
    assert orders.records[ORDER].member_count == 2


def test_an_order_is_shown_with_its_members_counts_milestone_and_timeline() -> None:
    changes = {
        "1": change("A", 1, 0, None),
        "2": change("B", 1, 0, None, cp_id=5),
        "3": change("A", 2, 60, 4),
        "4": change("B", 2, 61, 8, cp_id=5),
    }
    service, orders, _, _, clock = world(changes)
    clock.now = T0 + timedelta(hours=3)
    service.roll_up(records(*changes))

    view = OrdersService(orders, WINDOW, lambda: T0 + timedelta(hours=3)).show(ORDER)

    assert (view.total, view.milestone, view.complete) == (2, "shipped", False)
    assert view.counts == {"delivered": 1, "shipped": 1}
    assert [(m.cp_id, m.waybill, m.standing) for m in view.members] == [
        (4, "A", "shipped"),
        (5, "B", "delivered"),
    ]
    whats = [entry.what for entry in view.timeline]
    assert whats.count("joined") == 2
    assert "order.status_changed" in whats
    assert view.told_until == T0 + timedelta(minutes=70)


def test_an_order_of_one_box_is_written_once_a_change_asks_no_tick_and_shows_as_it_stands() -> None:
    # Given a box alone in its order, registered and then shipped in two batches
    changes = {"1": change("A", 1, 0, None), "2": change("A", 2, 1, 4)}
    service, orders, topic, ticks, clock = world(changes)

    # When each change is rolled up
    service.roll_up(records("1"))
    clock.now = T0 + timedelta(minutes=1)
    service.roll_up(records("2"))

    # Then each made one write and asked for no settle tick (closing its windows tells nothing)
    assert orders.writes == 2
    assert ticks.ticks == []
    assert topic.published == []
    # And once its window has closed, the order shows where its box stands, told up to now
    later = T0 + timedelta(hours=1)
    view = OrdersService(orders, WINDOW, lambda: later).show(ORDER)
    assert (view.total, view.milestone) == (1, "shipped")
    assert view.told_until == T0 + WINDOW  # both steps fell in its one window


def test_an_unknown_order_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        OrdersService(MemoryOrders(), WINDOW, lambda: T0).show("ORD-NONE")


def test_a_batch_reads_all_its_orders_in_one_read() -> None:
    # Given two orders known, and a batch touching them and a third, new one
    first = {"1": change("A", 1, 0, None), "2": change("X", 1, 0, None, order_id="ORD-2")}
    service, orders, _, _, _ = world(
        {
            **first,
            "3": change("A", 2, 5, 4),
            "4": change("X", 2, 5, 4, order_id="ORD-2"),
            "5": change("N", 1, 5, None, order_id="ORD-NEW"),
        }
    )
    service.roll_up(records(*first))
    orders.reads = 0

    # When
    report = service.roll_up(records("3", "4", "5"))

    # Then one read for the three orders, a write each, and every step is on its order
    assert (report.orders, report.failed, orders.reads) == (3, [], 1)
    assert {o: r.version for o, r in orders.records.items()} == {
        ORDER: 2,
        "ORD-2": 2,
        "ORD-NEW": 1,
    }
    assert orders.records["ORD-NEW"].member_count == 1


def test_a_batch_read_that_failed_or_went_stale_reads_each_order_again() -> None:
    # Given a store whose batch read fails, then one whose batch read is stale
    class Failing(MemoryOrders):
        def get_many(self, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
            self.reads += 1
            raise StorageError("BatchGetItem throttled")

    class Stale(MemoryOrders):
        def get_many(self, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
            self.reads += 1
            return {}  # as read before another writer created both items

    for store, reads in ((Failing(), 3), (Stale(), 3)):
        service = roll_up_over(
            store, {"1": change("A", 1, 0, None), "2": change("X", 1, 0, None, order_id="ORD-2")}
        )
        if isinstance(store, Stale):
            # the other writer's items, there before ours
            for order_id, waybill in ((ORDER, "B"), ("ORD-2", "Y")):
                other = roll_up_over(store, {"x": change(waybill, 1, 0, None, order_id=order_id)})
                other.roll_up(records("x"))
            store.reads = 0

        # When
        report = service.roll_up(records("1", "2"))

        # Then each order was read on its own after the batch read, and nothing was lost
        assert (report.failed, store.reads) == ([], reads)
        assert store.records[ORDER].member_count == (2 if isinstance(store, Stale) else 1)
        assert store.records["ORD-2"].member_count == (2 if isinstance(store, Stale) else 1)
