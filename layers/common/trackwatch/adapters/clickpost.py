"""The Clickpost track-order client: batching, a concurrency cap, retries, typed errors.

Clickpost wants the key and username as query parameters, so every request
URL carries them. Nothing here ever formats an httpx exception or a request
URL into a message or a log line, and httpx's own request log is redacted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as _random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
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
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostInvalidCarrierError,
    ClickpostMalformedResponseError,
    ClickpostRejectedError,
    ClickpostUnavailableError,
    ConfigurationError,
)
from trackwatch.logic.batching import plan_calls
from trackwatch.models.clickpost import (
    DEFAULT_SOURCE_TIMEZONE,
    Meta,
    TrackOrderResponse,
    parse_track_order,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import zone
from trackwatch.models.tracking import CallOutcome, TrackCall

logger = Logger(service="trackwatch", child=True)

TRACK_ORDER_PATH = "/api/v2/track-order/"
#: Clickpost service codes carried in meta.status.
SERVICE_AUTH_FAILED = 301
SERVICE_INVALID_CP_ID = 302
_RETRY_AFTER_STATUSES = frozenset({429, 503})
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


# --------------------------------------------------------------------------- retry helpers


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


def _describe_validation(exc: ValidationError) -> str:
    # Locations and messages only: pydantic's str() quotes the input, which is
    # Clickpost's text and not ours to put in an error.
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{len(errors)} problem(s), first at {where}: {first['msg']}"


# --------------------------------------------------------------------------- client


class ClickpostClient:
    """Async client for GET /api/v2/track-order/; use as `async with ClickpostClient(...)`."""

    def __init__(
        self,
        base_url: str,
        credentials: CredentialsProvider,
        *,
        source_tz: ZoneInfo | None = None,
        max_in_flight: int = 10,
        max_attempts: int = 4,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        retry_budget_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_in_flight < 1 or max_attempts < 1:
            raise ConfigurationError("max_in_flight and max_attempts must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._source_tz = source_tz or zone(DEFAULT_SOURCE_TIMEZONE)
        self._max_in_flight = max_in_flight
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._retry_budget_s = retry_budget_s
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._wall_clock = wall_clock
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=self._timeout(self._retry_budget_s),
            # The semaphore already caps requests; the pool matches it so no call
            # waits for a connection and idle connections are kept for reuse.
            limits=httpx.Limits(
                max_connections=self._max_in_flight,
                max_keepalive_connections=self._max_in_flight,
            ),
            headers={"Accept": "application/json", "User-Agent": "trackwatch"},
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

    async def track_many(self, keys: Iterable[ShipmentKey]) -> list[CallOutcome | ClickpostError]:
        """Track `keys` in the fewest calls, concurrently; one entry per planned call."""
        calls = plan_calls(keys)
        started = self._clock()
        tasks = [asyncio.ensure_future(self._settled(call)) for call in calls]
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

    async def _settled(self, call: TrackCall) -> CallOutcome | ClickpostError:
        try:
            return await self.track(call)
        except ClickpostError as exc:
            return exc

    async def track(self, call: TrackCall) -> CallOutcome:
        """One track-order request with retries; raises a ClickpostError subclass."""
        http = self._http
        if http is None:
            raise RuntimeError("ClickpostClient is not open: use `async with ClickpostClient(...)`")
        credentials = self._credentials.get()
        params = {
            "key": credentials.key.get_secret_value(),
            "username": credentials.username.get_secret_value(),
            "waybill": ",".join(call.waybills),
            "cp_id": str(call.cp_id),
        }
        # A call holds its slot through its back-off too: when Clickpost is
        # throttling, waiting calls must not be replaced by fresh ones.
        async with self._in_flight:
            started = self._clock()
            attempt = 0
            while True:
                attempt += 1
                remaining = self._retry_budget_s - (self._clock() - started)
                if remaining <= 0:
                    raise self._unavailable(call, attempt - 1, "retry budget spent", started)
                retry_after: float | None = None
                try:
                    response = await http.get(
                        TRACK_ORDER_PATH, params=params, timeout=self._timeout(remaining)
                    )
                except httpx.TransportError as exc:
                    # The class name only: str(exc) may quote the URL, key included.
                    cause = type(exc).__name__
                else:
                    if not _is_retryable_status(response.status_code):
                        return self._settle(call, response, credentials, attempt, started)
                    cause = f"HTTP {response.status_code}"
                    if response.status_code in _RETRY_AFTER_STATUSES:
                        retry_after = retry_after_seconds(
                            response.headers.get("Retry-After"), self._wall_clock()
                        )
                if attempt >= self._max_attempts:
                    raise self._unavailable(call, attempt, cause, started)
                wait = self._backoff(attempt)
                if retry_after is not None:
                    wait = max(wait, retry_after)
                remaining = self._retry_budget_s - (self._clock() - started)
                if wait > remaining:
                    raise self._unavailable(
                        call,
                        attempt,
                        f"{cause}; next wait {wait:.2f}s exceeds the {remaining:.2f}s left",
                        started,
                    )
                logger.debug(
                    "retrying Clickpost call",
                    extra={"cp_id": call.cp_id, "attempt": attempt, "cause": cause, "wait_s": wait},
                )
                await self._sleep(wait)

    def _timeout(self, remaining_s: float) -> httpx.Timeout:
        # No single attempt may outlive the call's budget.
        connect = min(self._connect_timeout_s, remaining_s)
        read = min(self._read_timeout_s, remaining_s)
        return httpx.Timeout(connect=connect, read=read, write=connect, pool=connect)

    def _backoff(self, attempt: int) -> float:
        # Full jitter (uniform in [0, ceiling]) spreads retries of many calls apart.
        ceiling = min(self._backoff_cap_s, self._backoff_base_s * 2.0 ** (attempt - 1))
        return self._random() * ceiling

    def _unavailable(
        self, call: TrackCall, attempts: int, cause: str, started: float
    ) -> ClickpostUnavailableError:
        elapsed = self._clock() - started
        return ClickpostUnavailableError(
            f"Clickpost unavailable for cp_id {call.cp_id} after {attempts} attempt(s) "
            f"in {elapsed:.2f}s; last cause: {cause}"
        )

    def _settle(
        self,
        call: TrackCall,
        response: httpx.Response,
        credentials: ClickpostCredentials,
        attempts: int,
        started: float,
    ) -> CallOutcome:
        status = response.status_code
        if status == 401:
            raise ClickpostAuthError("Clickpost rejected the key or username (HTTP 401)")
        try:
            parsed: TrackOrderResponse | None = parse_track_order(response.content, self._source_tz)
            problem = ""
        except ValidationError as exc:
            parsed, problem = None, _describe_validation(exc)
        if parsed is not None and not parsed.meta.success:
            self._raise_for_meta(call, parsed.meta, credentials, status)
        if not 200 <= status <= 299:
            raise ClickpostRejectedError(status, f"HTTP {status}")
        if parsed is None:
            raise ClickpostMalformedResponseError(
                f"Clickpost answered cp_id {call.cp_id} with a body that is not a "
                f"track-order response: {problem}"
            )
        return CallOutcome.from_response(call, parsed, attempts, self._clock() - started)

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
        for outcome in outcomes:
            if isinstance(outcome, CallOutcome):
                attempts += outcome.attempts
                awbs.update(a.status.value for a in outcome.awbs)
            else:
                errors[outcome.kind] += 1
        extra = {
            "calls": len(outcomes),
            "failed_calls": sum(errors.values()),
            "attempts_of_successful_calls": attempts,
            "awbs": dict(awbs),
            "errors": dict(errors),
            "elapsed_s": round(elapsed_s, 3),
        }
        if errors:
            logger.warning("Clickpost batch finished with failed calls", extra=extra)
        else:
            logger.info("Clickpost batch finished", extra=extra)
