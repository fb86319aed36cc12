"""Loading a fresh local stack from a CSV: batched creates that overwrite nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.shipments_stack import ShipmentsStack, shipments_stack
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.registration import Outcome, Registration, parse_entry
from trackwatch_cli.local_input import check_shipments_csv, csv_registrations, register_stream

__all__ = ["shipments_stack"]  # the fixture, for pytest

LANGUAGES = frozenset({"en", "hi"})


def test_a_csv_is_registered_with_batched_writes_and_no_stored_shipment_is_overwritten(
    shipments_stack: ShipmentsStack, tmp_path: Path
) -> None:
    # Given one shipment already stored (registered the conditional way, with a phone)
    service = shipments_stack.local.container().registration_service
    existing = parse_entry({"waybill": "OLD0001", "cp_id": 4, "phone": "9876543210"}, LANGUAGES)
    assert isinstance(existing, Registration)
    service.register([existing])
    table = shipments_stack.local.container().shipments
    before = table.get(ShipmentKey.of(4, "OLD0001"))
    # and a CSV of 2,500 rows, one of which is that shipment without a phone
    path = tmp_path / "shipments.csv"
    lines = ["waybill,cp_id,email"]
    lines += [f"NEW{i:05d},{4 + i % 3},b{i}@example.com" for i in range(2_499)]
    lines.append("OLD0001,4,")
    path.write_text("\n".join(lines) + "\n")
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    client = shipments_stack.clients.dynamodb
    client.meta.events.register("before-call.dynamodb", count)

    # When it is checked, then registered a chunk at a time into the stack
    check = check_shipments_csv(path, LANGUAGES)
    done = register_stream(service, csv_registrations(check, LANGUAGES))
    client.meta.events.unregister("before-call.dynamodb", count)

    # Then every row was registered, the new ones by BatchWriteItem, and
    # the stored one kept what it had
    assert check.rows == done.rows == 2_500
    assert done.outcomes == {Outcome.CREATED.value: 2_499, Outcome.UNCHANGED.value: 1}
    # (25 a request; a worker's last request of a chunk may be short)
    assert 100 <= calls.count("BatchWriteItem") <= 110
    assert "PutItem" not in calls
    assert table.get(ShipmentKey.of(4, "OLD0001")) == before
    assert len(table.active()) == 2_500
    assert [k.waybill for k in done.keys[:2]] == ["NEW00000", "NEW00001"]
