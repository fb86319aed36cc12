"""The Clickpost client without a network: the retry policy as pure code, the rest mocked."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.clickpost_support import KEY, USERNAME, VirtualTime, assert_no_secret_leaked
from trackwatch.adapters.clickpost import (
    ClickpostClient,
    RetryPolicy,
    StaticCredentials,
    retry_after_seconds,
)
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostMalformedResponseError,
    ClickpostRejectedError,
    ClickpostResponseTooLargeError,
    ClickpostUnavailableError,
    ConfigurationError,
)
from trackwatch.models.clickpost import FRAGMENT_BYTES
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.tracking import AwbOutcome, AwbStatus, CallOutcome, TrackCall

CALL = TrackCall(cp_id=4, waybills=("AWB1",))
FIVE = TrackCall(cp_id=4, waybills=("A1", "A2", "A3", "A4", "A5"))
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def raised(caplog: pytest.LogCaptureFixture) -> Iterator[list[BaseException]]:
    """Errors a test saw; after the test, neither they nor any log record may hold a secret."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    yield errors
    assert_no_secret_leaked(caplog, errors)


def entry(code: object = 5, **extra: Any) -> dict[str, Any]:
    """One AWB's entry as Clickpost sends it, with one scan."""
    scan = {
        "timestamp": "2026-11-27 10:00:00",
        "status": "In Transit",
        "remark": "Bag received",
        "clickpost_status_code": code,
        "checkpoint_id": 1,
        "created_at": "2026-11-27 10:05:00",
    }
    return {"latest_status": dict(scan), "scans": [scan], "valid": True, **extra}


def body(result: dict[str, Any], **meta: Any) -> bytes:
    return json.dumps({"meta": {"status": 200, "success": True, **meta}, "result": result}).encode()


class Chunks(httpx.AsyncByteStream):
    """A body sent in chunks; counts how many were taken."""

    def __init__(self, chunk: bytes, count: int | None, delay_s: float = 0.0) -> None:
        self.chunk, self.count, self.delay_s = chunk, count, delay_s
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.count is None or self.taken < self.count:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self.taken += 1
            yield self.chunk


def answering(*responses: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that gives `responses` in turn (the last one again once they run out).

    Each answer is a fresh copy whose body arrives as a stream, as from a socket.
    """
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        model = responses[min(len(seen), len(responses)) - 1]
        if not model.is_stream_consumed:
            return model
        return httpx.Response(
            model.status_code, headers=model.headers, stream=Chunks(model.content, count=1)
        )

    return httpx.MockTransport(handler), seen


def gzipped(raw: bytes) -> httpx.Response:
    """A 200 whose body is `raw`, labelled gzip (httpx would inflate content= at once)."""
    return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(raw, 1))


def client(
    transport: httpx.AsyncBaseTransport, *, vt: VirtualTime | None = None, **options: Any
) -> ClickpostClient:
    vt = vt or VirtualTime()
    defaults: dict[str, Any] = {
        "backoff_base_s": 0.1,
        "backoff_cap_s": 1.0,
        "retry_budget_s": 5.0,
        "sleep": vt.sleep,
        "clock": vt.clock,
        "random": lambda: 1.0,
        "transport": transport,
    }
    return ClickpostClient(
        "https://clickpost.test", StaticCredentials(KEY, USERNAME), **(defaults | options)
    )


async def track(c: ClickpostClient, call: TrackCall = CALL, **kwargs: Any) -> CallOutcome:
    async with c:
        return await c.track(call, **kwargs)


async def expect[E: ClickpostError](
    error: type[E], c: ClickpostClient, raised: list[BaseException], call: TrackCall = CALL
) -> E:
    with pytest.raises(error) as info:
        await track(c, call)
    raised.append(info.value)
    return info.value


# --------------------------------------------------------------------------- retry policy


def test_backoff_doubles_up_to_its_cap() -> None:
    # Given the top of the jitter range
    policy = RetryPolicy(backoff_base_s=0.5, backoff_cap_s=3.0, random=lambda: 1.0)

    # When / Then
    assert [policy.backoff(a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_is_full_jitter() -> None:
    # Given the bottom and the middle of the jitter range
    low = RetryPolicy(backoff_base_s=2.0, random=lambda: 0.0)
    middle = RetryPolicy(backoff_base_s=2.0, random=lambda: 0.5)

    # Then a wait can be anything from nothing to the ceiling
    assert low.backoff(1) == 0.0
    assert middle.backoff(2) == 2.0


def test_next_wait_gives_up_when_attempts_are_spent() -> None:
    policy = RetryPolicy(max_attempts=3, random=lambda: 1.0)
    assert policy.next_wait(2, None, remaining_s=100.0) == 1.0
    assert policy.next_wait(3, None, remaining_s=100.0) is None


def test_next_wait_honours_retry_after_but_never_waits_less_than_backoff() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, random=lambda: 1.0)
    assert policy.next_wait(1, 2.0, remaining_s=10.0) == 2.0
    assert policy.next_wait(1, 0.1, remaining_s=10.0) == 0.5


def test_next_wait_gives_up_rather_than_overrun_the_time_left() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, random=lambda: 1.0)
    assert policy.next_wait(1, None, remaining_s=1.0) == 1.0
    assert policy.next_wait(1, None, remaining_s=0.99) is None
    assert policy.next_wait(1, 60.0, remaining_s=30.0) is None


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"backoff_base_s": -1.0}, {"budget_s": -0.1}],
)
def test_a_nonsensical_policy_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**options)


@settings(max_examples=300, deadline=None)
@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e9),
    remaining=st.floats(min_value=-10, max_value=1e9),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
    max_attempts=st.integers(min_value=1, max_value=10),
)
def test_a_wait_always_fits_the_time_left_and_respects_retry_after(
    attempt: int,
    retry_after: float | None,
    remaining: float,
    jitter: float,
    max_attempts: int,
) -> None:
    # Given any policy and any situation
    policy = RetryPolicy(max_attempts=max_attempts, random=lambda: jitter)

    # When
    wait = policy.next_wait(attempt, retry_after, remaining)

    # Then a wait is never negative, never past the time left or the cap (unless
    # Retry-After asks for more), and never shorter than Retry-After
    if wait is None:
        return
    assert attempt < max_attempts
    assert 0 <= wait <= remaining
    assert wait <= max(policy.backoff_cap_s, retry_after or 0.0)
    assert retry_after is None or wait >= retry_after


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Mon, 06 Jan 2025 09:00:03 GMT", now) == 3.0
    assert retry_after_seconds("Mon, 06 Jan 2025 08:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("nan", now) is None
    assert retry_after_seconds(None, now) is None


async def test_the_client_retries_by_its_policy() -> None:
    # Given two 503s, then an answer
    transport, seen = answering(
        httpx.Response(503), httpx.Response(503), httpx.Response(200, content=body({}))
    )
    vt = VirtualTime()

    # When
    outcome = await track(client(transport, vt=vt), CALL)

    # Then
    assert outcome.attempts == 3 == len(seen)
    assert vt.slept == pytest.approx([0.1, 0.2])


# --------------------------------------------------------------------------- size limit


async def test_a_declared_length_over_the_limit_is_refused_unread(
    raised: list[BaseException],
) -> None:
    # Given an answer that says it is 10 MB
    stream = Chunks(b"x" * 1024, count=None)
    transport, _ = answering(
        httpx.Response(200, headers={"Content-Length": str(10 * 2**20)}, stream=stream)
    )

    # When
    error = await expect(
        ClickpostResponseTooLargeError, client(transport, max_response_bytes=2**20), raised
    )

    # Then not a byte was read, and it is not retried
    assert stream.taken == 0
    assert error.limit_bytes == 2**20 and error.cp_id == 4
    assert not error.retryable
    assert error.kind == "too_large"


async def test_an_endless_body_is_cut_off_at_the_limit(raised: list[BaseException]) -> None:
    # Given a body that never ends and says nothing of its length
    stream = Chunks(b"x" * 1024, count=None)
    transport, seen = answering(httpx.Response(200, stream=stream))

    # When
    await expect(
        ClickpostResponseTooLargeError, client(transport, max_response_bytes=64 * 1024), raised
    )

    # Then it stopped at the first chunk past the limit, once
    assert stream.taken == 65
    assert len(seen) == 1


async def test_a_body_exactly_at_the_limit_is_read() -> None:
    # Given an answer padded to exactly the limit
    raw = body({"AWB1": entry()})
    limit = len(raw) + 10
    transport, _ = answering(httpx.Response(200, content=raw + b" " * 10))

    # When
    outcome = await track(client(transport, max_response_bytes=limit))

    # Then
    assert outcome.awbs[0].status is AwbStatus.FOUND


async def test_a_body_a_transport_has_already_read_is_still_bounded(
    raised: list[BaseException],
) -> None:
    # Given a transport that hands back bodies it has already read (MockTransport with
    # content=), without a Content-Length to give their size away
    raw = body({"AWB1": entry()})

    def loaded(content: bytes) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            response = httpx.Response(200, content=content)
            del response.headers["Content-Length"]
            return response

        return httpx.MockTransport(handler)

    # When / Then
    outcome = await track(client(loaded(raw), max_response_bytes=len(raw)))
    assert outcome.awbs[0].status is AwbStatus.FOUND
    await expect(
        ClickpostResponseTooLargeError,
        client(loaded(raw + b" "), max_response_bytes=len(raw)),
        raised,
    )


async def test_a_compressed_answer_is_read() -> None:
    # Given a gzip answer
    raw = gzip.compress(body({"AWB1": entry()}))
    transport, seen = answering(gzipped(raw))

    # When
    outcome = await track(client(transport))

    # Then it asked only for encodings it can bound, and read the answer
    assert seen[0].headers["Accept-Encoding"] == "gzip, deflate"
    assert outcome.awbs[0].status is AwbStatus.FOUND


async def test_a_decompression_bomb_never_inflates_past_the_limit(
    raised: list[BaseException],
) -> None:
    # Given 64 MB of zeros compressed to a few tens of kilobytes, and a 1 MB limit
    bomb = gzip.compress(b"\0" * (64 * 2**20), compresslevel=9)
    transport, _ = answering(gzipped(bomb))
    c = client(transport, max_response_bytes=2**20)

    # When
    tracemalloc.start()
    try:
        await expect(ClickpostResponseTooLargeError, c, raised)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then memory stayed near the limit, far from the 64 MB the body inflates to
    assert peak < 8 * 2**20


async def test_a_body_that_does_not_decompress_is_malformed(raised: list[BaseException]) -> None:
    transport, _ = answering(gzipped(b"not gzip at all"))
    await expect(ClickpostMalformedResponseError, client(transport), raised)


async def test_an_encoding_not_asked_for_is_malformed(raised: list[BaseException]) -> None:
    transport, _ = answering(
        httpx.Response(200, headers={"Content-Encoding": "br"}, content=b"\x0b\x02\x80")
    )
    await expect(ClickpostMalformedResponseError, client(transport), raised)


# --------------------------------------------------------------------------- deadlines


async def test_a_dripping_body_ends_at_the_call_budget(raised: list[BaseException]) -> None:
    # Given a body that drips a byte every 50 ms, forever
    stream = Chunks(b" ", count=None, delay_s=0.05)
    transport, _ = answering(httpx.Response(200, stream=stream))
    c = ClickpostClient(
        "https://clickpost.test",
        StaticCredentials(KEY, USERNAME),
        retry_budget_s=0.3,
        transport=transport,
    )

    # When
    started = time.monotonic()
    error = await expect(ClickpostUnavailableError, c, raised)

    # Then (the body never ends: the bound only leaves a loaded machine room)
    assert time.monotonic() - started < 5.0
    assert "call budget of 0.3s spent" in str(error)
    assert "1 attempt(s)" in str(error)


async def test_a_passed_invocation_deadline_starts_nothing(raised: list[BaseException]) -> None:
    # Given a client whose invocation deadline has passed
    transport, seen = answering(httpx.Response(200, content=body({})))
    vt = VirtualTime()
    c = client(transport, vt=vt, deadline=vt.clock() - 1.0)

    # When
    error = await expect(ClickpostUnavailableError, c, raised)

    # Then no request was made, and the queue may try again later
    assert seen == []
    assert "invocation deadline reached" in str(error)
    assert "0 attempt(s)" in str(error)
    assert error.retryable


async def test_no_back_off_wait_runs_past_the_invocation_deadline(
    raised: list[BaseException],
) -> None:
    # Given 503s, a 1 s back-off, and an invocation with half a second left
    transport, seen = answering(httpx.Response(503))
    vt = VirtualTime()
    c = client(transport, vt=vt, backoff_base_s=1.0)

    # When
    with pytest.raises(ClickpostUnavailableError) as info:
        await track(c, CALL, deadline=vt.clock() + 0.5)
    raised.append(info.value)

    # Then it gave up at once rather than sleep past the deadline
    assert len(seen) == 1
    assert vt.slept == []
    assert "HTTP 503; the next wait would overrun the deadline" in str(info.value)


async def test_the_earlier_of_the_client_and_call_deadlines_wins(
    raised: list[BaseException],
) -> None:
    # Given a slow answer, a far client deadline and a near call deadline
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=body({}))

    c = ClickpostClient(
        "https://clickpost.test",
        StaticCredentials(KEY, USERNAME),
        deadline=time.monotonic() + 60,
        transport=httpx.MockTransport(slow),
    )

    # When
    started = time.monotonic()
    with pytest.raises(ClickpostUnavailableError) as info:
        await track(c, CALL, deadline=started + 0.2)
    raised.append(info.value)

    # Then (the answer takes 5 s: under 4 s, the 0.2 s deadline ended it)
    assert time.monotonic() - started < 4.0
    assert "invocation deadline reached" in str(info.value)


async def test_calls_waiting_for_a_slot_give_up_at_the_deadline(
    raised: list[BaseException],
) -> None:
    # Given one slot, held by a call that takes a second
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1.0)
        return httpx.Response(200, content=body({}))

    c = ClickpostClient(
        "https://clickpost.test",
        StaticCredentials(KEY, USERNAME),
        max_in_flight=1,
        transport=httpx.MockTransport(slow),
    )
    keys = [ShipmentKey.of(4, "A1"), ShipmentKey.of(5, "B1")]

    # When both are tracked with 0.3 s left
    async with c:
        outcomes = await c.track_many(keys, deadline=time.monotonic() + 0.3)
    errors = [o for o in outcomes if isinstance(o, ClickpostError)]
    raised.extend(errors)

    # Then one was stopped mid-request and the other never started
    assert len(errors) == 2
    assert all(isinstance(e, ClickpostUnavailableError) for e in errors)
    assert any("before the call could start" in str(e) for e in errors)


# --------------------------------------------------------------------------- waybill by waybill


async def test_one_unreadable_entry_costs_only_its_own_waybill(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given five waybills, the third with a status code that is not a number
    result = {w: entry() for w in FIVE.waybills}
    result["A3"] = entry(code="In Transit", remark="call " + KEY)
    transport, _ = answering(httpx.Response(200, content=body(result)))

    # When
    outcome = await track(client(transport), FIVE)

    # Then four are found; the third is its own outcome, naming the field, not the value
    assert [a.key.waybill for a in outcome.awbs] == ["A1", "A2", "A4", "A5"]
    assert all(a.status is AwbStatus.FOUND for a in outcome.awbs)
    (bad,) = outcome.unreadable
    assert bad.key.waybill == "A3"
    assert bad.status is AwbStatus.UNREADABLE
    assert bad.result is None
    assert bad.reason == "latest_status.clickpost_status_code: int_parsing (+1 more)"
    assert "In Transit" not in (bad.reason or "")
    # the fragment keeps the entry for diagnosis, with the credentials masked
    assert bad.fragment is not None and '"clickpost_status_code": "In Transit"' in bad.fragment
    assert KEY not in bad.fragment and "***" in bad.fragment
    assert outcome.by_status(AwbStatus.UNREADABLE) == (bad,)
    # and one warning says so, by reason, without Clickpost's text
    warnings = [
        r for r in caplog.records if r.getMessage() == "Clickpost entries could not be read"
    ]
    assert len(warnings) == 1
    assert "In Transit" not in str(warnings[0].__dict__)


async def test_an_unreadable_fragment_is_bounded() -> None:
    # Given an unreadable entry of a megabyte
    bad = entry(code="x", additional={"order_id": "9" * 2**20})
    transport, _ = answering(httpx.Response(200, content=body({"AWB1": bad})))

    # When
    outcome = await track(client(transport))

    # Then
    fragment = outcome.unreadable[0].fragment
    assert fragment is not None and 0 < len(fragment.encode()) <= FRAGMENT_BYTES


async def test_waybills_not_asked_for_are_ignored_and_counted() -> None:
    # Given an answer with the asked-for AWB and two others, one of them broken
    result = {"AWB1": entry(), "OTHER": entry(), "BROKEN": entry(code=[1])}
    transport, _ = answering(httpx.Response(200, content=body(result)))

    # When
    outcome = await track(client(transport))

    # Then
    assert [(a.key.waybill, a.status) for a in outcome.awbs] == [("AWB1", AwbStatus.FOUND)]
    assert outcome.unreadable == ()
    assert outcome.ignored == 2


async def test_bytes_that_are_not_utf8_do_not_reject_the_neighbours() -> None:
    # Given a city with a byte that is not UTF-8 in one of two entries
    raw = body({"A1": entry(additional={"pickup_city": "Delhi"}), "A2": entry()})
    raw = raw.replace(b"Delhi", b"Del\xffhi")
    transport, _ = answering(httpx.Response(200, content=raw))

    # When
    outcome = await track(client(transport), TrackCall(cp_id=4, waybills=("A1", "A2")))

    # Then both are read; the bad byte became U+FFFD
    assert [a.status for a in outcome.awbs] == [AwbStatus.FOUND, AwbStatus.FOUND]
    result = outcome.awbs[0].result
    assert result is not None
    assert result.additional.pickup_city == "Del\ufffdhi"


async def test_deep_nesting_is_malformed_not_a_crash(raised: list[BaseException]) -> None:
    # Given a body nested a hundred thousand levels deep
    deep = b'{"meta": {"success": true}, "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    transport, _ = answering(httpx.Response(200, content=deep))

    # When / Then
    error = await expect(ClickpostMalformedResponseError, client(transport), raised)
    assert "nested too deeply" in str(error)


async def test_a_deeply_nested_entry_is_unreadable_alone() -> None:
    # Given an entry with a field nested deeper than pydantic's parser goes
    nested: Any = 1
    for _ in range(300):
        nested = [nested]
    result = {"A1": entry(), "A2": entry(brand_new=nested)}
    transport, _ = answering(httpx.Response(200, content=body(result)))

    # When
    outcome = await track(client(transport), TrackCall(cp_id=4, waybills=("A1", "A2")))

    # Then
    assert [a.key.waybill for a in outcome.awbs] == ["A1"]
    assert [a.key.waybill for a in outcome.unreadable] == ["A2"]


async def test_a_duplicated_waybill_keeps_its_last_entry() -> None:
    # Given the same AWB twice in result: invalid, then valid (JSON allows it)
    first = json.dumps({**entry(), "valid": False})
    raw = (
        '{"meta": {"success": true}, "result": {"AWB1": ' + first + ', "AWB1": '
        f"{json.dumps(entry())}}}}}"
    ).encode()
    transport, _ = answering(httpx.Response(200, content=raw))

    # When
    outcome = await track(client(transport))

    # Then the last one counts, as Python's json module would have it
    assert outcome.awbs[0].status is AwbStatus.FOUND


async def test_an_unreadable_envelope_is_malformed(raised: list[BaseException]) -> None:
    raw = json.dumps({"meta": {"status": "two hundred"}, "result": {"AWB1": entry()}}).encode()
    transport, _ = answering(httpx.Response(200, content=raw))
    error = await expect(ClickpostMalformedResponseError, client(transport), raised)
    assert "meta.status: int_parsing" in str(error)
    assert "two hundred" not in str(error)


async def test_a_refusal_is_read_even_when_its_result_is_not(raised: list[BaseException]) -> None:
    # Given success false with a result that is no object at all
    raw = json.dumps(
        {"meta": {"status": 320, "success": False, "message": "Not subscribed"}, "result": "?"}
    ).encode()
    transport, _ = answering(httpx.Response(200, content=raw))

    # When / Then the refusal wins over the shape of result
    error = await expect(ClickpostRejectedError, client(transport), raised)
    assert error.status == 320


async def test_401_is_an_auth_error(raised: list[BaseException]) -> None:
    transport, seen = answering(httpx.Response(401, content=b"Unauthorized"))
    await expect(ClickpostAuthError, client(transport), raised)
    assert len(seen) == 1


# --------------------------------------------------------------------------- outcomes


def test_an_outcome_has_a_result_exactly_when_clickpost_answered() -> None:
    key = ShipmentKey.of(4, "AWB1")
    with pytest.raises(ValueError, match="result is required"):
        AwbOutcome(key=key, status=AwbStatus.FOUND)
    with pytest.raises(ValueError, match="reason is required"):
        AwbOutcome(key=key, status=AwbStatus.UNREADABLE)
    assert AwbOutcome(key=key, status=AwbStatus.MISSING).result is None
    unreadable = AwbOutcome(key=key, status=AwbStatus.UNREADABLE, reason="scans.0: int_parsing")
    assert unreadable.result is None


def test_credentials_never_print() -> None:
    # Given
    credentials = StaticCredentials(KEY, USERNAME).get()

    # When
    text = f"{credentials!s} {credentials!r} {credentials.model_dump()}"

    # Then
    assert KEY not in text and USERNAME not in text


async def test_the_request_log_line_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    # Given httpx logging every request at INFO
    transport, _ = answering(httpx.Response(200, content=body({})))

    # When
    await track(client(transport))

    # Then the line is there, masked (the autouse fixture checks the secrets are absent)
    assert "key=***" in caplog.text
    assert "username=***" in caplog.text


@pytest.mark.parametrize("option", ["max_in_flight", "max_attempts", "max_response_bytes"])
def test_a_nonsensical_client_is_a_configuration_error(option: str) -> None:
    transport, _ = answering(httpx.Response(200))
    nonsense: dict[str, Any] = {option: 0}
    with pytest.raises(ConfigurationError):
        client(transport, **nonsense)
