"""The diff engine's rules as properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import CATALOGUE, NOW, STATUSES, result, scan
from trackwatch.logic.diff import FUTURE_MARGIN, diff
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import ShipmentState

KEY = ShipmentKey.of(6, "PROP-1")
TERMINAL = {c for c in STATUSES if CATALOGUE.lookup(c).terminal}

scans_strategy = st.lists(
    st.builds(
        lambda cid, code, hours: scan(cid, code, hours),
        st.integers(1, 40),
        st.sampled_from(sorted(STATUSES)),
        st.integers(0, 200),
    ),
    max_size=25,
)


def ids(events: object) -> set[str]:
    assert isinstance(events, tuple)
    return {e.event_id for e in events}


def _consistent(scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # One checkpoint id is one scan: Clickpost never sends two contents under one id.
    first: dict[int, dict[str, Any]] = {}
    for s in scans:
        first.setdefault(s["checkpoint_id"], s)
    return [first[s["checkpoint_id"]] for s in scans]


@settings(max_examples=150, deadline=None)
@given(scans_strategy, st.booleans())
def test_running_twice_on_one_response_gives_nothing_new(
    raw: list[dict[str, Any]], with_latest: bool
) -> None:
    awb = result(_consistent(raw), latest=with_latest or None)
    first = diff(None, KEY, awb, NOW, CATALOGUE)
    second = diff(first.state, KEY, awb, NOW, CATALOGUE)
    assert second.events == ()
    assert not second.changed


@settings(max_examples=150, deadline=None)
@given(scans_strategy, st.randoms(use_true_random=False), st.booleans())
def test_order_of_scans_does_not_matter(
    raw: list[dict[str, Any]], rnd: Any, with_latest: bool
) -> None:
    scans = _consistent(raw)
    shuffled = list(scans)
    rnd.shuffle(shuffled)
    derived = result(scans).latest_status
    latest = derived.model_dump(mode="json") if with_latest and derived else None
    as_sent = diff(None, KEY, result(scans, latest=latest), NOW, CATALOGUE)
    reordered = diff(None, KEY, result(shuffled, latest=latest), NOW, CATALOGUE)
    assert as_sent.events == reordered.events
    assert as_sent.state == reordered.state
    # Reversed too: Clickpost usually sends newest first, but not always.
    reversed_ = diff(
        None,
        KEY,
        result(list(reversed(scans)), latest=latest),
        NOW,
        CATALOGUE,
    )
    assert ids(reversed_.events) == ids(as_sent.events)


@settings(max_examples=150, deadline=None)
@given(scans_strategy, st.lists(st.integers(0, 3), max_size=25), st.booleans())
def test_one_response_split_over_several_polls_gives_the_same_events(
    raw: list[dict[str, Any]], parts: list[int], stuck: bool
) -> None:
    # Given one response (its latest_status and additional fixed) whose scans
    # reach us over several polls, in any grouping
    scans = _consistent(raw)
    whole = result(scans, is_stuck=stuck)
    latest = whole.latest_status.model_dump(mode="json") if whole.latest_status else None
    groups: list[list[dict[str, Any]]] = [[], [], [], []]
    for i, s in enumerate(scans):
        groups[parts[i] if i < len(parts) else 0].append(s)

    # When they are polled in pieces
    state: ShipmentState | None = None
    split_ids: set[str] = set()
    for group in groups:
        outcome = diff(state, KEY, result(group, latest=latest, is_stuck=stuck), NOW, CATALOGUE)
        state = outcome.state
        split_ids |= ids(outcome.events)

    # Then the events are the same, by id, as from the whole response at once
    at_once = diff(None, KEY, whole, NOW, CATALOGUE)
    assert split_ids == ids(at_once.events)
    assert state is not None and state.current == at_once.state.current


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(scans_strategy, st.booleans(), st.booleans()), min_size=1, max_size=6))
def test_no_sequence_of_inputs_moves_a_terminal_shipment_back(
    polls: list[tuple[list[dict[str, Any]], bool, bool]],
) -> None:
    state: ShipmentState | None = None
    was_terminal = False
    last_time = None
    for raw, with_latest, valid in polls:
        awb = result(_consistent(raw), latest=with_latest or None, valid=valid)
        state = diff(state, KEY, awb, NOW, CATALOGUE).state
        current = state.current
        if was_terminal:
            assert current is not None and current.is_terminal
        if current is not None and current.timestamp is not None:
            # The status never moves backwards in time either.
            assert last_time is None or current.timestamp >= last_time
            last_time = current.timestamp
        was_terminal = state.is_terminal


@settings(max_examples=100, deadline=None)
@given(scans_strategy)
def test_event_ids_are_unique_within_a_diff(raw: list[dict[str, Any]]) -> None:
    outcome = diff(None, KEY, result(_consistent(raw)), NOW, CATALOGUE)
    assert len(ids(outcome.events)) == len(outcome.events)


#: What carriers have been seen to send as a time, and then anything at all.
odd_times = st.one_of(
    st.sampled_from(
        [
            "0001-01-01 00:00:00",
            "9999-12-31T23:59:59-05:00",
            "0000-00-00 00:00:00",
            "27/11/2026 10:00",
            "  ",
            "",
            "2026-11-27T10:00:00Z",
            "2026-11-27 10:00:00.123456",
            "2099-01-01 00:00:00",
        ]
    ),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.text(max_size=30),
    st.integers(min_value=-(10**16), max_value=10**16),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)


def _with_time(raw: dict[str, Any], value: object) -> dict[str, Any]:
    return {**raw, "timestamp": value}


odd_scans = st.lists(
    st.builds(
        lambda cid, code, when: _with_time(scan(cid, code, 0), when),
        st.integers(1, 30),
        st.sampled_from(sorted(STATUSES)),
        odd_times,
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(odd_scans, st.booleans()), min_size=1, max_size=6))
def test_any_times_never_raise_and_never_move_a_shipment_to_an_older_status(
    polls: list[tuple[list[dict[str, Any]], bool]],
) -> None:
    # Given responses whose timestamps are arbitrary strings, numbers or nothing
    state: ShipmentState | None = None
    for raw, with_latest in polls:
        scans = _consistent(raw)
        # latest_status: the last scan as sent (the factory's "newest" needs comparable times)
        latest = {k: v for k, v in scans[-1].items() if k != "checkpoint_id"} if scans else None
        awb = result(scans, latest=latest if with_latest else None)
        before = state.current if state is not None else None

        # When each is diffed (it must not raise)
        outcome = diff(state, KEY, awb, NOW, CATALOGUE)
        state = outcome.state
        after = state.current

        # Then every event's times convert to UTC, and the status clock never goes back:
        # a status whose time is trusted only replaces one if it is newer than every
        # trusted time applied before it.
        for event in outcome.events:
            event.occurred_at.astimezone(UTC)
            assert event.occurred_at <= NOW + FUTURE_MARGIN
        if before is not None and after is not None and after != before:
            until = before.ordered_until
            if after.timestamp is not None and until is not None:
                assert after.timestamp > until
            if until is not None:
                assert after.ordered_until is not None and after.ordered_until >= until
