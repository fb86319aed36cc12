"""The sandbox's journeys: files validate, steps advance per poll, output is Clickpost's shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trackwatch.models.clickpost import AwbResult, TrackOrderResponse, parse_track_order
from trackwatch_cli.sandbox import (
    DEFAULT_KEY,
    DEFAULT_USERNAME,
    SandboxServer,
    demo_shipments,
    load_journeys,
)
from trackwatch_cli.sandbox.journey import Journey
from trackwatch_cli.sandbox.server import SCAN_LEAD

EXPECTED_CODES = {
    "delivered_smoothly": [1, 4, 5, 6, 8],
    "delayed_then_delivered": [1, 4, 5, 5, 5, 5, 6, 8],
    "failed_then_delivered": [1, 4, 5, 6, 9, 6, 8],
    "rto": [1, 4, 5, 6, 9, 6, 9, 11, 21, 14],
    "stuck": [1, 4, 5, 5, 1004, 6, 8],
    "edd_change": [1, 4, 5, 18, 1004, 6, 8],
    "late_scan_after_delivery": [1, 4, 5, 6, 8, 1004],
    # The delay demos: a step per poll without a clock (their holds need one).
    "stuck_in_transit": [5, 5, 1004, 6, 8],
    "lost_in_transit": [5, 5, 1004, 6, 8],
    "missed_promise": [4, 5, 5, 1004, 6, 8],
}


def _params(cp_id: int, *waybills: str) -> dict[str, str]:
    return {
        "key": DEFAULT_KEY,
        "username": DEFAULT_USERNAME,
        "waybill": ",".join(waybills),
        "cp_id": str(cp_id),
    }


def _poll(sandbox: SandboxServer, cp_id: int, *waybills: str) -> TrackOrderResponse:
    answer = sandbox.handle_track_order(_params(cp_id, *waybills))
    assert answer.status == 200
    return parse_track_order(answer.body)


def _awb(sandbox: SandboxServer, cp_id: int, waybill: str) -> AwbResult:
    return _poll(sandbox, cp_id, waybill).result[waybill]


def test_every_journey_file_loads_and_validates() -> None:
    # Given / When
    journeys = load_journeys()

    # Then
    assert set(journeys) == {*EXPECTED_CODES, "invalid"}
    assert all(isinstance(j, Journey) for j in journeys.values())
    assert {s.journey for s in demo_shipments()} <= set(journeys)


@pytest.mark.parametrize("name", sorted(EXPECTED_CODES))
def test_journey_advances_one_step_per_poll(name: str) -> None:
    # Given a sandbox with one shipment on the journey
    sandbox = SandboxServer()
    sandbox.add_shipment("AWB1", 4, name)
    expected = EXPECTED_CODES[name]

    # When it is polled once per step, and once more
    seen: list[int | None] = []
    for _ in range(len(expected) + 1):
        latest = _awb(sandbox, 4, "AWB1").latest_status
        assert latest is not None
        seen.append(latest.clickpost_status_code)

    # Then each poll shows the next step, and the last step sticks
    assert seen == [*expected, expected[-1]]


@pytest.mark.parametrize("name", sorted(EXPECTED_CODES))
def test_output_is_clickposts_shape_newest_first_with_stable_ids(name: str) -> None:
    # Given two independent sandboxes with the same shipment at its last step
    first, second = SandboxServer(), SandboxServer()
    for sandbox in (first, second):
        sandbox.add_shipment("AWB1", 6, name, order_id="ORDER-1")
        sandbox.advance_all(steps=100)

    # When
    result = _awb(first, 6, "AWB1")
    again = _awb(second, 6, "AWB1")

    # Then
    assert result == again
    stamps = [s.timestamp for s in result.scans if s.timestamp is not None]
    assert len(stamps) == len(result.scans)
    assert stamps == sorted(stamps, reverse=True)
    ids = [s.checkpoint_id for s in result.scans]
    assert len(ids) == len(set(ids))
    assert result.valid
    assert result.additional.order_id == "ORDER-1"
    assert result.additional.courier_partner_id == 6
    assert result.additional.courier_name == "Ecom Express"
    assert result.latest_status is not None
    first_stamp = result.latest_status.timestamp
    assert first_stamp is not None and first_stamp.tzinfo is not None


def test_raw_timestamps_are_naive_india_time_strings() -> None:
    # Given
    sandbox = SandboxServer(journey_start=datetime(2025, 3, 1, 10, 0, 0))
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")

    # When
    body = sandbox.handle_track_order(_params(4, "AWB1")).body.decode()

    # Then
    assert '"timestamp": "2025-03-01 10:00:00"' in body
    assert '"meta": {"status": 200, "success": true, "message": "SUCCESS"}' in body


def test_late_scan_keeps_timestamp_order_but_becomes_latest_status() -> None:
    # Given a delivered shipment whose carrier then uploads an older scan
    sandbox = SandboxServer()
    sandbox.add_shipment("AWB1", 5, "late_scan_after_delivery")
    sandbox.advance("AWB1", 5, steps=100)

    # When
    result = _awb(sandbox, 5, "AWB1")

    # Then
    assert result.scans[0].clickpost_status_code == 8
    assert result.latest_status is not None
    assert result.latest_status.clickpost_status_code == 1004
    late = next(s for s in result.scans if s.clickpost_status_code == 1004)
    assert late.timestamp is not None and result.scans[0].timestamp is not None
    assert late.timestamp < result.scans[0].timestamp


def test_additional_overrides_persist_until_changed() -> None:
    # Given shipments on the stuck, edd_change and failed_then_delivered journeys
    sandbox = SandboxServer()
    sandbox.add_shipment("STUCK", 4, "stuck")
    sandbox.add_shipment("EDD", 4, "edd_change")
    sandbox.add_shipment("NDR", 4, "failed_then_delivered")

    # When each is polled through its journey
    stuck = [_awb(sandbox, 4, "STUCK").additional.is_stuck for _ in range(7)]
    edd = [_awb(sandbox, 4, "EDD").additional.courier_partner_edd for _ in range(7)]
    ndr = [_awb(sandbox, 4, "NDR").additional.ndr for _ in range(7)]

    # Then
    assert stuck == [False, False, False, True, False, False, False]
    assert edd[:3] == ["2025-01-09"] * 3
    assert edd[3:] == ["2025-01-12"] * 4
    assert ndr[:4] == [None] * 4
    assert all(n is not None and n.ndr_bucket_code == 1 for n in ndr[4:])


def test_invalid_journey_and_unregistered_awbs() -> None:
    # Given one invalid AWB and one never registered
    sandbox = SandboxServer()
    sandbox.add_shipment("BAD1", 4, "invalid")

    # When
    response = _poll(sandbox, 4, "BAD1", "UNKNOWN1")

    # Then
    assert set(response.result) == {"BAD1"}
    assert response.result["BAD1"].valid is False
    assert response.result["BAD1"].scans == []


def test_with_any_waybill_every_awb_gets_a_journey_picked_from_its_waybill() -> None:
    # Given a sandbox that answers whatever is registered locally
    sandbox = SandboxServer(any_waybill=True)

    # When AWBs nobody scripted are polled, on a carrier it has never heard of
    response = _poll(sandbox, 42, "MYSHOP0001", "MYSHOP0002", "invalid-7")

    # Then each is answered: on the journey its waybill picks, the same every time, and a
    # waybill starting with INVALID is one Clickpost does not know
    assert set(response.result) == {"MYSHOP0001", "MYSHOP0002", "invalid-7"}
    assert response.result["invalid-7"].valid is False
    for waybill in ("MYSHOP0001", "MYSHOP0002"):
        assert response.result[waybill].valid is True
        assert sandbox.journey_for(waybill) == SandboxServer().journey_for(waybill) != "invalid"
    # (every journey but the demo order's delayed box, which no AWB gets by chance, and the
    # delay demos, whose sitting depends on the clock)
    picked = {sandbox.journey_for(f"W{i}") for i in range(60)}
    assert picked == {
        name
        for name in EXPECTED_CODES
        if not load_journeys()[name].holds and name != "delayed_then_delivered"
    }


def test_with_a_clock_scans_and_edds_follow_it() -> None:
    # Given a sandbox reading a simulated clock in November 2026
    now = [datetime(2026, 11, 27, 3, 30, tzinfo=UTC)]
    sandbox = SandboxServer(clock=lambda: now[0], any_waybill=True)
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")

    # When it is polled, then again half an hour later
    first = _awb(sandbox, 4, "AWB1")
    now[0] += timedelta(minutes=30)
    second = _awb(sandbox, 4, "AWB1")

    # Then each step's scans are dated just before the poll that first showed them (India
    # time), and the carrier's EDD counts from the day the journey started
    assert first.scans[0].timestamp == datetime(2026, 11, 27, 3, 20, tzinfo=UTC)
    newest = second.scans[0].timestamp
    assert newest == datetime(2026, 11, 27, 3, 50, tzinfo=UTC)
    assert [s.timestamp for s in second.scans][-1] == first.scans[0].timestamp
    assert second.additional.courier_partner_edd == "2026-11-30"


def test_advance_every_two_polls() -> None:
    # Given
    sandbox = SandboxServer(advance_every=2)
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")

    # When
    codes = []
    for _ in range(4):
        latest = _awb(sandbox, 4, "AWB1").latest_status
        assert latest is not None
        codes.append(latest.clickpost_status_code)

    # Then
    assert codes == [1, 1, 4, 4]
    assert sandbox.step_of("AWB1", 4) == 2


@pytest.mark.parametrize(
    ("params", "status", "meta_status", "fragment"),
    [
        ({"key": DEFAULT_KEY, "username": DEFAULT_USERNAME, "cp_id": "4"}, 400, 400, "waybill"),
        ({**_params(4, "A"), "key": "wrong"}, 401, 301, "Authentication"),
        ({**_params(4, "A"), "username": "wrong"}, 401, 301, "Authentication"),
        (_params(4, *[f"A{i}" for i in range(6)]), 400, 400, "at most 5"),
        (_params(999, "A"), 200, 302, "cp_id"),
    ],
)
def test_request_checks(
    params: dict[str, str], status: int, meta_status: int, fragment: str
) -> None:
    # Given
    sandbox = SandboxServer()

    # When
    answer = sandbox.handle_track_order(params)

    # Then
    parsed = parse_track_order(answer.body)
    assert answer.status == status
    assert parsed.meta.status == meta_status
    assert parsed.meta.success is False
    assert fragment in (parsed.meta.message or "")
    assert sandbox.requests[-1].status_code == status


def test_with_a_clock_a_step_waits_for_its_hold_and_is_dated_when_shown() -> None:
    # Given a sandbox on a clock, with a shipment that sat 40 hours before it was registered
    now = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)  # 09:00 in India

    def clock() -> datetime:
        return now

    sandbox = SandboxServer(clock=clock)
    sandbox.add_shipment("AWB1", 4, "stuck_in_transit")

    # When it is polled at once, 5 hours later, and at 6 hours (the next step's hold)
    first = _awb(sandbox, 4, "AWB1")
    now += timedelta(hours=5)
    held = _awb(sandbox, 4, "AWB1")
    now += timedelta(hours=1)
    moved = _awb(sandbox, 4, "AWB1")

    # Then the history it came with is dated back from the first poll, the shipment sits
    # until the hold has passed, and the new scan is dated when it was shown
    assert first.latest_status is not None and first.latest_status.timestamp is not None
    registered = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
    assert first.latest_status.timestamp == registered - SCAN_LEAD - timedelta(hours=40, minutes=-2)
    assert held.scans == first.scans
    assert moved.latest_status is not None and moved.latest_status.timestamp is not None
    assert moved.latest_status.clickpost_status_code == 5
    assert moved.latest_status.location == "Nagpur_Wadi_H (Maharashtra)"
    assert moved.latest_status.timestamp.astimezone(UTC) == now - SCAN_LEAD


def test_with_a_clock_a_carrier_date_in_the_past_is_dated_from_registration() -> None:
    # Given a sandbox on a clock
    now = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
    sandbox = SandboxServer(clock=lambda: now)
    sandbox.add_shipment("AWB1", 5, "lost_in_transit")

    # When
    result = _awb(sandbox, 5, "AWB1")

    # Then its carrier's date is the day before it was registered
    assert result.additional.courier_partner_edd == "2026-11-26"
