"""The Clickpost track-order client: batching, a concurrency cap, retries, typed errors.

Clickpost wants the key and username as query parameters, so every request
URL carries them. Nothing here ever formats an httpx exception or a request
URL into a message or a log line, and httpx's own request log is redacted.

Every call is bounded in time (a budget covering requests, slow bodies and
back-off, and an optional absolute deadline for the whole invocation) and in
memory (a response size limit); an answer is read waybill by waybill, so one
entry that does not parse costs only its own waybill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random as _random
import re
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Protocol, Self
from zoneinfo import ZoneInfo

import httpx
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pydantic import BaseModel, ConfigDict, SecretStr

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
from trackwatch.logic.batching import plan_calls
from trackwatch.models.change_feed import (
    FeedPage,
    FeedRead,
    FeedWindow,
    UpdatedOrder,
    read_feed_page,
)
from trackwatch.models.clickpost import (
    DEFAULT_RECORD_TIMEZONE,
    DEFAULT_SOURCE_TIMEZONE,
    Meta,
    TrackOrderRead,
    UnreadableBodyError,
    read_track_order,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import zone
from trackwatch.models.tracking import CallOutcome, TrackCall

logger = Logger(service="trackwatch", child=True)

TRACK_ORDER_PATH = "/api/v2/track-order/"
UPDATED_ORDER_PATH = "/api/v1/updated-order"
#: How the feed's calls are named in errors and logs.
FEED = "the updated-order feed"
#: Clickpost service codes carried in meta.status.
SERVICE_AUTH_FAILED = 301
SERVICE_INVALID_CP_ID = 302
_RETRY_AFTER_STATUSES = frozenset({429, 503})
#: The largest answer a client accepts unless told otherwise: five AWBs with
#: long histories come to a few hundred kilobytes.
DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024
_SECRET_FIELDS = ("key", "username")


# --------------------------------------------------------------------------- redaction


_SECRET_QUERY = re.compile(r"(?P<name>[?&](?:key|username)=)[^&\s\"'#]*", re.IGNORECASE)


class _RedactCredentials(logging.Filter):
    """Mask key= and username= in httpx's 'HTTP Request: GET <url>' log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_QUERY.sub(r"\g<name>***", message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def _install_httpx_redaction() -> None:
    # httpx logs every request URL at INFO; a deployment that turns INFO on for
    # all loggers would otherwise print the Clickpost key.
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactCredentials) for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactCredentials())


_install_httpx_redaction()


# --------------------------------------------------------------------------- credentials


class ClickpostCredentials(BaseModel):
    """The Clickpost key and username; SecretStr keeps them out of repr and logs."""

    model_config = ConfigDict(frozen=True)

    key: SecretStr
    username: SecretStr

    def redact(self, text: str) -> str:
        """`text` with the key and username masked, for text Clickpost sends back."""
        for secret in (self.key.get_secret_value(), self.username.get_secret_value()):
            if secret:
                text = text.replace(secret, "***")
        return text


class CredentialsProvider(Protocol):
    """Where the Clickpost credentials come from."""

    def get(self) -> ClickpostCredentials:
        """The current credentials; raises ConfigurationError if they cannot be had."""
        ...


class StaticCredentials:
    """Fixed credentials, for the command line, the sandbox and tests."""

    def __init__(self, key: str, username: str) -> None:
        self._credentials = ClickpostCredentials(key=SecretStr(key), username=SecretStr(username))

    def get(self) -> ClickpostCredentials:
        """The credentials given at construction."""
        return self._credentials


class SecretsManagerCredentials:
    """Credentials from a Secrets Manager secret `{"key": ..., "username": ...}`, cached."""

    def __init__(
        self,
        secret_name: str,
        max_age_s: int = 300,
        provider: parameters.SecretsProvider | None = None,
    ) -> None:
        self.secret_name = secret_name
        self.max_age_s = max_age_s
        # A provider of our own: its cache belongs to this container, not to the process.
        self._provider = provider or parameters.SecretsProvider()

    def get(self) -> ClickpostCredentials:
        """Read (or reuse powertools' cached copy of) the secret and validate it."""
        name = self.secret_name
        try:
            raw = self._provider.get(name, transform="json", max_age=self.max_age_s)
        except TransformParameterError:
            # The parser's error can quote the secret text: drop it from the chain.
            raise ConfigurationError(f"secret {name!r} is not valid JSON") from None
        except GetParameterError as exc:
            # The SDK's message names the secret and the AWS error, never its value.
            raise ConfigurationError(f"cannot read secret {name!r}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigurationError(
                f"secret {name!r} must be a JSON object with fields 'key' and 'username'"
            )
        bad = [f for f in _SECRET_FIELDS if not isinstance(raw.get(f), str) or not raw.get(f)]
        if bad:
            fields = ", ".join(repr(f) for f in bad)
            raise ConfigurationError(
                f"secret {name!r} lacks field {fields} (a non-empty string is required)"
            )
        return ClickpostCredentials(key=SecretStr(raw["key"]), username=SecretStr(raw["username"]))


# --------------------------------------------------------------------------- retry policy


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed Clickpost request is tried again, and after how long: pure, no clock."""

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    #: Total time one call may spend, requests, bodies and waits included.
    budget_s: float = 30.0
    #: Uniform on [0, 1): full jitter, so retries of many calls spread apart.
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if min(self.backoff_base_s, self.backoff_cap_s, self.budget_s) < 0:
            raise ConfigurationError("back-off and budget must not be negative")

    def backoff(self, attempt: int) -> float:
        """A full-jitter wait after failed attempt `attempt` (1-based): uniform below a ceiling."""
        doublings = min(max(attempt - 1, 0), 64)
        return self.random() * min(self.backoff_cap_s, self.backoff_base_s * 2.0**doublings)

    def next_wait(
        self, attempt: int, retry_after: float | None, remaining_s: float
    ) -> float | None:
        """Seconds to wait before trying again after failed attempt `attempt`; None: give up.

        Gives up when the attempts are spent, or when the wait (at least what
        Retry-After asks for) would not end within the `remaining_s` the call has.
        """
        if attempt >= self.max_attempts:
            return None
        wait = self.backoff(attempt)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait if wait <= remaining_s else None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delta-seconds or an HTTP date) as seconds from `now`."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _is_retryable_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


# --------------------------------------------------------------------------- bounded body


class _BoundedBody:
    """Collects a body, decompressing it, and refuses to hold more than `limit` bytes.

    httpx's own decoding (`aiter_bytes`) inflates each network chunk whole: a
    64 KB gzip chunk can become 64 MB before any check could see it. Here zlib
    is told how much output is still allowed, so nothing past the limit is made.
    """

    def __init__(self, content_encoding: str, limit: int, too_large: Exception) -> None:
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            # zlib-wrapped (or gzip), told apart by the header; raw deflate fails as malformed.
            self._inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
        else:
            raise _UnsupportedEncoding(encoding)
        self._limit = limit
        self._too_large = too_large
        self._body = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Add one chunk as received; raises the too-large error past the limit."""
        if self._inflate is None:
            self._add(chunk)
            return
        data = chunk
        while data:
            # One byte more than is allowed is enough to know the limit is passed.
            allowed = self._limit - len(self._body) + 1
            self._add(self._inflate.decompress(data, allowed))
            data = self._inflate.unconsumed_tail

    def finish(self) -> bytes:
        """The whole body."""
        if self._inflate is not None:
            self._add(self._inflate.flush())
        return bytes(self._body)

    def _add(self, data: bytes) -> None:
        if len(self._body) + len(data) > self._limit:
            raise self._too_large
        self._body += data


class _UnsupportedEncoding(Exception):
    """A Content-Encoding this client did not ask for."""


def _declared_length(headers: httpx.Headers) -> int | None:
    value = headers.get("Content-Length", "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    # Nineteen digits already exceed any limit; int() is spared a huge string.
    return int(value[:19])


@dataclass(frozen=True, slots=True)
class _Request:
    """What one logical call asks: a path (or a same-host URL) and its query, how it is
    named in errors (never with its query: that holds the credentials), and the error an
    answer past the size limit raises."""

    url: str
    params: dict[str, str]
    subject: str
    too_large: ClickpostResponseTooLargeError


@dataclass(frozen=True, slots=True)
class _Answer:
    """One HTTP answer: its status, Retry-After, and (unless retryable) its body."""

    status: int
    retry_after: str | None
    body: bytes


# --------------------------------------------------------------------------- client


class _OutOfTime(Exception):
    """An attempt ran into the call's deadline (turned into ClickpostUnavailableError)."""


class ClickpostClient:
    """Async client for GET /api/v2/track-order/ and the updated-order feed
    (GET /api/v1/updated-order); use as `async with ClickpostClient(...)`.

    Every call is bounded: in time, by `retry_budget_s` (requests, slow bodies and
    back-off waits together) and by an optional absolute `deadline` on `clock`
    (the Lambda invocation's, so calls stop before the function is killed); in
    memory, by `max_response_bytes`.
    """

    def __init__(
        self,
        base_url: str,
        credentials: CredentialsProvider,
        *,
        source_tz: ZoneInfo | None = None,
        record_tz: ZoneInfo | None = None,
        max_in_flight: int = 10,
        max_attempts: int = 4,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        retry_budget_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        deadline: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_in_flight < 1:
            raise ConfigurationError("max_in_flight must be at least 1")
        if max_response_bytes < 1:
            raise ConfigurationError("max_response_bytes must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._source_tz = source_tz or zone(DEFAULT_SOURCE_TIMEZONE)
        self._record_tz = record_tz or zone(DEFAULT_RECORD_TIMEZONE)
        self._max_in_flight = max_in_flight
        self._policy = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            budget_s=retry_budget_s,
            random=random,
        )
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_response_bytes = max_response_bytes
        self._deadline = deadline
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=self._timeout(self._policy.budget_s),
            # The semaphore already caps requests; the pool matches it so no call
            # waits for a connection and idle connections are kept for reuse.
            limits=httpx.Limits(
                max_connections=self._max_in_flight,
                max_keepalive_connections=self._max_in_flight,
            ),
            headers={
                "Accept": "application/json",
                # Only what _BoundedBody can inflate within the size limit.
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": "trackwatch",
            },
            transport=self._transport,
            follow_redirects=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def track_many(
        self, keys: Iterable[ShipmentKey], *, deadline: float | None = None
    ) -> list[CallOutcome | ClickpostError]:
        """Track `keys` in the fewest calls, concurrently; one entry per planned call."""
        calls = plan_calls(keys)
        started = self._clock()
        tasks = [asyncio.ensure_future(self._settled(call, deadline)) for call in calls]
        try:
            outcomes = list(await asyncio.gather(*tasks))
        except BaseException:
            # Only unexpected errors get here: stop the siblings, then re-raise.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self._log_summary(outcomes, self._clock() - started)
        return outcomes

    async def _settled(
        self, call: TrackCall, deadline: float | None
    ) -> CallOutcome | ClickpostError:
        try:
            return await self.track(call, deadline=deadline)
        except ClickpostError as exc:
            return exc

    async def track(self, call: TrackCall, *, deadline: float | None = None) -> CallOutcome:
        """One track-order request with retries; raises a ClickpostError subclass.

        `deadline` (absolute, on the client's clock) bounds this call along with
        the client's own; past it the call is not started, or is stopped, and
        raises ClickpostUnavailableError, which is retryable.
        """
        credentials = self._credentials.get()
        params = {
            "key": credentials.key.get_secret_value(),
            "username": credentials.username.get_secret_value(),
            "waybill": ",".join(call.waybills),
            "cp_id": str(call.cp_id),
        }
        request = _Request(
            TRACK_ORDER_PATH,
            params,
            f"cp_id {call.cp_id}",
            ClickpostResponseTooLargeError(call.cp_id, self._max_response_bytes),
        )
        answer, attempts, started = await self._get(request, deadline)
        return self._settle(call, answer, credentials, attempts, started)

    async def updated_orders(
        self, window: FeedWindow, *, max_pages: int = 100, deadline: float | None = None
    ) -> FeedRead:
        """Every waybill Clickpost's updated-order feed lists for `window`, following `next`
        links (on Clickpost's own host only) up to `max_pages`; raises a ClickpostError.

        The same machinery as track-order: the credentials, the concurrency cap, retries
        with back-off and Retry-After, the call budget and deadline, the bounded body.
        """
        credentials = self._credentials.get()
        params = {
            "username": credentials.username.get_secret_value(),
            "key": credentials.key.get_secret_value(),
            "start_date": str(window.start_s),
            "end_date": str(window.end_s),
        }
        too_large = ClickpostResponseTooLargeError(None, self._max_response_bytes, FEED)
        request = _Request(UPDATED_ORDER_PATH, params, FEED, too_large)
        orders: list[UpdatedOrder] = []
        unreadable: list[str] = []
        followed: set[str] = set()
        pages = requests = 0
        while True:
            answer, attempts, _ = await self._get(request, deadline)
            pages += 1
            requests += attempts
            page = self._settle_feed(answer, credentials)
            orders.extend(page.orders)
            unreadable.extend(page.unreadable)
            if page.next is None:
                break
            request = self._follow(page.next, request, credentials)
            # The page's identity, without the credentials every request carries.
            identity = (
                request.url
                + "?"
                + "&".join(
                    f"{n}={v}" for n, v in sorted(request.params.items()) if n not in _SECRET_FIELDS
                )
            )
            if identity in followed:
                raise ClickpostMalformedResponseError(f"{FEED} links back to a page it gave")
            followed.add(identity)
            if pages >= max_pages:
                raise ClickpostMalformedResponseError(f"{FEED} gave more than {max_pages} pages")
        return FeedRead(
            window=window,
            orders=tuple(orders),
            pages=pages,
            requests=requests,
            unreadable=tuple(unreadable),
        )

    def _follow(self, link: str, current: _Request, credentials: ClickpostCredentials) -> _Request:
        """The request for a `next` link: on Clickpost's host only (the credentials ride in
        the query), with our credentials whatever the link carries."""
        url = httpx.URL(self._base_url).join(link)
        base = httpx.URL(self._base_url)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise ClickpostMalformedResponseError(
                f"{FEED} gave a next link to another host; it was not followed"
            )
        params = {
            name: value
            for name, value in url.params.multi_items()
            if name.lower() not in _SECRET_FIELDS
        }
        params["username"] = credentials.username.get_secret_value()
        params["key"] = credentials.key.get_secret_value()
        return _Request(str(url.copy_with(query=None)), params, current.subject, current.too_large)

    def _settle_feed(self, answer: _Answer, credentials: ClickpostCredentials) -> FeedPage:
        status = answer.status
        if status == 401:
            raise ClickpostAuthError("Clickpost rejected the key or username (HTTP 401)")
        try:
            page: FeedPage | None = read_feed_page(answer.body, self._source_tz, self._record_tz)
            problem = ""
        except UnreadableBodyError as exc:
            page, problem = None, exc.reason
        if page is not None and not page.meta.success:
            if page.meta.status == SERVICE_AUTH_FAILED:
                raise ClickpostAuthError(
                    "Clickpost rejected the key or username (service code 301)"
                )
            message = credentials.redact(page.meta.message or f"no message (HTTP {status})")
            raise ClickpostRejectedError(page.meta.status, message)
        if not 200 <= status <= 299:
            raise ClickpostRejectedError(status, f"HTTP {status}")
        if page is None:
            raise ClickpostMalformedResponseError(
                f"Clickpost answered {FEED} with a body that is not a feed page: {problem}"
            )
        return page

    async def _get(self, request: _Request, deadline: float | None) -> tuple[_Answer, int, float]:
        """GET with retries until an answer that is not retryable: (answer, attempts, started);
        ClickpostUnavailableError when the budget, the deadline or the attempts run out."""
        http = self._http
        if http is None:
            raise RuntimeError("ClickpostClient is not open: use `async with ClickpostClient(...)`")
        invocation_end = _earliest(self._deadline, deadline)
        # A call holds its slot through its back-off too: when Clickpost is
        # throttling, waiting calls must not be replaced by fresh ones.
        async with self._slot(request.subject, invocation_end):
            started = self._clock()
            end = started + self._policy.budget_s
            out_of_time = f"call budget of {self._policy.budget_s:g}s spent"
            if invocation_end is not None and invocation_end <= end:
                end, out_of_time = invocation_end, "invocation deadline reached"
            attempt = 0
            while True:
                attempt += 1
                remaining = end - self._clock()
                if remaining <= 0:
                    raise self._unavailable(request.subject, attempt - 1, out_of_time, started)
                try:
                    answer = await self._attempt(http, request, remaining)
                except _OutOfTime:
                    raise self._unavailable(
                        request.subject, attempt, out_of_time, started
                    ) from None
                if isinstance(answer, _Answer):
                    return answer, attempt, started
                cause, retry_after = answer
                wait = self._policy.next_wait(attempt, retry_after, end - self._clock())
                if wait is None:
                    if attempt < self._policy.max_attempts:
                        cause += "; the next wait would overrun the deadline"
                    raise self._unavailable(request.subject, attempt, cause, started)
                logger.debug(
                    "retrying Clickpost call",
                    extra={
                        "call": request.subject,
                        "attempt": attempt,
                        "cause": cause,
                        "wait_s": wait,
                    },
                )
                await self._sleep(wait)

    async def _attempt(
        self, http: httpx.AsyncClient, request: _Request, remaining: float
    ) -> _Answer | tuple[str, float | None]:
        """One request within `remaining` seconds: an answer to settle, or (why it failed,
        Retry-After); _OutOfTime when the time ran out."""
        try:
            async with asyncio.timeout(remaining) as scope:
                answer = await self._request(http, request, remaining)
        except (httpx.TransportError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError) and scope.expired():
                raise _OutOfTime from None
            # The class name only: str(exc) may quote the URL, key included.
            return type(exc).__name__, None
        if not _is_retryable_status(answer.status):
            return answer
        return f"HTTP {answer.status}", retry_after_seconds(answer.retry_after, self._wall_clock())

    @contextlib.asynccontextmanager
    async def _slot(self, subject: str, deadline: float | None) -> AsyncIterator[None]:
        """One of the max_in_flight places, waited for no later than `deadline`."""
        if deadline is None:
            await self._in_flight.acquire()
        else:
            started = self._clock()
            try:
                async with asyncio.timeout(deadline - started):
                    await self._in_flight.acquire()
            except TimeoutError:
                cause = "invocation deadline reached before the call could start"
                raise self._unavailable(subject, 0, cause, started) from None
        try:
            yield
        finally:
            self._in_flight.release()

    async def _request(
        self, http: httpx.AsyncClient, request: _Request, remaining: float
    ) -> _Answer:
        """One GET; the body is read (within the size limit) unless the status is retryable."""
        async with http.stream(
            "GET", request.url, params=request.params, timeout=self._timeout(remaining)
        ) as response:
            status = response.status_code
            if _is_retryable_status(status):
                # The body is not wanted; leaving it unread closes the connection.
                wait = (
                    response.headers.get("Retry-After") if status in _RETRY_AFTER_STATUSES else None
                )
                return _Answer(status, wait, b"")
            too_large = request.too_large
            declared = _declared_length(response.headers)
            if declared is not None and declared > self._max_response_bytes:
                raise too_large
            if response.is_stream_consumed:
                # A transport that hands over a body it has already read and decoded
                # (httpx.MockTransport given content=...): it is in memory already.
                if len(response.content) > self._max_response_bytes:
                    raise too_large
                return _Answer(status, None, response.content)
            encoding = response.headers.get("Content-Encoding", "")
            try:
                body = _BoundedBody(encoding, self._max_response_bytes, too_large)
                async for chunk in response.aiter_raw():
                    body.feed(chunk)
                content = body.finish()
            except _UnsupportedEncoding:
                raise ClickpostMalformedResponseError(
                    f"Clickpost answered {request.subject} in an encoding not asked for"
                ) from None
            except zlib.error:
                raise ClickpostMalformedResponseError(
                    f"Clickpost answered {request.subject} with a body that does not decompress"
                ) from None
            return _Answer(status, None, content)

    def _timeout(self, remaining_s: float) -> httpx.Timeout:
        # Per read and per connect; the deadline around each attempt bounds the whole.
        connect = min(self._connect_timeout_s, remaining_s)
        read = min(self._read_timeout_s, remaining_s)
        return httpx.Timeout(connect=connect, read=read, write=connect, pool=connect)

    def _unavailable(
        self, subject: str, attempts: int, cause: str, started: float
    ) -> ClickpostUnavailableError:
        elapsed = self._clock() - started
        return ClickpostUnavailableError(
            f"Clickpost unavailable for {subject} after {attempts} attempt(s) "
            f"in {elapsed:.2f}s; last cause: {cause}"
        )

    def _settle(
        self,
        call: TrackCall,
        answer: _Answer,
        credentials: ClickpostCredentials,
        attempts: int,
        started: float,
    ) -> CallOutcome:
        status = answer.status
        if status == 401:
            raise ClickpostAuthError("Clickpost rejected the key or username (HTTP 401)")
        try:
            read: TrackOrderRead | None = read_track_order(
                answer.body, self._source_tz, call.waybills, record_tz=self._record_tz
            )
            problem = ""
        except UnreadableBodyError as exc:
            read, problem = None, exc.reason
        if read is not None and not read.meta.success:
            self._raise_for_meta(call, read.meta, credentials, status)
        if not 200 <= status <= 299:
            raise ClickpostRejectedError(status, f"HTTP {status}")
        if read is None:
            raise ClickpostMalformedResponseError(
                f"Clickpost answered cp_id {call.cp_id} with a body that is not a "
                f"track-order response: {problem}"
            )
        outcome = CallOutcome.from_read(
            call, read, attempts, self._clock() - started, redact=credentials.redact
        )
        if outcome.unreadable:
            logger.warning(
                "Clickpost entries could not be read",
                extra={
                    "cp_id": call.cp_id,
                    "unreadable": len(outcome.unreadable),
                    "reasons": sorted({a.reason or "" for a in outcome.unreadable}),
                },
            )
        return outcome

    @staticmethod
    def _raise_for_meta(
        call: TrackCall, meta: Meta, credentials: ClickpostCredentials, http_status: int
    ) -> None:
        if meta.status == SERVICE_AUTH_FAILED:
            raise ClickpostAuthError("Clickpost rejected the key or username (service code 301)")
        if meta.status == SERVICE_INVALID_CP_ID:
            raise ClickpostInvalidCarrierError(call.cp_id)
        message = credentials.redact(meta.message or f"no message (HTTP {http_status})")
        raise ClickpostRejectedError(meta.status, message)

    def _log_summary(self, outcomes: list[CallOutcome | ClickpostError], elapsed_s: float) -> None:
        awbs: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        attempts = 0
        ignored = 0
        for outcome in outcomes:
            if isinstance(outcome, CallOutcome):
                attempts += outcome.attempts
                ignored += outcome.ignored
                awbs.update(a.status.value for a in (*outcome.awbs, *outcome.unreadable))
            else:
                errors[outcome.kind] += 1
        extra = {
            "calls": len(outcomes),
            "failed_calls": sum(errors.values()),
            "attempts_of_successful_calls": attempts,
            "awbs": dict(awbs),
            "ignored_entries": ignored,
            "errors": dict(errors),
            "elapsed_s": round(elapsed_s, 3),
        }
        if errors:
            logger.warning("Clickpost batch finished with failed calls", extra=extra)
        else:
            logger.info("Clickpost batch finished", extra=extra)


def _earliest(*deadlines: float | None) -> float | None:
    given = [d for d in deadlines if d is not None]
    return min(given) if given else None
