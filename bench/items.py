"""Item sizes at realistic journey lengths: what a shipment with 8, 30 or 60 scans stores.

Built with the product's own encoders (`encode_state`, `encode_outbox`, the event log's
item) from a journey of that many scans, and sized by the emulator's rules
(`bench.emulator.item_size`), so the cost model's units at each length are computed from
real items, not assumed. The change priced is the last scan of the journey arriving: the
item before it (N - 1 scans and the previous change's outbox) and after it.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.emulator import item_size
from bench.parse_diff import call_body, long_haul
from trackwatch.adapters.event_log import encode_change, sort_key
from trackwatch.adapters.shipments_table import (
    contact_value,
    encode_outbox,
    encode_state,
    stored_time,
    to_item,
)
from trackwatch.data import load_catalogue
from trackwatch.logic.diff import diff
from trackwatch.models.clickpost import DEFAULT_SOURCE_TIMEZONE, parse_track_order
from trackwatch.models.policy import zone
from trackwatch.models.record import Contact
from trackwatch.models.state import ShipmentState

#: DynamoDB's units: writes per 1 KB, reads per 4 KB (halved when eventually consistent).
WRITE_BLOCK = 1024
READ_BLOCK = 4096
#: Per-item overhead DynamoDB adds to stored bytes (its pricing page: 100 bytes).
STORAGE_OVERHEAD = 100


@dataclass(frozen=True)
class ItemSizes:
    """One shipment's items at one journey length, in bytes, and the units they cost."""

    scans: int
    #: The shipments table's item as a poll reads it (state, seen, last outbox, contact...).
    item_bytes: int
    #: The larger of the item before and after a change (what the UpdateItem is billed on).
    change_bytes: int
    #: The event log's item for that change.
    event_log_bytes: int
    #: The naive design's item: the same attributes, its state as plain JSON.
    naive_bytes: int

    @property
    def poll_rru(self) -> float:
        """An eventually consistent read of the item (BatchGetItem)."""
        return max(1, math.ceil(self.item_bytes / READ_BLOCK)) / 2

    @property
    def change_wru(self) -> int:
        """The UpdateItem of a change on the shipments table (the index's share apart)."""
        return max(1, math.ceil(self.change_bytes / WRITE_BLOCK))

    @property
    def event_log_wru(self) -> int:
        """The event log's PutItem of that change."""
        return max(1, math.ceil(self.event_log_bytes / WRITE_BLOCK))

    @property
    def naive_put_wru(self) -> int:
        """The naive PutItem of every poll."""
        return max(1, math.ceil(self.naive_bytes / WRITE_BLOCK))

    @property
    def naive_scan_rru(self) -> float:
        """The naive Scan's share for this item (a Scan is billed on the bytes it reads)."""
        return self.naive_bytes / READ_BLOCK / 2


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    """`item` as it travels (binary values base64-encoded), which `item_size` measures."""
    return {
        name: {"B": base64.b64encode(bytes(value["B"])).decode()} if "B" in value else value
        for name, value in item.items()
    }


def _item(state: ShipmentState, events: list[Any], seq: int) -> dict[str, Any]:
    """The shipments table's item, with the attributes registration and polling leave."""
    now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    plain: dict[str, Any] = {
        "pk": "4#PD0400000000",
        "version": seq + 2,
        **encode_state(state),
        "registered_at": stored_time(now - timedelta(days=2)),
        # A contact as registration stores it (no phone or e-mail here: a reference).
        "contact": contact_value(Contact(language="hi", channels=("sms", "email"))),
        "due_key": "transit#29354160#07",
    }
    if events:
        plain["outbox"] = encode_outbox(events)
        plain["outbox_seq"] = seq
    return _wire(to_item(plain))


def sizes(scans: int) -> ItemSizes:
    """The items of a shipment whose journey has reached `scans` scans."""
    catalogue = load_catalogue()
    tz = zone(DEFAULT_SOURCE_TIMEZONE)
    now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    before_body, keys = call_body(long_haul(scans - 1))
    after_body, _ = call_body(long_haul(scans))
    key = keys[0]
    earlier = diff(
        None, key, parse_track_order(before_body, tz).result[key.waybill], now, catalogue
    )
    later = diff(
        earlier.state,
        key,
        parse_track_order(after_body, tz).result[key.waybill],
        now + timedelta(hours=3),
        catalogue,
    )
    # The outbox the item held before: a change of the same kind (one scan's events).
    previous_events = list(later.events)
    before = _item(earlier.state, previous_events, scans - 1)
    after = _item(later.state, list(later.events), scans)
    log_item = _wire(
        {
            "pk": {"S": key.pk},
            "sk": {"S": sort_key(later.events)},
            "events": {"B": encode_change(later.events)},
            "expires_at": {"N": "1800000000"},
        }
    )
    naive_plain = {
        k: v for k, v in after.items() if k not in ("state", "ckpts", "outbox", "outbox_seq")
    }
    naive_plain["naive_state"] = {"S": later.state.model_dump_json(exclude_defaults=True)}
    naive_plain["last_polled_at"] = {"S": now.isoformat()}
    return ItemSizes(
        scans=scans,
        item_bytes=item_size(after),
        change_bytes=max(item_size(before), item_size(after)),
        event_log_bytes=item_size(log_item),
        naive_bytes=item_size(naive_plain),
    )


def run(lengths: tuple[int, ...] = (8, 30, 60)) -> list[ItemSizes]:
    """The sizes at each journey length."""
    return [sizes(n) for n in lengths]
