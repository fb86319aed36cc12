"""`trackwatch shipments ...`: import a CSV of shipments, show, refresh, replay and stop one.

The commands talk to a deployed stack through boto3: they read the stack's
outputs (table, queue, topic) and parameters (cadence, languages) from
CloudFormation at whatever endpoint boto3 is configured with, so the same code
drives AWS (`--stack NAME`) and the local runtime (`--local`, or
AWS_ENDPOINT_URL pointing at its emulator). Every command goes through the same
services as the HTTP API, so the same rules apply.
"""

from __future__ import annotations

import csv
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from trackwatch.adapters.aws import AwsClients
from trackwatch.bootstrap import bootstrap
from trackwatch.config import Settings
from trackwatch.errors import InvalidInputError, TrackwatchError
from trackwatch.models.inputs import check_since
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.registration import Registration, Rejected, parse_entry
from trackwatch.services.orders import OrdersService
from trackwatch.services.registration import EntryResult
from trackwatch.services.shipments import ShipmentsService
from trackwatch_cli.display import message, redact, redact_url, text
from trackwatch_cli.endpoints import endpoints_file, read_endpoints

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Register and manage tracked shipments: import a CSV, show, refresh, replay, stop.",
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)

LOCAL_STACK = "trackwatch-local"
LOCAL_ENDPOINT = "http://127.0.0.1:5000"
REQUIRED_COLUMNS = ("waybill", "cp_id")
OPTIONAL_COLUMNS = (
    "order_id",
    "phone",
    "email",
    "language",
    "channels",
    "opt_out",
    "promised_delivery_date",
)
#: A list cell ("sms;email", "sms email", "sms|email").
_LIST_SEPARATORS = re.compile(r"[;| ]+")

#: Stack outputs, and the variable the functions read each one from.
_OUTPUT_SETTINGS = {
    "ShipmentsTableName": "SHIPMENTS_TABLE_NAME",
    "PollQueueUrl": "POLL_QUEUE_URL",
    "ShipmentEventsTopicArn": "EVENTS_TOPIC_ARN",
    "EventLogTableName": "EVENT_LOG_TABLE_NAME",
}
#: Stack parameters that the functions read as settings, and the variable each one is.
_PARAMETER_SETTINGS = {
    "CadenceOutForDeliveryMinutes": "CADENCE_OUT_FOR_DELIVERY_MINUTES",
    "CadenceTransitMinutes": "CADENCE_TRANSIT_MINUTES",
    "CadenceNewMinutes": "CADENCE_NEW_MINUTES",
    "CadenceGraceMinutes": "CADENCE_GRACE_MINUTES",
    "CadenceInvalidMinutes": "CADENCE_INVALID_MINUTES",
    "TerminalGraceHours": "TERMINAL_GRACE_HOURS",
    "InvalidGiveUpHours": "INVALID_GIVE_UP_HOURS",
    "UnreadableGiveUpHours": "UNREADABLE_GIVE_UP_HOURS",
    "MaxTrackingDays": "MAX_TRACKING_DAYS",
    "FutureScanMarginHours": "FUTURE_SCAN_MARGIN_HOURS",
    "DueShards": "DUE_SHARDS",
    "SupportedLanguages": "SUPPORTED_LANGUAGES",
    "EventLogRetentionDays": "EVENT_LOG_RETENTION_DAYS",
    "OrderWindowMinutes": "ORDER_WINDOW_MINUTES",
}
#: Outputs of a stack with orders (one deployed before them has none: its shipments are
#: still served).
_ORDER_OUTPUT_SETTINGS = {"OrdersTableName": "ORDERS_TABLE_NAME"}


class TargetError(RuntimeError):
    """The stack cannot be found or lacks an output these commands need."""


@dataclass(frozen=True)
class Target:
    """A deployed stack, as these commands use it."""

    service: ShipmentsService
    languages: frozenset[str]
    #: The orders service (None: the stack has no orders table).
    orders: OrdersService | None = None


def describe(stack: str, clients: AwsClients) -> tuple[dict[str, str], dict[str, str]]:
    """The stack's outputs and parameters, by name."""
    try:
        description = clients.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise TargetError(f"cannot read stack {stack!r}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue"))
        for p in description.get("Parameters", [])
    }
    return outputs, parameters


def connect(stack: str, clients: AwsClients) -> Target:
    """Read the stack's outputs and parameters; the container builds the service over them."""
    outputs, parameters = describe(stack, clients)
    missing = [name for name in _OUTPUT_SETTINGS if name not in outputs]
    if missing:
        raise TargetError(f"stack {stack!r} has no output {', '.join(missing)}")
    # The variables the shipments API function gets from the same outputs and parameters;
    # parameters left at their defaults may be absent: the settings' defaults are the template's.
    variables = {variable: outputs[name] for name, variable in _OUTPUT_SETTINGS.items()}
    variables.update(
        {
            variable: outputs[name]
            for name, variable in _ORDER_OUTPUT_SETTINGS.items()
            if name in outputs
        }
    )
    variables.update(
        {
            variable: str(parameters[name])
            for name, variable in _PARAMETER_SETTINGS.items()
            if parameters.get(name)
        }
    )
    container = bootstrap(Settings(variables), clients=clients)
    service = container.shipments_service
    languages = container.languages
    orders = container.orders_service if "ORDERS_TABLE_NAME" in variables else None
    return Target(service=service, languages=languages, orders=orders)


StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack", envvar="TRACKWATCH_STACK", help="The stack's name (default with --local)."
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Use the running `trackwatch local` (it writes where it is to "
        "$TRACKWATCH_LOCAL_FILE or ~/.local/state/trackwatch/local.json); AWS_ENDPOINT_URL "
        f"overrides it (default {LOCAL_ENDPOINT}, stack {LOCAL_STACK!r}).",
    ),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="The AWS region.")]


def _target(stack: str | None, local: bool, region: str | None) -> Target:
    return open_stack(stack, local, region, connect)


def open_stack[T](
    stack: str | None,
    local: bool,
    region: str | None,
    connect_to: Callable[[str, AwsClients], T],
) -> T:
    """`connect_to` the stack the options name (AWS, or the local runtime's emulator); a
    stack that cannot be read ends the command with exit code 2."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if local:
        # A running `trackwatch local` says where it is; the environment overrides it.
        running = read_endpoints(endpoints_file())
        # The emulator takes any credentials; do not make people invent some.
        clients = AwsClients.emulator(
            endpoint or (running.emulator_url if running else LOCAL_ENDPOINT),
            region
            or os.environ.get("AWS_DEFAULT_REGION")
            or (running.region if running else "us-east-1"),
        )
        stack = stack or (running.stack if running else LOCAL_STACK)
    else:
        clients = AwsClients(region=region, endpoint_url=endpoint)
    if not stack:
        fail("say which stack: --stack NAME, or --local", 2)
    try:
        return connect_to(stack, clients)
    except TargetError as exc:
        fail(redact(str(exc), endpoint) if endpoint else exc, 2)
    except ValueError as exc:  # boto3's word for an endpoint it cannot use
        shown = redact_url(endpoint or LOCAL_ENDPOINT)
        fail(f"AWS_ENDPOINT_URL {shown} cannot be used: {redact(str(exc), endpoint or '')}", 2)


def fail(problem: object, code: int) -> NoReturn:
    """Print `problem` on stderr as text (it may quote a waybill or a cell) and exit."""
    errors.print(message(problem, style="red"))
    raise typer.Exit(code)


def _key(cp_id: str, waybill: str) -> ShipmentKey:
    # The registration's rules: the waybill normalised as registering it did.
    try:
        return ShipmentKey.parse(cp_id, waybill)
    except InvalidInputError as exc:
        fail(exc, 2)


def _run[**P, T](action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return action(*args, **kwargs)
    except TrackwatchError as exc:
        fail(exc, 1)


# --------------------------------------------------------------------- import

#: Rows each worker registers between two looks at Ctrl-C: few enough that what is in
#: flight when it comes finishes well within two seconds (eight writes each), enough
#: that each worker still reads its rows in one BatchGetItem.
ROWS_PER_WORKER = 8
#: Without a terminal to draw a bar on, a progress line this often (seconds).
PROGRESS_EVERY_S = 10.0
#: The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


@dataclass(frozen=True)
class Row:
    """One CSV data row: its line number in the file, and what it says."""

    line: int
    entry: Registration | Rejected


class CsvError(ValueError):
    """The file cannot be read as a shipments CSV; the message says why."""


@contextmanager
def _records(path: Path) -> Iterator[tuple[csv.DictReader[str], Iterator[dict[str | Any, Any]]]]:
    """The file's reader, its header checked, and its data records; read errors are CsvError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            unknown = [c for c in header if c not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)]
            if missing or unknown or len(set(header)) != len(header):
                raise CsvError(
                    f"{path}: bad header {','.join(header) or '(empty)'}: columns are "
                    f"{','.join(REQUIRED_COLUMNS)} and optionally {','.join(OPTIONAL_COLUMNS)}"
                )
            reader.fieldnames = header
            yield reader, iter(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CsvError(f"{path}: cannot read: {exc}") from exc


def count_rows(path: Path) -> int:
    """The number of data rows; reading the whole file once, so that a file that cannot
    be read is refused before any row of it is registered."""
    with _records(path) as (_reader, records):
        return sum(1 for _ in records)


def iter_rows(path: Path, languages: frozenset[str]) -> Iterator[Row]:
    """Each data row of the CSV as it is read, validated; empty cells count as not given."""
    with _records(path) as (reader, records):
        for record in records:
            yield Row(reader.line_num, parse_entry(_row_entry(record), languages))


def read_rows(path: Path, languages: frozenset[str]) -> list[Row]:
    """Every data row of the CSV, validated; empty cells count as not given."""
    return list(iter_rows(path, languages))


def _row_entry(record: dict[str | Any, Any]) -> dict[str, object]:
    entry: dict[str, object] = {}
    for name, value in record.items():
        if name is None:
            # More cells than columns: let the registration's rules name it.
            entry["extra cells"] = value
            continue
        if value is None or value.strip() == "":
            continue
        cell = value.strip()
        entry[name] = (
            [c for c in _LIST_SEPARATORS.split(cell) if c]
            if name in ("channels", "opt_out")
            else cell
        )
    return entry


class Tally:
    """Counts by outcome and one (line, field, rule) per broken rule or failure, as rows
    finish (from the workers' threads)."""

    def __init__(self, on_row: Callable[[], None]) -> None:
        self.counts: Counter[str] = Counter()
        self.problems: list[tuple[int, str, str]] = []
        self._on_row = on_row
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        """Rows finished, whatever became of them."""
        return self.counts.total()

    def add(self, row: Row, result: EntryResult) -> None:
        """One row's result."""
        with self._lock:
            if result.rejected is not None:
                self.counts["rejected"] += 1
                self.problems.extend((row.line, p.field, p.rule) for p in result.rejected.problems)
            elif result.error is not None:
                self.counts["failed"] += 1
                self.problems.append((row.line, "-", f"failed, retry: {result.error}"))
            elif result.outcome is not None:
                self.counts[result.outcome.value] += 1
        self._on_row()


def register_rows(target: Target, rows: Iterator[Row], tally: Tally, workers: int) -> None:
    """Register `rows` a few per worker at a time, so that Ctrl-C takes effect in between.

    Each row is one write, whole or not at all; KeyboardInterrupt stops the import
    once the rows already in flight are done, and propagates.
    """
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == workers * ROWS_PER_WORKER:
            _register_chunk(target, chunk, tally, workers)
            chunk = []
    if chunk:
        _register_chunk(target, chunk, tally, workers)


def _register_chunk(target: Target, chunk: list[Row], tally: Tally, workers: int) -> None:
    target.service.register(
        [row.entry for row in chunk],
        workers=workers,
        on_done=lambda result: tally.add(chunk[result.index], result),
    )


def _progress_reporter(progress: Progress, task: TaskID, total: int) -> Callable[[], None]:
    """Advance the bar; without a terminal to draw it on, print a line now and then."""
    last = [time.monotonic()]

    def advance() -> None:
        progress.advance(task)
        if progress.console.is_terminal:
            return
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            done = int(progress.tasks[0].completed)
            progress.console.print(f"imported {done} of {total} rows")

    return advance


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV: waybill,cp_id[,order_id,phone,email,...]")],
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Rows registered at once.")] = 16,
) -> None:
    """Register every row of a CSV; safe to run again (unchanged rows are not written).

    Ctrl-C stops it within a moment, with every row registered whole or not at all.
    """
    target = _target(stack, local, region)
    try:
        total = count_rows(file)
    except CsvError as exc:
        fail(exc, 2)
    interrupted = False
    with Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tally = Tally(_progress_reporter(progress, progress.add_task("import", total=total), total))
        try:
            register_rows(target, iter_rows(file, target.languages), tally, workers)
        except KeyboardInterrupt:
            interrupted = True
        except CsvError as exc:  # the file changed since it was counted
            fail(exc, 2)
    _print_summary(file, total, tally)
    if interrupted:
        fail(
            f"interrupted: {tally.done} of {total} rows done, each registered whole; "
            "importing the file again is safe (unchanged rows are not written)",
            INTERRUPTED,
        )
    if tally.counts["failed"]:
        raise typer.Exit(1)


def _print_summary(file: Path, total: int, tally: Tally) -> None:
    summary = Table(title=text(f"{file.name}: {total} rows"))
    summary.add_column("outcome")
    summary.add_column("rows", justify="right")
    for outcome in ("created", "updated", "unchanged", "rejected", "failed"):
        summary.add_row(outcome, str(tally.counts[outcome]))
    console.print(summary)
    if tally.problems:
        rejected = Table(title="rows not imported")
        rejected.add_column("line", justify="right")
        rejected.add_column("field")
        rejected.add_column("rule")
        for line, field, rule in sorted(tally.problems):
            rejected.add_row(str(line), text(field), text(rule))
        console.print(rejected)


# --------------------------------------------------------------------- one shipment


CpIdArgument = Annotated[str, typer.Argument(help="Clickpost's carrier id.")]
WaybillArgument = Annotated[str, typer.Argument(help="The AWB.")]


@app.command()
def show(
    cp_id: CpIdArgument,
    waybill: WaybillArgument,
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON the API gives.")] = False,
) -> None:
    """A shipment's status, NDRs, expected delivery, timeline, and why tracking stopped."""
    key = _key(cp_id, waybill)
    view = _run(_target(stack, local, region).service.show, key)
    if as_json:
        console.print_json(view.model_dump_json())
        return
    # Everything below but our own labels is Clickpost's or a caller's text: shown as text.
    status = view.status
    facts = Table(show_header=False, title=text(key))
    facts.add_row("tracked", "yes" if view.tracked else "no")
    if view.stopped:
        facts.add_row("stopped", text(f"{view.stopped.reason} ({view.stopped.stopped_at})"))
    facts.add_row(
        "status",
        text(
            f"{status.clickpost_status_description} (bucket {status.clickpost_status_bucket}: "
            f"{status.clickpost_status_bucket_description})"
            if status
            else "not reported yet"
        ),
    )
    facts.add_row("order", text(view.order_id or "-"))
    facts.add_row("courier", text(view.courier_name or "-"))
    facts.add_row("NDR attempts", str(view.ndr.attempts))
    facts.add_row("stuck", "yes" if view.is_stuck else "no")
    edd = view.expected_delivery
    facts.add_row("expected delivery", text((edd.courier_partner_edd or "-") if edd else "-"))
    console.print(facts)
    if view.timeline:
        timeline = Table(title="timeline")
        for column in ("time", "status", "location", "remark"):
            timeline.add_column(column)
        for scan in view.timeline:
            timeline.add_row(
                scan.timestamp.isoformat() if scan.timestamp else "-",
                text(scan.clickpost_status_description or scan.status or "-"),
                text(scan.location or "-"),
                text(scan.remark or "-"),
            )
        console.print(timeline)


@app.command()
def refresh(
    cp_id: CpIdArgument,
    waybill: WaybillArgument,
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
) -> None:
    """Poll a shipment now, through the dispatcher's own path."""
    key = _key(cp_id, waybill)
    view = _run(_target(stack, local, region).service.refresh, key)
    console.print(text(f"queued a poll of {view.waybill} (cp_id {view.cp_id})"))


def _since(value: str | None) -> datetime | None:
    """ISO 8601; UTC if it names no zone; refused if it is outside years 1-9999 in UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since must be an ISO 8601 date and time, got {value!r}", 2)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return check_since("since", moment)
    except InvalidInputError as exc:
        fail(exc, 2)


@app.command()
def replay(
    cp_id: CpIdArgument,
    waybill: WaybillArgument,
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only events from then on (ISO 8601, e.g. 2026-11-27T09:00+05:30; UTC if no zone)."
        ),
    ] = None,
) -> None:
    """Publish a shipment's events again, with their original event ids."""
    key, moment = _key(cp_id, waybill), _since(since)
    view = _run(_target(stack, local, region).service.replay, key, moment)
    console.print(text(f"replayed {view.replayed} events of {view.waybill} (cp_id {view.cp_id})"))


@app.command()
def stop(
    cp_id: CpIdArgument,
    waybill: WaybillArgument,
    stack: StackOption = None,
    local: LocalOption = False,
    region: RegionOption = None,
) -> None:
    """Stop tracking a shipment."""
    key = _key(cp_id, waybill)
    view = _run(_target(stack, local, region).service.stop, key)
    reason = view.stopped.reason if view.stopped else "?"
    console.print(text(f"{view.waybill} (cp_id {view.cp_id}) is not tracked: {reason}"))


OPENAPI_PATH = Path("docs/openapi.json")


def openapi(
    out: Annotated[Path, typer.Option(help="Where to write the document.")] = OPENAPI_PATH,
    check: Annotated[
        bool, typer.Option("--check", help="Fail (exit 1) if the file differs; write nothing.")
    ] = False,
) -> None:
    """Write the shipments API's OpenAPI document (docs/openapi.json)."""
    from trackwatch.api.openapi import render_openapi

    document = render_openapi()
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != document:
            fail(f"{out} is out of date: run `trackwatch openapi`", 1)
        console.print(text(f"{out} is up to date"))
        return
    out.write_text(document, encoding="utf-8")
    console.print(text(f"wrote {out}"))
