"""Clickpost's status webhook, as far as trackwatch reads it.

Clickpost POSTs one JSON object per scan (all-status mode) or per milestone (selected
mode): top level `waybill`, `cp_id`, `clickpost_status_code`,
`clickpost_status_description`, `status`, `remark`, `location`, `timestamp`, and
`additional` (`latest_status`, `ndr_status_code`, `is_rvp`, ...). It has no event id and
no `checkpoint_id`, comes in no guaranteed order, and may come again. trackwatch takes
the shipment's identity and the status code from it and nothing else: the webhook is a
hint to poll, and the poll is what is diffed. Delivery-detail webhooks carry receiver
names and phone numbers, so nothing of the body is kept or logged beyond the waybill
and the status code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from trackwatch.errors import MalformedInputError
from trackwatch.models.change_feed import status_code
from trackwatch.models.keys import ShipmentKey, check_cp_id, check_waybill


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One request, as the handler reads it from API Gateway's event (headers lower case)."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class StatusWebhook:
    """The parts of one webhook trackwatch uses."""

    key: ShipmentKey
    clickpost_status_code: int | None


def read_webhook(body: bytes) -> StatusWebhook:
    """The webhook in `body`; InvalidInputError naming the field (never its value)."""
    try:
        document = json.loads(body.decode("utf-8", errors="replace"))
    except (json.JSONDecodeError, RecursionError):
        raise MalformedInputError("body", "not JSON") from None
    if not isinstance(document, dict):
        raise MalformedInputError("body", "not a JSON object")
    waybill = document.get("waybill")
    if isinstance(waybill, int) and not isinstance(waybill, bool):
        waybill = str(waybill)
    key = ShipmentKey.model_construct(
        cp_id=check_cp_id(document.get("cp_id")), waybill=check_waybill(waybill)
    )
    return StatusWebhook(
        key=key,
        clickpost_status_code=status_code(document.get("clickpost_status_code")),
    )
