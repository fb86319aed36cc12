"""What the SMS and e-mail notifiers read, remember and send.

Contact details are personal data: they live only on the shipment item, are read
by shipment key, and are kept out of `repr` so that no log line can carry them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey

Channel = Literal["sms", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "email")


class ChannelLog(BaseModel):
    """What one channel has told one shipment's customer (stored as `notified_<channel>`)."""

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
    opt_out: frozenset[str] = frozenset()
    order_id: str | None = None
    courier_name: str | None = None
    #: The expected delivery date, when the carrier gave one.
    expected_delivery: date | None = None
    logs: dict[str, ChannelLog] = Field(default_factory=dict)
    failures: dict[str, ContactFailure] = Field(default_factory=dict)

    def address(self, channel: Channel) -> str | None:
        """The phone number or e-mail address for `channel`."""
        return self.phone if channel == "sms" else self.email

    def log(self, channel: Channel) -> ChannelLog:
        """What `channel` has sent so far."""
        return self.logs.get(channel) or ChannelLog()


class Message(BaseModel):
    """One rendered message for one recipient."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    to: str = Field(repr=False)
    subject: str | None = None
    body: str
    #: Not personal: lets a provider's logs be matched with ours.
    event_id: str


#: The message attribute that carries the earliest time a held message may be sent.
NOT_BEFORE_ATTRIBUTE = "not_before"


class NotificationRequest(BaseModel):
    """One queue message: an event, and when it may be sent at the earliest."""

    model_config = ConfigDict(frozen=True)

    event: ShipmentEvent
    #: Set on a message sent back to the queue for quiet hours.
    not_before: AwareDatetime | None = None
    #: The message attributes it arrived with (kept when it is sent back).
    attributes: dict[str, tuple[str, str]] = Field(default_factory=dict)


class Outcome(StrEnum):
    """What became of one event on one channel (a metric dimension)."""

    SENT = "sent"
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


class Deferral(BaseModel):
    """A message held back for quiet hours: when it may go, and how long SQS can wait now."""

    model_config = ConfigDict(frozen=True)

    not_before: datetime
    delay_s: int = Field(ge=0, le=900)
