"""plan_calls: the fewest Clickpost calls, never mixing carriers, never over five AWBs."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from trackwatch.errors import InvalidInputError
from trackwatch.logic.batching import plan_calls
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.tracking import MAX_WAYBILLS_PER_CALL, TrackCall


def _keys(cp_id: int, count: int, prefix: str = "AWB") -> list[ShipmentKey]:
    return [ShipmentKey.of(cp_id, f"{prefix}{cp_id}X{i:04d}") for i in range(count)]


def _lower_bound(keys: list[ShipmentKey]) -> int:
    distinct = Counter(k.cp_id for k in set(keys))
    return sum(math.ceil(n / MAX_WAYBILLS_PER_CALL) for n in distinct.values())


def test_twelve_awbs_over_three_carriers_take_four_calls() -> None:
    # Given 7 + 3 + 2 waybills over three carriers, interleaved
    keys = [*_keys(6, 7), *_keys(4, 3), *_keys(9, 2)]
    keys = keys[::2] + keys[1::2]

    # When
    calls = plan_calls(keys)

    # Then the plan meets the lower bound: ceil(7/5) + ceil(3/5) + ceil(2/5)
    assert len(calls) == 4 == _lower_bound(keys)
    assert [c.cp_id for c in calls] == [4, 6, 6, 9]
    assert all(1 <= len(c.waybills) <= 5 for c in calls)


def test_seven_awbs_of_one_carrier_split_five_and_two_in_input_order() -> None:
    # Given
    keys = _keys(4, 7)

    # When
    calls = plan_calls(keys)

    # Then
    assert [len(c.waybills) for c in calls] == [5, 2]
    assert [w for c in calls for w in c.waybills] == [k.waybill for k in keys]


def test_duplicates_collapse_and_carriers_never_mix() -> None:
    # Given the same waybill twice, and one waybill string under two carriers
    keys = [
        ShipmentKey.of(4, "A1"),
        ShipmentKey.of(4, "A1"),
        ShipmentKey.of(6, "A1"),
        ShipmentKey.of(4, "A2"),
    ]

    # When
    calls = plan_calls(keys)

    # Then
    assert calls == [
        TrackCall(cp_id=4, waybills=("A1", "A2")),
        TrackCall(cp_id=6, waybills=("A1",)),
    ]


def test_no_keys_no_calls() -> None:
    # Given / When / Then
    assert plan_calls([]) == []


def test_smaller_chunks_can_be_asked_for_but_not_larger() -> None:
    # Given
    keys = _keys(4, 5)

    # When
    calls = plan_calls(keys, max_per_call=2)

    # Then
    assert [len(c.waybills) for c in calls] == [2, 2, 1]
    with pytest.raises(InvalidInputError, match="max_per_call"):
        plan_calls(keys, max_per_call=6)


@pytest.mark.parametrize("waybills", [(), ("A", "A"), ("A", "B", "C", "D", "E", "F"), ("A,B",)])
def test_track_call_rejects_bad_waybill_tuples(waybills: tuple[str, ...]) -> None:
    # Given / When / Then
    with pytest.raises((ValidationError, InvalidInputError)):
        TrackCall(cp_id=4, waybills=waybills)


_key = st.builds(
    ShipmentKey.of,
    st.integers(min_value=1, max_value=6),
    st.text(alphabet="ABC123", min_size=1, max_size=3),
)


@given(st.lists(_key, max_size=60))
def test_plan_is_minimal_and_covers_exactly_the_input(keys: list[ShipmentKey]) -> None:
    # Given any keys, duplicates included

    # When
    calls = plan_calls(keys)

    # Then the count is the lower bound, every call is legal, the union is the input set
    assert len(calls) == _lower_bound(keys)
    assert all(1 <= len(c.waybills) <= MAX_WAYBILLS_PER_CALL for c in calls)
    planned = [k for c in calls for k in c.keys]
    assert len(planned) == len(set(planned))
    assert set(planned) == set(keys)
    assert [c.cp_id for c in calls] == sorted(c.cp_id for c in calls)
