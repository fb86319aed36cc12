"""The shipments table's item layout on DynamoDB (moto): what registration and a change
store, and an item in the layout before (checkpoints in ``seen``, the key's parts beside
``pk``) read and moved to today's by its next change."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bench.emulator import item_size  # DynamoDB's sizing rules, as the bench bills them
from tests.integration.conftest import create_keyed_table, emulated_aws
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.shipments_table import ShipmentsTable, to_item
from trackwatch.logic.diff import seen_key
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import Contact, RegistrationWrite, StateChange
from trackwatch.models.state import ShipmentState

TABLE = "shipments"
KEY = ShipmentKey(cp_id=4, waybill="PD0400000000")
IST = timezone(timedelta(hours=5, minutes=30))
#: Sixty checkpoints three hours apart: a long haul's memory.
SEEN = {seen_key(f"checkpoint-{n}"): 1_764_000_000 + 10_800 * n for n in range(60)}


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    with emulated_aws() as clients:
        create_keyed_table(clients, TABLE)
        yield clients


def stored(clients: AwsClients) -> dict[str, Any]:
    item: dict[str, Any] = clients.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": KEY.pk}})[
        "Item"
    ]
    return item


def register(table: ShipmentsTable, metadata: dict[str, str]) -> None:
    table.save_registration(
        RegistrationWrite(
            key=KEY,
            expected_version=None,
            contact=Contact(language="hi", channels=("sms",)),
            metadata=metadata,
            state=ShipmentState(),
            due_key="transit#29354160#07",
            registered_at=datetime(2026, 11, 25, 11, 30, 0, 123456, tzinfo=IST),
        )
    )


def test_a_registration_stores_the_key_once_the_time_to_the_second_and_no_empty_map(
    clients: AwsClients,
) -> None:
    table = ShipmentsTable(TABLE, clients.dynamodb)

    register(table, {})

    item = stored(clients)
    assert "cp_id" not in item and "waybill" not in item and "metadata" not in item
    assert item["registered_at"] == {"S": "2026-11-25T06:00:00Z"}
    record = table.get(KEY)
    assert record is not None and record.key == KEY and record.metadata == {}
    assert record.registered_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_registering_again_without_metadata_removes_the_map(clients: AwsClients) -> None:
    table = ShipmentsTable(TABLE, clients.dynamodb)
    register(table, {"channel": "web"})
    assert stored(clients)["metadata"] == {"M": {"channel": {"S": "web"}}}

    table.save_registration(
        RegistrationWrite(key=KEY, expected_version=1, contact=Contact(), metadata={})
    )

    assert "metadata" not in stored(clients)
    record = table.get(KEY)
    assert record is not None and record.metadata == {} and record.version == 2


def test_a_sixty_scan_change_fits_one_write_unit(clients: AwsClients) -> None:
    # Given a registered shipment
    table = ShipmentsTable(TABLE, clients.dynamodb)
    register(table, {})

    # When a change stores sixty checkpoints
    state = ShipmentState(order_id="ORDPD0400000000", seen=SEEN, scan_count=60)
    table.commit(StateChange(key=KEY, expected_version=1, state=state, due_key="transit#1#07"))

    # Then they are back with their times, about 8 bytes each, and the item is one unit
    item = stored(clients)
    assert len(item["ckpts"]["B"]) == 1 + 1 + 6 * 60 + 5 + 2 * 59
    assert item_size(item) <= 1024
    record = table.get(KEY)
    assert record is not None and record.state == state


def test_an_item_in_the_layout_before_is_read_and_its_next_change_moves_it(
    clients: AwsClients,
) -> None:
    # Given an item written before `ckpts`: ten bytes a checkpoint in `seen`, the key's parts
    table = ShipmentsTable(TABLE, clients.dynamodb)
    register(table, {})
    old = ShipmentState(order_id="ORD-1", seen=dict(list(SEEN.items())[:5]))
    clients.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": KEY.pk}},
        UpdateExpression="SET seen = :seen, cp_id = :cp_id, waybill = :waybill REMOVE ckpts",
        ExpressionAttributeValues=to_item(
            {
                ":seen": b"".join(
                    struct.pack(">6sI", base64.urlsafe_b64decode(key), epoch)
                    for key, epoch in old.seen.items()
                ),
                ":cp_id": 4,
                ":waybill": KEY.waybill,
            }
        ),
    )
    record = table.get(KEY)
    assert record is not None and record.state.seen == old.seen

    # When its next change is committed
    table.commit(
        StateChange(
            key=KEY,
            expected_version=record.version,
            state=record.state.model_copy(update={"seen": SEEN}),
            due_key="transit#1#07",
        )
    )

    # Then the checkpoints live in `ckpts` alone
    item = stored(clients)
    assert "seen" not in item and "ckpts" in item
    after = table.get(KEY)
    assert after is not None and after.state.seen == SEEN
