"""`trackwatch local`: the whole system on this machine, with no AWS account and no Docker.

moto's server stands in for AWS (every resource created from template.yaml itself), the
Clickpost sandbox (or any Clickpost-compatible URL) for Clickpost, and aiosmtpd for the
e-mail relay. `LocalRuntime` invokes the functions as Lambda would. A simulated clock
plays a day of journeys in about a minute; `--cycles N` polls every shipment N times as
fast as it can, ignoring cadence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Annotated, Any
from zoneinfo import ZoneInfo

import boto3
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trackwatch import wiring
from trackwatch.adapters.clickpost import ClickpostClient, StaticCredentials
from trackwatch.config import RegistrationSettings
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostInvalidCarrierError,
)
from trackwatch.logic.batching import TrackCall
from trackwatch.models.registration import Registration, Rejected, parse_entry
from trackwatch_cli.api_gateway import ApiGateway
from trackwatch_cli.runtime import LocalRuntime
from trackwatch_cli.sandbox import SandboxServer
from trackwatch_cli.shipments_cli import CsvError, read_rows
from trackwatch_cli.stack import ACCOUNT, StackError, deploy

REGION = "us-east-1"
SECRET_NAME = "trackwatch/clickpost"  # noqa: S105 - a secret's name, not a secret
#: The simulated day starts at 09:00 in India, when customers may be messaged.
SIM_START = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
DISPLAY_ZONE = ZoneInfo("Asia/Kolkata")
SETTLE_EVERY_MINUTES = 5
DONE_CHECK_MINUTES = 30


class LocalInputError(Exception):
    """Bad input to `trackwatch local`; the message names the problem."""


def read_shipments_csv(path: Path) -> list[Registration]:
    """The shipments of FILE.csv, by the same rules as `trackwatch shipments import`;
    any bad row is a LocalInputError naming its line, field and rule."""
    # The template's default languages: the CSV is checked before the stack exists.
    languages = RegistrationSettings().languages
    try:
        rows = read_rows(path, languages)
    except CsvError as exc:
        raise LocalInputError(str(exc)) from exc
    bad = [
        f"{path}, line {row.line}: " + "; ".join(f"{p.field}: {p.rule}" for p in row.entry.problems)
        for row in rows
        if isinstance(row.entry, Rejected)
    ]
    if bad:
        raise LocalInputError("\n".join(bad))
    if not rows:
        raise LocalInputError(f"{path}: no shipments in the file")
    return [row.entry for row in rows if isinstance(row.entry, Registration)]


@dataclass
class LocalOptions:
    """What `trackwatch local` was asked to do."""

    template: Path
    cycles: int | None = None
    shipments: Path | None = None
    clickpost_url: str | None = None
    clickpost_key: str | None = None
    clickpost_username: str | None = None
    events_out: Path | None = None
    notifications_out: Path | None = None
    speed: float = 24.0
    hours: float = 24.0
    api_port: int = 8787
    serve: bool = False


@dataclass
class Mailbox:
    """E-mails the local SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: keep the message."""
        with self.lock:
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 Message accepted for delivery"


def _masked_phone(phone: str) -> str:
    return phone[:3] + "*" * max(0, len(phone) - 5) + phone[-2:]


def _masked_email(address: str) -> str:
    user, _, domain = address.partition("@")
    return f"{user[:1]}***@{domain}"


class LocalSystem:
    """Everything `trackwatch local` runs, started and stopped together."""

    def __init__(self, options: LocalOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.clock = SIM_START
        self.mailbox = Mailbox()
        self.events: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.polls = 0
        self._sms_seen = 0
        self._mail_seen = 0
        self._stack = ExitStack()
        self._events_file: IO[str] | None = None
        self._notifications_file: IO[str] | None = None
        self.sandbox: SandboxServer | None = None
        self.rows: list[Registration] = []

    # ------------------------------------------------------------------ start

    def __enter__(self) -> LocalSystem:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        options = self.options
        self.rows = read_shipments_csv(options.shipments) if options.shipments else []
        if not options.template.is_file():
            raise LocalInputError(f"template {options.template} not found")
        self._events_file = self._open_out(options.events_out)
        self._notifications_file = self._open_out(options.notifications_out)

        url, key, username = self._clickpost()
        if self.sandbox is None:
            self._probe(url, key, username)
        self._start_emulator()
        smtp_port = self._start_smtp()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.stack = deploy(
                    options.template,
                    stack_name="trackwatch-local",
                    region=REGION,
                    parameters={
                        "ClickpostBaseUrl": url,
                        "ClickpostSecretName": SECRET_NAME,
                        # One shard per slot: a laptop has no hot partitions to avoid.
                        "DueShards": "1",
                        "EmailTransport": "smtp",
                        "SmtpHost": "127.0.0.1",
                        "SmtpPort": str(smtp_port),
                        "SmtpStartTls": "false",
                    },
                )
            except StackError as exc:
                raise LocalInputError(str(exc)) from exc
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"key": key, "username": username})
        )
        secrets.create_secret(
            Name="trackwatch/smtp", SecretString=json.dumps({"username": "", "password": ""})
        )
        self._tap_queue = self._tap()
        wiring.reset()
        wiring.set_clock(lambda: self.clock)
        self._stack.callback(wiring.set_clock, None)
        log_path = Path(tempfile.gettempdir()) / "trackwatch-local.log"
        self.log_path = log_path
        log = log_path.open("w", encoding="utf-8")
        self._stack.callback(log.close)
        self.runtime = LocalRuntime(
            self.stack,
            log=log,
            environment={
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "LOG_LEVEL": "ERROR",
            },
        )
        wiring.reset()
        try:
            self.api = ApiGateway(self.runtime, self.stack.routes, port=options.api_port).start()
        except OSError as exc:
            raise LocalInputError(
                f"cannot serve the API on port {options.api_port}: {exc}"
            ) from exc
        self._stack.callback(self.api.stop)
        self._register()

    def _open_out(self, path: Path | None) -> IO[str] | None:
        if path is None:
            return None
        try:
            handle = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise LocalInputError(f"cannot write {path}: {exc}") from exc
        self._stack.callback(handle.close)
        return handle

    def _clickpost(self) -> tuple[str, str, str]:
        options = self.options
        if options.clickpost_url:
            key = options.clickpost_key or os.environ.get("CLICKPOST_KEY")
            username = options.clickpost_username or os.environ.get("CLICKPOST_USERNAME")
            if not key or not username:
                raise LocalInputError(
                    "--clickpost-url needs --clickpost-key and --clickpost-username "
                    "(or CLICKPOST_KEY and CLICKPOST_USERNAME in the environment)"
                )
            if not self.rows:
                raise LocalInputError(
                    "--clickpost-url needs --shipments FILE.csv to know what to poll"
                )
            return options.clickpost_url.rstrip("/"), key, username
        self.sandbox = SandboxServer().start()
        self._stack.callback(self.sandbox.stop)
        if self.rows:
            journeys = sorted(j for j in self.sandbox.journeys if j != "invalid")
            for i, row in enumerate(self.rows):
                self.sandbox.carriers.setdefault(row.cp_id, f"Carrier {row.cp_id}")
                self.sandbox.add_shipment(
                    row.waybill, row.cp_id, journeys[i % len(journeys)], row.order_id
                )
        else:
            languages = RegistrationSettings().languages
            demo = [
                parse_entry(
                    {
                        "waybill": s.waybill,
                        "cp_id": s.cp_id,
                        "phone": f"+9198765{43210 + i:05d}",
                        "email": f"customer{i + 1}@example.com",
                        "language": "hi" if i % 3 == 2 and "hi" in languages else "en",
                    },
                    languages,
                )
                for i, s in enumerate(self.sandbox.add_demo_shipments())
            ]
            self.rows = [r for r in demo if isinstance(r, Registration)]
            if len(self.rows) != len(demo):  # the demo's own data broke a rule: a bug here
                raise RuntimeError(f"demo shipments rejected: {demo}")
        return self.sandbox.base_url, "sandbox-key", "sandbox-user"

    def _probe(self, url: str, key: str, username: str) -> None:
        """One real call before anything starts, so a bad URL or key is a clear error."""
        first = self.rows[0].key

        async def call() -> None:
            client = ClickpostClient(
                url,
                StaticCredentials(key, username),
                max_attempts=2,
                retry_budget_s=5,
                connect_timeout_s=2,
                read_timeout_s=5,
            )
            async with client:
                await client.track(TrackCall(cp_id=first.cp_id, waybills=(first.waybill,)))

        try:
            asyncio.run(call())
        except ClickpostAuthError as exc:
            raise LocalInputError(
                f"Clickpost at {url} rejected the key or username: {exc}"
            ) from exc
        except ClickpostInvalidCarrierError:
            return  # the URL and credentials work; that carrier is the user's business
        except ClickpostError as exc:
            raise LocalInputError(f"cannot poll Clickpost at {url}: {exc}") from exc

    def _start_emulator(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._stack.callback(server.stop)
        host, port = server.get_host_and_port()
        saved = dict(os.environ)

        def restore() -> None:
            os.environ.clear()
            os.environ.update(saved)

        self._stack.callback(restore)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
            }
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)

    def _start_smtp(self) -> int:
        from aiosmtpd.controller import Controller

        # aiosmtpd checks its server by connecting to the port it was given, so port 0
        # will not do: ask the OS for a free port first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        controller = Controller(self.mailbox, hostname="127.0.0.1", port=port)
        controller.start()
        self._stack.callback(controller.stop)
        return port

    def _tap(self) -> str:
        """A queue of our own on the topic: every event exactly as subscribers get it."""
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="trackwatch-local-timeline")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns", region_name=REGION).subscribe(
            TopicArn=self.stack.outputs["ShipmentEventsTopicArn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    def _register(self) -> None:
        results = wiring.shipments_service().register(self.rows)
        failed = [r for r in results if r.outcome is None or r.rejected or r.error]
        if failed:
            raise LocalInputError(f"{len(failed)} shipments could not be registered: {failed[0]}")
        clickpost = self.sandbox.base_url if self.sandbox else self.options.clickpost_url
        self.console.print(
            f"[bold]trackwatch local[/]: {len(self.rows)} shipments, stack "
            f"[cyan]{self.stack.name}[/] in moto at {os.environ['AWS_ENDPOINT_URL']}, "
            f"Clickpost at {clickpost}; shipments API at {self.api.base_url}; "
            f"function logs in {self.log_path}"
        )

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Play the journeys: N cycles as fast as possible, or a simulated day."""
        if self.options.cycles is not None:
            self._run_cycles(self.options.cycles)
        else:
            self._run_clock()
        self._summary()
        if self.options.serve:
            self._serve()

    def _serve(self) -> None:
        """Keep the stack running in real time for the API (and curl) until Ctrl-C."""
        self.console.print(
            f"serving the shipments API at {self.api.base_url} (no IAM locally); Ctrl-C stops"
        )
        try:
            while True:
                time.sleep(2)
                self.clock += timedelta(seconds=2)
                self._settle()
        except KeyboardInterrupt:
            self.console.print("stopped")

    def _run_cycles(self, cycles: int) -> None:
        with self._progress() as progress:
            task = progress.add_task("poll cycles", total=cycles)
            for _ in range(cycles):
                self.runtime.tick(self.clock, scope="all")
                self._settle()
                self.clock += timedelta(minutes=30)
                progress.advance(task)

    def _run_clock(self) -> None:
        minutes = int(self.options.hours * 60)
        seconds_per_minute = 1 / self.options.speed
        with self._progress() as progress:
            task = progress.add_task("simulated minutes", total=minutes)
            # Registration is news: every shipment gets its first poll at once, then
            # the cadence of its status takes over.
            self.runtime.tick(self.clock, scope="all")
            for minute in range(minutes):
                started = time.monotonic()
                self.runtime.tick(self.clock)
                # The dispatcher runs every minute; what it sends is worked off every few
                # simulated minutes, which keeps a simulated day near one real minute.
                if minute % SETTLE_EVERY_MINUTES == 0:
                    self._settle()
                self.clock += timedelta(minutes=1)
                progress.advance(task)
                if minute % DONE_CHECK_MINUTES == 0 and self._all_done():
                    break
                time.sleep(max(0.0, seconds_per_minute - (time.monotonic() - started)))
            self._settle()

    def _all_done(self) -> bool:
        records = wiring.shipments_table().get_many([r.key for r in self.rows])
        return all(
            r.state.is_terminal or r.state.invalid_since is not None or not r.active
            for r in records.values()
        )

    def _settle(self) -> None:
        before = len(self.runtime.invocations)
        self.runtime.settle()
        self.polls += sum(
            i.records
            for i in self.runtime.invocations[before:]
            if i.function == "PollShipmentsFunction"
        )
        self._collect_events()
        self._collect_notifications()

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )

    def _collect_events(self) -> None:
        sqs = boto3.client("sqs", region_name=REGION)
        while True:
            messages = sqs.receive_message(
                QueueUrl=self._tap_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                self._event(json.loads(message["Body"]), message["Body"])
            sqs.delete_message_batch(
                QueueUrl=self._tap_queue,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def _event(self, event: dict[str, Any], raw: str) -> None:
        self.events.append(event)
        if self._events_file is not None:
            self._events_file.write(raw + "\n")
            self._events_file.flush()
        kind = event["event_type"].removeprefix("shipment.")
        detail = {
            "scan_added": lambda: (
                f"{event['scan'].get('clickpost_status_description')} "
                f"at {event['scan'].get('location')}"
            ),
            "status_changed": lambda: (
                f"{event.get('from_bucket_description') or '-'} → "
                f"[bold]{event.get('to_bucket_description')}[/]"
                + (" (final)" if event.get("is_terminal") else "")
            ),
            "ndr_raised": lambda: f"attempt {event['attempt']}: {event.get('ndr_description')}",
            "edd_changed": lambda: (
                f"{event['previous'].get('courier_partner_edd')} → "
                f"{event['current'].get('courier_partner_edd')}"
            ),
        }.get(kind, lambda: "")()
        if kind != "scan_added":
            self.console.print(
                f"[dim]{self._local_time()}[/] [green]event[/] {kind:<15} "
                f"{event['waybill']} {detail}"
            )

    def _collect_notifications(self) -> None:
        from moto.sns.models import sns_backends

        sms = list(sns_backends[ACCOUNT][REGION].sms_messages.values())
        for phone, text in sms[self._sms_seen :]:
            self._notification({"channel": "sms", "to": phone, "body": text})
            self.console.print(
                f"[dim]{self._local_time()}[/] [magenta]sms[/]   to {_masked_phone(phone)}: "
                f"{text[:90]}"
            )
        self._sms_seen = len(sms)
        with self.mailbox.lock:
            mails = self.mailbox.messages[self._mail_seen :]
            self._mail_seen = len(self.mailbox.messages)
        for mail in mails:
            part = mail.get_body(preferencelist=("plain", "html"))
            body = part.get_content() if part is not None else ""
            self._notification(
                {
                    "channel": "email",
                    "to": mail["To"],
                    "from": mail["From"],
                    "subject": mail["Subject"],
                    "body": body,
                }
            )
            self.console.print(
                f"[dim]{self._local_time()}[/] [blue]email[/] to "
                f"{_masked_email(str(mail['To']))}: {mail['Subject']}"
            )

    def _notification(self, record: dict[str, Any]) -> None:
        self.notifications.append(record)
        if self._notifications_file is not None:
            self._notifications_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._notifications_file.flush()

    def _local_time(self) -> str:
        return f"{self.clock.astimezone(DISPLAY_ZONE):%d %b %H:%M}"

    # ------------------------------------------------------------------ summary

    def _summary(self) -> None:
        records = wiring.shipments_table().get_many([r.key for r in self.rows])
        table = Table(title="Shipments")
        for column in ("waybill", "cp_id", "status", "bucket", "scans", "tracking"):
            table.add_column(column)
        for row in self.rows:
            record = records.get(row.key)
            current = record.state.current if record else None
            table.add_row(
                row.waybill,
                str(row.cp_id),
                (current.clickpost_status_description or "") if current else "-",
                (current.clickpost_status_bucket_description or "") if current else "-",
                str(record.state.scan_count) if record else "-",
                (record.stop_reason or "active") if record else "unknown",
            )
        self.console.print(table)
        totals = Table(title="Totals")
        totals.add_column("what")
        totals.add_column("count", justify="right")
        totals.add_row("poll messages handled", str(self.polls))
        if self.sandbox is not None:
            requests = self.sandbox.requests
            totals.add_row("Clickpost requests", str(len(requests)))
            totals.add_row("AWBs asked about", str(sum(len(r.waybills) for r in requests)))
        for event_type, count in sorted(Counter(e["event_type"] for e in self.events).items()):
            totals.add_row(event_type, str(count))
        for channel, count in sorted(Counter(n["channel"] for n in self.notifications).items()):
            totals.add_row(f"{channel} sent", str(count))
        dead = self._dead_letters()
        totals.add_row("messages in dead-letter queues", str(dead))
        self.console.print(totals)

    def _dead_letters(self) -> int:
        sqs = boto3.client("sqs", region_name=REGION)
        total = 0
        for name, url in self.stack.outputs.items():
            if name.endswith("DeadLetterQueueUrl") or name == "StreamFailureQueueUrl":
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                total += int(attributes["ApproximateNumberOfMessages"])
        return total


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Libraries that log per request would drown the timeline."""
    names = ("moto", "werkzeug", "httpx", "botocore", "aiosmtpd", "mail.log", "trackwatch")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_local(options: LocalOptions, console: Console | None = None) -> LocalSystem:
    """Start everything, run, print the summary, stop everything; returns what happened."""
    console = console or Console()
    if options.cycles is not None and options.cycles < 1:
        raise LocalInputError("--cycles must be at least 1")
    if options.speed <= 0:
        raise LocalInputError("--speed must be positive")
    with quiet_libraries(), warnings.catch_warnings(), LocalSystem(options, console) as system:
        # powertools warns when an invocation had no metric to publish: expected here.
        warnings.simplefilter("ignore", UserWarning)
        system.run()
    return system


def local_command(
    cycles: Annotated[
        int | None,
        typer.Option(help="Run N complete poll cycles as fast as possible, drain, then exit."),
    ] = None,
    shipments: Annotated[
        Path | None,
        typer.Option(help="CSV with waybill,cp_id and optional order_id,phone,email,language."),
    ] = None,
    clickpost_url: Annotated[
        str | None, typer.Option(help="Poll this Clickpost-compatible server, not the sandbox.")
    ] = None,
    clickpost_key: Annotated[
        str | None, typer.Option(envvar="CLICKPOST_KEY", help="Clickpost key.", show_default=False)
    ] = None,
    clickpost_username: Annotated[
        str | None, typer.Option(envvar="CLICKPOST_USERNAME", help="Clickpost username.")
    ] = None,
    events_out: Annotated[
        Path | None, typer.Option(help="Write every published event here, one JSON per line.")
    ] = None,
    notifications_out: Annotated[
        Path | None, typer.Option(help="Write every SMS and e-mail sent, one JSON per line.")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated minutes per real second (24: a day a minute).")
    ] = 24.0,
    hours: Annotated[float, typer.Option(help="Simulated hours to play at most.")] = 24.0,
    template: Annotated[Path, typer.Option(help="The SAM template to run.")] = Path(
        "template.yaml"
    ),
    api_port: Annotated[
        int, typer.Option(help="Serve the shipments API on this loopback port (0: any free).")
    ] = 8787,
    serve: Annotated[
        bool, typer.Option(help="Keep running after the journeys, serving the API, until Ctrl-C.")
    ] = False,
) -> None:
    """Run the whole system on this machine: AWS emulated, the Clickpost sandbox, local SMTP."""
    options = LocalOptions(
        template=template,
        cycles=cycles,
        shipments=shipments,
        clickpost_url=clickpost_url,
        clickpost_key=clickpost_key,
        clickpost_username=clickpost_username,
        events_out=events_out,
        notifications_out=notifications_out,
        speed=speed,
        hours=hours,
        api_port=api_port,
        serve=serve,
    )
    # Soft wrap: timeline lines stay whole when piped to a file or another program.
    console = Console(soft_wrap=True)
    try:
        run_local(options, console)
    except LocalInputError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
