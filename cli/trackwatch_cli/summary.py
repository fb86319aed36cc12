"""The tables `trackwatch local` prints at the end: each shipment, then the totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from trackwatch.adapters.aws import AwsClients
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence
from trackwatch.models.record import ShipmentRecord
from trackwatch_cli.display import text
from trackwatch_cli.stack import DeployedStack

#: Shipments listed one per row; a longer run lists these and counts the rest by status.
SHOWN = 50
DISPLAY_ZONE = ZoneInfo("Asia/Kolkata")


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(DISPLAY_ZONE):%d %b %H:%M}"


def tracking(record: ShipmentRecord, cadence: Cadence) -> str:
    """Whether and until when a shipment is polled, in words.

    A delivered (or otherwise finished) shipment is still polled through its grace
    period, for late scans and reversals; an unknown waybill until trackwatch gives up.
    """
    if record.stop_reason:
        return record.stop_reason
    state = record.state
    if state.is_terminal and state.terminal_at is not None:
        ends = state.terminal_at + timedelta(hours=cadence.terminal_grace_hours)
        return f"grace period until {_when(ends)}"
    if state.invalid_since is not None:
        ends = state.invalid_since + timedelta(hours=cadence.invalid_give_up_hours)
        return f"unknown to Clickpost; retried until {_when(ends)}"
    return "active"


def by_order(
    keys: Sequence[ShipmentKey], records: Mapping[ShipmentKey, ShipmentRecord]
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
    keys: Sequence[ShipmentKey],
    records: Mapping[ShipmentKey, ShipmentRecord],
    cadence: Cadence,
    *,
    total: int | None = None,
) -> Table:
    """One row per shipment, the boxes of one order together: its order, status, bucket,
    scans and whether it is still tracked. `total`: how many shipments there are, when
    `keys` lists only the first of them."""
    more = (total or len(keys)) - len(keys)
    title = "Shipments" + (f" (the first {len(keys):,} of {total:,})" if more > 0 else "")
    table = Table(title=title)
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
                text(tracking(record, cadence) if record else "unknown"),
            )
        if several:
            table.add_section()
    return table


def dead_letters(clients: AwsClients, stack: DeployedStack) -> int:
    """Messages waiting in every dead-letter and failure queue of the stack (read at once:
    the summary after Ctrl-C has little time)."""
    urls = [
        url
        for name, url in stack.outputs.items()
        if name.endswith("DeadLetterQueueUrl") or name == "StreamFailureQueueUrl"
    ]

    def depth(url: str) -> int:
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        return sum(pool.map(depth, urls))


def totals_table(
    counts: Mapping[str, int],
    event_types: Counter[str],
    channels: Counter[str],
    dead: int,
) -> Table:
    """`counts` (poll messages, AWBs polled, Clickpost requests, ...) in order, then events
    by type, messages by channel and dead letters."""
    totals = Table(title="Totals")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for what, count in counts.items():
        totals.add_row(what, f"{count:,}")
    for event_type, count in sorted(event_types.items()):
        totals.add_row(event_type, f"{count:,}")
    for channel, count in sorted(channels.items()):
        totals.add_row(f"{channel} sent", f"{count:,}")
    totals.add_row("messages in dead-letter queues", f"{dead:,}")
    return totals


def print_summary(console: Console, shipments: Table, totals: Table) -> None:
    """Both tables."""
    console.print(shipments)
    console.print(totals)
