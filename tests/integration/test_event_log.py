"""The event log's items on moto: one packed item per change, earlier items still read."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from bench.emulator import item_size  # DynamoDB's sizing rules, as the bench bills them
from tests.integration.conftest import emulated_aws
from tests.notify_samples import KEY, ndr_raised, scan_added, status_changed, stuck
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.event_log import EventLogTable
from trackwatch.adapters.packing import unpack
from trackwatch.models.events import EVENT_LIST_ADAPTER

TABLE = "event-log"


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    with emulated_aws() as aws:
        aws.dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        yield aws


def wire(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the wire carries it (binary as base64), which the bench's sizing reads."""
    return {k: {"B": base64.b64encode(v["B"]).decode()} if "B" in v else v for k, v in item.items()}


def test_a_change_is_one_packed_item_under_one_write_unit_and_reads_back(
    clients: AwsClients,
) -> None:
    # Given a change of four events (what a failed delivery attempt brings)
    change = [scan_added(), status_changed(6, "ndr"), ndr_raised(), stuck()]
    log = EventLogTable(TABLE, clients.dynamodb)

    # When it is logged
    log.append([change])

    # Then one item holds it, packed with the preset dictionary (zlib's FDICT flag), in
    # fewer bytes than zlib alone and under DynamoDB's 1 KB write unit
    (item,) = clients.dynamodb.scan(TableName=TABLE)["Items"]
    stored = item["events"]["B"]
    document = EVENT_LIST_ADAPTER.dump_json(change)
    assert stored[1] & 0x20, "not packed with the preset dictionary"
    assert unpack(stored) == document
    assert len(stored) < len(zlib.compress(document))
    assert item_size(wire(item)) <= 1024
    # and the shipment's history is the change, event for event
    assert {e.event_id for e in log.history(KEY)} == {e.event_id for e in change}


def test_an_item_compressed_with_zlib_alone_still_reads(clients: AwsClients) -> None:
    # Given an item of the earlier encoding (zlib without a dictionary)
    change = [status_changed(6)]
    log = EventLogTable(TABLE, clients.dynamodb)
    log.append([change])
    (item,) = clients.dynamodb.scan(TableName=TABLE)["Items"]
    item["events"] = {"B": zlib.compress(EVENT_LIST_ADAPTER.dump_json(change))}
    clients.dynamodb.put_item(TableName=TABLE, Item=item)

    # When the history is read, then the event is there as published
    assert log.history(KEY) == change
