"""Which channel tells a customer, and which takes over when it does not deliver.

WhatsApp and SMS reach the same phone number and stand in for each other: a message goes by
the first of them, in the customer's order of preference, that can reach them (enabled in
this deployment, accepted, not opted out, no permanent failure, a number on file), and by
the next one only if the first does not deliver. E-mail is not part of that chain: it is
sent besides, whenever the customer accepts it.
"""

from __future__ import annotations

from collections.abc import Iterable

from trackwatch.models.notification import PHONE_CHANNELS, Channel, Outcome, Recipient


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
