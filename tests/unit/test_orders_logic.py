"""The order roll-up by example: steps, windows, and the events they make."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pytest

from tests.factories import CATALOGUE
from tests.order_samples import ORDER, STAGES, T0, WINDOW, change
from trackwatch.errors import ConfigurationError
from trackwatch.logic.orders import (
    OrderStageTable,
    apply,
    member_count,
    milestone,
    next_window_end,
    orders_of,
    settle,
)
from trackwatch.models.events import (
    OrderCompleted,
    OrderEvent,
    OrderPartiallyDelivered,
    OrderStatusChanged,
)
from trackwatch.models.orders import MemberChange, MemberStatus, OrderState

LATER = T0 + timedelta(days=30)


def run(
    changes: Iterable[MemberChange], until: object = LATER
) -> tuple[OrderState, list[OrderEvent]]:
    """Apply every change (settling at its time, as the roll-up does), then settle at `until`."""
    state = OrderState(order_id=ORDER)
    told: list[OrderEvent] = []
    for item in changes:
        state = apply(state, item, STAGES)
        settled = settle(state, item.at, WINDOW)
        state, told = settled.state, told + settled.events
    settled = settle(state, until, WINDOW)  # type: ignore[arg-type]
    return settled.state, told + settled.events


def joined(*waybills: str) -> list[MemberChange]:
    return [change(w, 1, 0, None) for w in waybills]


def test_siblings_reaching_a_stage_within_the_window_make_one_event() -> None:
    # Given three boxes registered together, then shipped within four minutes of each other
    changes = [*joined("A", "B", "C"), change("A", 2, 60, 4), change("B", 2, 62, 4)]
    changes.append(change("C", 2, 64, 4))

    # When the windows close
    _, events = run(changes)

    # Then one event says all three shipped
    (event,) = events
    assert isinstance(event, OrderStatusChanged)
    assert (event.stage, event.reached, event.total) == ("shipped", 3, 3)
    assert [m.waybill for m in event.newly_reached] == ["A", "B", "C"]
    assert event.milestone == "shipped"
    assert event.detected_at == T0 + timedelta(minutes=70)


def test_a_box_delayed_past_the_window_is_told_on_its_own() -> None:
    changes = [*joined("A", "B", "C"), change("A", 2, 60, 4), change("B", 2, 62, 4)]
    changes.append(change("C", 2, 300, 4))

    _, events = run(changes)

    assert [(e.stage, e.reached, e.total) for e in events if isinstance(e, OrderStatusChanged)] == [
        ("shipped", 2, 3),
        ("shipped", 3, 3),
    ]
    assert [e.milestone for e in events] == ["placed", "shipped"]


def test_a_single_shipment_order_makes_no_order_event() -> None:
    _, events = run([*joined("A"), change("A", 2, 60, 4), change("A", 3, 600, 8)])

    assert events == []


def test_a_member_that_went_past_a_stage_is_told_at_the_furthest_only() -> None:
    # Given B's first poll shows it delivered already, A only shipped
    changes = [*joined("A", "B"), change("A", 2, 60, 4), change("B", 2, 61, 8)]

    _, events = run(changes)

    assert [(e.stage, e.reached) for e in events if isinstance(e, OrderStatusChanged)] == [
        ("shipped", 2),
        ("delivered", 1),
    ]
    shipped = events[0]
    assert isinstance(shipped, OrderStatusChanged)
    assert [m.waybill for m in shipped.newly_reached] == ["A", "B"]


def test_partly_delivered_then_completed_once_each_with_each_member_s_outcome() -> None:
    changes = [
        *joined("A", "B", "C"),
        change("A", 2, 60, 4),
        change("B", 2, 60, 4),
        change("C", 2, 60, 4),
        change("A", 3, 600, 8),
        change("B", 3, 600, 16),  # lost
        change("C", 3, 900, 11),
        change("C", 4, 3000, 14),  # returned
    ]

    _, events = run(changes)

    kinds = [e.event_type for e in events]
    assert kinds.count("order.partially_delivered") == 1
    assert kinds.count("order.completed") == 1
    partial = next(e for e in events if isinstance(e, OrderPartiallyDelivered))
    assert (partial.delivered, partial.total) == (1, 3)
    completed = next(e for e in events if isinstance(e, OrderCompleted))
    assert {m.waybill: m.standing for m in completed.members} == {
        "A": "delivered",
        "B": "lost",
        "C": "returned",
    }
    assert completed.counts == {"delivered": 1, "lost": 1, "returned": 1}


def test_applying_a_change_twice_or_late_changes_nothing() -> None:
    changes = [*joined("A", "B"), change("A", 2, 60, 4), change("A", 3, 70, 5)]
    state, _ = run(changes, until=T0)

    again = state
    for item in reversed(changes):
        again = apply(again, item, STAGES)

    assert again == state


def test_an_older_version_arriving_after_a_newer_one_was_told_is_dropped() -> None:
    # Given A delivered (version 3) and told, then its version 2 (out for delivery) arrives
    state, _ = run([*joined("A", "B"), change("A", 3, 60, 8)], until=T0 + timedelta(hours=2))

    # When
    late = apply(state, change("A", 2, 50, 6), STAGES)

    # Then nothing changes: the member has moved on, and what was told stays told
    assert late == state


def test_a_change_arriving_after_its_window_closed_is_told_in_the_next_one() -> None:
    # Given B's first window told
    state, _ = run([*joined("A", "B"), change("A", 2, 60, 4)], until=T0 + timedelta(hours=2))
    assert state.settled_until == T0 + timedelta(minutes=70)

    # When B's shipment, which happened at minute 61, arrives two hours late
    late = apply(state, change("B", 2, 61, 4), STAGES)
    settled = settle(late, T0 + timedelta(hours=3), WINDOW)

    # Then it is counted from the end of the told window on
    assert late.members["4#B"][-1].at == state.settled_until
    (event,) = settled.events
    assert isinstance(event, OrderStatusChanged)
    assert (event.stage, event.reached, event.detected_at) == (
        "shipped",
        2,
        T0 + timedelta(minutes=80),
    )


def test_a_shipment_moving_to_another_order_leaves_the_first() -> None:
    state, _ = run([*joined("A", "B", "C")], until=T0)
    moved = change("C", 2, 30, 4, order_id="ORD-OTHER", previous_order_id=ORDER)

    assert orders_of(moved) == [ORDER, "ORD-OTHER"]
    after = apply(state, moved, STAGES)
    assert member_count(after) == 2
    # and a departure from an order it never joined is nothing
    assert apply(OrderState(order_id="ORD-X"), moved, STAGES) == OrderState(order_id="ORD-X")


def test_the_milestone_is_latched_when_a_late_joiner_arrives() -> None:
    changes = [
        *joined("A", "B"),
        change("A", 2, 60, 4),
        change("B", 2, 60, 4),
        change("D", 1, 600, None),
        change("D", 2, 900, 4),
    ]

    state, events = run(changes)

    assert [(e.stage, e.reached, e.total) for e in events if isinstance(e, OrderStatusChanged)] == [
        ("shipped", 2, 2),
        ("shipped", 3, 3),
    ]
    assert milestone(state, WINDOW) == "shipped"


def test_an_unknown_status_leaves_a_member_where_it_stood() -> None:
    state, events = run([*joined("A", "B"), change("A", 2, 60, 6), change("A", 3, 200, 29)])

    (event,) = events
    assert isinstance(event, OrderStatusChanged)
    assert event.stage == "out_for_delivery"
    assert member_count(state) == 2


def test_next_window_end_is_when_the_open_window_closes() -> None:
    state = OrderState(order_id=ORDER)
    for member in (change("A", 1, 5, None), change("B", 1, 6, None)):
        state = apply(state, member, STAGES)

    assert next_window_end(state, WINDOW) == T0 + timedelta(minutes=15)
    assert settle(state, T0 + timedelta(minutes=14), WINDOW).next_at == T0 + timedelta(minutes=15)
    assert settle(state, T0 + timedelta(minutes=15), WINDOW).next_at is None


def test_an_order_of_one_box_asks_for_no_tick_until_a_second_box_joins() -> None:
    # Given an order that has only ever had one box, its window still open
    alone = apply(OrderState(order_id=ORDER), change("A", 1, 5, None), STAGES)

    # Then closing the window could tell nothing: no tick is asked for
    assert next_window_end(alone, WINDOW) == T0 + timedelta(minutes=15)
    assert settle(alone, T0 + timedelta(minutes=14), WINDOW).next_at is None

    # And when a second box joins, the window of two asks for one
    joined_later = apply(alone, change("B", 1, 12, None), STAGES)
    assert settle(joined_later, T0 + timedelta(minutes=14), WINDOW).next_at == T0 + timedelta(
        minutes=15
    )


def test_event_ids_are_deterministic() -> None:
    changes = [*joined("A", "B"), change("A", 2, 60, 4), change("B", 2, 61, 4)]
    assert [e.event_id for e in run(changes)[1]] == [e.event_id for e in run(changes)[1]]


def test_the_stage_table_refuses_a_code_in_two_places_or_unknown_to_the_catalogue() -> None:
    with pytest.raises(ValueError, match="status code 4"):
        OrderStageTable.model_validate({"stages": {"shipped": [4]}, "outcomes": {"lost": [4]}})
    with pytest.raises(ConfigurationError, match="not in the catalogue"):
        OrderStageTable.from_json('{"stages": {"shipped": [4, 999]}}', "test", CATALOGUE)


@pytest.mark.parametrize(
    ("code", "terminal", "expected"),
    [
        (4, False, ("shipped", "shipped")),
        (6, False, ("out_for_delivery", "out_for_delivery")),
        (8, True, ("delivered", "delivered")),
        (21, False, ("placed", "returning")),
        (16, True, ("placed", "lost")),
        (29, False, ("placed", None)),
        (777, True, ("placed", "ended")),
    ],
)
def test_each_code_has_a_stage_and_a_standing(
    code: int, terminal: bool, expected: tuple[str, str | None]
) -> None:
    got = STAGES.classify(MemberStatus(clickpost_status_code=code, is_terminal=terminal))
    assert got == expected
