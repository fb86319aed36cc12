"""`trackwatch delays ...`: what the delay checks decide with.

`trackwatch delays thresholds` prints the table the daily threshold job last wrote (the
p90 of the gaps between scans, and the median time to delivery, per carrier and status)
next to the rules file's thresholds, and which of the two a poller uses. It reads the
stack as `trackwatch shipments` does (`--stack NAME` or `--local`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import bootstrap
from trackwatch.config import Settings
from trackwatch.errors import TrackwatchError
from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.delays import DelayPolicy
from trackwatch.models.delays import DelayRules, ThresholdTable
from trackwatch_cli.shipments_cli import (
    LocalOption,
    RegionOption,
    StackOption,
    TargetError,
    describe,
    fail,
    open_stack,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Stuck and late shipments: the thresholds the checks use.",
)
console = Console()

#: The stack output naming the learned thresholds' table.
THRESHOLDS_OUTPUT = "DelayThresholdsTableName"


@dataclass(frozen=True)
class Thresholds:
    """What `trackwatch delays thresholds` shows: the learned table (None before the
    first run), the rules, and the status names."""

    learned: ThresholdTable | None
    rules: DelayRules
    calendar: BusinessCalendar
    catalogue: StatusCatalogue


@dataclass(frozen=True)
class ThresholdLine:
    """One carrier (None: all carriers) and status."""

    cp_id: int | None
    clickpost_status_code: int
    status: str
    dwell_samples: int | None
    learned_hours: float | None
    #: The rules file's threshold for this carrier and status.
    rule_hours: float
    #: What a poller uses for this carrier's shipments (None for the all-carriers line,
    #: which only stands in for a carrier's time to delivery).
    in_effect_hours: float | None
    source: str | None
    remaining_samples: int | None
    remaining_hours: float | None


def threshold_lines(view: Thresholds, carrier: int | None = None) -> list[ThresholdLine]:
    """A line per row of the learned table; before the first run, one per status the rules
    name. With `carrier`, only its lines and all carriers'."""
    return [line for line in _all_lines(view) if carrier is None or line.cp_id in (None, carrier)]


def _all_lines(view: Thresholds) -> list[ThresholdLine]:
    policy = DelayPolicy(view.calendar, view.rules, view.learned)
    dwell = view.rules.stuck_after_business_hours
    if view.learned is None:
        keys: list[tuple[int | None, int]] = [(None, code) for code in sorted(dwell.by_status)]
        keys += [
            (cp_id, code)
            for cp_id, table in sorted(dwell.by_carrier.items())
            for code in sorted(table)
        ]
        return [
            ThresholdLine(
                cp_id=cp_id,
                clickpost_status_code=code,
                status=view.catalogue.lookup(code).name,
                dwell_samples=None,
                learned_hours=None,
                rule_hours=dwell.hours_for(cp_id or 0, code),
                in_effect_hours=dwell.hours_for(cp_id or 0, code),
                source="rule",
                remaining_samples=None,
                remaining_hours=None,
            )
            for cp_id, code in keys
        ]
    lines = []
    for row in view.learned.rows:
        code = row.clickpost_status_code
        threshold = policy.threshold(row.cp_id, code) if row.cp_id is not None else None
        lines.append(
            ThresholdLine(
                cp_id=row.cp_id,
                clickpost_status_code=code,
                status=view.catalogue.lookup(code).name,
                dwell_samples=row.dwell_samples,
                learned_hours=row.dwell_hours,
                rule_hours=dwell.hours_for(row.cp_id or 0, code),
                in_effect_hours=threshold.hours if threshold else None,
                source=threshold.source if threshold else None,
                remaining_samples=row.remaining_samples,
                remaining_hours=row.remaining_hours,
            )
        )
    return lines


#: A cell with nothing in it.
NONE = "-"


def _hours(value: float | None) -> str:
    return NONE if value is None else f"{value:g}"


def render_thresholds(view: Thresholds, carrier: int | None = None) -> tuple[str, Table]:
    """(the heading line, the table) as printed."""
    learned = view.learned
    if learned is None:
        heading = (
            "No thresholds learned yet (the daily job has not run): the rules file's stand, "
            f"{view.rules.stuck_after_business_hours.default_hours:g} business hours for any "
            "status it does not name."
        )
    else:
        coverage = (
            "every shard"
            if learned.complete
            else f"a sample ({learned.shards_read} shards: the run's time ran out)"
        )
        heading = (
            f"Learned {learned.computed_at:%Y-%m-%d %H:%M %Z} from {learned.window_days} days "
            f"of the event log ({learned.items_read} entries, {coverage}): p"
            f"{learned.quantile * 100:g} of the business hours between scans where a carrier "
            f"and status had {learned.min_samples} samples or more, else the rule."
        )
    table = Table(title="Delay thresholds (business hours)")
    for column in ("carrier", "status", "samples", "learned", "rule", "in effect"):
        table.add_column(column, justify="right" if column != "status" else "left")
    table.add_column("to delivery (median)", justify="right")
    for line in threshold_lines(view, carrier):
        in_effect = (
            NONE if line.in_effect_hours is None else f"{line.in_effect_hours:g} ({line.source})"
        )
        table.add_row(
            "all" if line.cp_id is None else str(line.cp_id),
            f"{line.clickpost_status_code} {line.status}",
            NONE if line.dwell_samples is None else str(line.dwell_samples),
            _hours(line.learned_hours),
            _hours(line.rule_hours),
            in_effect,
            (
                NONE
                if line.remaining_hours is None
                else f"{line.remaining_hours:g} ({line.remaining_samples})"
            ),
        )
    return heading, table


def connect_thresholds(stack: str, clients: AwsClients) -> Thresholds:
    """The stack's learned table (its output names it) and the packaged data files."""
    outputs, _ = describe(stack, clients)
    name = outputs.get(THRESHOLDS_OUTPUT)
    if not name:
        raise TargetError(f"stack {stack!r} has no output {THRESHOLDS_OUTPUT}")
    container = bootstrap(Settings({"DELAY_THRESHOLDS_TABLE_NAME": name}), clients=clients)
    return Thresholds(
        learned=container.thresholds.load(),
        rules=container.delay_rules,
        calendar=container.calendar,
        catalogue=container.catalogue,
    )


@app.command()
def thresholds(
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
    carrier: Annotated[
        int | None, typer.Option("--carrier", min=1, help="Only this cp_id (and all carriers).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the lines as JSON.")] = False,
) -> None:
    """Show the thresholds the daily job learned, the rules', and which one is used."""
    try:
        view = open_stack(stack, local, region, connect_thresholds)
    except TrackwatchError as exc:
        fail(exc, 1)
    if as_json:
        body = {
            "learned_at": view.learned.computed_at.isoformat() if view.learned else None,
            "complete": view.learned.complete if view.learned else None,
            "lines": [asdict(line) for line in threshold_lines(view, carrier)],
        }
        console.print_json(json.dumps(body))
        return
    heading, table = render_thresholds(view, carrier)
    console.print(heading, markup=False, highlight=False)
    console.print(table)
