"""Change capture's pure logic: the feed's windows, its health, the sweep, hint coalescing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import CADENCE
from trackwatch.errors import ConfigurationError
from trackwatch.logic.cadence import CadenceClass, due_key, period_minutes
from trackwatch.logic.change_capture import (
    CadenceMode,
    FeedHealth,
    cadence_mode,
    check_factor,
    check_sweep,
    coalesce,
    feed_health,
    in_check_visit,
    in_sweep,
    plan_windows,
    sweep_factor,
    worth_polling,
)
from trackwatch.models.change_feed import MAX_WINDOW_SECONDS, FeedState
from trackwatch.models.hints import ChangeHint
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence, ChangeFeedPolicy, Sweep
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.state import ShipmentState

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
POLICY = ChangeFeedPolicy(change_feed_enabled=True)
SWEEP = Sweep()


# --- windows -------------------------------------------------------------------------


def test_the_first_run_reads_one_period_and_the_overlap() -> None:
    plan = plan_windows(None, NOW, POLICY)

    ((window,),) = [plan.windows]
    assert window.end == NOW
    assert window.start == NOW - POLICY.period - POLICY.overlap


def test_a_run_starts_the_overlap_before_the_mark_and_ends_now() -> None:
    plan = plan_windows(NOW - timedelta(minutes=5), NOW, POLICY)

    assert [(w.start, w.end) for w in plan.windows] == [(NOW - timedelta(minutes=15), NOW)]
    assert plan.skipped == 0


def test_after_an_outage_the_run_catches_up_in_windows_of_at_most_30_minutes() -> None:
    # Given the mark eight hours behind
    plan = plan_windows(NOW - timedelta(hours=8), NOW, POLICY)

    # Then a run's worth of contiguous windows, each within Clickpost's limit
    windows = plan.windows
    assert len(windows) == POLICY.change_feed_max_windows_per_run
    assert windows[0].start == NOW - timedelta(hours=8) - POLICY.overlap
    assert all(b.start == a.end for a, b in pairwise(windows))
    assert all(w.end_s - w.start_s <= MAX_WINDOW_SECONDS for w in windows)
    assert windows[-1].end < NOW


def test_catching_up_resumes_from_where_the_last_run_stopped() -> None:
    mark = NOW - timedelta(hours=8)
    for _ in range(10):
        plan = plan_windows(mark, NOW, POLICY)
        if not plan.windows:
            break
        mark = plan.windows[-1].end
    assert mark == NOW


def test_a_gap_older_than_the_catch_up_limit_is_skipped_and_counted() -> None:
    plan = plan_windows(NOW - timedelta(days=3), NOW, POLICY)

    assert plan.windows[0].start == NOW - POLICY.max_catch_up
    assert plan.skipped > 0


@given(
    behind=st.integers(min_value=0, max_value=3 * 24 * 60),
    window=st.integers(min_value=1, max_value=30),
    overlap=st.integers(min_value=0, max_value=60),
)
def test_windows_are_contiguous_bounded_and_never_pass_now(
    behind: int, window: int, overlap: int
) -> None:
    policy = ChangeFeedPolicy(
        change_feed_enabled=True,
        change_feed_window_minutes=window,
        change_feed_overlap_minutes=overlap,
    )
    plan = plan_windows(NOW - timedelta(minutes=behind), NOW, policy)
    for a, b in pairwise(plan.windows):
        assert b.start == a.end
    for w in plan.windows:
        assert w.start < w.end <= NOW
        assert (w.end - w.start) <= timedelta(minutes=window)


# --- health and mode -----------------------------------------------------------------


def _state(behind: float, quiet: float | None, error: str | None = None) -> FeedState:
    return FeedState(
        caught_up_to=NOW - timedelta(minutes=behind),
        last_entry_at=None if quiet is None else NOW - timedelta(minutes=quiet),
        last_error=error,
    )


@pytest.mark.parametrize(
    ("state", "health"),
    [
        (None, FeedHealth.NEVER_RAN),
        (FeedState(), FeedHealth.NEVER_RAN),
        (_state(5, 3), FeedHealth.HEALTHY),
        (_state(25, 3, "unavailable"), FeedHealth.STALE),
        (_state(5, 90), FeedHealth.SILENT),
        (_state(5, None), FeedHealth.SILENT),
    ],
)
def test_feed_health(state: FeedState | None, health: FeedHealth) -> None:
    assert feed_health(state, NOW, POLICY) is health


def test_a_disabled_feed_is_never_trusted() -> None:
    assert feed_health(_state(0, 0), NOW, ChangeFeedPolicy()) is FeedHealth.DISABLED


def test_only_a_healthy_feed_relaxes_the_cadence_and_the_reason_says_why() -> None:
    healthy = cadence_mode(FeedHealth.HEALTHY, _state(5, 3), NOW, shipments_active=True)
    stale = cadence_mode(FeedHealth.STALE, _state(42, 3, "unavailable"), NOW, shipments_active=True)
    silent = cadence_mode(FeedHealth.SILENT, _state(5, 90), NOW, shipments_active=True)
    nothing_tracked = cadence_mode(FeedHealth.SILENT, _state(5, 90), NOW, shipments_active=False)

    assert healthy.mode is CadenceMode.SWEEP
    assert stale.mode is CadenceMode.FULL
    assert stale.reason == "the change feed is 42 min behind (last error: unavailable)"
    assert silent.mode is CadenceMode.FULL
    assert silent.reason == "the change feed listed nothing for 90 min"
    assert nothing_tracked.mode is CadenceMode.SWEEP


# --- the sweep -----------------------------------------------------------------------


def test_a_sweep_period_must_be_a_whole_multiple_of_the_cadence() -> None:
    with pytest.raises(ConfigurationError, match="SWEEP_TRANSIT_MINUTES"):
        check_sweep(CADENCE, Sweep(sweep_transit_minutes=300))
    check_sweep(CADENCE, SWEEP)
    assert sweep_factor(CadenceClass.TRANSIT, CADENCE, SWEEP) == 12


@pytest.mark.parametrize("klass", list(CadenceClass))
def test_the_sweep_polls_each_shipment_exactly_once_per_sweep_period(klass: CadenceClass) -> None:
    # Given 300 shipments of one class and their due keys, as the dispatcher finds them
    keys = [ShipmentKey.of(4, f"SW{i:05d}") for i in range(300)]
    period = period_minutes(klass, CADENCE)
    factor = sweep_factor(klass, CADENCE, SWEEP)
    slots = {k: int(due_key(k.pk, klass, CADENCE).split("#")[1]) for k in keys}
    start = 29_000_000 - 29_000_000 % (period * factor)

    # When every minute of one sweep period is dispatched
    polled: Counter[ShipmentKey] = Counter()
    for minute in range(start, start + period * factor):
        due = [k for k in keys if slots[k] == minute % period]
        polled.update(k for k in due if in_sweep(k.pk, klass, minute, CADENCE, SWEEP))

    # Then each one exactly once (and in full mode it would be `factor` times)
    assert polled == Counter(dict.fromkeys(keys, 1))


def test_the_sweep_spreads_a_class_evenly_over_its_cycles() -> None:
    keys = [ShipmentKey.of(4, f"EV{i:05d}") for i in range(12_000)]
    factor = sweep_factor(CadenceClass.TRANSIT, CADENCE, SWEEP)
    minute = 29_000_000
    cycles = Counter(
        next(
            c
            for c in range(factor)
            if in_sweep(k.pk, CadenceClass.TRANSIT, minute + c * 120, CADENCE, SWEEP)
        )
        for k in keys
    )
    assert len(cycles) == factor
    assert max(cycles.values()) < 1.2 * len(keys) / factor


def test_a_sweep_equal_to_the_cadence_keeps_everything() -> None:
    cadence = Cadence()
    sweep = Sweep(sweep_out_for_delivery_minutes=30)
    assert all(
        in_sweep(f"4#W{i}", CadenceClass.OUT_FOR_DELIVERY, 1000 + i, cadence, sweep)
        for i in range(50)
    )


# --- check-only visits ---------------------------------------------------------------


def _visits(
    klass: CadenceClass,
    sweep: Sweep,
    keys: list[ShipmentKey],
    cycles: int,
    cadence: Cadence = CADENCE,
) -> dict[ShipmentKey, list[tuple[int, str]]]:
    """Each shipment's (minute, "poll" or "check") over `cycles` of its class, as the
    dispatcher decides them in the sweep."""
    period = period_minutes(klass, cadence)
    slots = {k: int(due_key(k.pk, klass, cadence).split("#")[1]) for k in keys}
    start = 29_000_000 - 29_000_000 % (period * 48)
    seen: dict[ShipmentKey, list[tuple[int, str]]] = {k: [] for k in keys}
    for minute in range(start, start + period * cycles):
        for key in (k for k in keys if slots[k] == minute % period):
            if in_sweep(key.pk, klass, minute, cadence, sweep):
                seen[key].append((minute, "poll"))
            elif in_check_visit(key.pk, klass, minute, cadence, sweep):
                seen[key].append((minute, "check"))
    return seen


@pytest.mark.parametrize(
    ("klass", "every"),
    [
        (CadenceClass.TRANSIT, 1),  # 120 / 120: a visit at each cycle the sweep skips
        (CadenceClass.OUT_FOR_DELIVERY, 4),  # 120 / 30, swept every 480
        (CadenceClass.INVALID, 1),  # its cadence (720) is longer than 120: at its cadence
        (CadenceClass.NEW, 0),  # swept at its cadence: polled as often as it can be visited
        (CadenceClass.GRACE, 0),  # terminal: nothing to check
    ],
)
def test_which_classes_get_check_visits_with_the_defaults(klass: CadenceClass, every: int) -> None:
    assert check_factor(klass, CADENCE, SWEEP) == every


@pytest.mark.parametrize("klass", [CadenceClass.TRANSIT, CadenceClass.OUT_FOR_DELIVERY])
def test_a_swept_shipment_is_polled_or_visited_at_least_every_check_period(
    klass: CadenceClass,
) -> None:
    # Given 200 shipments of a class, dispatched for two sweep periods
    keys = [ShipmentKey.of(4, f"CV{i:05d}") for i in range(200)]
    factor = sweep_factor(klass, CADENCE, SWEEP)
    seen = _visits(klass, SWEEP, keys, 2 * factor)

    for key, visits in seen.items():
        minutes = [m for m, _ in visits]
        kinds = Counter(kind for _, kind in visits)
        # Then polled once per sweep period, never visited in the cycle it is polled
        assert kinds["poll"] == 2
        assert len(minutes) == len(set(minutes))
        # and between two of them never more than the check period (120 minutes) apart
        assert max(b - a for a, b in pairwise(minutes)) <= SWEEP.delay_check_minutes
        # and visited no more than needed: a visit every 120 minutes, the poll in one's place
        assert len(visits) == 2 * factor // check_factor(klass, CADENCE, SWEEP), key


def test_visits_are_spread_over_the_cycles_like_the_sweep() -> None:
    keys = [ShipmentKey.of(4, f"SP{i:05d}") for i in range(4_000)]
    seen = _visits(CadenceClass.OUT_FOR_DELIVERY, SWEEP, keys, 16)
    per_cycle = Counter((m // 30) % 4 for visits in seen.values() for m, _ in visits)
    assert len(per_cycle) == 4
    assert max(per_cycle.values()) < 1.2 * min(per_cycle.values())


@pytest.mark.parametrize(
    "sweep",
    [
        Sweep(delay_check_minutes=0),  # visits off
        Sweep(sweep_transit_minutes=120),  # the sweep polls as often as the cadence
        Sweep(sweep_transit_minutes=240, delay_check_minutes=240),  # as often as the checks
        Sweep(sweep_transit_minutes=480, delay_check_minutes=600),  # more often than them
    ],
)
def test_no_visits_when_checks_are_off_or_the_class_is_polled_often_enough(sweep: Sweep) -> None:
    keys = [ShipmentKey.of(4, f"NV{i:05d}") for i in range(100)]
    factor = sweep_factor(CadenceClass.TRANSIT, CADENCE, sweep)
    seen = _visits(CadenceClass.TRANSIT, sweep, keys, 2 * factor)
    assert check_factor(CadenceClass.TRANSIT, CADENCE, sweep) == 0
    assert {kind for visits in seen.values() for _, kind in visits} == {"poll"}


def test_a_check_period_that_is_not_a_multiple_of_the_cadence_is_rounded_down() -> None:
    # 100 minutes over a 30-minute cadence: every 90 minutes, never later than 100
    sweep = Sweep(delay_check_minutes=100)
    assert check_factor(CadenceClass.OUT_FOR_DELIVERY, CADENCE, sweep) == 3
    keys = [ShipmentKey.of(4, f"RD{i:05d}") for i in range(100)]
    seen = _visits(CadenceClass.OUT_FOR_DELIVERY, sweep, keys, 32)
    for visits in seen.values():
        assert max(b - a for (a, _), (b, _) in pairwise(visits)) <= 100


# --- hints ---------------------------------------------------------------------------


def _hint(waybill: str, recorded: int | None, source: str = "feed") -> ChangeHint:
    return ChangeHint.model_validate(
        {
            "cp_id": 4,
            "waybill": waybill,
            "source": source,
            "recorded_at": None if recorded is None else NOW + timedelta(minutes=recorded),
            "received_at": NOW,
        }
    )


def test_a_waybill_hinted_many_times_is_wanted_once_with_its_newest_record_time() -> None:
    hints = [_hint("A", 1), _hint("A", 5), _hint("A", 3), _hint("B", 2)]

    merged = coalesce(hints)

    assert {k.waybill: h.recorded_at for k, h in merged.items()} == {
        "A": NOW + timedelta(minutes=5),
        "B": NOW + timedelta(minutes=2),
    }


def test_a_hint_without_a_record_time_outranks_any_with_one() -> None:
    merged = coalesce([_hint("A", 9), _hint("A", None, "webhook"), _hint("A", 12)])

    (only,) = merged.values()
    assert only.recorded_at is None
    assert only.source == "webhook"


def _record(seen_until: int | None, *, stopped: bool = False) -> ShipmentRecord:
    return ShipmentRecord(
        key=ShipmentKey.of(4, "A"),
        version=3,
        state=ShipmentState(
            recorded_until=None if seen_until is None else NOW + timedelta(minutes=seen_until)
        ),
        registered_at=NOW,
        stop_reason="delivered" if stopped else None,
    )


@pytest.mark.parametrize(
    ("hint_at", "seen_until", "stopped", "polled"),
    [
        (5, 3, False, True),  # Clickpost recorded something after what we have seen
        (3, 3, False, False),  # nothing newer than what we have seen
        (2, 3, False, False),  # an old listing (the overlap, a re-sent webhook)
        (None, 3, False, True),  # no record time: cannot be ruled out
        (5, None, False, True),  # a shipment that has seen nothing yet
        (5, 3, True, False),  # tracking has ended
    ],
)
def test_a_hint_is_worth_a_poll_only_if_it_may_bring_something_new(
    hint_at: int | None, seen_until: int | None, stopped: bool, polled: bool
) -> None:
    assert worth_polling(_hint("A", hint_at), _record(seen_until, stopped=stopped)) is polled
