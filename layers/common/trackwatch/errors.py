"""The one typed error hierarchy: every error knows whether a retry can help."""

from __future__ import annotations

from typing import ClassVar


class TrackwatchError(Exception):
    """Base of every error trackwatch raises on purpose."""

    retryable: ClassVar[bool] = False
    #: A short, stable, low-cardinality name, used as a metric dimension.
    kind: ClassVar[str] = "error"


class ConfigurationError(TrackwatchError):
    """A setting or a secret is missing or malformed; fix the deployment."""

    kind = "configuration"


class InvalidInputError(TrackwatchError, ValueError):
    """Input that breaks a rule; the message names the field and the rule."""

    kind = "invalid_input"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class MalformedInputError(InvalidInputError):
    """Input that cannot even be read (a body that is not JSON)."""

    kind = "malformed_input"


class NotFoundError(TrackwatchError):
    """The thing asked for does not exist (an unknown shipment)."""

    kind = "not_found"


class ConflictError(TrackwatchError):
    """The request does not fit the thing's current state (refreshing a stopped shipment)."""

    kind = "conflict"


class ClickpostError(TrackwatchError):
    """Anything that went wrong talking to Clickpost."""

    kind = "clickpost"


class ClickpostAuthError(ClickpostError):
    """HTTP 401 or service code 301: the key or username is wrong. Never retried."""

    kind = "auth"


class ClickpostInvalidCarrierError(ClickpostError):
    """Service code 302: Clickpost does not know this cp_id."""

    kind = "invalid_cp_id"

    def __init__(self, cp_id: int) -> None:
        super().__init__(f"Clickpost rejected cp_id {cp_id} as invalid (service code 302)")
        self.cp_id = cp_id


class ClickpostRejectedError(ClickpostError):
    """Clickpost answered with meta.success false (a service code other than 301/302)."""

    kind = "rejected"

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"Clickpost refused the request: status {status}, {message!r}")
        self.status = status
        self.message = message


class ClickpostMalformedResponseError(ClickpostError):
    """The body is not JSON, or not the shape of a track-order response."""

    # Malformed answers are usually a passing fault on Clickpost's side: the
    # message goes back to its queue and is polled again later.
    retryable = True
    kind = "malformed"


class ClickpostResponseTooLargeError(ClickpostError):
    """The answer is larger than the client accepts; refused without being held in memory."""

    # The same waybills will bring back the same oversized answer: a retry
    # cannot help, and the message is left to its queue's redrive policy.
    kind = "too_large"

    def __init__(self, cp_id: int | None, limit_bytes: int, subject: str | None = None) -> None:
        what = subject or f"cp_id {cp_id}"
        super().__init__(
            f"Clickpost's answer for {what} is larger than the {limit_bytes}-byte limit"
        )
        self.cp_id = cp_id
        self.limit_bytes = limit_bytes


class ClickpostUnavailableError(ClickpostError):
    """429, 5xx, timeouts or connection errors that outlasted the retry budget."""

    retryable = True
    kind = "unavailable"


class StorageError(TrackwatchError):
    """DynamoDB, SNS or SQS failed in a way a retry may fix."""

    retryable = True
    kind = "storage"


class ItemTooLargeError(TrackwatchError):
    """A write would pass DynamoDB's 400 KB item limit; refused before it is sent.

    DynamoDB itself would answer ValidationException (and moto applies part of such an
    update): refusing here makes the local stack behave as AWS does. Not retryable.
    """

    kind = "item_too_large"


class PoisonEventsError(TrackwatchError):
    """Events that can never be published as they are: an outbox that does not decode,
    or events SNS refused for their content (a sender fault). Not retryable: the
    publisher sets them aside, whole, instead of retrying them for a day."""

    kind = "poison_events"

    def __init__(
        self, reason: str, content: str, event_ids: tuple[str, ...] = (), events: int = 1
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        #: What could not be published, as text (the outbox, or the refused events).
        self.content = content
        #: The ids of the refused events, when they could be read.
        self.event_ids = event_ids
        #: How many events (or undecodable outboxes) were set aside.
        self.events = events


class StaleStateError(TrackwatchError):
    """A conditional write lost to a concurrent writer; re-read and re-decide."""

    retryable = True
    kind = "stale_state"


class PublishError(TrackwatchError):
    """Some events could not be published; they are retried."""

    retryable = True
    kind = "publish"


class NotificationProviderError(TrackwatchError):
    """An SMS, WhatsApp or e-mail provider did not take a message; subclasses say whose fault
    it is: transient (ProviderUnavailableError), ours (ProviderRejectedError) or the
    recipient's (RecipientRejectedError)."""

    retryable = True
    kind = "provider"


class ProviderUnavailableError(NotificationProviderError):
    """Transient: throttling, a timeout, a 4xx SMTP reply or an outage. The message goes back
    to its queue and is tried again."""

    retryable = True
    kind = "provider_unavailable"


class ProviderRejectedError(NotificationProviderError):
    """Ours: the provider refused the request itself (an unregistered sender id or template,
    a spending limit, missing permission, a malformed message). Retrying cannot help and the
    recipient is not to blame: the message fails to its dead-letter queue (which alarms) and
    the channel stays open for this customer. `code` is the provider's error code.
    """

    retryable = False
    kind = "provider_rejected"

    def __init__(self, code: str) -> None:
        super().__init__(f"the provider refused the request: {code}")
        self.code = code


class RecipientRejectedError(NotificationProviderError):
    """The address itself is unusable (an invalid number, a refused mailbox): never retried.

    `reason` is a short code (e.g. "invalid_number"), never the address itself.
    """

    retryable = False
    kind = "recipient_rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the recipient was rejected: {reason}")
        self.reason = reason
