"""The interfaces the services depend on; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    # Annotations only: a function imports the models it uses, not every port's.
    from trackwatch.models.change_feed import FeedRead, FeedState, FeedWindow
    from trackwatch.models.delays import ThresholdTable
    from trackwatch.models.events import OrderEvent, ShipmentEvent, TopicEvent
    from trackwatch.models.hints import HintBatch, QueuedMessage
    from trackwatch.models.keys import ShipmentKey
    from trackwatch.models.messages import InboxMessage, PollRequest
    from trackwatch.models.notification import (
        Channel,
        ChannelLog,
        ContactFailure,
        Deferral,
        Delivery,
        Fallback,
        Message,
        NotificationRequest,
        Recipient,
    )
    from trackwatch.models.orders import MemberChange, OrderRecord
    from trackwatch.models.record import (
        Outbox,
        RegistrationWrite,
        ShipmentRecord,
        StateChange,
        StreamChange,
    )
    from trackwatch.models.tracking import CallOutcome, TrackCall


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

    def has_active(self) -> bool:
        """Whether any shipment is being tracked at all (one key read, not a scan)."""
        ...


class Tracker(Protocol):
    """The Clickpost client, as the poller uses it."""

    async def track(self, call: TrackCall, *, deadline: float | None = None) -> CallOutcome:
        """One track-order call, given up at `deadline` (time.monotonic()) if one is given;
        raises a ClickpostError subclass."""
        ...


#: A new tracker for one invocation: an async client belongs to one event loop.
TrackerFactory = Callable[[], AbstractAsyncContextManager[Tracker]]


class ChangeFeed(Protocol):
    """Clickpost's updated-order feed, as the feed poller reads it."""

    async def updated_orders(
        self, window: FeedWindow, *, max_pages: int = 100, deadline: float | None = None
    ) -> FeedRead:
        """Every waybill the window lists, over all its pages; raises a ClickpostError subclass
        (given up at `deadline`, on time.monotonic(), if one is given)."""
        ...


#: A new feed reader for one invocation (the same client as the tracker's).
ChangeFeedFactory = Callable[[], AbstractAsyncContextManager[ChangeFeed]]


class FeedStateStore(Protocol):
    """Where the feed poller keeps its high-water mark and health."""

    def load(self) -> FeedState | None:
        """The state last saved; None before the first run."""
        ...

    def save(self, state: FeedState) -> None:
        """Keep `state`, or raise StorageError."""
        ...


class HintSink(Protocol):
    """Where change hints go (HintQueue)."""

    def send(self, batches: Sequence[HintBatch]) -> None:
        """Enqueue every batch, or raise StorageError."""
        ...


class HintSource(Protocol):
    """Where the coalescer takes change hints from (HintQueue)."""

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        """Up to `max_messages` (at most 10) messages, made invisible while they are handled."""
        ...

    def delete(self, messages: Sequence[QueuedMessage]) -> None:
        """Remove handled messages, or raise StorageError."""
        ...


class WebhookKeys(Protocol):
    """The shared keys a Clickpost webhook may present (the current one, and one being
    rotated out)."""

    def accepted(self) -> tuple[bytes, ...]:
        """Every key accepted now; raises ConfigurationError if none can be read."""
        ...


class OutboxReader(Protocol):
    """Reads the outbox a write put on a shipment item, from a stream image."""

    def outbox(self, image: Mapping[str, Any] | None) -> Outbox:
        """The image's outbox (sequence 0 and no events when it has none)."""
        ...

    def recipient(self, image: Mapping[str, Any] | None) -> Recipient | None:
        """The customer as the image's contact tells (no channel's memory); None without one."""
        ...


class PollQueueWriter(Protocol):
    """Where poll requests go."""

    def send(self, requests: Sequence[PollRequest]) -> None:
        """Enqueue every request, or raise."""
        ...


class EventPublisher(Protocol):
    """Where events go."""

    def publish(
        self,
        events: Sequence[ShipmentEvent],
        audiences: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """Publish every event, routed to the notifier channels `audiences` names for its
        event_id (none, for an event it does not name), or raise PublishError."""
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

    def bulk_create(self, writes: Sequence[RegistrationWrite]) -> None:
        """Create these shipments in batches, *without* the condition that each is new.

        Only for shipments just read (consistently) as absent from a table that no one
        else writes meanwhile: a fresh local stack being loaded before it starts.
        """
        ...

    def commit(self, change: StateChange) -> None:
        """Write a change if the version still matches; else StaleStateError."""
        ...


class ShipmentRepository(ShipmentStore, RegistrationStore, Protocol):
    """The shipments table, as the container builds it once for every use."""


class EventLog(Protocol):
    """Every published event, by shipment, for replay."""

    def append(self, changes: Sequence[Sequence[ShipmentEvent]]) -> None:
        """Store each change's events (idempotently: a change stored twice is stored once),
        or raise."""
        ...

    def history(self, key: ShipmentKey, since: datetime | None = None) -> list[ShipmentEvent]:
        """The shipment's events, oldest first."""
        ...


# --- orders -------------------------------------------------------------------


class OrderStore(Protocol):
    """The orders table: one small item per order."""

    def get(self, order_id: str) -> OrderRecord | None:
        """The order's item, read consistently; None if it has none yet."""
        ...

    def get_many(self, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
        """The items of those orders that have one, read consistently, by order id."""
        ...

    def save(self, record: OrderRecord, expected_version: int | None) -> None:
        """Write `record` if the stored version is still `expected_version` (None: the order
        has no item yet); else StaleStateError."""
        ...

    def published(self, order_id: str, version: int) -> None:
        """Forget the pending events of the item at `version` (they are out); if the item
        moved on since, leave it: its writer publishes them."""
        ...


class OrderEventPublisher(Protocol):
    """Where order events go: the same topic as the shipments'."""

    def publish(self, events: Sequence[OrderEvent]) -> None:
        """Publish every event, or raise PublishError."""
        ...


class SettleScheduler(Protocol):
    """Where the roll-up asks to be woken when an order's window closes."""

    def schedule(self, order_id: str, at: datetime) -> None:
        """Have the order settled at `at` (or soon after); or raise."""
        ...


class MemberChanges(Protocol):
    """Reads what a write of the shipments table means for orders, from its stream record."""

    def change(self, record: StreamChange, now: datetime) -> MemberChange | None:
        """The member change the write makes (None: no shipment after the write, as when TTL
        removes one); raises PoisonEventsError when the image cannot be read."""
        ...


#: One shipment's carrier-timed scans as the event log keeps them for learning:
#: (epoch second, clickpost_status_code) each.
ScanPoints = list[tuple[int, int]]


class ScanLog(Protocol):
    """The scans in the event log, by the day they were logged (for learning thresholds)."""

    def scan_sequences(
        self, days: Sequence[date]
    ) -> Iterator[list[tuple[ShipmentKey, ScanPoints]]]:
        """The scans logged on `days`, in batches: every entry of a shipment is in the same
        batch (a shipment may have several, one per change), so a batch can be grouped by
        shipment without holding the whole window."""
        ...


class ThresholdStore(Protocol):
    """Where the learned thresholds are kept: written daily, read by every poller."""

    def load(self) -> ThresholdTable | None:
        """The latest table; None before the first run."""
        ...

    def save(self, table: ThresholdTable) -> None:
        """Replace the table, or raise."""
        ...


class Inbox(Protocol):
    """A queue of events a scheduled job drains (the operations digest's)."""

    def receive(self, deadline: float | None = None) -> list[InboxMessage]:
        """Every message there is, until the queue is empty or `deadline` (time.monotonic())."""
        ...

    def delete(self, receipts: Sequence[str]) -> None:
        """Delete the messages dealt with, or raise."""
        ...


class RejectSink(Protocol):
    """Where input that can never be accepted goes, with its reason."""

    def reject(self, body: str, reason: str) -> None:
        """Keep `body` for a human, or raise."""
        ...


# --- notifiers ----------------------------------------------------------------


class Sender(Protocol):
    """An SMS, WhatsApp or e-mail provider."""

    def send(self, message: Message) -> str | None:
        """Hand `message` to the provider; its id for the message (None if it gives none).
        Raises RecipientRejectedError, ProviderRejectedError or ProviderUnavailableError."""
        ...


class RecipientStore(Protocol):
    """Contact details (the shipment's) and each channel's memory of a shipment (its own
    items: a send never writes the shipment), by shipment key."""

    def recipient(
        self, key: ShipmentKey, channels: Collection[Channel], order_id: str | None = None
    ) -> Recipient | None:
        """The shipment's contact, and what `channels` remember of it (their logs and contact
        failures), and with `order_id` that order's size (`order_size`), in one read; None if
        the shipment is unknown."""
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


class Handover(Protocol):
    """Where a message goes when the next channel must take over: that channel's queue."""

    def hand_over(
        self,
        event: TopicEvent,
        to_channel: Channel,
        fallback: Fallback,
        not_before: datetime | None = None,
    ) -> None:
        """Ask `to_channel`'s notifier to send `event` in place of `fallback.from_channel`'s
        message, now or (a delivery check) at `not_before`; or raise."""
        ...

    def pass_on(self, request: NotificationRequest, to_channel: Channel) -> None:
        """Give `to_channel`'s notifier `request` as its own message (this channel was the
        publisher's first choice but cannot reach the customer); or raise."""
        ...


class DeliveryLedger(Protocol):
    """The notification records (one per event and channel) and the opt-outs by number."""

    def begin(self, delivery: Delivery, until: datetime | None) -> Delivery:
        """Record a message about to go, held by this attempt `until` (its invocation's end).

        Returns the record now stored: `delivery` (as this attempt's); the record already
        there if it came the other way (first choice or fallback), or is past `pending`
        (sent before: a duplicate); or a pending record of the same way whose attempt's
        time is up, taken over (as this attempt's, its version moved on). Raises
        StaleStateError while another attempt holds a pending record."""
        ...

    def delivery(self, event_id: str, channel: Channel) -> Delivery | None:
        """The record of `event_id` on `channel`, read consistently; None if there is none."""
        ...

    def update(self, delivery: Delivery) -> None:
        """Store `delivery` if the stored one is still at `delivery.version - 1`; else
        StaleStateError."""
        ...

    def opt_out(self, channel: Channel, phone: str, at: datetime) -> None:
        """Remember that the holder of `phone` wants no more messages on `channel`."""
        ...

    def opted_out(self, channel: Channel, phone: str) -> bool:
        """Whether the holder of `phone` opted out of `channel`."""
        ...
