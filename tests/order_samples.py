"""Builders for orders: members' changes as the roll-up reads them, and the stage table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import CATALOGUE
from trackwatch.data import load_order_stages
from trackwatch.logic.orders import OrderStageTable
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.orders import MemberChange, MemberStatus

#: The packaged stage table, read once.
STAGES = load_order_stages(CATALOGUE)
ORDER = "ORD-3BOX"
T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)

# code → (description, bucket, bucket description, terminal)
CODES: dict[int, tuple[str, int, str, bool]] = {
    1: ("OrderPlaced", 1, "Order Placed", False),
    4: ("PickedUp", 2, "Shipped", False),
    5: ("InTransit", 3, "In transit", False),
    6: ("OutForDelivery", 4, "Out for delivery", False),
    8: ("Delivered", 6, "Delivered", True),
    9: ("FailedDelivery", 5, "Failed delivery", False),
    11: ("RTORequested", 8, "Returns", False),
    14: ("RTODelivered", 8, "Returns", True),
    16: ("Lost", 7, "Lost", True),
    21: ("RTOInTransit", 8, "Returns", False),
    29: ("BrandNewStatus", 3, "In transit", False),
}


def status(code: int | None) -> MemberStatus | None:
    """The member status a code means (None: no status yet)."""
    if code is None:
        return None
    description, bucket, bucket_description, terminal = CODES[code]
    return MemberStatus(
        clickpost_status_code=code,
        clickpost_status_description=description,
        clickpost_status_bucket=bucket,
        clickpost_status_bucket_description=bucket_description,
        is_terminal=terminal,
    )


def change(
    waybill: str,
    version: int,
    minutes: float,
    code: int | None,
    *,
    order_id: str | None = ORDER,
    previous_order_id: str | None = ORDER,
    cp_id: int = 4,
) -> MemberChange:
    """A write of shipment (cp_id, waybill), `minutes` after T0."""
    return MemberChange(
        key=ShipmentKey.of(cp_id, waybill),
        version=version,
        at=T0 + timedelta(minutes=minutes),
        order_id=order_id,
        previous_order_id=previous_order_id if version > 1 else None,
        status=status(code),
    )


def table() -> OrderStageTable:
    """The packaged stage table."""
    return STAGES
