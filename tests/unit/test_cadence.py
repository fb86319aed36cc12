"""Cadence: slots and due keys, classes by status, and the ends of tracking."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tests.factories import CATALOGUE, NOW
from trackwatch.logic.cadence import (
    CadenceClass,
    cadence_class,
    due_key,
    due_keys_at,
    epoch_minute,
    period_minutes,
    stop_reason,
)
from trackwatch.models.policy import Cadence
from trackwatch.models.state import CurrentStatus, ShipmentState

CADENCE = Cadence()


def state_with(code: int | None, **extra: object) -> ShipmentState:
    current = (
        None
        if code is None
        else CurrentStatus(
            clickpost_status_code=code, is_terminal=CATALOGUE.lookup(code).terminal, timestamp=NOW
        )
    )
    return ShipmentState.model_validate({"current": current, **extra})


def test_classes_follow_the_status() -> None:
    assert cadence_class(state_with(None), CATALOGUE) is CadenceClass.NEW
    assert cadence_class(state_with(1), CATALOGUE) is CadenceClass.NEW
    assert cadence_class(state_with(5), CATALOGUE) is CadenceClass.TRANSIT
    assert cadence_class(state_with(6), CATALOGUE) is CadenceClass.OUT_FOR_DELIVERY
    assert cadence_class(state_with(8), CATALOGUE) is CadenceClass.GRACE
    assert cadence_class(state_with(5, invalid_since=NOW), CATALOGUE) is CadenceClass.INVALID


def test_out_for_delivery_is_polled_more_often_than_transit() -> None:
    assert period_minutes(CadenceClass.OUT_FOR_DELIVERY, CADENCE) < period_minutes(
        CadenceClass.TRANSIT, CADENCE
    )


def test_every_shipment_is_due_exactly_once_per_period() -> None:
    # Given 2,000 shipments in transit
    keys = {f"4#AWB{i}": due_key(f"4#AWB{i}", CadenceClass.TRANSIT, CADENCE) for i in range(2000)}
    period = CADENCE.cadence_transit_minutes

    # When the dispatcher walks one full period, minute by minute
    seen: Counter[str] = Counter()
    start = epoch_minute(NOW)
    for minute in range(start, start + period):
        due = set(due_keys_at(minute, CADENCE))
        seen.update(pk for pk, key in keys.items() if key in due)

    # Then each shipment came up exactly once
    assert set(seen) == set(keys)
    assert set(seen.values()) == {1}


def test_slots_and_shards_spread_the_load() -> None:
    keys = [due_key(f"4#AWB{i}", CadenceClass.TRANSIT, CADENCE) for i in range(20_000)]
    per_partition = Counter(keys)
    # 120 slots x 16 shards = 1,920 partitions; about 10 shipments each, none hot.
    assert len(per_partition) > 1800
    assert max(per_partition.values()) < 40


def test_the_due_key_is_stable_for_a_shipment_and_class() -> None:
    assert due_key("4#A", CadenceClass.TRANSIT, CADENCE) == due_key(
        "4#A", CadenceClass.TRANSIT, CADENCE
    )


def test_a_terminal_shipment_stops_after_its_grace_period() -> None:
    delivered = state_with(8, terminal_at=NOW)
    grace = timedelta(hours=CADENCE.terminal_grace_hours)
    assert stop_reason(delivered, NOW + grace - timedelta(minutes=1), CADENCE, CATALOGUE) is None
    reason = stop_reason(delivered, NOW + grace, CADENCE, CATALOGUE)
    assert reason is not None
    assert "Delivered" in reason
    assert "grace" in reason


def test_an_invalid_awb_stops_after_its_bound() -> None:
    invalid = state_with(None, invalid_since=NOW)
    bound = timedelta(hours=CADENCE.invalid_give_up_hours)
    assert stop_reason(invalid, NOW + bound - timedelta(minutes=1), CADENCE, CATALOGUE) is None
    reason = stop_reason(invalid, NOW + bound, CADENCE, CATALOGUE)
    assert reason is not None
    assert reason.startswith("invalid")


def test_an_active_shipment_never_stops() -> None:
    assert stop_reason(state_with(5), NOW + timedelta(days=365), CADENCE, CATALOGUE) is None
