"""Reading what Clickpost sends about changes: the feed's pages, its client, webhooks, and the
record times the diff engine now carries on events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.clickpost_support import KEY, USERNAME, VirtualTime, assert_no_secret_leaked
from tests.factories import CATALOGUE, IST, NOW, result, scan
from trackwatch.adapters.clickpost import ClickpostClient, StaticCredentials
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostMalformedResponseError,
    ClickpostUnavailableError,
    InvalidInputError,
)
from trackwatch.logic.diff import diff
from trackwatch.models.change_feed import FeedWindow, read_feed_page
from trackwatch.models.clickpost import UnreadableBodyError
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.webhook import read_webhook

UTC_ZONE = ZoneInfo("UTC")
WINDOW = FeedWindow(
    start=datetime(2026, 11, 27, 6, 0, tzinfo=UTC), end=datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
)


@pytest.fixture(autouse=True)
def raised(caplog: pytest.LogCaptureFixture) -> Iterator[list[BaseException]]:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    yield errors
    assert_no_secret_leaked(caplog, errors)


def entry(waybill: str, **extra: Any) -> dict[str, Any]:
    return {
        "waybill": waybill,
        "carrier_partner": 4,
        "created_at": "2026-11-20 04:00:00",
        "updated_at": "2026-11-27 06:10:00",
        "timestamp": "2026-11-27 11:35:00",
        "clickpost_status_code": 6,
        "clickpost_status_description": "OutForDelivery",
        **extra,
    }


def page(entries: list[Any], **top: Any) -> bytes:
    meta = top.pop("meta", {"status": 200, "success": True, "message": "SUCCESS"})
    return json.dumps({"meta": meta, "result": entries, **top}).encode()


# --- the feed's pages ------------------------------------------------------------------


def test_a_page_lists_its_waybills_with_clickpost_s_record_time() -> None:
    read = read_feed_page(
        page([entry("A"), entry("B", courier_partner=5, carrier_partner=None)]), IST, UTC_ZONE
    )

    assert [o.key for o in read.orders] == [ShipmentKey.of(4, "A"), ShipmentKey.of(5, "B")]
    assert read.orders[0].updated_at == datetime(2026, 11, 27, 6, 10, tzinfo=UTC)
    assert read.orders[0].timestamp == datetime(2026, 11, 27, 11, 35, tzinfo=IST)
    assert read.orders[0].clickpost_status_code == 6
    assert read.next is None


def test_an_entry_that_names_no_shipment_costs_only_itself() -> None:
    entries = [
        entry("GOOD"),
        entry("NAMED", carrier_partner="Delhivery"),
        entry("A,B"),
        {"updated_at": "2026-11-27 06:10:00"},
        "junk",
        entry("LOOSE", updated_at="0000-00-00 00:00:00", surprise={"new": "field"}),
    ]

    read = read_feed_page(page(entries), IST, UTC_ZONE)

    assert [o.key.waybill for o in read.orders] == ["GOOD", "LOOSE"]
    assert read.orders[1].updated_at is None
    assert sorted(read.unreadable) == ["carrier_partner", "carrier_partner", "entry", "waybill"]


@pytest.mark.parametrize("where", ["top", "meta"])
def test_a_next_link_is_found_at_the_top_or_in_meta(where: str) -> None:
    link = "/api/v1/updated-order?page=2"
    body = (
        page([], next=link)
        if where == "top"
        else page([], meta={"status": 200, "success": True, "next": link})
    )
    assert read_feed_page(body, IST, UTC_ZONE).next == link


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"meta": "x"}'])
def test_a_body_that_is_no_feed_page_is_unreadable(body: bytes) -> None:
    with pytest.raises(UnreadableBodyError):
        read_feed_page(body, IST, UTC_ZONE)


# --- the client ------------------------------------------------------------------------


def feed_client(handler: Any, vt: VirtualTime | None = None) -> ClickpostClient:
    vt = vt or VirtualTime()
    return ClickpostClient(
        "https://api.clickpost.in",
        StaticCredentials(KEY, USERNAME),
        record_tz=UTC_ZONE,
        backoff_base_s=0.1,
        backoff_cap_s=1.0,
        retry_budget_s=30.0,
        sleep=vt.sleep,
        clock=vt.clock,
        random=lambda: 1.0,
        wall_clock=lambda: datetime(2026, 11, 27, tzinfo=UTC),
        transport=httpx.MockTransport(handler),
    )


def read_window(client: ClickpostClient, max_pages: int = 100) -> Any:
    async def go() -> Any:
        async with client:
            return await client.updated_orders(WINDOW, max_pages=max_pages)

    return asyncio.run(go())


def test_the_client_asks_for_the_window_and_follows_next_links_with_its_own_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("page") == "2":
            return httpx.Response(200, content=page([entry("C")]))
        # Clickpost's link carries the query, credentials and all, and a stale key
        link = f"https://api.clickpost.in/api/v1/updated-order?page=2&key=OLD&username={USERNAME}"
        return httpx.Response(200, content=page([entry("A"), entry("B")], next=link))

    read = read_window(feed_client(handler))

    assert [o.key.waybill for o in read.orders] == ["A", "B", "C"]
    assert (read.pages, read.requests) == (2, 2)
    first, second = seen
    assert first.url.path == "/api/v1/updated-order"
    assert first.url.params["start_date"] == str(int(WINDOW.start.timestamp()))
    assert first.url.params["end_date"] == str(int(WINDOW.end.timestamp()))
    assert second.url.params.get_list("key") == [KEY]
    assert second.url.params["page"] == "2"


def test_a_next_link_to_another_host_is_never_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=page([entry("A")], next="https://evil.example/steal"))

    with pytest.raises(ClickpostMalformedResponseError, match="another host"):
        read_window(feed_client(handler))
    assert {r.url.host for r in seen} == {"api.clickpost.in"}


def test_pagination_that_never_ends_is_a_failure_not_a_loop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page", "1"))
        return httpx.Response(
            200, content=page([], next=f"/api/v1/updated-order?page={number + 1}")
        )

    with pytest.raises(ClickpostMalformedResponseError, match="more than 5 pages"):
        read_window(feed_client(handler), max_pages=5)


def test_the_feed_honours_429_and_retry_after() -> None:
    vt = VirtualTime()
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, content=page([entry("A")])),
        ]
    )

    read = read_window(feed_client(lambda _r: next(answers), vt))

    assert [o.key.waybill for o in read.orders] == ["A"]
    assert read.requests == 2
    assert vt.slept == [7.0]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(401), ClickpostAuthError),
        (
            httpx.Response(200, content=page([], meta={"status": 301, "success": False})),
            ClickpostAuthError,
        ),
        (httpx.Response(503), ClickpostUnavailableError),
        (httpx.Response(200, content=b"<html>gateway</html>"), ClickpostMalformedResponseError),
    ],
)
def test_feed_failures_are_typed(response: httpx.Response, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_window(feed_client(lambda _r: response))


# --- webhooks --------------------------------------------------------------------------


def test_a_webhook_gives_its_shipment_and_status_code_and_nothing_else() -> None:
    hook = read_webhook(
        json.dumps(
            {"waybill": 4210610508756, "cp_id": "4", "clickpost_status_code": "9", "remark": "x"}
        ).encode()
    )
    assert hook.key == ShipmentKey.of(4, "4210610508756")
    assert hook.clickpost_status_code == 9


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{", "body"),
        (b"[1]", "body"),
        (b'{"cp_id": 4}', "waybill"),
        (b'{"waybill": "A"}', "cp_id"),
    ],
)
def test_a_webhook_without_its_shipment_is_refused_by_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        read_webhook(body)
    assert caught.value.field == field


# --- record times on events ----------------------------------------------------------------


def test_events_carry_when_clickpost_recorded_their_scan_and_the_state_remembers_it() -> None:
    # Given two scans, each recorded by Clickpost (created_at, read as UTC) after it happened
    first = diff(
        None, ShipmentKey.of(4, "A"), result([scan(1, 4, 0), scan(2, 5, 3)]), NOW, CATALOGUE
    )

    # Then scan events carry their scan's record time, the status change its scan's
    by_type = {(e.event_type, getattr(e, "checkpoint_id", None)): e for e in first.events}
    scan_2 = by_type[("shipment.scan_added", 2)]
    status = by_type[("shipment.status_changed", None)]
    assert scan_2.recorded_at is not None
    assert scan_2.recorded_at.utcoffset() == timedelta(0)
    assert status.recorded_at == scan_2.recorded_at
    assert first.state.recorded_until == scan_2.recorded_at
    assert all(e.published_at is None for e in first.events)


def test_a_poll_that_finds_nothing_new_leaves_the_record_time_alone() -> None:
    key = ShipmentKey.of(4, "A")
    answer = result([scan(1, 4, 0), scan(2, 5, 3)])
    first = diff(None, key, answer, NOW, CATALOGUE)

    again = diff(first.state, key, answer, NOW + timedelta(hours=1), CATALOGUE)

    assert again.changed is False
    assert again.state.recorded_until == first.state.recorded_until


def test_a_record_time_in_the_future_is_not_believed() -> None:
    key = ShipmentKey.of(4, "A")
    ahead = (NOW + timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S")
    outcome = diff(None, key, result([scan(1, 4, 0, created_at=ahead)]), NOW, CATALOGUE)

    assert all(e.recorded_at is None for e in outcome.events)
    assert outcome.state.recorded_until is None


def test_event_ids_do_not_depend_on_record_times() -> None:
    key = ShipmentKey.of(4, "A")
    one = diff(None, key, result([scan(1, 4, 0)]), NOW, CATALOGUE)
    other = diff(
        None, key, result([scan(1, 4, 0, created_at="2026-11-02 01:00:00")]), NOW, CATALOGUE
    )

    assert [e.event_id for e in one.events] == [e.event_id for e in other.events]
    assert [e.recorded_at for e in one.events] != [e.recorded_at for e in other.events]
