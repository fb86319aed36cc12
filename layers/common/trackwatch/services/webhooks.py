"""Receive Clickpost's status webhooks: check the shared key, enqueue a hint, answer.

Clickpost cannot sign AWS requests, so the route is open and this is its authoriser: the
key Clickpost was given (in the `webhook_key` header, or the URL's `webhook_key`
parameter) is compared in constant time with the keys in Secrets Manager. A wrong or
missing key is 401 with no detail and enqueues nothing. The answer comes as soon as the
hint is on HintQueue: Clickpost retries anything but 200, so a queue that cannot be
reached is a 503 (and a retry), never a hint lost.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from trackwatch.errors import InvalidInputError, TrackwatchError
from trackwatch.models.hints import ChangeHint, HintBatch
from trackwatch.models.webhook import StatusWebhook, WebhookRequest, read_webhook
from trackwatch.ports import HintSink, WebhookKeys

#: Where the key may be presented: a header (lower case, as API Gateway gives headers) or a
#: query parameter, for dashboards that take only a URL.
KEY_HEADERS = ("webhook_key", "x-webhook-key")
KEY_PARAMETER = "webhook_key"
#: The largest body read; Clickpost's status webhooks are a few kilobytes.
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class WebhookOutcome(StrEnum):
    """How one webhook request ended (a metric dimension)."""

    ACCEPTED = "accepted"
    UNAUTHORISED = "unauthorised"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"
    UNAVAILABLE = "unavailable"


_STATUS = {
    WebhookOutcome.ACCEPTED: 200,
    WebhookOutcome.UNAUTHORISED: 401,
    WebhookOutcome.TOO_LARGE: 413,
    WebhookOutcome.UNREADABLE: 400,
    WebhookOutcome.UNAVAILABLE: 503,
}


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """The answer, and what to log about it (never more than the waybill and status code)."""

    outcome: WebhookOutcome
    webhook: StatusWebhook | None = None
    #: For an unreadable body: the field that failed (never its value).
    problem: str | None = None
    #: For an unavailable queue: the error kind.
    error: str | None = None

    @property
    def status_code(self) -> int:
        """The HTTP status to answer."""
        return _STATUS[self.outcome]


class WebhookService:
    """Turns an authenticated webhook into a change hint on HintQueue."""

    def __init__(
        self,
        keys: WebhookKeys,
        hints: HintSink,
        clock: Callable[[], datetime],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._keys = keys
        self._hints = hints
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    def receive(self, request: WebhookRequest) -> WebhookReply:
        """Authenticate, bound, read, enqueue; the reply says how it went."""
        if not self._authentic(request):
            return WebhookReply(WebhookOutcome.UNAUTHORISED)
        if len(request.body) > self._max_body_bytes:
            return WebhookReply(WebhookOutcome.TOO_LARGE)
        try:
            webhook = read_webhook(request.body)
        except InvalidInputError as exc:
            return WebhookReply(WebhookOutcome.UNREADABLE, problem=exc.field)
        hint = ChangeHint(
            cp_id=webhook.key.cp_id,
            waybill=webhook.key.waybill,
            source="webhook",
            clickpost_status_code=webhook.clickpost_status_code,
            received_at=self._clock(),
        )
        try:
            self._hints.send([HintBatch(hints=(hint,))])
        except TrackwatchError as exc:
            return WebhookReply(WebhookOutcome.UNAVAILABLE, webhook, error=exc.kind)
        return WebhookReply(WebhookOutcome.ACCEPTED, webhook)

    def _authentic(self, request: WebhookRequest) -> bool:
        presented = next(
            (request.headers[h] for h in KEY_HEADERS if request.headers.get(h)),
            request.query.get(KEY_PARAMETER, ""),
        )
        given = presented.encode()
        # Every key is compared, whatever the first comparison says: the time taken does not
        # tell which key (or how much of one) matched.
        matches = [hmac.compare_digest(given, key) for key in self._keys.accepted()]
        return bool(presented) and any(matches)
