"""When a shipment is due, without rewriting anything on an unchanged poll.

Each active shipment has a cadence class (out for delivery, in transit, new,
terminal grace, invalid) and, from a stable hash of its key, a slot: the
minute within its class's period at which it is polled. The due index is keyed
by ``<class>#<slot>#<shard>``; at epoch minute m the dispatcher reads, for each
class, slot ``m mod period`` across all shards. The key only changes when the
class changes, which only happens on a poll that changed the shipment anyway.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.models.policy import Cadence
from trackwatch.models.state import ShipmentState

# Statuses before the carrier has the parcel: polled at the slow "new" cadence.
_PRE_PICKUP = frozenset({1, 2, 3, 25, 28})


class CadenceClass(StrEnum):
    """How urgently a shipment is polled."""

    OUT_FOR_DELIVERY = "ofd"
    TRANSIT = "transit"
    NEW = "new"
    GRACE = "grace"
    INVALID = "invalid"


def period_minutes(klass: CadenceClass, cadence: Cadence) -> int:
    """The polling period of a class, in minutes."""
    return {
        CadenceClass.OUT_FOR_DELIVERY: cadence.cadence_out_for_delivery_minutes,
        CadenceClass.TRANSIT: cadence.cadence_transit_minutes,
        CadenceClass.NEW: cadence.cadence_new_minutes,
        CadenceClass.GRACE: cadence.cadence_grace_minutes,
        CadenceClass.INVALID: cadence.cadence_invalid_minutes,
    }[klass]


def cadence_class(state: ShipmentState, catalogue: StatusCatalogue) -> CadenceClass:
    """The class a shipment belongs to now."""
    if state.invalid_since is not None:
        return CadenceClass.INVALID
    current = state.current
    if current is None or current.clickpost_status_code is None:
        return CadenceClass.NEW
    if current.is_terminal:
        return CadenceClass.GRACE
    if catalogue.lookup(current.clickpost_status_code).out_for_delivery:
        return CadenceClass.OUT_FOR_DELIVERY
    if current.clickpost_status_code in _PRE_PICKUP:
        return CadenceClass.NEW
    return CadenceClass.TRANSIT


def _hash(pk: str) -> int:
    return int.from_bytes(hashlib.sha256(pk.encode()).digest()[:8], "big")


def due_key(pk: str, klass: CadenceClass, cadence: Cadence) -> str:
    """The due-index partition key of a shipment in `klass`."""
    digest = _hash(pk)
    slot = digest % period_minutes(klass, cadence)
    shard = (digest >> 32) % cadence.due_shards
    return f"{klass.value}#{slot}#{shard}"


def epoch_minute(moment: datetime) -> int:
    """Whole minutes since the Unix epoch."""
    return int(moment.timestamp()) // 60


def due_keys_at(minute: int, cadence: Cadence) -> list[str]:
    """Every due-index key whose shipments are due at epoch minute `minute`."""
    return [key for klass in CadenceClass for key in class_due_keys_at(klass, minute, cadence)]


def class_due_keys_at(klass: CadenceClass, minute: int, cadence: Cadence) -> list[str]:
    """The due-index keys of one class's shipments due at epoch minute `minute`."""
    slot = minute % period_minutes(klass, cadence)
    return [f"{klass.value}#{slot}#{shard}" for shard in range(cadence.due_shards)]


def all_due_keys(cadence: Cadence) -> list[str]:
    """Every due-index key there is: one full cycle of every class."""
    return [
        f"{klass.value}#{slot}#{shard}"
        for klass in CadenceClass
        for slot in range(period_minutes(klass, cadence))
        for shard in range(cadence.due_shards)
    ]


def stop_reason(
    state: ShipmentState, now: datetime, cadence: Cadence, catalogue: StatusCatalogue
) -> str | None:
    """Why tracking should end now, or None to keep polling."""
    if state.terminal_at is not None and state.current is not None:
        if now - state.terminal_at >= timedelta(hours=cadence.terminal_grace_hours):
            name = catalogue.lookup(
                state.current.clickpost_status_code or 0,
                state.current.clickpost_status_description,
            ).name
            return f"terminal: {name}, grace period of {cadence.terminal_grace_hours:g} h elapsed"
        return None
    if state.invalid_since is not None and now - state.invalid_since >= timedelta(
        hours=cadence.invalid_give_up_hours
    ):
        return f"invalid: Clickpost answered valid=false for {cadence.invalid_give_up_hours:g} h"
    if state.unreadable_since is not None and now - state.unreadable_since >= timedelta(
        hours=cadence.unreadable_give_up_hours
    ):
        return (
            f"unreadable: Clickpost's answer could not be read for "
            f"{cadence.unreadable_give_up_hours:g} h ({state.unreadable_reason})"
        )
    if state.first_polled_at is not None and now - state.first_polled_at >= timedelta(
        days=cadence.max_tracking_days
    ):
        return f"max age: tracked for {cadence.max_tracking_days:g} days without an end"
    return None
