"""In-memory stand-ins for the notifier's ports; type-checked against the Protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trackwatch.errors import NotificationProviderError, StaleStateError
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import (
    Channel,
    ChannelLog,
    ContactFailure,
    Deferral,
    Message,
    NotificationRequest,
    Recipient,
)
from trackwatch.ports import Deferrer, OnceGuard, RecipientStore, Sender


class MemoryRecipients:
    """Recipients in a dict, with the claim condition on seq."""

    def __init__(self, *recipients: Recipient) -> None:
        self.recipients = {r.key: r for r in recipients}

    def recipient(self, key: ShipmentKey) -> Recipient | None:
        return self.recipients.get(key)

    def claim(self, key: ShipmentKey, channel: Channel, seen: ChannelLog, new: ChannelLog) -> None:
        current = self.recipients[key]
        if current.log(channel).seq != seen.seq:
            raise StaleStateError("claimed meanwhile")
        self.recipients[key] = current.model_copy(update={"logs": {**current.logs, channel: new}})

    def release(
        self, key: ShipmentKey, channel: Channel, claimed: ChannelLog, seen: ChannelLog
    ) -> None:
        current = self.recipients[key]
        if current.log(channel).seq == claimed.seq:
            self.recipients[key] = current.model_copy(
                update={"logs": {**current.logs, channel: seen}}
            )

    def record_failure(self, key: ShipmentKey, channel: Channel, failure: ContactFailure) -> None:
        current = self.recipients[key]
        self.recipients[key] = current.model_copy(
            update={"failures": {**current.failures, channel: failure}}
        )


class MemorySender:
    """Keeps what it sends; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.fail: NotificationProviderError | None = None

    def send(self, message: Message) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)


class MemoryDeferrer:
    """Keeps what it was asked to hold back."""

    def __init__(self) -> None:
        self.deferred: list[tuple[NotificationRequest, Deferral]] = []

    def defer(self, request: NotificationRequest, deferral: Deferral) -> None:
        self.deferred.append((request, deferral))


class MemoryGuard:
    """The idempotency table as a dict: results of completed actions only."""

    def __init__(self) -> None:
        self.done: dict[tuple[str, str], str] = {}
        self.contexts: list[Any] = []

    def once(self, event_id: str, channel: Channel, action: Callable[[], str]) -> str:
        if (event_id, channel) in self.done:
            return self.done[(event_id, channel)]
        result = action()
        self.done[(event_id, channel)] = result
        return result

    def begin(self, context: Any) -> None:
        self.contexts.append(context)


def _conforms() -> None:
    _recipients: RecipientStore = MemoryRecipients()
    _sender: Sender = MemorySender()
    _deferrer: Deferrer = MemoryDeferrer()
    _guard: OnceGuard = MemoryGuard()
