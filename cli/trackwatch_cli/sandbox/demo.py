"""The sandbox's carriers and the fixed set of shipments the demo tracks."""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

#: cp_id -> courier_name known to the sandbox. Illustrative: this is the
#: sandbox's own table, not Clickpost's, and any other cp_id is answered 302.
DEFAULT_CARRIERS = MappingProxyType({4: "Delhivery", 5: "BlueDart", 6: "Ecom Express"})


class DemoShipment(NamedTuple):
    """A shipment the demo registers with the sandbox."""

    waybill: str
    cp_id: int
    journey: str
    #: The order it belongs to (None: an order of its own, named by the sandbox).
    order_id: str | None = None


#: The demo's multi-piece order: three boxes split across the three carriers, one delayed.
DEMO_ORDER = "SBX-ORDER-3BOX"


def demo_shipments() -> list[DemoShipment]:
    """One shipment per journey, spread over the sandbox's carriers, and one order of three
    boxes (one of them delayed); always the same."""
    return [
        DemoShipment("SBXDL0000001", 4, "delivered_smoothly"),
        DemoShipment("SBXDL0000002", 4, "failed_then_delivered"),
        DemoShipment("SBXDL0000003", 4, "invalid"),
        DemoShipment("SBXBD0000001", 5, "edd_change"),
        DemoShipment("SBXBD0000002", 5, "late_scan_after_delivery"),
        DemoShipment("SBXEE0000001", 6, "rto"),
        DemoShipment("SBXEE0000002", 6, "stuck"),
        # The delay checks' demos (they follow the local runtime's clock).
        DemoShipment("SBXDL0000004", 4, "stuck_in_transit"),
        DemoShipment("SBXBD0000003", 5, "lost_in_transit"),
        DemoShipment("SBXEE0000003", 6, "missed_promise"),
        DemoShipment("SBXMP0000001", 4, "delivered_smoothly", DEMO_ORDER),
        DemoShipment("SBXMP0000002", 5, "delivered_smoothly", DEMO_ORDER),
        DemoShipment("SBXMP0000003", 6, "delayed_then_delivered", DEMO_ORDER),
    ]
