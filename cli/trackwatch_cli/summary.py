"""The tables `trackwatch local` prints at the end: each shipment, then the totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from trackwatch.adapters.aws import AwsClients
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import ShipmentRecord
from trackwatch_cli.display import text
from trackwatch_cli.sandbox import SandboxServer
from trackwatch_cli.stack import DeployedStack


def by_order(
    keys: Sequence[ShipmentKey], records: dict[ShipmentKey, ShipmentRecord]
) -> list[tuple[str | None, list[ShipmentKey]]]:
    """The shipments grouped by their order_id, each group where its first member was; a
    shipment with no order is a group of its own."""
    groups: list[tuple[str | None, list[ShipmentKey]]] = []
    index: dict[str, int] = {}
    for key in keys:
        record = records.get(key)
        order_id = record.state.order_id if record else None
        if order_id is None:
            groups.append((None, [key]))
        elif order_id in index:
            groups[index[order_id]][1].append(key)
        else:
            index[order_id] = len(groups)
            groups.append((order_id, [key]))
    return groups


def shipments_table(
    keys: Sequence[ShipmentKey], records: dict[ShipmentKey, ShipmentRecord]
) -> Table:
    """One row per shipment, the boxes of one order together: its order, status, bucket,
    scans and whether it is still tracked."""
    table = Table(title="Shipments")
    # Waybills whole (they are what a reader looks for); an order id folds instead.
    longest = max((len(key.waybill) for key in keys), default=7)
    table.add_column("order", overflow="fold")
    table.add_column("waybill", no_wrap=True, min_width=min(longest, 30))
    for column in ("cp_id", "status", "bucket", "scans", "tracking"):
        table.add_column(column)
    for order_id, members in by_order(keys, records):
        several = len(members) > 1
        if several and table.row_count:
            table.add_section()
        for position, key in enumerate(members):
            record = records.get(key)
            current = record.state.current if record else None
            label = order_id or "-"
            if several:
                label = f"{order_id} ({len(members)} boxes)" if position == 0 else ""
            # Waybills, order ids and Clickpost's text are shown as text, never read as markup.
            table.add_row(
                text(label),
                text(key.waybill),
                str(key.cp_id),
                text((current.clickpost_status_description or "") if current else "-"),
                text((current.clickpost_status_bucket_description or "") if current else "-"),
                str(record.state.scan_count) if record else "-",
                text((record.stop_reason or "active") if record else "unknown"),
            )
        if several:
            table.add_section()
    return table


def dead_letters(clients: AwsClients, stack: DeployedStack) -> int:
    """Messages waiting in every dead-letter and failure queue of the stack."""
    total = 0
    for name, url in stack.outputs.items():
        if name.endswith("DeadLetterQueueUrl") or name == "StreamFailureQueueUrl":
            attributes = clients.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            total += int(attributes["ApproximateNumberOfMessages"])
    return total


def totals_table(
    polls: int,
    sandbox: SandboxServer | None,
    events: Sequence[dict[str, Any]],
    notifications: Sequence[dict[str, Any]],
    dead: int,
) -> Table:
    """Poll messages, Clickpost requests, events by type, messages by channel, dead letters."""
    totals = Table(title="Totals")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    totals.add_row("poll messages handled", str(polls))
    if sandbox is not None:
        requests = sandbox.requests
        totals.add_row("Clickpost requests", str(len(requests)))
        totals.add_row("AWBs asked about", str(sum(len(r.waybills) for r in requests)))
    for event_type, count in sorted(Counter(e["event_type"] for e in events).items()):
        totals.add_row(event_type, str(count))
    for channel, count in sorted(Counter(n["channel"] for n in notifications).items()):
        totals.add_row(f"{channel} sent", str(count))
    totals.add_row("messages in dead-letter queues", str(dead))
    return totals


def print_summary(
    console: Console,
    keys: Sequence[ShipmentKey],
    records: dict[ShipmentKey, ShipmentRecord],
    totals: Table,
) -> None:
    """Both tables."""
    console.print(shipments_table(keys, records))
    console.print(totals)
