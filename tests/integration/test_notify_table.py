"""A notifier's read on moto: the recipient, its channels' memory and its order's size in one
BatchGetItem."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import create_keyed_table, emulated_aws
from tests.order_fakes import roll_up_over
from tests.order_samples import change
from trackwatch.adapters.aws import AwsClients
from trackwatch.adapters.notify_table import NotifyTable
from trackwatch.adapters.orders_table import OrdersTable
from trackwatch.adapters.shipments_table import ShipmentsTable
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import Channel
from trackwatch.models.record import Contact, RegistrationWrite, StreamChange
from trackwatch.models.state import ShipmentState

SHIPMENTS, NOTIFICATIONS, ORDERS = "shipments", "notifications", "orders"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
EMAIL: tuple[Channel, ...] = ("email",)


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    with emulated_aws() as aws:
        for name in (SHIPMENTS, NOTIFICATIONS, ORDERS):
            create_keyed_table(aws, name)
        yield aws


def register(clients: AwsClients, waybill: str, order_id: str) -> ShipmentKey:
    key = ShipmentKey.of(4, waybill)
    ShipmentsTable(SHIPMENTS, clients.dynamodb).save_registration(
        RegistrationWrite(
            key=key,
            expected_version=None,
            contact=Contact(phone="+919812345678", email="a@example.com"),
            metadata={},
            state=ShipmentState(order_id=order_id),
            due_key="new#0",
            registered_at=NOW,
        )
    )
    return key


def test_the_order_size_comes_in_the_recipients_one_request(clients: AwsClients) -> None:
    # Given a box of an order of three (the roll-up's item), and a box of an order never rolled up
    box = register(clients, "W1", "ORD-3")
    lone = register(clients, "W9", "ORD-UNKNOWN")
    changes = {str(n): change(f"W{n}", 1, 0, None, order_id="ORD-3") for n in (1, 2, 3)}
    roll_up_over(OrdersTable(ORDERS, clients.dynamodb), changes).roll_up(
        [StreamChange(record_id=i, new_image=None, old_image=None) for i in changes]
    )
    store = NotifyTable(
        SHIPMENTS,
        NOTIFICATIONS,
        clients.dynamodb,
        ttl_s=86400,
        clock=lambda: NOW,
        orders_table=ORDERS,
    )
    requests: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        requests.append(event_name.rsplit(".", 1)[-1])

    clients.dynamodb.meta.events.register("before-call.dynamodb", count)

    # When the notifier reads each box with its order
    with_order = store.recipient(box, ("whatsapp", "sms"), "ORD-3")
    unknown = store.recipient(lone, ("whatsapp", "sms"), "ORD-UNKNOWN")
    without = store.recipient(box, EMAIL)

    # Then one request each, the order's size where the order has an item, and 0 elsewhere
    assert requests == ["BatchGetItem"] * 3
    assert with_order is not None and with_order.order_size == 3
    assert with_order.order_id == "ORD-3" and with_order.phone == "+919812345678"
    assert unknown is not None and unknown.order_size == 0
    assert without is not None and without.order_size == 0


def test_a_store_without_an_orders_table_refuses_to_guess_an_orders_size(
    clients: AwsClients,
) -> None:
    box = register(clients, "W1", "ORD-3")
    store = NotifyTable(SHIPMENTS, NOTIFICATIONS, clients.dynamodb, ttl_s=86400, clock=lambda: NOW)

    assert store.recipient(box, EMAIL) is not None
    with pytest.raises(ValueError, match="no orders table"):
        store.recipient(box, EMAIL, "ORD-3")
