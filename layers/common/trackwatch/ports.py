"""The interfaces the services depend on; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest
from trackwatch.models.notification import (
    Channel,
    ChannelLog,
    ContactFailure,
    Deferral,
    Message,
    NotificationRequest,
    Recipient,
)
from trackwatch.models.record import ShipmentRecord, StateChange


class ShipmentStore(Protocol):
    """The shipments table."""

    def get_many(
        self, keys: Iterable[ShipmentKey], *, consistent: bool = False
    ) -> dict[ShipmentKey, ShipmentRecord]:
        """The stored records of `keys`; absent keys are left out."""
        ...

    def commit(self, change: StateChange) -> None:
        """Write a poll's outcome if the version still matches; else StaleStateError."""
        ...

    def due(self, due_keys: Sequence[str]) -> list[ShipmentKey]:
        """The shipments in the given due-index partitions."""
        ...

    def active(self) -> list[ShipmentKey]:
        """Every shipment still being tracked."""
        ...


class PollQueueWriter(Protocol):
    """Where poll requests go."""

    def send(self, requests: Sequence[PollRequest]) -> None:
        """Enqueue every request, or raise."""
        ...


class EventPublisher(Protocol):
    """Where events go."""

    def publish(self, events: Sequence[ShipmentEvent]) -> None:
        """Publish every event, or raise PublishError."""
        ...


# --- notifiers ----------------------------------------------------------------


class Sender(Protocol):
    """An SMS or e-mail provider."""

    def send(self, message: Message) -> None:
        """Deliver `message`, or raise ProviderUnavailableError / RecipientRejectedError."""
        ...


class RecipientStore(Protocol):
    """Contact details and notification state, by shipment key."""

    def recipient(self, key: ShipmentKey) -> Recipient | None:
        """The shipment's contact and notification state; None if unknown."""
        ...

    def claim(self, key: ShipmentKey, channel: Channel, seen: ChannelLog, new: ChannelLog) -> None:
        """Store `new` if the channel's log is still `seen`; else StaleStateError."""
        ...

    def release(
        self, key: ShipmentKey, channel: Channel, claimed: ChannelLog, seen: ChannelLog
    ) -> None:
        """Undo a claim whose message was not sent (if nothing claimed since)."""
        ...

    def record_failure(self, key: ShipmentKey, channel: Channel, failure: ContactFailure) -> None:
        """Remember that `channel` cannot reach this customer."""
        ...


class Deferrer(Protocol):
    """Where a message inside quiet hours waits."""

    def defer(self, request: NotificationRequest, deferral: Deferral) -> None:
        """Bring `request` back after `deferral.delay_s`, marked with its not_before; or raise."""
        ...


class OnceGuard(Protocol):
    """Runs an action at most once to completion per event and channel."""

    def once(self, event_id: str, channel: Channel, action: Callable[[], str]) -> str:
        """`action()`'s result, or the result recorded when it completed before."""
        ...
