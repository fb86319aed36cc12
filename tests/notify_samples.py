"""Sample events and recipients shared by the notifier tests (fixed, so golden files hold)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.factories import CATALOGUE
from trackwatch.data import load_renderer, load_rules
from trackwatch.models.events import (
    EVENT_ADAPTER,
    ORDER_EVENT_ADAPTER,
    OrderEvent,
    ShipmentEvent,
    TopicEvent,
    event_id,
    order_event_id,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import Delivery, Recipient

IST = ZoneInfo("Asia/Kolkata")
KEY = ShipmentKey.of(4, "4210610508756")
PHONE = "+919876543210"
EMAIL = "priya.sharma@example.in"
OCCURRED = datetime(2026, 11, 27, 11, 0, tzinfo=IST)
#: The packaged notification rules and templates, read once.
RULES = load_rules(CATALOGUE)
RENDERER = load_renderer()

#: kind → a status_changed code that makes it (None: the kind has its own event type).
STATUS_OF_KIND: dict[str, int | None] = {
    "shipped": 4,
    "out_for_delivery": 6,
    "delivered": 8,
    "rto_started": 11,
    "failed_delivery": None,
    "stuck": None,
    "delay_predicted": None,
}
#: order kind → the stage of the order.status_changed that makes it (None: its own type).
STAGE_OF_KIND: dict[str, str | None] = {
    "order_shipped": "shipped",
    "order_out_for_delivery": "out_for_delivery",
    "order_delivered": "delivered",
    "order_partially_delivered": None,
}
ORDER_ID = "ORD-1042"
#: The sample order's three parcels: ours (KEY), and two siblings on another carrier.
SIBLINGS = (ShipmentKey.of(5, "BD77120001"), ShipmentKey.of(5, "BD77120002"))
_STATUS_TEXT = {4: "PickedUp", 6: "OutForDelivery", 8: "Delivered", 11: "RTORequested"}
_BUCKET = {4: 2, 6: 4, 8: 6, 11: 8}


def envelope(event_type: str, change: str, occurred: datetime = OCCURRED) -> dict[str, Any]:
    return {
        "event_id": event_id(KEY.cp_id, KEY.waybill, event_type, change),
        "waybill": KEY.waybill,
        "cp_id": KEY.cp_id,
        "order_id": "ORD-1042",
        "courier_name": "Delhivery",
        "occurred_at": occurred.isoformat(),
        "detected_at": occurred.isoformat(),
        "event_type": event_type,
    }


def status_changed(code: int, change: str = "", occurred: datetime = OCCURRED) -> ShipmentEvent:
    """A status_changed event to `code`; `change` makes a distinct event id."""
    return EVENT_ADAPTER.validate_python(
        {
            **envelope("shipment.status_changed", f"{code}|{change}", occurred),
            "from_bucket": 3,
            "from_bucket_description": "In transit",
            "to_bucket": _BUCKET.get(code, 3),
            "to_bucket_description": "x",
            "clickpost_status_code": code,
            "clickpost_status_description": _STATUS_TEXT.get(code, "InTransit"),
            "status": _STATUS_TEXT.get(code, "InTransit"),
            "location": "Bangalore_Hub",
            "remark": "",
            "is_terminal": code == 8,
        }
    )


def ndr_raised(change: str = "1", occurred: datetime = OCCURRED) -> ShipmentEvent:
    return EVENT_ADAPTER.validate_python(
        {
            **envelope("shipment.ndr_raised", change, occurred),
            "checkpoint_id": 9519481040,
            "attempt": 2,
            "ndr_bucket_code": 1,
            "ndr_description": "Customer Unavailable",
            "location": "Bangalore_Hub",
            "remark": "Customer not available",
        }
    )


def stuck(change: str = "0", occurred: datetime = OCCURRED) -> ShipmentEvent:
    return EVENT_ADAPTER.validate_python(
        {
            **envelope("shipment.stuck", change, occurred),
            "clickpost_status_code": 5,
            "clickpost_status_bucket": 3,
            "location": "Nagpur_Hub",
        }
    )


def delay_predicted(change: str = "2026-12-04", occurred: datetime = OCCURRED) -> ShipmentEvent:
    return EVENT_ADAPTER.validate_python(
        {
            **envelope("shipment.delay_predicted", change, occurred),
            "promised_delivery_date": "2026-12-04",
            "promise_source": "courier_partner_edd",
            "predicted_delivery_date": "2026-12-07",
            "expected_remaining_hours": 84.0,
            "status_since": occurred.isoformat(),
            "clickpost_status_code": 5,
            "clickpost_status_bucket": 3,
            "location": "Nagpur_Hub",
        }
    )


def scan_added() -> ShipmentEvent:
    return EVENT_ADAPTER.validate_python(
        {
            **envelope("shipment.scan_added", "scan"),
            "checkpoint_id": 1,
            "tracking_id": 1,
            "scan": {
                "clickpost_status_code": 6,
                "clickpost_status_description": "OutForDelivery",
                "clickpost_status_bucket": 4,
                "clickpost_status_bucket_description": "Out for delivery",
                "status": "OutForDelivery",
                "location": "Hub",
                "remark": "",
            },
            "is_terminal": False,
        }
    )


def order_event(
    event_type: str = "order.status_changed",
    stage: str = "shipped",
    standings: tuple[str, str, str] = ("shipped", "shipped", "placed"),
    occurred: datetime = OCCURRED,
) -> OrderEvent:
    """An event of the sample order of three parcels (KEY first), where they stand."""
    members = [
        {
            "cp_id": key.cp_id,
            "waybill": key.waybill,
            "standing": standing,
            "stage": standing
            if standing in ("placed", "shipped", "out_for_delivery")
            else ("delivered" if standing == "delivered" else "out_for_delivery"),
            "clickpost_status_code": None,
            "clickpost_status_description": None,
        }
        for key, standing in zip((KEY, *SIBLINGS), standings, strict=True)
    ]
    order = ("placed", "shipped", "out_for_delivery", "delivered")
    reached = sum(1 for m in members if order.index(str(m["stage"])) >= order.index(stage))
    delivered = standings.count("delivered")
    body: dict[str, Any] = {
        "event_id": order_event_id(ORDER_ID, event_type, f"{stage}|{reached}"),
        "order_id": ORDER_ID,
        "occurred_at": occurred.isoformat(),
        "detected_at": occurred.isoformat(),
        "event_type": event_type,
        "milestone": "placed",
        "total": 3,
        "counts": {s: standings.count(s) for s in sorted(set(standings))},
        "members": members,
    }
    if event_type == "order.status_changed":
        body.update({"stage": stage, "reached": reached, "newly_reached": []})
    else:
        body["delivered"] = delivered
    return ORDER_EVENT_ADAPTER.validate_python(body)


def sample_event(kind: str) -> TopicEvent:
    """The fixed sample event of one kind."""
    if kind in STAGE_OF_KIND:
        stage = STAGE_OF_KIND[kind]
        if stage is None:
            return order_event(
                "order.partially_delivered", standings=("delivered", "delivered", "lost")
            )
        standings = {
            "shipped": ("shipped", "shipped", "placed"),
            "out_for_delivery": ("out_for_delivery", "out_for_delivery", "shipped"),
            "delivered": ("delivered", "delivered", "out_for_delivery"),
        }[stage]
        return order_event(stage=stage, standings=standings)
    code = STATUS_OF_KIND[kind]
    if code is not None:
        return status_changed(code)
    if kind == "delay_predicted":
        return delay_predicted()
    return ndr_raised() if kind == "failed_delivery" else stuck()


def recipient(language: str = "en", **update: Any) -> Recipient:
    """A customer with both addresses, nothing sent yet."""
    return Recipient(
        key=KEY,
        phone=PHONE,
        email=EMAIL,
        language=language,
        order_id=ORDER_ID,
        courier_name="Delhivery",
        expected_delivery=date(2026, 12, 4),
    ).model_copy(update=update)


def sms_record(state_at: datetime, **update: Any) -> Delivery:
    """The notification record of an out-for-delivery SMS, `pending` unless told."""
    return Delivery(
        event_id=status_changed(6).event_id,
        channel="sms",
        key=KEY,
        kind="out_for_delivery",
        language="en",
        event=status_changed(6),
        state_at=state_at,
    ).model_copy(update=update)
