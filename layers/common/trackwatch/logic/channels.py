"""Which channel tells a customer, and which takes over when it does not deliver.

WhatsApp and SMS reach the same phone number and stand in for each other: a message goes by
the first of them, in the customer's order of preference, that can reach them (enabled in
this deployment, accepted, not opted out, no permanent failure, a number on file), and by
the next one only if the first does not deliver. E-mail is not part of that chain: it is
sent besides, whenever the customer accepts it.

The publisher routes each event by the same rules (`Routing`): to the channels that make a
message of it and can reach the customer as far as the shipment's contact tells, of the
phone channels only the first choice. What only the notifiers know (a STOP reply, a failed
number) is theirs to act on: a first choice that cannot reach the customer passes the event
on to the next channel (`passes_on`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import (
    CHANNELS,
    NOTIFY_ATTRIBUTE,
    PHONE_CHANNELS,
    Channel,
    Outcome,
    Recipient,
)
from trackwatch.models.record import Contact

if TYPE_CHECKING:
    from trackwatch.logic.notify_rules import NotifyRules
    from trackwatch.models.events import ShipmentEvent


def contact_recipient(key: ShipmentKey, contact: Contact) -> Recipient:
    """The recipient a shipment's contact makes before any channel has told or failed: the
    channels accepted in their order, every other channel opted out."""
    wanted = tuple(c for c in contact.channels if c in CHANNELS)
    opted_out = set(contact.opt_out) | {c for c in CHANNELS if c not in wanted}
    return Recipient(
        key=key,
        phone=contact.phone,
        email=contact.email,
        language=contact.language,
        channels=wanted,
        opt_out=frozenset(opted_out),
    )


def unreachable(recipient: Recipient, channel: Channel, enabled: Iterable[str]) -> Outcome | None:
    """Why `channel` cannot reach this customer, or None if it can."""
    if channel not in enabled or channel not in recipient.channels:
        return Outcome.OPTED_OUT
    if channel in recipient.opt_out:
        return Outcome.OPTED_OUT
    if channel in recipient.failures:
        return Outcome.ADDRESS_FAILED
    if not recipient.address(channel):
        return Outcome.NO_ADDRESS
    return None


def chain(recipient: Recipient, enabled: Iterable[str]) -> tuple[Channel, ...]:
    """The phone channels this customer accepts and this deployment sends on, in order."""
    on = frozenset(enabled)
    return tuple(c for c in recipient.channels if c in PHONE_CHANNELS and c in on)


def first_choice(recipient: Recipient, enabled: Iterable[str]) -> Channel | None:
    """The phone channel a message goes by first; None if none can reach the customer."""
    on = frozenset(enabled)
    return next((c for c in chain(recipient, on) if unreachable(recipient, c, on) is None), None)


def next_after(recipient: Recipient, channel: Channel, enabled: Iterable[str]) -> Channel | None:
    """The phone channel that takes over from `channel`; None if there is none."""
    on = frozenset(enabled)
    order = chain(recipient, on)
    if channel not in order:
        return None
    later = order[order.index(channel) + 1 :]
    return next((c for c in later if unreachable(recipient, c, on) is None), None)


def waits_for_fallback(recipient: Recipient, channel: Channel, enabled: Iterable[str]) -> bool:
    """Whether `channel` is a phone channel that another one comes before for this customer:
    it sends an event only when asked to take over."""
    on = frozenset(enabled)
    if channel not in PHONE_CHANNELS:
        return False
    first = first_choice(recipient, on)
    return first is not None and first != channel


@dataclass(frozen=True)
class Routing:
    """Which notifier queues an event is published to (the `notify` routing attribute)."""

    rules: NotifyRules
    #: The channels this deployment sends on.
    enabled: frozenset[str]

    def audience(self, event: ShipmentEvent, recipient: Recipient) -> tuple[Channel, ...]:
        """The channels that make a message of `event` and, as far as the contact tells,
        reach `recipient`: e-mail besides, of WhatsApp and SMS only the first choice (the
        other takes over through its queue, not the topic)."""
        return tuple(
            channel
            for channel in CHANNELS
            if unreachable(recipient, channel, self.enabled) is None
            and not waits_for_fallback(recipient, channel, self.enabled)
            and self.rules.kind_of(event, channel) is not None
        )


def routed(attributes: dict[str, tuple[str, str]]) -> frozenset[str] | None:
    """The channels a queue message was published to, from its `notify` attribute; None if
    it has none (published before routing, or by hand): then every channel had it."""
    value = attributes.get(NOTIFY_ATTRIBUTE)
    if value is None:
        return None
    names = json.loads(value[1])
    return frozenset(str(n) for n in names) if isinstance(names, list) else None


def passes_on(
    recipient: Recipient,
    channel: Channel,
    enabled: Iterable[str],
    reached: Collection[str] | None,
) -> Channel | None:
    """The phone channel `channel` passes an event on to, when it was the publisher's first
    choice but cannot reach the customer now (a STOP reply, a failed number) and the next
    channel did not get the event from the topic; None otherwise."""
    if reached is None or channel not in PHONE_CHANNELS:
        return None
    on = frozenset(enabled)
    if unreachable(recipient, channel, on) not in (Outcome.OPTED_OUT, Outcome.ADDRESS_FAILED):
        return None
    successor = next_after(recipient, channel, on)
    return successor if successor is not None and successor not in reached else None
