"""What a provider's report means for a message: its new state, and whether the next channel
must take over; and whose a notification record is when a message is about to go (`take_over`).
Pure: the WhatsApp events consumer and the notifiers apply these to the notification record.

Reports arrive at least once and in any order (Meta says a `delivered` may follow a
`failed` when the customer has several devices), so a state only moves forward: a message
the customer has (delivered, read) stays had; a failure after it changes nothing.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from trackwatch.errors import StaleStateError
from trackwatch.models.notification import (
    ARRIVED,
    LOST,
    Delivery,
    DeliveryState,
    FallbackNote,
    FallbackReason,
)

#: Prefix of the callback data trackwatch gives each WhatsApp message.
CALLBACK_PREFIX = "trackwatch:"
#: Meta's error for a number that cannot receive the message (not on WhatsApp, or on an
#: old version): the number is the problem, not this message.
UNDELIVERABLE_ERRORS = frozenset({"131026"})

_RANK = {
    DeliveryState.PENDING: 0,
    DeliveryState.SENT: 1,
    DeliveryState.FAILED: 2,
    DeliveryState.UNDELIVERABLE: 2,
    DeliveryState.DELIVERED: 3,
    DeliveryState.READ: 4,
}


def callback_data(event_id: str) -> str:
    """What a WhatsApp message carries so its status reports find their event."""
    return f"{CALLBACK_PREFIX}{event_id}"


def event_of_callback(data: str | None) -> str | None:
    """The event id in a status report's callback data; None if the message is not ours."""
    if not data or not data.startswith(CALLBACK_PREFIX):
        return None
    return data.removeprefix(CALLBACK_PREFIX) or None


def state_of_report(status: str, error_codes: tuple[str, ...]) -> DeliveryState | None:
    """A Meta status ("sent", "delivered", "read", "failed") as a state; None if unknown."""
    if status == "failed":
        if UNDELIVERABLE_ERRORS.intersection(error_codes):
            return DeliveryState.UNDELIVERABLE
        return DeliveryState.FAILED
    try:
        return DeliveryState(status)
    except ValueError:
        return None


def advance(current: DeliveryState, reported: DeliveryState) -> DeliveryState:
    """The state after a report: forward only, and once arrived, arrived."""
    if current in ARRIVED and reported in LOST:
        return current
    return reported if _RANK[reported] > _RANK[current] else current


def apply_report(
    delivery: Delivery,
    reported: DeliveryState,
    *,
    provider_message_id: str | None,
    error_code: str | None,
    at: datetime,
    next_channel_open: bool,
) -> tuple[Delivery, FallbackReason | None]:
    """The record after one report, and why the next channel must take over (None if it
    must not: the message arrived, is still on its way, was handed over already, or there
    is no next channel)."""
    state = advance(delivery.state, reported)
    changed = state != delivery.state
    updated = delivery.model_copy(
        update={
            "state": state,
            "state_at": at if changed else delivery.state_at,
            "provider_message_id": delivery.provider_message_id or provider_message_id,
            "error_code": error_code if changed and state in LOST else delivery.error_code,
        }
    )
    if state not in LOST or delivery.fallback is not None or not next_channel_open:
        return updated, None
    reason: FallbackReason = "undeliverable" if state is DeliveryState.UNDELIVERABLE else "failed"
    return updated, reason


def with_fallback(
    delivery: Delivery, to_channel: str, reason: FallbackReason, at: datetime
) -> Delivery:
    """The record noting that `to_channel` took over."""
    note = FallbackNote.model_validate({"to_channel": to_channel, "reason": reason, "at": at})
    return delivery.model_copy(update={"fallback": note})


def normal_reply(text: str) -> str:
    """A reply as compared with the opt-out keywords: case-folded, punctuation and extra
    spaces gone ("Stop!" and " STOP " are "stop")."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(c if c.isalnum() or unicodedata.category(c)[0] == "M" else " " for c in normal)
    return " ".join(kept.split())


def is_opt_out(text: str | None, keywords: frozenset[str]) -> bool:
    """Whether a customer's whole reply is one of the opt-out keywords."""
    if not text:
        return False
    return normal_reply(text) in {normal_reply(k) for k in keywords}


def settled(existing: Delivery, mine: Delivery) -> bool:
    """Whether the event's record on the channel is no attempt's to take: it came the other
    way (as first choice where `mine` is a fallback, or the reverse) or is past pending.
    Then this event went on this channel, or is going, without `mine`."""
    came_other_way = (existing.fallback_of is None) != (mine.fallback_of is None)
    return came_other_way or existing.state is not DeliveryState.PENDING


def take_over(existing: Delivery, mine: Delivery) -> Delivery:
    """What `begin` stores when `existing` is there already: `existing` itself if it is
    `settled`; `mine`, with `existing`'s notes and next version, if its attempt's time is up;
    StaleStateError while its attempt may still send."""
    if settled(existing, mine):
        return existing
    if existing.attempt_until is not None and existing.attempt_until > mine.state_at:
        raise StaleStateError(f"event {mine.event_id} is being sent on {mine.channel}")
    return mine.model_copy(update={"fallback": existing.fallback, "version": existing.version + 1})
