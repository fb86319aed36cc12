"""Builders for Clickpost results, shared by the tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from trackwatch.data import load_catalogue
from trackwatch.models.clickpost import AwbResult
from trackwatch.models.policy import Cadence

IST = ZoneInfo("Asia/Kolkata")
START = datetime(2026, 11, 1, 9, 0, tzinfo=IST)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=IST)
#: The packaged status catalogue, read once for every test.
CATALOGUE = load_catalogue()
#: The template's default cadence.
CADENCE = Cadence()

# code → (description, bucket, bucket description); buckets past 1, 2, 3, 6, 8 are assumed.
STATUSES: dict[int, tuple[str, int, str]] = {
    1: ("OrderPlaced", 1, "Order Placed"),
    4: ("PickedUp", 2, "Shipped"),
    5: ("InTransit", 3, "In transit"),
    6: ("OutForDelivery", 4, "Out for delivery"),
    8: ("Delivered", 6, "Delivered"),
    9: ("FailedDelivery", 5, "Failed delivery"),
    11: ("RTORequested", 8, "Returns"),
    14: ("RTODelivered", 8, "Returns"),
    21: ("RTOInTransit", 8, "Returns"),
    29: ("BrandNewStatus", 3, "In transit"),
    1004: ("DestinationHubIn", 3, "In transit"),
}


def scan(checkpoint_id: int | str | None, code: int, hours: float, **extra: Any) -> dict[str, Any]:
    """A scan dict as Clickpost sends it, `hours` after START."""
    description, bucket, bucket_description = STATUSES[code]
    return {
        "timestamp": (START + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S"),
        "location": extra.pop("location", "Hub"),
        "remark": extra.pop("remark", description),
        "status": description,
        "clickpost_status_code": code,
        "clickpost_status_description": description,
        "clickpost_status_bucket": bucket,
        "clickpost_status_bucket_description": bucket_description,
        "checkpoint_id": checkpoint_id,
        "tracking_id": 1,
        "created_at": (START + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S"),
        **extra,
    }


def latest_of(scans: list[dict[str, Any]]) -> dict[str, Any] | None:
    """latest_status as Clickpost derives it: the newest scan, without its ids."""
    if not scans:
        return None
    newest = max(scans, key=lambda s: (s["timestamp"], str(s["checkpoint_id"])))
    return {k: v for k, v in newest.items() if k not in ("checkpoint_id", "tracking_id")}


def result(
    scans: list[dict[str, Any]],
    *,
    latest: dict[str, Any] | bool | None = True,
    valid: bool = True,
    **additional: Any,
) -> AwbResult:
    """An AwbResult; `latest=True` derives latest_status from the scans."""
    latest_status = latest_of(scans) if latest is True else (latest or None)
    body: dict[str, Any] = {
        "latest_status": latest_status,
        "scans": scans,
        "valid": valid,
        "additional": {"order_id": "ORD-1", "courier_name": "Delhivery", **additional},
    }
    return AwbResult.model_validate(body, context={"source_tz": IST})
