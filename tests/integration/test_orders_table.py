"""The orders table's batch read on moto: every order that has an item, in chunks of a hundred."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import create_keyed_table, emulated_aws
from tests.order_fakes import roll_up_over
from tests.order_samples import change
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.orders_table import OrdersTable
from trackwatch.models.record import StreamChange

TABLE = "orders"


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    with emulated_aws() as aws:
        create_keyed_table(aws, TABLE)
        yield aws


def test_a_batch_read_finds_every_order_with_an_item_past_a_hundred(clients: AwsClients) -> None:
    # Given 150 orders rolled up (one box each), written through the table
    table = OrdersTable(TABLE, clients.dynamodb)
    changes = {str(n): change(f"W{n}", 1, 0, None, order_id=f"ORD-{n:03d}") for n in range(150)}
    roll_up_over(table, changes).roll_up(
        [StreamChange(record_id=i, new_image=None, old_image=None) for i in changes]
    )

    # When 150 known ids and 10 unknown ones are read in one call
    wanted = [f"ORD-{n:03d}" for n in range(160)]
    found = table.get_many(wanted)

    # Then every known order is there, as a GetItem reads it, and no unknown one
    assert sorted(found) == wanted[:150]
    for order_id in ("ORD-000", "ORD-099", "ORD-100", "ORD-149"):
        assert found[order_id] == table.get(order_id)
    assert found["ORD-120"].member_count == 1
