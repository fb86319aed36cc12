"""`trackwatch`: the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trackwatch.models.events import events_json_schema
from trackwatch_cli import delays_cli, orders_cli, shipments_cli
from trackwatch_cli.local import local_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(shipments_cli.app, name="shipments")
app.add_typer(orders_cli.app, name="orders")
app.add_typer(delays_cli.app, name="delays")
app.command()(shipments_cli.openapi)
app.command(name="local")(local_command)

EVENTS_SCHEMA_PATH = Path("docs/events.schema.json")


@app.callback()
def main() -> None:
    """trackwatch: know when a Clickpost shipment changes, and tell people."""


def render_events_schema() -> str:
    """The committed event schema's exact text."""
    return json.dumps(events_json_schema(), indent=2, sort_keys=True) + "\n"


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Where to write the JSON Schema.")] = EVENTS_SCHEMA_PATH,
) -> None:
    """Write the JSON Schema of every event (docs/events.schema.json)."""
    out.write_text(render_events_schema(), encoding="utf-8")
    typer.echo(f"wrote {out}")
