"""ClickpostClient against a real SandboxServer over loopback HTTP; no mocks of httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from moto import mock_aws

from tests.clickpost_support import (
    KEY,
    USERNAME,
    WRONG_KEY,
    VirtualTime,
    assert_no_secret_leaked,
)
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.clickpost import (
    ClickpostClient,
    ClickpostCredentials,
    CredentialsProvider,
    SecretsManagerCredentials,
    StaticCredentials,
)
from trackwatch.bootstrap import bootstrap
from trackwatch.config import Settings
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostInvalidCarrierError,
    ClickpostMalformedResponseError,
    ClickpostRejectedError,
    ClickpostResponseTooLargeError,
    ClickpostUnavailableError,
    ConfigurationError,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.tracking import AwbStatus, CallOutcome, TrackCall
from trackwatch_cli.sandbox import FaultKind, SandboxServer

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(key=KEY, username=USERNAME) as server:
        yield server


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture(autouse=True)
def raised(caplog: pytest.LogCaptureFixture) -> Iterator[list[BaseException]]:
    """Errors a test saw; after the test, neither they nor any log record may hold a secret."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    yield errors
    assert_no_secret_leaked(caplog, errors)


def make_client(
    base_url: str,
    vt: VirtualTime,
    *,
    credentials: CredentialsProvider | None = None,
    max_in_flight: int = 4,
    max_attempts: int = 4,
    backoff_base_s: float = 0.1,
    backoff_cap_s: float = 1.0,
    retry_budget_s: float = 5.0,
    read_timeout_s: float = 2.0,
    wall_clock: datetime | None = None,
) -> ClickpostClient:
    now = wall_clock or datetime.now(UTC)
    return ClickpostClient(
        base_url,
        credentials or StaticCredentials(KEY, USERNAME),
        max_in_flight=max_in_flight,
        max_attempts=max_attempts,
        backoff_base_s=backoff_base_s,
        backoff_cap_s=backoff_cap_s,
        retry_budget_s=retry_budget_s,
        connect_timeout_s=1.0,
        read_timeout_s=read_timeout_s,
        sleep=vt.sleep,
        clock=vt.clock,
        # The top of the jitter range: waits are predictable and as long as they can be.
        random=lambda: 1.0,
        wall_clock=lambda: now,
    )


async def expect_error[E: ClickpostError](
    error: type[E], client: ClickpostClient, call: TrackCall, raised: list[BaseException]
) -> E:
    with pytest.raises(error) as info:
        async with client:
            await client.track(call)
    raised.append(info.value)
    return info.value


CALL = TrackCall(cp_id=4, waybills=("AWB1",))


# --------------------------------------------------------------------------- batching, outcomes


async def test_twelve_awbs_over_three_carriers_take_four_requests(
    sandbox: SandboxServer, vt: VirtualTime
) -> None:
    # Given 7 + 3 + 2 shipments on three carriers
    keys = [ShipmentKey.of(4, f"DL{i}") for i in range(7)]
    keys += [ShipmentKey.of(5, f"BD{i}") for i in range(3)]
    keys += [ShipmentKey.of(6, f"EE{i}") for i in range(2)]
    for key in keys:
        sandbox.add_shipment(key.waybill, key.cp_id, "delivered_smoothly")

    # When
    async with make_client(sandbox.base_url, vt) as client:
        outcomes = await client.track_many(keys)

    # Then the sandbox saw ceil(7/5) + ceil(3/5) + ceil(2/5) requests, none mixed
    requests = sandbox.requests
    assert len(outcomes) == len(requests) == 4
    assert all(len(r.waybills) <= 5 and r.status_code == 200 for r in requests)
    assert sorted((r.cp_id, len(r.waybills)) for r in requests) == [(4, 2), (4, 5), (5, 3), (6, 2)]
    found = [a.key for o in outcomes if isinstance(o, CallOutcome) for a in o.awbs]
    assert set(found) == set(keys)
    assert all(
        a.status is AwbStatus.FOUND for o in outcomes if isinstance(o, CallOutcome) for a in o.awbs
    )


async def test_found_invalid_and_missing(sandbox: SandboxServer, vt: VirtualTime) -> None:
    # Given one tracked AWB, one Clickpost calls invalid, one it has never heard of
    sandbox.add_shipment("GOOD1", 4, "delivered_smoothly")
    sandbox.add_shipment("BAD1", 4, "invalid")
    call = TrackCall(cp_id=4, waybills=("GOOD1", "BAD1", "NOPE1"))

    # When
    async with make_client(sandbox.base_url, vt) as client:
        outcome = await client.track(call)

    # Then
    statuses = {a.key.waybill: a.status for a in outcome.awbs}
    assert statuses == {
        "GOOD1": AwbStatus.FOUND,
        "BAD1": AwbStatus.INVALID,
        "NOPE1": AwbStatus.MISSING,
    }
    good, bad, missing = outcome.awbs
    assert good.result is not None and good.result.latest_status is not None
    assert good.result.latest_status.clickpost_status_code == 1
    assert bad.result is not None and bad.result.valid is False
    assert missing.result is None
    assert outcome.attempts == 1
    assert outcome.meta.success is True


async def test_awb_faults_drop_or_invalidate_one_awb(
    sandbox: SandboxServer, vt: VirtualTime
) -> None:
    # Given two tracked AWBs, one made missing and one made invalid for the next request
    sandbox.add_shipment("A1", 4, "delivered_smoothly")
    sandbox.add_shipment("A2", 4, "delivered_smoothly")
    sandbox.set_fault(FaultKind.MISSING_AWB, waybill="A1")
    sandbox.set_fault(FaultKind.INVALID_AWB, waybill="A2")
    call = TrackCall(cp_id=4, waybills=("A1", "A2"))

    # When
    async with make_client(sandbox.base_url, vt) as client:
        faulty = await client.track(call)
        healthy = await client.track(call)

    # Then
    assert [a.status for a in faulty.awbs] == [AwbStatus.MISSING, AwbStatus.INVALID]
    assert [a.status for a in healthy.awbs] == [AwbStatus.FOUND, AwbStatus.FOUND]


# --------------------------------------------------------------------------- retries


async def test_429_waits_at_least_retry_after(sandbox: SandboxServer, vt: VirtualTime) -> None:
    # Given one 429 asking for 2 seconds
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")
    sandbox.set_fault(FaultKind.RATE_LIMITED, retry_after="2")

    # When
    async with make_client(sandbox.base_url, vt) as client:
        outcome = await client.track(CALL)

    # Then
    assert vt.slept == [2.0]
    assert outcome.attempts == 2
    assert [r.status_code for r in sandbox.requests] == [429, 200]


async def test_retry_after_as_http_date(sandbox: SandboxServer, vt: VirtualTime) -> None:
    # Given a 503 whose Retry-After is a date three seconds from the (fixed) wall clock
    now = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")
    later = format_datetime(now + timedelta(seconds=3), usegmt=True)
    sandbox.set_fault(FaultKind.UNAVAILABLE, retry_after=later)

    # When
    async with make_client(sandbox.base_url, vt, wall_clock=now) as client:
        outcome = await client.track(CALL)

    # Then
    assert vt.slept == [3.0]
    assert outcome.attempts == 2


@pytest.mark.parametrize("http_status", [500, 502, 503, 504])
async def test_5xx_is_retried_then_succeeds(
    sandbox: SandboxServer, vt: VirtualTime, http_status: int
) -> None:
    # Given two failures in a row
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")
    sandbox.set_fault(FaultKind.SERVER_ERROR, http_status=http_status, count=2)

    # When
    async with make_client(sandbox.base_url, vt) as client:
        outcome = await client.track(CALL)

    # Then back-off doubled between attempts
    assert [r.status_code for r in sandbox.requests] == [http_status, http_status, 200]
    assert outcome.attempts == 3
    assert vt.slept == pytest.approx([0.1, 0.2])
    assert outcome.awbs[0].status is AwbStatus.FOUND


async def test_persistent_503_gives_up_within_budget(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given Clickpost down for good, and a budget smaller than max_attempts would need
    sandbox.set_fault(FaultKind.UNAVAILABLE, count=None)
    client = make_client(
        sandbox.base_url,
        vt,
        max_attempts=10,
        backoff_base_s=0.5,
        backoff_cap_s=1.0,
        retry_budget_s=2.0,
    )

    # When
    error = await expect_error(ClickpostUnavailableError, client, CALL, raised)

    # Then it slept 0.5 + 1.0, then saw the next 1.0 would overrun the budget
    assert sum(vt.slept) <= 2.0
    assert vt.slept == [0.5, 1.0]
    assert len(sandbox.requests) == 3
    assert "3 attempt(s)" in str(error)
    assert "HTTP 503" in str(error)
    assert error.retryable


async def test_attempts_are_capped(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given
    sandbox.set_fault(FaultKind.SERVER_ERROR, count=None)
    client = make_client(sandbox.base_url, vt, max_attempts=3)

    # When
    error = await expect_error(ClickpostUnavailableError, client, CALL, raised)

    # Then
    assert len(sandbox.requests) == 3
    assert len(vt.slept) == 2
    assert "HTTP 500" in str(error)


async def test_retry_after_beyond_budget_gives_up_without_waiting(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given a 429 asking for a minute, and a 5 second budget
    sandbox.set_fault(FaultKind.RATE_LIMITED, retry_after="60")
    client = make_client(sandbox.base_url, vt, retry_budget_s=5.0)

    # When
    error = await expect_error(ClickpostUnavailableError, client, CALL, raised)

    # Then
    assert vt.slept == []
    assert len(sandbox.requests) == 1
    assert "HTTP 429" in str(error)


async def test_slow_answer_times_out_and_is_retried(
    sandbox: SandboxServer, vt: VirtualTime
) -> None:
    # Given one answer slower than the read timeout
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")
    sandbox.set_fault(FaultKind.SLOW, delay_s=1.0)

    # When
    async with make_client(sandbox.base_url, vt, read_timeout_s=0.2) as client:
        outcome = await client.track(CALL)

    # Then
    assert outcome.attempts == 2
    assert outcome.awbs[0].status is AwbStatus.FOUND


async def test_always_slow_ends_unavailable_naming_the_timeout(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given
    sandbox.set_fault(FaultKind.SLOW, delay_s=1.0, count=None)
    client = make_client(sandbox.base_url, vt, read_timeout_s=0.2, max_attempts=2)

    # When
    error = await expect_error(ClickpostUnavailableError, client, CALL, raised)

    # Then
    assert "ReadTimeout" in str(error)
    assert "2 attempt(s)" in str(error)


async def test_connection_refused_is_unavailable(
    vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", vt, max_attempts=2)

    # When
    error = await expect_error(ClickpostUnavailableError, client, CALL, raised)

    # Then
    assert "ConnectError" in str(error)


# --------------------------------------------------------------------------- typed errors


async def test_malformed_json(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given
    sandbox.set_fault(FaultKind.MALFORMED)

    # When
    error = await expect_error(
        ClickpostMalformedResponseError, make_client(sandbox.base_url, vt), CALL, raised
    )

    # Then it is not retried in the client, but the queue may try again later
    assert len(sandbox.requests) == 1
    assert error.retryable


async def test_success_false_is_rejected(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given
    sandbox.set_fault(FaultKind.REJECTED, meta_status=320, message="Service not subscribed")

    # When
    error = await expect_error(
        ClickpostRejectedError, make_client(sandbox.base_url, vt), CALL, raised
    )

    # Then
    assert (error.status, error.message) == (320, "Service not subscribed")
    assert not error.retryable


async def test_wrong_key_is_auth_error_after_one_request(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given
    client = make_client(sandbox.base_url, vt, credentials=StaticCredentials(WRONG_KEY, USERNAME))

    # When
    await expect_error(ClickpostAuthError, client, CALL, raised)

    # Then
    assert [r.status_code for r in sandbox.requests] == [401]
    assert vt.slept == []


async def test_service_code_301_is_auth_error(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given a 200 whose meta says authentication failed
    sandbox.set_fault(FaultKind.REJECTED, meta_status=301, message="Authentication failed")

    # When / Then
    await expect_error(ClickpostAuthError, make_client(sandbox.base_url, vt), CALL, raised)
    assert len(sandbox.requests) == 1


async def test_unknown_cp_id(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given / When
    error = await expect_error(
        ClickpostInvalidCarrierError,
        make_client(sandbox.base_url, vt),
        TrackCall(cp_id=999, waybills=("AWB1",)),
        raised,
    )

    # Then
    assert error.cp_id == 999


async def test_track_many_returns_clickpost_errors_per_call(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given one good carrier and one Clickpost does not know
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")
    keys = [ShipmentKey.of(4, "AWB1"), ShipmentKey.of(999, "AWB2")]

    # When
    async with make_client(sandbox.base_url, vt) as client:
        outcomes = await client.track_many(keys)
    raised.extend(o for o in outcomes if isinstance(o, BaseException))

    # Then
    good, bad = outcomes
    assert isinstance(good, CallOutcome)
    assert isinstance(bad, ClickpostInvalidCarrierError)


async def test_track_many_propagates_other_errors(
    sandbox: SandboxServer, vt: VirtualTime, raised: list[BaseException]
) -> None:
    # Given credentials that cannot be had
    class Broken:
        def get(self) -> ClickpostCredentials:
            raise ConfigurationError("secret 'x' lacks field 'key'")

    client = ClickpostClient(sandbox.base_url, Broken(), sleep=vt.sleep)

    # When / Then
    with pytest.raises(ConfigurationError) as info:
        async with client:
            await client.track_many([ShipmentKey.of(4, "A"), ShipmentKey.of(5, "B")])
    raised.append(info.value)


# --------------------------------------------------------------------------- concurrency


async def test_in_flight_cap_holds(sandbox: SandboxServer, vt: VirtualTime) -> None:
    # Given a sandbox that takes 50 ms per answer and 100 AWBs (20 calls)
    sandbox.latency_s = 0.05
    keys = [ShipmentKey.of(4, f"AWB{i:03d}") for i in range(100)]

    # When
    async with make_client(sandbox.base_url, vt, max_in_flight=4) as client:
        outcomes = await client.track_many(keys)

    # Then
    assert len(outcomes) == len(sandbox.requests) == 20
    assert 1 < sandbox.max_concurrency <= 4


# --------------------------------------------------------------------------- secrets


async def test_httpx_request_log_is_redacted(
    sandbox: SandboxServer, vt: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    # Given httpx logging every request at INFO
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")

    # When
    async with make_client(sandbox.base_url, vt) as client:
        await client.track(CALL)

    # Then the line is there, masked (the autouse fixture checks the secrets are absent)
    assert "key=***" in caplog.text
    assert "username=***" in caplog.text


@pytest.fixture
def secrets_manager() -> Iterator[SecretsManagerClient]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def from_secret(
    name: str, client: SecretsManagerClient, max_age_s: int = 300
) -> CredentialsProvider:
    return SecretsManagerCredentials(name, max_age_s, provider=SecretsProvider(boto3_client=client))


def test_secrets_manager_credentials_read_the_secret(
    secrets_manager: SecretsManagerClient,
) -> None:
    # Given
    body = json.dumps({"key": KEY, "username": USERNAME})
    secrets_manager.create_secret(Name="trackwatch/clickpost", SecretString=body)

    # When
    credentials = from_secret("trackwatch/clickpost", secrets_manager, max_age_s=60).get()

    # Then
    assert credentials.key.get_secret_value() == KEY
    assert credentials.username.get_secret_value() == USERNAME


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (json.dumps({"key": KEY}), "'username'"),
        (json.dumps({"key": KEY, "username": ""}), "'username'"),
        (json.dumps({"username": USERNAME, "key": 42}), "'key'"),
        (f"key={KEY}", "not valid JSON"),
        (json.dumps([KEY, USERNAME]), "JSON object"),
    ],
)
def test_bad_secret_is_configuration_error_without_the_value(
    secrets_manager: SecretsManagerClient,
    raised: list[BaseException],
    secret: str,
    fragment: str,
) -> None:
    # Given
    secrets_manager.create_secret(Name="trackwatch/broken", SecretString=secret)

    # When
    with pytest.raises(ConfigurationError) as info:
        from_secret("trackwatch/broken", secrets_manager).get()
    raised.append(info.value)

    # Then the message names the secret and the field; the fixture checks for leaks
    assert "trackwatch/broken" in str(info.value)
    assert fragment in str(info.value)
    assert info.value.__cause__ is None or KEY not in str(info.value.__cause__)


def test_missing_secret_is_configuration_error(
    secrets_manager: SecretsManagerClient, raised: list[BaseException]
) -> None:
    # Given no secret at all / When
    with pytest.raises(ConfigurationError, match="trackwatch/absent") as info:
        from_secret("trackwatch/absent", secrets_manager).get()
    raised.append(info.value)


async def test_the_container_client_reads_its_credentials_from_secrets_manager(
    sandbox: SandboxServer, secrets_manager: SecretsManagerClient
) -> None:
    # Given settings naming a secret that holds the sandbox's credentials
    body = json.dumps({"key": KEY, "username": USERNAME})
    secrets_manager.create_secret(Name="trackwatch/e2e", SecretString=body)
    settings = Settings(
        {
            "CLICKPOST_BASE_URL": sandbox.base_url,
            "CLICKPOST_SECRET_NAME": "trackwatch/e2e",
            "CLICKPOST_MAX_IN_FLIGHT": "2",
        }
    )
    sandbox.add_shipment("AWB1", 4, "delivered_smoothly")
    container = bootstrap(settings, clients=AwsClients(region="us-east-1"))

    # When the container's client polls
    async with container.trackers() as client:
        outcome = await client.track(CALL)

    # Then
    assert outcome.awbs[0].status is AwbStatus.FOUND


# --------------------------------------------------------------------------- bounded calls


class RawServer:
    """A loopback HTTP server: each answer is `head`, then `body` a byte per `drip_s` (0: whole)."""

    def __init__(self, head: bytes, body: bytes, drip_s: float) -> None:
        self.head, self.body, self.drip_s = head, body, drip_s
        self.requests = 0
        self.sent = 0
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self._server.close_clients()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(self.head)
            pieces = (
                [self.body[i : i + 1] for i in range(len(self.body))]
                if self.drip_s
                else [self.body]
            )
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                self.sent += len(piece)
                await asyncio.sleep(self.drip_s)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def test_a_dripping_body_cannot_hold_a_call_past_its_budget(
    raised: list[BaseException],
) -> None:
    # Given a server that sends a byte every 0.3 s: each read beats the 1 s read
    # timeout, so only the call's own budget can stop it
    body = b'{"meta": {"status": 200, "success": true}, "result": {}}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    async with RawServer(head, body, drip_s=0.3) as server:
        client = ClickpostClient(
            server.base_url,
            StaticCredentials(KEY, USERNAME),
            retry_budget_s=1.2,
            read_timeout_s=1.0,
        )

        # When
        started = time.monotonic()
        with pytest.raises(ClickpostUnavailableError) as info:
            async with client:
                await client.track(CALL)
        elapsed = time.monotonic() - started
    raised.append(info.value)

    # Then the call ended at its budget, a few bytes in, and says why (the whole body takes
    # 17 s to drip: the upper bound leaves a loaded machine room, the bytes sent are exact)
    assert 1.1 < elapsed < 8.0
    assert server.sent < len(body)
    assert "call budget of 1.2s spent" in str(info.value)
    assert info.value.retryable


async def test_an_invocation_deadline_stops_a_dripping_call(raised: list[BaseException]) -> None:
    # Given the same drip, a generous call budget, and an invocation ending in 0.8 s
    body = b" " * 100
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    async with RawServer(head, body, drip_s=0.3) as server:
        client = ClickpostClient(
            server.base_url, StaticCredentials(KEY, USERNAME), retry_budget_s=30.0
        )

        # When
        started = time.monotonic()
        with pytest.raises(ClickpostUnavailableError) as info:
            async with client:
                await client.track(CALL, deadline=started + 0.8)
        elapsed = time.monotonic() - started
    raised.append(info.value)

    # Then (the whole body takes 30 s to drip)
    assert 0.7 < elapsed < 8.0
    assert "invocation deadline reached" in str(info.value)


async def test_an_oversized_body_over_a_socket_is_refused_while_streaming(
    raised: list[BaseException],
) -> None:
    # Given a chunked answer of 4 MB (no Content-Length to give it away) and a 64 KB limit
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(64)) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with RawServer(head, body, drip_s=0) as server:
        client = ClickpostClient(
            server.base_url, StaticCredentials(KEY, USERNAME), max_response_bytes=65536
        )

        # When / Then
        with pytest.raises(ClickpostResponseTooLargeError) as info:
            async with client:
                await client.track(CALL)
    raised.append(info.value)
    assert server.requests == 1
    assert not info.value.retryable
