"""In-memory stand-ins for the notifier's ports; type-checked against the Protocols."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from trackwatch.errors import NotificationProviderError, StaleStateError
from trackwatch.logic.delivery import take_over
from trackwatch.models.events import TopicEvent
from trackwatch.models.keys import ShipmentKey
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
from trackwatch.ports import (
    Deferrer,
    DeliveryLedger,
    Handover,
    RecipientStore,
    Sender,
)


class MemoryRecipients:
    """Recipients in a dict, with the claim condition on seq."""

    def __init__(self, *recipients: Recipient, order_sizes: dict[str, int] | None = None) -> None:
        self.recipients = {r.key: r for r in recipients}
        self.order_sizes = dict(order_sizes or {})
        #: The channels each read asked to remember, and the order whose size it asked.
        self.read: list[tuple[Channel, ...]] = []
        self.orders_asked: list[str | None] = []

    def recipient(
        self, key: ShipmentKey, channels: Collection[Channel], order_id: str | None = None
    ) -> Recipient | None:
        self.read.append(tuple(channels))
        self.orders_asked.append(order_id)
        found = self.recipients.get(key)
        if found is None or order_id is None:
            return found
        return found.model_copy(update={"order_size": self.order_sizes.get(order_id, 0)})

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

    def send(self, message: Message) -> str | None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)
        return f"{message.channel}-{len(self.sent)}"


class MemoryLedger:
    """The notification records and opt-outs in dicts, with the version condition."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Delivery] = {}
        self.opt_outs: dict[tuple[str, str], datetime] = {}

    def begin(self, delivery: Delivery, until: datetime | None = None) -> Delivery:
        mine = delivery.model_copy(update={"attempt_until": until})
        key = (delivery.event_id, delivery.channel)
        existing = self.records.get(key)
        if existing is None:
            self.records[key] = mine
            return mine
        taken = take_over(existing, mine)
        self.records[key] = taken
        return taken

    def delivery(self, event_id: str, channel: Channel) -> Delivery | None:
        return self.records.get((event_id, channel))

    def update(self, delivery: Delivery) -> None:
        key = (delivery.event_id, delivery.channel)
        current = self.records.get(key)
        if current is None or current.version != delivery.version - 1:
            raise StaleStateError("changed meanwhile")
        self.records[key] = delivery

    def opt_out(self, channel: Channel, phone: str, at: datetime) -> None:
        self.opt_outs[(channel, phone)] = at

    def opted_out(self, channel: Channel, phone: str) -> bool:
        return (channel, phone) in self.opt_outs


class MemoryHandover:
    """Keeps the fallback requests it was given."""

    def __init__(self) -> None:
        self.handed: list[tuple[TopicEvent, Channel, Fallback, datetime | None]] = []
        self.passed: list[tuple[NotificationRequest, Channel]] = []

    def hand_over(
        self,
        event: TopicEvent,
        to_channel: Channel,
        fallback: Fallback,
        not_before: datetime | None = None,
    ) -> None:
        self.handed.append((event, to_channel, fallback, not_before))

    def pass_on(self, request: NotificationRequest, to_channel: Channel) -> None:
        self.passed.append((request, to_channel))

    def requests(self, to_channel: Channel) -> list[NotificationRequest]:
        """What was handed to `to_channel`, as its notifier receives it."""
        return [
            NotificationRequest(event=event, fallback=fallback, not_before=not_before)
            for event, channel, fallback, not_before in self.handed
            if channel == to_channel
        ]


class MemoryDeferrer:
    """Keeps what it was asked to hold back."""

    def __init__(self) -> None:
        self.deferred: list[tuple[NotificationRequest, Deferral]] = []

    def defer(self, request: NotificationRequest, deferral: Deferral) -> None:
        self.deferred.append((request, deferral))


def _conforms() -> None:
    _recipients: RecipientStore = MemoryRecipients()
    _sender: Sender = MemorySender()
    _deferrer: Deferrer = MemoryDeferrer()
    _ledger: DeliveryLedger = MemoryLedger()
    _handover: Handover = MemoryHandover()
