"""Putting a shipment under tracking (the minimal path the pipeline needs)."""

from __future__ import annotations

from datetime import datetime

from trackwatch.adapters.shipments_table import ShipmentsTable
from trackwatch.config import cadence_settings
from trackwatch.logic.cadence import CadenceClass, due_key
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import Contact


def register_new(
    table: ShipmentsTable,
    key: ShipmentKey,
    now: datetime,
    contact: Contact | None = None,
    order_id: str | None = None,
) -> bool:
    """Track `key` from now on (True if it was new); a new shipment starts in the NEW class."""
    return table.register(
        key,
        now=now,
        due_key=due_key(key.pk, CadenceClass.NEW, cadence_settings()),
        contact=contact,
        order_id=order_id,
    )
