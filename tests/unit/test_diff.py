"""The diff engine, by example: each rule of the engine and each event type."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.factories import CATALOGUE, NOW, result, scan
from trackwatch.logic.diff import TEXT_LIMIT, DiffOutcome, diff
from trackwatch.models.clickpost import AwbResult
from trackwatch.models.events import (
    EddChanged,
    Invalid,
    NdrRaised,
    ScanAdded,
    ShipmentEvent,
    StatusChanged,
    Stuck,
    Unstuck,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import MAX_SEEN, ShipmentState

KEY = ShipmentKey.of(4, "AWB1")


def run(state: ShipmentState | None, awb: AwbResult, now: datetime = NOW) -> DiffOutcome:
    return diff(state, KEY, awb, now, CATALOGUE)


def types(outcome: DiffOutcome) -> list[str]:
    return [e.event_type for e in outcome.events]


def test_first_sight_reports_every_scan_and_the_status_from_null() -> None:
    # Given a shipment seen for the first time with three scans
    awb = result([scan(3, 5, 10), scan(2, 4, 5), scan(1, 1, 0)])

    # When it is diffed against no state
    outcome = run(None, awb)

    # Then each scan is added in time order and the status changes from null
    added = [e for e in outcome.events if isinstance(e, ScanAdded)]
    assert [e.checkpoint_id for e in added] == [1, 2, 3]
    (changed,) = [e for e in outcome.events if isinstance(e, StatusChanged)]
    assert changed.from_bucket is None
    assert (changed.to_bucket, changed.clickpost_status_code) == (3, 5)
    assert changed.occurred_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert changed.order_id == "ORD-1" and changed.courier_name == "Delhivery"
    assert outcome.changed
    assert outcome.state.current is not None and outcome.state.current.clickpost_status_code == 5


def test_the_same_response_twice_gives_nothing_and_needs_no_write() -> None:
    awb = result([scan(1, 1, 0), scan(2, 4, 5)])
    first = run(None, awb)

    second = run(first.state, awb)

    assert second.events == ()
    assert not second.changed
    assert second.state == first.state


def test_duplicates_inside_one_response_count_once() -> None:
    awb = result([scan(1, 1, 0), scan(1, 1, 0), scan(2, 4, 5), scan(2, 4, 5)])
    outcome = run(None, awb)
    assert types(outcome).count("shipment.scan_added") == 2


def test_a_new_scan_in_the_same_bucket_adds_a_scan_but_no_status_change() -> None:
    first = run(None, result([scan(1, 5, 0)]))
    outcome = run(first.state, result([scan(1, 5, 0), scan(2, 5, 3, location="Pune")]))
    assert types(outcome) == ["shipment.scan_added"]
    assert outcome.state.current is not None and outcome.state.current.location == "Pune"


def test_a_bucket_transition_names_both_buckets() -> None:
    first = run(None, result([scan(1, 5, 0)]))
    outcome = run(first.state, result([scan(1, 5, 0), scan(2, 6, 3)]))
    (changed,) = [e for e in outcome.events if isinstance(e, StatusChanged)]
    assert (changed.from_bucket, changed.to_bucket) == (3, 4)
    assert changed.from_bucket_description == "In transit"
    assert not changed.is_terminal


def test_a_late_scan_is_recorded_but_does_not_move_the_status_back() -> None:
    # Given a shipment out for delivery
    first = run(None, result([scan(1, 5, 0), scan(2, 6, 10)]))

    # When a scan with an older timestamp arrives, and latest_status still says out for delivery
    late = result([scan(1, 5, 0), scan(2, 6, 10), scan(3, 5, 5)])
    outcome = run(first.state, late)

    # Then it is added to the history, and the status stays
    assert types(outcome) == ["shipment.scan_added"]
    assert outcome.state.current == first.state.current


def test_a_stale_latest_status_does_not_move_the_status_back() -> None:
    first = run(None, result([scan(1, 5, 0), scan(2, 6, 10)]))
    stale = result([scan(1, 5, 0), scan(2, 6, 10)], latest=scan(None, 5, 0))
    outcome = run(first.state, stale)
    assert outcome.events == ()
    assert outcome.state.current == first.state.current


def test_a_terminal_status_is_never_left_for_a_non_terminal_one() -> None:
    # Given a delivered shipment
    delivered = run(None, result([scan(1, 6, 0), scan(2, 8, 5)]))
    assert delivered.state.is_terminal
    assert delivered.state.terminal_at == NOW

    # When the carrier sends a newer in-transit scan
    outcome = run(delivered.state, result([scan(1, 6, 0), scan(2, 8, 5), scan(3, 5, 9)]))

    # Then the scan is recorded, and the shipment stays delivered
    assert types(outcome) == ["shipment.scan_added"]
    assert outcome.state.current is not None
    assert outcome.state.current.clickpost_status_code == 8


def test_failed_delivery_raises_an_ndr_with_its_attempt_number_and_reason() -> None:
    ndr = {"ndr_bucket_code": 1, "ndr_description": "Customer Unavailable"}
    first = run(None, result([scan(1, 6, 0), scan(2, 9, 2)], ndr=ndr))
    second = run(
        first.state, result([scan(1, 6, 0), scan(2, 9, 2), scan(3, 6, 20), scan(4, 9, 22)], ndr=ndr)
    )
    raised = [e for e in (*first.events, *second.events) if isinstance(e, NdrRaised)]
    assert [(e.checkpoint_id, e.attempt) for e in raised] == [(2, 1), (4, 2)]
    assert raised[0].ndr_description == "Customer Unavailable"
    assert raised[0].ndr_bucket_code == 1


def test_stuck_and_unstuck_are_reported_on_each_flip() -> None:
    scans = [scan(1, 5, 0)]
    first = run(None, result(scans, is_stuck=False))
    stuck = run(first.state, result(scans, is_stuck=True))
    again = run(stuck.state, result(scans, is_stuck=True))
    unstuck = run(again.state, result(scans, is_stuck=False))
    assert "shipment.stuck" not in types(first)
    assert [type(e) for e in stuck.events] == [Stuck]
    assert again.events == ()
    assert [type(e) for e in unstuck.events] == [Unstuck]
    assert stuck.events[0].event_id != unstuck.events[0].event_id


def test_stuck_on_first_sight_is_reported() -> None:
    outcome = run(None, result([scan(1, 5, 0)], is_stuck=True))
    assert "shipment.stuck" in types(outcome)


def test_edd_changes_are_reported_after_first_sight_only() -> None:
    scans = [scan(1, 5, 0)]
    first = run(None, result(scans, courier_partner_edd="2026-11-05"))
    moved = run(first.state, result(scans, courier_partner_edd="2026-11-07"))
    back = run(moved.state, result(scans, courier_partner_edd="2026-11-05"))
    assert "shipment.edd_changed" not in types(first)
    (change,) = moved.events
    assert isinstance(change, EddChanged)
    assert change.previous.courier_partner_edd == "2026-11-05"
    assert change.current.courier_partner_edd == "2026-11-07"
    assert [e.event_type for e in back.events] == ["shipment.edd_changed"]
    assert back.events[0].event_id != change.event_id


def test_sla_edd_object_changes_count_too() -> None:
    scans = [scan(1, 5, 0)]
    first = run(None, result(scans, edd={"min_sla": 2, "max_sla": 3, "exact_sla": None}))
    moved = run(first.state, result(scans, edd={"min_sla": 2, "max_sla": 5, "exact_sla": None}))
    assert types(moved) == ["shipment.edd_changed"]


def test_an_invalid_awb_is_reported_once() -> None:
    first = run(None, result([], valid=False))
    second = run(first.state, result([], valid=False))
    assert [type(e) for e in first.events] == [Invalid]
    assert second.events == () and not second.changed
    assert first.state.invalid_since == NOW
    valid_again = run(second.state, result([scan(1, 5, 0)]))
    assert valid_again.state.invalid_since is None


def test_unknown_status_codes_are_kept_counted_and_non_terminal() -> None:
    outcome = run(None, result([scan(1, 29, 0)]))
    assert outcome.unknown_status_codes == (29,)
    assert outcome.state.current is not None
    assert outcome.state.current.clickpost_status_code == 29
    assert not outcome.state.is_terminal


def test_scans_without_a_checkpoint_id_are_identified_by_content() -> None:
    awb = result([scan(None, 5, 0), scan(None, 5, 0), scan(None, 6, 2)])
    first = run(None, awb)
    assert types(first).count("shipment.scan_added") == 2
    assert run(first.state, awb).events == ()


def test_without_latest_status_the_newest_scan_is_current() -> None:
    outcome = run(None, result([scan(2, 6, 5), scan(1, 5, 0)], latest=None))
    assert outcome.state.current is not None
    assert outcome.state.current.clickpost_status_code == 6


def test_state_stays_bounded_at_500_scans_and_beyond() -> None:
    # Given 1,500 scans arriving over three polls
    state: ShipmentState | None = None
    for start in (0, 500, 1000):
        awb = result([scan(i, 5, i / 10) for i in range(start, start + 500)], latest=True)
        outcome = run(state, awb)
        state = outcome.state
        assert types(outcome).count("shipment.scan_added") == 500
    assert state is not None

    # Then the state keeps at most MAX_SEEN ids (by their short digests)
    assert len(state.seen) == MAX_SEEN
    assert all(len(k) == 8 for k in state.seen)
    assert state.scan_count == 1500
    # and an evicted (oldest) scan sent again is still recognised as seen
    assert run(state, result([scan(0, 5, 0)], latest=False)).events == ()


def test_500_scans_fit_comfortably_in_one_dynamodb_item() -> None:
    awb = result([scan(9_600_000_000 + i, 5, i / 10) for i in range(500)])
    state = run(None, awb).state
    size = len(state.model_dump_json().encode())
    # DynamoDB's limit is 400 KB; the state of a 500-scan shipment stays far below it.
    assert size < 40_000, size


# --- rules of single steps that the examples above leave open -----------------------


def test_terminal_at_is_when_the_journey_first_ended() -> None:
    # Given a shipment delivered at the first poll
    delivered = run(None, result([scan(1, 6, 0), scan(2, 8, 5)]))

    # When a later poll brings a newer terminal status
    later = NOW + timedelta(days=2)
    rto = run(delivered.state, result([scan(1, 6, 0), scan(2, 8, 5), scan(3, 14, 30)]), later)

    # Then the status moves, but the journey still ended at the first poll
    assert rto.state.current is not None and rto.state.current.clickpost_status_code == 14
    assert rto.state.terminal_at == NOW


def test_every_stuck_flip_has_its_own_id_and_the_current_status() -> None:
    # Given a shipment whose stuck flag goes unknown → false → true → false → true
    scans = [scan(1, 5, 0, location="Nagpur")]
    outcomes = [run(None, result(scans, is_stuck=False))]
    for flag in (True, False, True):
        outcomes.append(run(outcomes[-1].state, result(scans, is_stuck=flag)))

    # Then unknown → false is remembered but not reported, and each later flip is its own event
    assert outcomes[0].state.is_stuck is False
    flips = [e for outcome in outcomes[1:] for e in outcome.events]
    assert [type(e) for e in flips] == [Stuck, Unstuck, Stuck]
    assert len({e.event_id for e in flips}) == 3
    first = flips[0]
    assert isinstance(first, Stuck)
    assert (first.clickpost_status_code, first.clickpost_status_bucket) == (5, 3)
    assert first.location == "Nagpur"


def test_a_delivered_shipment_flagged_stuck_is_not_reported() -> None:
    delivered = run(None, result([scan(1, 8, 0)], is_stuck=False))
    flagged = run(delivered.state, result([scan(1, 8, 0)], is_stuck=True))
    assert flagged.events == ()
    assert flagged.state.is_stuck is False


def test_edd_moving_back_and_forth_reports_each_move_with_its_own_id() -> None:
    scans = [scan(1, 5, 0)]
    state = run(None, result(scans, courier_partner_edd="2026-11-05")).state
    moves: list[ShipmentEvent] = []
    for edd in ("2026-11-07", "2026-11-05", "2026-11-07"):
        outcome = run(state, result(scans, courier_partner_edd=edd))
        moves.extend(outcome.events)
        state = outcome.state
    assert [e.event_type for e in moves] == ["shipment.edd_changed"] * 3
    assert len({e.event_id for e in moves}) == 3


def test_a_response_without_edd_keeps_the_last_one() -> None:
    scans = [scan(1, 5, 0)]
    first = run(None, result(scans, courier_partner_edd="2026-11-05"))
    silent = run(first.state, result(scans))
    assert silent.events == ()
    assert silent.state.edd is not None
    assert silent.state.edd.courier_partner_edd == "2026-11-05"


def test_an_edd_change_after_delivery_is_recorded_but_not_reported() -> None:
    scans = [scan(1, 8, 0)]
    delivered = run(None, result(scans, courier_partner_edd="2026-11-05"))
    moved = run(delivered.state, result(scans, courier_partner_edd="2026-11-07"))
    assert moved.events == ()
    assert moved.state.edd is not None
    assert moved.state.edd.courier_partner_edd == "2026-11-07"


def test_unknown_codes_are_those_of_new_scans_and_of_the_current_status() -> None:
    # Given a shipment whose first scan had an unknown code
    first = run(None, result([scan(1, 29, 0)]))
    assert first.unknown_status_codes == (29,)

    # When a known scan follows it, then a latest_status with another unknown code
    moved_on = run(first.state, result([scan(1, 29, 0), scan(2, 5, 3)]))
    latest = {**scan(None, 5, 4), "clickpost_status_code": 77}
    odd_latest = run(first.state, result([scan(1, 29, 0)], latest=latest))

    # Then a scan seen before is not reported again; the status Clickpost reports now is
    assert moved_on.unknown_status_codes == ()
    assert odd_latest.unknown_status_codes == (77,)


def test_an_invalid_answer_still_records_the_order_and_courier() -> None:
    outcome = run(None, result([], valid=False, order_id="ORD-9", courier_name="BlueDart"))
    assert (outcome.state.order_id, outcome.state.courier_name) == ("ORD-9", "BlueDart")
    (invalid,) = outcome.events
    assert (invalid.order_id, invalid.courier_name) == ("ORD-9", "BlueDart")
    assert outcome.unknown_status_codes == ()


# --- hostile times and text ------------------------------------------------------------


def test_a_scan_dated_far_ahead_does_not_freeze_the_shipment() -> None:
    # Given a shipment whose carrier sent one scan dated a month ahead
    ahead = scan(2, 5, 0) | {"timestamp": (NOW + timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")}
    first = run(None, result([scan(1, 4, 0), ahead]))
    (future,) = [e for e in first.events if isinstance(e, ScanAdded) and e.checkpoint_id == 2]
    assert future.time_quality == "future"
    assert future.occurred_at == NOW
    assert future.reported_time is not None and future.reported_time.startswith("2026-12-27")

    # When real statuses follow, dated before that future scan (but after the real ones)
    delivered = scan(4, 8, 6)
    later = run(
        first.state,
        result([scan(1, 4, 0), ahead, scan(3, 6, 5), delivered], latest=delivered),
    )

    # Then they still apply (the future scan's time was never kept to outrank them)
    assert first.state.current is not None and first.state.current.timestamp is None
    changes = [e for e in later.events if isinstance(e, StatusChanged)]
    assert [e.clickpost_status_code for e in changes] == [8]
    assert later.state.current is not None and later.state.current.clickpost_status_code == 8
    assert later.state.is_terminal


def test_an_unreadable_time_keeps_the_scan_and_says_so() -> None:
    # Given a scan whose time cannot be read
    odd = scan(2, 6, 0) | {"timestamp": "0000-00-00 00:00:00"}

    # When
    outcome = run(None, result([scan(1, 5, 0), odd], latest=odd))

    # Then it is a scan like any other, flagged, at the time it was detected
    (added,) = [e for e in outcome.events if isinstance(e, ScanAdded) and e.checkpoint_id == 2]
    assert added.time_quality == "unreadable"
    assert added.reported_time == "0000-00-00 00:00:00"
    assert added.occurred_at == NOW
    # and as the latest status it applies (arrival order), with no time of its own
    assert outcome.state.current is not None
    assert outcome.state.current.clickpost_status_code == 6
    assert outcome.state.current.timestamp is None


def test_a_trusted_status_older_than_one_applied_before_never_becomes_current() -> None:
    # Given out for delivery at 10 h, then a status with an unreadable time
    state = run(None, result([scan(1, 6, 10)])).state
    unknown = scan(2, 9, 0) | {"timestamp": "garbage"}
    state = run(state, result([scan(1, 6, 10), unknown], latest=unknown)).state
    assert state.current is not None and state.current.clickpost_status_code == 9

    # When an in-transit status dated 5 h (before 10 h) comes as the latest
    stale = scan(3, 5, 5)
    outcome = run(state, result([scan(1, 6, 10), unknown, stale], latest=stale))

    # Then it is a new scan, but not the current status
    assert outcome.state.current is not None
    assert outcome.state.current.clickpost_status_code == 9


def test_clickpost_text_is_clipped_wherever_it_is_kept() -> None:
    # Given a 300 KB remark
    huge = scan(1, 5, 0, remark="x" * 300_000)

    # When
    outcome = run(None, result([huge]))

    # Then events and state keep its start and say how much was cut
    (added,) = [e for e in outcome.events if isinstance(e, ScanAdded)]
    assert added.scan.remark is not None
    assert len(added.scan.remark) < TEXT_LIMIT + 40
    assert added.scan.remark.endswith(f"[{300_000 - TEXT_LIMIT} more characters]")
    assert outcome.state.current is not None and outcome.state.current.remark == added.scan.remark
    assert len(outcome.state.model_dump_json()) < 10_000
