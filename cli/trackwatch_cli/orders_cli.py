"""`trackwatch orders ...`: show an order (the shipments that share an order_id).

Same stack, same connection and the same service as the HTTP API's GET /orders/{order_id}.
Every value but our own labels comes from outside (an order id, a waybill, Clickpost's
text) and is printed through `display.text`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from trackwatch.errors import InvalidInputError
from trackwatch.models.order_views import OrderView
from trackwatch.models.registration import parse_order_id
from trackwatch_cli.display import text
from trackwatch_cli.shipments_cli import (
    LocalOption,
    RegionOption,
    StackOption,
    _run,
    _target,
    console,
    fail,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Orders: the shipments that share an order_id, rolled up.",
)

OrderIdArgument = Annotated[str, typer.Argument(help="The order_id, as the shipments carry it.")]


def _order_id(value: str) -> str:
    try:
        return parse_order_id(value)
    except InvalidInputError as exc:
        fail(exc, 2)


@app.command()
def show(
    order_id: OrderIdArgument,
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON the API gives.")] = False,
) -> None:
    """An order's shipments, where each stands, counts, milestone and timeline."""
    checked = _order_id(order_id)
    target = _target(stack, local, region)
    if target.orders is None:
        fail("this stack has no orders (no OrdersTableName output): deploy it again", 2)
    view = _run(target.orders.show, checked)
    if as_json:
        console.print_json(view.model_dump_json())
        return
    for table in order_tables(view):
        console.print(table)


def order_tables(view: OrderView) -> list[Table]:
    """The order as tables: its facts, its members, and its timeline if it has one."""
    facts = Table(show_header=False, title=text(f"order {view.order_id}"))
    facts.add_row("shipments", str(view.total))
    facts.add_row("milestone", text(view.milestone or "-"))
    facts.add_row("complete", "yes" if view.complete else "no")
    facts.add_row(
        "counts", text(", ".join(f"{n} {standing}" for standing, n in view.counts.items()))
    )
    facts.add_row("told until", text(view.told_until.isoformat() if view.told_until else "-"))
    members = Table(title="shipments")
    for column in ("cp_id", "waybill", "standing", "furthest", "status"):
        members.add_column(column)
    for member in view.members:
        members.add_row(
            str(member.cp_id),
            text(member.waybill),
            text(member.standing),
            text(member.stage),
            text(member.clickpost_status_description or "-"),
        )
    tables = [facts, members]
    if view.timeline:
        timeline = Table(title="timeline")
        for column in ("time", "what", "shipment", "detail"):
            timeline.add_column(column)
        for entry in view.timeline:
            shipment = f"{entry.cp_id} {entry.waybill}" if entry.waybill else "-"
            if entry.what == "order.status_changed":
                detail = f"{entry.reached} of {entry.total} {entry.stage}"
            elif entry.what.startswith("order."):
                detail = f"{entry.total} shipments"
            else:
                detail = entry.clickpost_status_description or entry.stage or "-"
            timeline.add_row(entry.at.isoformat(), text(entry.what), text(shipment), text(detail))
        tables.append(timeline)
    return tables
