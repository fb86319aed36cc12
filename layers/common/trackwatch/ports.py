"""The interfaces the services depend on; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

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

if TYPE_CHECKING:
    from trackwatch.logic.registration import RegistrationWrite


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


class RegistrationStore(Protocol):
    """The shipments table, as registration and the shipments API use it."""

    def get_many(
        self, keys: Iterable[ShipmentKey], *, consistent: bool = False
    ) -> dict[ShipmentKey, ShipmentRecord]:
        """The stored records of `keys`; absent keys are left out."""
        ...

    def get(self, key: ShipmentKey) -> ShipmentRecord | None:
        """One shipment, read consistently; None if unknown."""
        ...

    def save_registration(self, write: RegistrationWrite) -> None:
        """Create or update at the expected version; else StaleStateError."""
        ...

    def commit(self, change: StateChange) -> None:
        """Write a change if the version still matches; else StaleStateError."""
        ...


class EventLog(Protocol):
    """Every published event, by shipment, for replay."""

    def append(self, events: Sequence[ShipmentEvent]) -> None:
        """Store every event (idempotently: the key holds the event id), or raise."""
        ...

    def history(self, key: ShipmentKey, since: datetime | None = None) -> list[ShipmentEvent]:
        """The shipment's events, oldest first."""
        ...


class RejectSink(Protocol):
    """Where input that can never be accepted goes, with its reason."""

    def reject(self, body: str, reason: str) -> None:
        """Keep `body` for a human, or raise."""
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
