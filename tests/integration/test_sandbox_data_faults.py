"""The sandbox's data and delivery faults over a real socket: hostile bytes for the targeted
waybill, a healthy answer for its call-mates.

"Healthy" is what an identical sandbox with no faults answers (the twin): both play the same
deterministic journeys, and each test polls them in step.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from trackwatch_cli.sandbox import DEFAULT_KEY, DEFAULT_USERNAME, FaultKind, SandboxServer
from trackwatch_cli.sandbox.faults import DEFAULT_RAW_REMARK

CP_ID = 4
TARGET = "SBXDF0000001"
MATE = "SBXDF0000002"
PATH = "/api/v2/track-order/"
#: Step 1 of `delivered_smoothly` (20 hours in) is then 27 November 2026, 10:00 India time.
JOURNEY_START = datetime(2026, 11, 26, 14, 0, 0)


def _sandbox() -> SandboxServer:
    sandbox = SandboxServer(journey_start=JOURNEY_START)
    sandbox.add_shipment(TARGET, CP_ID, "delivered_smoothly")
    sandbox.add_shipment(MATE, CP_ID, "failed_then_delivered")
    return sandbox


@pytest.fixture
def live() -> Iterator[SandboxServer]:
    with _sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def twin() -> SandboxServer:
    """The same sandbox, never faulted and never started: what healthy looks like."""
    return _sandbox()


@pytest.fixture
def client(live: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, timeout=5.0) as http:
        yield http


def _params(*waybills: str) -> dict[str, str]:
    return {
        "key": DEFAULT_KEY,
        "username": DEFAULT_USERNAME,
        "waybill": ",".join(waybills),
        "cp_id": str(CP_ID),
    }


def _healthy(twin: SandboxServer, *waybills: str) -> dict[str, Any]:
    """The twin's `result` for one poll of `waybills` (it advances, as the live one does)."""
    answer = twin.handle_track_order(_params(*waybills))
    assert answer.status == 200
    result: dict[str, Any] = json.loads(answer.body)["result"]
    return result


def _fragment(waybill: str, awb: dict[str, Any]) -> bytes:
    """`"<waybill>": {...}` exactly as the sandbox writes a healthy AWB into `result`."""
    return f"{json.dumps(waybill)}: {json.dumps(awb)}".encode()


def _poll(client: httpx.Client, *waybills: str) -> httpx.Response:
    response = client.get(PATH, params=_params(*waybills))
    assert response.status_code == 200
    return response


def _advance_both(live: SandboxServer, twin: SandboxServer, steps: int) -> None:
    for sandbox in (live, twin):
        sandbox.advance(TARGET, CP_ID, steps)


def _eventually(condition: Callable[[], bool], within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def _epoch_s(when: datetime) -> int:
    return int(when.timestamp())


# ---------------------------------------------------------------- timestamps

#: Step 1's scan really happened at 2026-11-27 10:00 India time, 04:30 UTC.
SCAN_INSTANT = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "hostile"),
    [
        (FaultKind.TIMESTAMP_YEAR_ONE, "0001-01-01 00:00:00"),
        (FaultKind.TIMESTAMP_YEAR_9999, "9999-12-31T23:59:59-05:00"),
        (FaultKind.TIMESTAMP_ZEROS, "0000-00-00 00:00:00"),
        (FaultKind.TIMESTAMP_DAY_FIRST, "27/11/2026 10:00"),
        (FaultKind.TIMESTAMP_EPOCH_S, _epoch_s(SCAN_INSTANT)),
        (FaultKind.TIMESTAMP_EPOCH_MS, _epoch_s(SCAN_INSTANT) * 1000),
        (FaultKind.TIMESTAMP_BLANK, "  "),
    ],
)
def test_timestamp_fault_rewrites_the_newest_scan_of_one_waybill(
    live: SandboxServer,
    twin: SandboxServer,
    client: httpx.Client,
    kind: FaultKind,
    hostile: str | int,
) -> None:
    # Given a target one step into its journey (two scans) and a fault on it alone
    _advance_both(live, twin, 1)
    live.set_fault(kind, waybill=TARGET)

    # When both are polled in one call
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then the target's newest scan (and latest_status, its copy) carry the hostile value,
    # byte for byte; its older scan and every other field are as healthy
    assert body.count(f'"timestamp": {json.dumps(hostile)}'.encode()) == 2
    expected = healthy[TARGET]
    expected["scans"][0]["timestamp"] = hostile
    expected["latest_status"]["timestamp"] = hostile
    result = json.loads(body)["result"]
    assert result[TARGET] == expected
    assert result[TARGET]["scans"][1]["timestamp"] == "2026-11-26 14:00:00"
    # And the call-mate is exactly the healthy answer
    assert _fragment(MATE, healthy[MATE]) in body
    assert live.requests[-1].faults == (kind,)


def test_future_scan_stays_while_real_scans_arrive_after_it(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a future-dated scan set on the target once, at step 1 (10:00 on 27 November)
    _advance_both(live, twin, 1)
    live.set_fault(FaultKind.FUTURE_SCAN, waybill=TARGET)

    # When it is polled three times, the fault applying to the first poll only
    bodies = [_poll(client, TARGET, MATE).content for _ in range(3)]
    healthy = [_healthy(twin, TARGET, MATE) for _ in range(3)]

    # Then every poll shows the real history plus one scan dated 30 days past the clock
    for body, expected in zip(bodies, healthy, strict=True):
        target = json.loads(body)["result"][TARGET]
        future, *real = target["scans"]
        assert real == expected[TARGET]["scans"]
        assert future["timestamp"] == "2026-12-27 10:00:00"
        # (Clickpost's record time is written in UTC: 10:07 in India)
        assert future["created_at"] == "2026-11-27 04:37:00"
        assert future["checkpoint_id"] not in {s["checkpoint_id"] for s in real}
        # The newest by timestamp stays the future scan, though real ones keep coming
        assert target["latest_status"]["timestamp"] == "2026-12-27 10:00:00"
        assert _fragment(MATE, expected[MATE]) in body
    counts = [len(json.loads(body)["result"][TARGET]["scans"]) for body in bodies]
    assert counts == [3, 5, 6]


# ---------------------------------------------------------------- remarks and encoding


def test_invalid_utf8_remark_in_one_waybill(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given
    live.set_fault(FaultKind.INVALID_UTF8, waybill=TARGET)

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then the body is not UTF-8, because of exactly the raw bytes in the target's remark
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert body.count(b'"remark": "' + DEFAULT_RAW_REMARK + b'"') == 2
    result = json.loads(body.decode("utf-8", errors="surrogateescape"))["result"]
    remark = DEFAULT_RAW_REMARK.decode("utf-8", errors="surrogateescape")
    expected = healthy[TARGET]
    expected["scans"][0]["remark"] = remark
    expected["latest_status"]["remark"] = remark
    assert result[TARGET] == expected
    assert _fragment(MATE, healthy[MATE]) in body


def test_invalid_utf8_takes_custom_raw_bytes(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a remark cut inside a three-byte UTF-8 character
    raw = "नई दिल्ली".encode()[:4]
    live.set_fault(FaultKind.INVALID_UTF8, waybill=TARGET, raw=raw)

    # When
    body = _poll(client, TARGET, MATE).content

    # Then
    assert body.count(b'"remark": "' + raw + b'"') == 2
    assert _fragment(MATE, _healthy(twin, TARGET, MATE)[MATE]) in body


def test_huge_remark_in_one_scan(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given
    _advance_both(live, twin, 2)
    live.set_fault(FaultKind.HUGE_REMARK, waybill=TARGET)

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then the newest scan's remark is 300 KB; nothing else changed
    result = json.loads(body)["result"]
    remark = result[TARGET]["scans"][0]["remark"]
    assert len(remark.encode()) == 300_000
    assert result[TARGET]["latest_status"]["remark"] == remark
    expected = healthy[TARGET]
    expected["scans"][0]["remark"] = remark
    expected["latest_status"]["remark"] = remark
    assert result[TARGET] == expected
    assert _fragment(MATE, healthy[MATE]) in body


# ---------------------------------------------------------------- volume


def test_long_history_at_first_sight_and_after(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a long history set on the target for its first poll only
    live.set_fault(FaultKind.LONG_HISTORY, waybill=TARGET)

    # When it is polled twice
    first = _poll(client, TARGET, MATE).content
    healthy_first = _healthy(twin, TARGET, MATE)
    second = _poll(client, TARGET, MATE).content
    healthy_second = _healthy(twin, TARGET, MATE)

    # Then the first poll already shows 2,000 older scans, all with distinct checkpoint ids,
    # under the journey's own; the history stays at the next poll
    for body, healthy in ((first, healthy_first), (second, healthy_second)):
        target = json.loads(body)["result"][TARGET]
        real = healthy[TARGET]["scans"]
        assert len(target["scans"]) == 2_000 + len(real)
        assert target["scans"][: len(real)] == real
        assert target["latest_status"] == healthy[TARGET]["latest_status"]
        ids = [scan["checkpoint_id"] for scan in target["scans"]]
        assert len(set(ids)) == len(ids)
        stamps = [scan["timestamp"] for scan in target["scans"]]
        assert stamps == sorted(stamps, reverse=True)
        assert _fragment(MATE, healthy[MATE]) in body


def test_huge_body_parses_with_one_inline_image(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a 2 MB image: small enough to parse here, same code path as 50 MB
    live.set_fault(FaultKind.HUGE_BODY, waybill=TARGET, size_bytes=2_000_000)

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then
    result = json.loads(body)["result"]
    (image,) = result[TARGET]["additional"]["qc_images"]
    assert len(image) == 2_000_000
    assert image.startswith("data:image/jpeg;base64,/9j/")
    expected = healthy[TARGET]
    expected["additional"]["qc_images"] = [image]
    assert result[TARGET] == expected
    assert _fragment(MATE, healthy[MATE]) in body


def test_huge_body_of_50_mb_streams_exactly(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given the default: a 50 MB image inline in the target's additional
    live.set_fault(FaultKind.HUGE_BODY, waybill=TARGET)
    marker = "IMAGE-GOES-HERE"
    healthy = _healthy(twin, MATE, TARGET)
    healthy[TARGET]["additional"]["qc_images"] = [marker]
    envelope = {"meta": {"status": 200, "success": True, "message": "SUCCESS"}}
    head, tail = json.dumps({**envelope, "result": healthy}).encode().split(marker.encode())
    prefix = b"data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ"
    expected = hashlib.sha256(head + prefix)
    run = b"A" * 1_000_000
    remaining = 50_000_000 - len(prefix)
    while remaining:
        expected.update(run[: min(remaining, len(run))])
        remaining -= min(remaining, len(run))
    expected.update(tail)

    # When it is read as a stream
    received = hashlib.sha256()
    size = 0
    with client.stream("GET", PATH, params=_params(MATE, TARGET)) as response:
        declared = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            received.update(chunk)
            size += len(chunk)

    # Then every byte is the healthy answer with the 50 MB image in place
    assert size == declared == len(head) + 50_000_000 + len(tail)
    assert received.hexdigest() == expected.hexdigest()
    assert _fragment(MATE, healthy[MATE]) in head


def test_deep_nesting_in_one_waybills_additional(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given
    live.set_fault(FaultKind.DEEP_NESTING, waybill=TARGET)

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then qc_images is 100,000 arrays deep, which a recursive parser cannot take
    deep = b'"qc_images": ' + b"[" * 100_000 + b"]" * 100_000
    assert body.count(deep) == 1
    with pytest.raises(RecursionError):
        json.loads(body)
    # And with that one value made flat again, the body is the healthy answer
    result = json.loads(body.replace(deep, b'"qc_images": []'))["result"]
    assert result == healthy
    assert _fragment(MATE, healthy[MATE]) in body


# ---------------------------------------------------------------- result keys


def test_duplicate_key_puts_a_stale_copy_after_the_real_one(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given one healthy poll, then a duplicate-key fault on the target
    _poll(client, TARGET, MATE)
    before = _healthy(twin, TARGET, MATE)
    live.set_fault(FaultKind.DUPLICATE_KEY, waybill=TARGET)

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then the target appears twice: today's answer, then the previous poll's
    pairs = dict(json.loads(body, object_pairs_hook=list))["result"]
    assert [key for key, _ in pairs] == [TARGET, TARGET, MATE]
    decoded = json.loads(body)["result"]
    assert _fragment(TARGET, healthy[TARGET]) + b", " + _fragment(TARGET, before[TARGET]) in body
    assert _fragment(MATE, healthy[MATE]) in body
    # And a plain parser keeps the stale one, silently
    assert decoded[TARGET] == before[TARGET] != healthy[TARGET]


def test_duplicate_key_at_first_poll_is_invalid_then_valid(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given
    live.set_fault(FaultKind.DUPLICATE_KEY, waybill=TARGET)

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then
    assert _fragment(TARGET, healthy[TARGET]) in body
    assert json.loads(body)["result"][TARGET]["valid"] is False
    assert _fragment(MATE, healthy[MATE]) in body


@pytest.mark.parametrize("extra", [None, "SBXDF9999999"])
def test_unasked_awb_joins_the_result(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client, extra: str | None
) -> None:
    # Given
    live.set_fault(FaultKind.UNASKED_AWB, waybill=TARGET, extra_waybill=extra)
    unasked = extra or f"{TARGET}-C1"

    # When
    body = _poll(client, TARGET, MATE).content
    healthy = _healthy(twin, TARGET, MATE)

    # Then the asked-for AWBs are healthy and one more, of the same order, came along
    result = json.loads(body)["result"]
    assert list(result) == [TARGET, unasked, MATE]
    assert _fragment(TARGET, healthy[TARGET]) in body
    assert _fragment(MATE, healthy[MATE]) in body
    child = result[unasked]
    assert child["valid"] is True
    assert child["additional"]["order_id"] == healthy[TARGET]["additional"]["order_id"]
    assert child["latest_status"] == healthy[TARGET]["latest_status"]
    assert child["scans"][0]["checkpoint_id"] != healthy[TARGET]["scans"][0]["checkpoint_id"]


def test_unscoped_data_fault_touches_every_waybill(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a fault with no waybill
    live.set_fault(FaultKind.TIMESTAMP_BLANK)

    # When
    body = _poll(client, TARGET, MATE).content

    # Then both AWBs' newest scans are blank, and nothing else changed
    expected = _healthy(twin, TARGET, MATE)
    for awb in expected.values():
        awb["scans"][0]["timestamp"] = awb["latest_status"]["timestamp"] = "  "
    assert json.loads(body)["result"] == expected


# ---------------------------------------------------------------- delivery


def test_hang_holds_only_its_request_until_released(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a hang on requests for the target
    live.set_fault(FaultKind.HANG, waybill=TARGET)
    answers: list[httpx.Response] = []
    hung = threading.Thread(target=lambda: answers.append(_poll(client, TARGET)))
    hung.start()
    _eventually(lambda: live.hanging == 1)

    # When a call-mate is asked about meanwhile, then the hang is released
    started = time.monotonic()
    mate = _poll(client, MATE)
    mate_s = time.monotonic() - started
    assert live.release_hangs() == 1
    hung.join(timeout=3)

    # Then the call-mate was answered at once and healthily, the target after release
    assert mate_s < 1.0
    assert mate.content == twin.handle_track_order(_params(MATE)).body
    assert answers[0].content == twin.handle_track_order(_params(TARGET)).body
    # And the log has both, the hung one first: it is logged when it arrives
    assert [(r.waybills, r.faults) for r in live.requests] == [
        ((TARGET,), (FaultKind.HANG,)),
        ((MATE,), ()),
    ]


def test_hang_ends_only_by_a_client_timeout(live: SandboxServer) -> None:
    # Given
    live.set_fault(FaultKind.HANG, waybill=TARGET)

    # When / Then
    started = time.monotonic()
    with (
        httpx.Client(base_url=live.base_url, timeout=0.2) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.get(PATH, params=_params(TARGET, MATE))
    # (the hang holds the connection for good: any bound tells the timeout ended it)
    assert time.monotonic() - started < 10.0
    assert live.requests[-1].faults == (FaultKind.HANG,)
    assert live.requests[-1].waybills == (TARGET, MATE)


def test_drip_sends_the_body_a_byte_at_a_time(live: SandboxServer, twin: SandboxServer) -> None:
    # Given a drip on requests for an AWB the sandbox does not know (a short body)
    gap_s = 0.005
    live.set_fault(FaultKind.DRIP, waybill="UNKNOWN1", delay_s=gap_s)
    expected = twin.handle_track_order(_params("UNKNOWN1")).body

    # When it is read with a read timeout far above the gap
    reads: list[bytes] = []
    started = time.monotonic()
    with (
        httpx.Client(base_url=live.base_url, timeout=0.5) as http,
        http.stream("GET", PATH, params=_params("UNKNOWN1")) as response,
    ):
        headers_s = time.monotonic() - started
        reads.extend(response.iter_raw())
    elapsed = time.monotonic() - started

    # Then headers came at once, the exact healthy body a byte per gap, and no read timed out
    assert headers_s < 0.5
    assert b"".join(reads) == expected
    assert elapsed >= (len(expected) - 1) * gap_s
    assert len(reads) > 1
    assert live.requests[-1].faults == (FaultKind.DRIP,)


def test_drip_on_one_waybill_leaves_other_requests_fast(
    live: SandboxServer, twin: SandboxServer, client: httpx.Client
) -> None:
    # Given a 2-second drip (the default) armed for the target until cleared
    live.set_fault(FaultKind.DRIP, waybill=TARGET, count=None)

    # When a call-mate is asked about on its own
    started = time.monotonic()
    mate = _poll(client, MATE)

    # Then it is answered healthily and at once (not after the target's 2 s drip)
    assert time.monotonic() - started < 1.9
    assert mate.content == twin.handle_track_order(_params(MATE)).body
    assert live.requests[-1].faults == ()


def test_stop_returns_promptly_with_a_hang_and_a_drip_active(live: SandboxServer) -> None:
    # Given one hung request and one dripping in flight (its body would take a minute)
    live.set_fault(FaultKind.HANG, waybill=TARGET)
    live.set_fault(FaultKind.DRIP, waybill=MATE, delay_s=0.05)
    outcomes: dict[str, BaseException | None] = {}
    first_byte = threading.Event()

    def hang() -> None:
        try:
            with httpx.Client(base_url=live.base_url, timeout=10) as http:
                http.get(PATH, params=_params(TARGET))
            outcomes["hang"] = None
        except httpx.HTTPError as exc:
            outcomes["hang"] = exc

    def drip() -> None:
        try:
            with (
                httpx.Client(base_url=live.base_url, timeout=10) as http,
                http.stream("GET", PATH, params=_params(MATE)) as response,
            ):
                for _ in response.iter_raw():
                    first_byte.set()
            outcomes["drip"] = None
        except httpx.HTTPError as exc:
            outcomes["drip"] = exc

    threads = [threading.Thread(target=hang), threading.Thread(target=drip)]
    for thread in threads:
        thread.start()
    _eventually(lambda: live.hanging == 1)
    assert first_byte.wait(timeout=5)

    # When the sandbox stops
    started = time.monotonic()
    live.stop()
    stop_s = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=2)

    # Then stop() was prompt, and both clients saw the connection close unanswered
    assert stop_s < 1.0
    assert not any(thread.is_alive() for thread in threads)
    assert isinstance(outcomes["hang"], httpx.RemoteProtocolError)
    assert isinstance(outcomes["drip"], httpx.RemoteProtocolError)
    assert sorted(r.faults for r in live.requests) == [(FaultKind.DRIP,), (FaultKind.HANG,)]
