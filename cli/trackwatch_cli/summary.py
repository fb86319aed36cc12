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


def shipments_table(
    keys: Sequence[ShipmentKey], records: dict[ShipmentKey, ShipmentRecord]
) -> Table:
    """One row per shipment: its status, bucket, scans and whether it is still tracked."""
    table = Table(title="Shipments")
    for column in ("waybill", "cp_id", "status", "bucket", "scans", "tracking"):
        table.add_column(column)
    for key in keys:
        record = records.get(key)
        current = record.state.current if record else None
        # Waybills and Clickpost's text are shown as text, never read as markup.
        table.add_row(
            text(key.waybill),
            str(key.cp_id),
            text((current.clickpost_status_description or "") if current else "-"),
            text((current.clickpost_status_bucket_description or "") if current else "-"),
            str(record.state.scan_count) if record else "-",
            text((record.stop_reason or "active") if record else "unknown"),
        )
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
