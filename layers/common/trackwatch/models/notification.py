"""What the notifiers read, remember and send: SMS, WhatsApp and e-mail.

Contact details are personal data: they live only on the shipment item, are read
by shipment key, and are kept out of `repr` so that no log line can carry them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import TopicEvent
from trackwatch.models.keys import ShipmentKey

Channel = Literal["sms", "email", "whatsapp"]
CHANNELS: tuple[Channel, ...] = ("whatsapp", "sms", "email")
#: The channels that reach a phone number and stand in for each other, in the order a
#: registration that names neither prefers them. E-mail is never part of the chain: it is
#: sent besides.
PHONE_CHANNELS: tuple[Channel, ...] = ("whatsapp", "sms")
#: A registration that names no channels accepts all three, WhatsApp first.
DEFAULT_CHANNELS: tuple[Channel, ...] = ("whatsapp", "sms", "email")

#: Why a message went out by the next channel.
FallbackReason = Literal["failed", "undeliverable", "timeout"]


class ChannelLog(BaseModel):
    """What one channel has told one shipment's customer (its item in NotificationsTable)."""

    model_config = ConfigDict(frozen=True)

    #: Incremented by every claim; claims are conditional on it, so two notifiers
    #: working on one shipment at once cannot both pass the repeat and cap checks.
    seq: int = Field(default=0, ge=0)
    #: The event of the latest claim: a retry of that same event is not a repeat.
    last_event_id: str | None = None
    #: occurred_at of the newest event told: older news is not sent after newer.
    last_occurred_at: AwareDatetime | None = None
    #: kind → when it was last sent.
    sent_at: dict[str, AwareDatetime] = Field(default_factory=dict)
    #: The customer's local day `day_count` counts messages for.
    day: date | None = None
    day_count: int = Field(default=0, ge=0)


class ContactFailure(BaseModel):
    """A permanent delivery failure on one channel; later messages on it are skipped."""

    model_config = ConfigDict(frozen=True)

    reason: str
    at: AwareDatetime


class Recipient(BaseModel):
    """The notifier's view of one shipment: where to write, what to say, what was said."""

    model_config = ConfigDict(frozen=True)

    key: ShipmentKey
    phone: str | None = Field(default=None, repr=False)
    email: str | None = Field(default=None, repr=False)
    language: str = "en"
    #: IANA zone for quiet hours; None means the configured default.
    timezone: str | None = None
    #: The channels the customer accepts, in order of preference (WhatsApp and SMS are
    #: tried in this order; e-mail goes besides).
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    opt_out: frozenset[str] = frozenset()
    order_id: str | None = None
    #: Shipments in that order now, when the notifier asked for it with the recipient (one
    #: read); 0 otherwise, or when the order has no item.
    order_size: int = Field(default=0, ge=0)
    courier_name: str | None = None
    #: The expected delivery date, when the carrier gave one.
    expected_delivery: date | None = None
    logs: dict[str, ChannelLog] = Field(default_factory=dict)
    failures: dict[str, ContactFailure] = Field(default_factory=dict)

    def address(self, channel: Channel) -> str | None:
        """The phone number (SMS, WhatsApp) or e-mail address for `channel`."""
        return self.email if channel == "email" else self.phone

    def log(self, channel: Channel) -> ChannelLog:
        """What `channel` has sent so far."""
        return self.logs.get(channel) or ChannelLog()


class Fallback(BaseModel):
    """A message sent by another channel than the first choice, and why."""

    model_config = ConfigDict(frozen=True)

    #: The channel that did not deliver.
    from_channel: Channel
    reason: FallbackReason


class WhatsAppTemplate(BaseModel):
    """A Meta-approved template message: its name, language and body parameters, in order."""

    model_config = ConfigDict(frozen=True)

    name: str
    #: Meta's language code of the approved translation ("en", "hi").
    language_code: str
    parameters: tuple[str, ...] = ()


class Message(BaseModel):
    """One rendered message for one recipient."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    to: str = Field(repr=False)
    subject: str | None = None
    #: The text as the customer reads it (for WhatsApp, the approved text with its values).
    body: str
    #: Not personal: lets a provider's logs be matched with ours.
    event_id: str
    kind: str = ""
    language: str = "en"
    #: SMS: the registered DLT template the body was made from (sent to Indian numbers).
    dlt_template_id: str | None = None
    #: SMS: the encoding the body needs, and the segments it takes.
    encoding: Literal["gsm7", "ucs2"] | None = None
    segments: int | None = None
    #: WhatsApp: the template message to send.
    whatsapp: WhatsAppTemplate | None = None
    #: Set when this message stands in for one another channel did not deliver.
    fallback: Fallback | None = None


#: The message attribute that carries the earliest time a held message may be sent.
NOT_BEFORE_ATTRIBUTE = "not_before"
#: The message attributes of a fallback request: the channel that did not deliver, and why.
FALLBACK_FROM_ATTRIBUTE = "fallback_from"
FALLBACK_REASON_ATTRIBUTE = "fallback_reason"
#: The routing attribute (String.Array) naming the channels an event is published to: the
#: notifiers' subscriptions take only what names their channel.
NOTIFY_ATTRIBUTE = "notify"


class NotificationRequest(BaseModel):
    """One queue message: an event, when it may be sent at the earliest, and whether it
    stands in for a message another channel did not deliver."""

    model_config = ConfigDict(frozen=True)

    event: TopicEvent
    #: Set on a message sent back to the queue for quiet hours, and on a delivery check.
    not_before: AwareDatetime | None = None
    fallback: Fallback | None = None
    #: The message attributes it arrived with (kept when it is sent back).
    attributes: dict[str, tuple[str, str]] = Field(default_factory=dict)


class Outcome(StrEnum):
    """What became of one event on one channel (a metric dimension)."""

    SENT = "sent"
    FALLBACK_SENT = "fallback_sent"
    DEFERRED = "deferred"
    DUPLICATE = "duplicate"
    NOT_NOTIFIED = "not_notified"
    NO_SHIPMENT = "no_shipment"
    NO_ADDRESS = "no_address"
    OPTED_OUT = "opted_out"
    ADDRESS_FAILED = "address_failed"
    REJECTED = "rejected"
    ALREADY_SENT = "already_sent"
    SUPERSEDED = "superseded"
    REPEAT = "repeat"
    DAILY_CAP = "daily_cap"
    #: Another channel comes first for this customer; this one waits to be asked.
    STANDBY = "standby"
    #: A delivery check found the first channel's message delivered: no fallback.
    DELIVERED_ELSEWHERE = "delivered_elsewhere"
    #: The shipment is one of an order of several: the order's message says it.
    ORDER_LEVEL = "order_level"


class Deferral(BaseModel):
    """A message held back for quiet hours: when it may go, and how long SQS can wait now."""

    model_config = ConfigDict(frozen=True)

    not_before: datetime
    delay_s: int = Field(ge=0, le=900)


# --------------------------------------------------------------------------- deliveries


class DeliveryState(StrEnum):
    """Where one message is, as its provider reports it."""

    #: Recorded before the provider is called; no report yet.
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    #: The number cannot receive on this channel (not on WhatsApp).
    UNDELIVERABLE = "undeliverable"


#: States in which the customer has the message.
ARRIVED = frozenset({DeliveryState.DELIVERED, DeliveryState.READ})
#: States after which the message will not arrive.
LOST = frozenset({DeliveryState.FAILED, DeliveryState.UNDELIVERABLE})


class FallbackNote(BaseModel):
    """On a delivery record: the next channel took over, why and when."""

    model_config = ConfigDict(frozen=True)

    to_channel: Channel
    reason: FallbackReason
    at: AwareDatetime


class Delivery(BaseModel):
    """The notification record of one event on one channel (no personal data).

    Written before the provider is called, so a status report always finds it, and it is
    what keeps a message to one per event and channel: `pending` until the provider took
    the message, `sent` (or later) after. The WhatsApp events consumer moves `state` as
    Meta reports, and whoever hands the message to the next channel notes it in `fallback`.
    """

    model_config = ConfigDict(frozen=True)

    event_id: str
    channel: Channel
    key: ShipmentKey
    kind: str
    language: str
    #: The event itself: a fallback re-sends it to the next channel's queue.
    event: TopicEvent
    state: DeliveryState = DeliveryState.PENDING
    state_at: AwareDatetime
    #: The provider's id of the message, once a report names it.
    provider_message_id: str | None = None
    #: The provider's error code of a failure (e.g. Meta's 131026).
    error_code: str | None = None
    #: This message stands in for another channel's.
    fallback_of: Fallback | None = None
    #: The next channel took over from this message.
    fallback: FallbackNote | None = None
    #: Incremented by every update; updates are conditional on it.
    version: int = Field(default=0, ge=0)
    #: While `pending`: until when the invocation that wrote it may still send (its
    #: Lambda timeout). A pending record past it was left by an attempt that died before
    #: the record said `sent`, and the next attempt takes it over; None: no attempt holds it.
    attempt_until: AwareDatetime | None = None
