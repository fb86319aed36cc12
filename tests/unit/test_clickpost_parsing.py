"""Reading Clickpost's answers: total timestamps, and a body read waybill by waybill."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackwatch.models.clickpost import (
    FRAGMENT_BYTES,
    RAW_TIMESTAMP_CHARS,
    Additional,
    AwbResult,
    Scan,
    StatusObject,
    UnreadableBodyError,
    parse_timestamp,
    parse_track_order,
    read_track_order,
)

IST = ZoneInfo("Asia/Kolkata")
SAMPLE = Path(__file__).parents[2] / "events" / "clickpost_track_order_sample.json"
#: 2022-10-31 19:56:16 in India is 14:26:16 UTC.
INSTANT = datetime(2022, 10, 31, 14, 26, 16, tzinfo=UTC)


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "value",
    [
        "2022-10-31 19:56:16",
        "2022-10-31T19:56:16",
        "2022-10-31t19:56:16",
        "  2022-10-31 19:56:16\n",
        "2022-10-31T14:26:16Z",
        "2022-10-31T14:26:16z",
        "2022-10-31 14:26:16+00:00",
        "2022-10-31T19:56:16+05:30",
        "2022-10-31T19:56:16+0530",
        "2022-10-31T16:26:16.000+02:00",
        1667226376,
        1667226376.0,
        1667226376000,
        "1667226376",
        " 1667226376000 ",
        "1667226376.000",
    ],
)
def test_every_known_form_is_read(value: object) -> None:
    # Given one instant written every way Clickpost or a carrier has sent one
    # When
    parsed = parse_timestamp(value, IST)

    # Then
    assert parsed is not None and parsed.utcoffset() is not None
    assert parsed == INSTANT


def test_a_zone_less_time_is_read_in_the_source_zone() -> None:
    parsed = parse_timestamp("2022-10-31 19:56:16", IST)
    assert parsed is not None and parsed.tzinfo is IST
    assert parse_timestamp("2022-10-31 19:56:16", ZoneInfo("UTC")) == INSTANT + timedelta(
        hours=5, minutes=30
    )


def test_fractional_seconds_are_kept() -> None:
    parsed = parse_timestamp("2022-10-31 19:56:16.250", IST)
    assert parsed is not None and parsed.microsecond == 250_000
    millis = parse_timestamp(1667226376250, IST)
    assert millis is not None and millis.microsecond == 250_000


@pytest.mark.parametrize(
    "value",
    [
        "0000-00-00 00:00:00",
        "27/11/2026 10:00",
        "  ",
        "garbage",
        "0001-01-01 00:00:00",
        "9999-12-31T23:59:59-05:00",
        "1969-12-31 23:59:59",
        "2201-01-01 00:00:00",
        "2022-10-31 25:00:00",
        "9" * 5000,
        -1,
        10**30,
        10**400,
        float("nan"),
        float("inf"),
        True,
        [],
        {"at": "2022-10-31"},
    ],
)
def test_an_unreadable_or_out_of_range_time_is_none(value: object) -> None:
    assert parse_timestamp(value, IST) is None


@pytest.mark.parametrize("field", ["timestamp", "created_at"])
@pytest.mark.parametrize(
    ("value", "raw"),
    [
        ("0000-00-00 00:00:00", "0000-00-00 00:00:00"),
        ("   ", "   "),
        ("x" * 500, "x" * RAW_TIMESTAMP_CHARS),
        # pydantic reads this one itself; its reading is what is kept
        (-5, "1969-12-31T23:59:55+00:00"),
        ("0001-01-01 00:00:00", "0001-01-01T00:00:00"),
        (10**400, "<integer of 1329 bits>"),
        (False, "False"),
        ([1, 2], "<list>"),
    ],
)
def test_a_scan_keeps_an_unreadable_time_as_sent(field: str, value: object, raw: str) -> None:
    # Given a scan whose time cannot be read
    body = json.dumps({field: value, "clickpost_status_code": 5, "checkpoint_id": 7})

    # When
    scan = Scan.model_validate_json(body, context={"source_tz": IST})

    # Then the scan stands, without that time, which is kept bounded for diagnosis
    assert getattr(scan, field) is None
    assert getattr(scan, f"{field}_raw") == raw
    assert scan.clickpost_status_code == 5


@pytest.mark.parametrize("value", [None, ""])
def test_an_absent_time_is_none_and_not_unreadable(value: object) -> None:
    scan = Scan.model_validate({"timestamp": value})
    assert scan.timestamp is None and scan.timestamp_raw is None


def _read_as(shape: str, body: dict[str, str]) -> StatusObject:
    """A status read as `latest_status` (finished by its AwbResult) or as a scan (by itself)."""
    if shape == "latest_status":
        status = AwbResult.model_validate({"latest_status": body}).latest_status
        assert status is not None
        return status
    return Scan.model_validate(body)


@pytest.mark.parametrize("shape", ["latest_status", "scan"])
def test_the_raw_fields_come_only_from_unreadable_times(shape: str) -> None:
    # Given a body that sends the marker itself beside a good time
    body = {"timestamp": "2022-10-31 19:56:16", "timestamp_raw": "forged", "created_at_raw": "x"}

    # When
    status = _read_as(shape, body)

    # Then
    assert status.timestamp is not None
    assert (status.timestamp_raw, status.created_at_raw) == (None, None)


def test_a_caller_given_datetime_is_zoned_too() -> None:
    naive = datetime(2022, 10, 31, 19, 56, 16)
    assert Scan(timestamp=naive).timestamp == INSTANT
    given = StatusObject(timestamp=naive)
    # A status handed to an AwbResult is finished on a copy: the caller's object is not touched.
    held = AwbResult(latest_status=given).latest_status
    assert held is not None and held.timestamp == INSTANT
    assert given.timestamp == naive


def test_an_additional_handed_in_is_settled_on_a_copy() -> None:
    given = Additional.model_validate({"edd": {}, "sku": None})
    held = AwbResult(additional=given).additional
    assert (held.edd, held.sku) == (None, [])
    assert given.sku is None  # the caller's own object is as it was


json_scalars = (
    st.text(max_size=80)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.from_regex(r"\s*\d{1,20}(\.\d{0,6})?\s*", fullmatch=True)
    | st.datetimes().map(lambda d: d.isoformat(sep=" "))
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
)


@settings(max_examples=500, deadline=None)
@given(value=json_scalars)
def test_reading_a_time_never_raises_and_gives_an_aware_utc_convertible_time(
    value: object,
) -> None:
    # When any value is read as a time
    parsed = parse_timestamp(value, IST)

    # Then it is nothing, or an aware time in range that converts to UTC
    if parsed is not None:
        assert parsed.utcoffset() is not None
        assert 1969 <= parsed.astimezone(UTC).year <= 2201


@settings(max_examples=300, deadline=None)
@given(timestamp=json_scalars, created_at=json_scalars)
def test_no_time_fails_a_scan(timestamp: object, created_at: object) -> None:
    # Given a scan with any values as its times, as JSON
    body = json.dumps({"timestamp": timestamp, "created_at": created_at, "checkpoint_id": 1})

    # When
    scan = Scan.model_validate_json(body, context={"source_tz": IST})

    # Then it parses, and every time it holds is aware
    for moment in (scan.timestamp, scan.created_at):
        assert moment is None or moment.utcoffset() is not None


# --------------------------------------------------------------------------- waybill by waybill


def entry(code: object = 5, **extra: Any) -> dict[str, Any]:
    scan = {"timestamp": "2026-11-27 10:00:00", "clickpost_status_code": code, "checkpoint_id": 1}
    return {"latest_status": dict(scan), "scans": [scan], "valid": True, **extra}


def body(result: Any, **meta: Any) -> bytes:
    return json.dumps({"meta": {"status": 200, "success": True, **meta}, "result": result}).encode()


def test_a_clean_body_reads_as_the_whole_parse_does() -> None:
    # Given the reference sample
    raw = SAMPLE.read_bytes()

    # When it is read waybill by waybill and parsed whole
    read = read_track_order(raw, IST)
    whole = parse_track_order(raw, IST)

    # Then they agree
    assert read.meta == whole.meta
    assert dict(read.result) == whole.result
    assert read.unreadable == {} and read.ignored == 0


def test_the_entry_by_entry_path_reads_good_entries_as_the_fast_path_does() -> None:
    # Given the sample with one extra, broken entry that forces the slow path
    document = json.loads(SAMPLE.read_bytes())
    document["result"]["BROKEN"] = entry(code="five")
    awb = next(iter(json.loads(SAMPLE.read_bytes())["result"]))

    # When
    read = read_track_order(json.dumps(document).encode(), IST)

    # Then the good entry is exactly what the whole parse made of it
    assert read.result[awb] == parse_track_order(SAMPLE.read_bytes(), IST).result[awb]
    assert read.unreadable["BROKEN"].reason == (
        "latest_status.clickpost_status_code: int_parsing (+1 more)"
    )


def test_only_the_asked_for_waybills_are_read() -> None:
    raw = body({"A": entry(), "B": entry(), "C": entry(code={})})
    read = read_track_order(raw, IST, ["A", "C", "Z"])
    assert set(read.result) == {"A"}
    assert set(read.unreadable) == {"C"}
    assert read.ignored == 1


def test_numbers_sent_for_text_read_the_same_on_both_paths() -> None:
    # Given an order id sent as a float, once in a clean body and once beside a broken entry
    good = entry(additional={"order_id": 1234.0})
    clean = read_track_order(body({"A": good}), IST)
    mixed = read_track_order(body({"A": good, "B": entry(code="x")}), IST)

    # Then both read it alike
    assert clean.result["A"].additional.order_id == mixed.result["A"].additional.order_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<html>Bad gateway</html>", "not JSON: Expecting value at line 1 column 1"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"result": {}}', "meta: model_type"),
        (b'{"meta": {"success": "maybe"}}', "meta.success: bool_parsing"),
        (b'{"meta": {"success": true}, "result": [1]}', "result: not an object"),
        (b"[" * 50_000 + b"]" * 50_000, "not JSON: nested too deeply"),
    ],
)
def test_an_unreadable_body_names_the_problem_not_the_text(raw: bytes, reason: str) -> None:
    with pytest.raises(UnreadableBodyError) as info:
        read_track_order(raw, IST)
    assert info.value.reason == reason


def test_a_refused_call_leaves_its_result_unread() -> None:
    read = read_track_order(body("not an object", success=False, status=330), IST)
    assert read.meta.status == 330 and not read.meta.success
    assert read.result == {} and read.unreadable == {}


def test_a_null_result_is_empty() -> None:
    read = read_track_order(body(None), IST, ["A"])
    assert read.result == {} and read.unreadable == {}


def test_duplicate_keys_keep_the_last_value_on_both_paths() -> None:
    # Given AWB "A" twice (valid false, then true), with and without a broken neighbour
    first, last = json.dumps({**entry(), "valid": False}), json.dumps(entry())
    template = '{"meta": {"success": true}, "result": {"A": %s, "A": %s%s}}'
    clean = (template % (first, last, "")).encode()
    mixed = (template % (first, last, ', "B": {"valid": "?"}')).encode()

    # Then Python's rule holds on both: the last one wins
    assert read_track_order(clean, IST).result["A"].valid is True
    assert read_track_order(mixed, IST).result["A"].valid is True


def test_a_fragment_is_cut_to_whole_characters_within_its_bound() -> None:
    # Given an unreadable entry full of three-byte characters
    read = read_track_order(body({"A": entry(code="x", remark="हिंदी" * 2000)}), IST)

    # Then
    fragment = read.unreadable["A"].fragment
    assert len(fragment.encode()) <= FRAGMENT_BYTES
    assert fragment.startswith('{"latest_status"')
    assert "\ufffd" not in fragment
