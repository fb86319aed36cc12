"""`trackwatch local`: the whole system on this machine, with no AWS account and no Docker.

moto's server stands in for AWS (every resource created from template.yaml itself), the
Clickpost sandbox (or any Clickpost-compatible URL) for Clickpost, and aiosmtpd for the
e-mail relay. `LocalRuntime` invokes the functions as Lambda would. A simulated clock
plays a day of journeys in about a minute; `--cycles N` polls every shipment N times as
fast as it can, ignoring cadence.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from trackwatch.adapters.clickpost import ClickpostClient, StaticCredentials
from trackwatch.config import Settings
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostInvalidCarrierError,
    InvalidInputError,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.record import ShipmentRecord
from trackwatch.models.registration import Registration, Rejected, check_phone
from trackwatch.models.tracking import TrackCall
from trackwatch_cli.api_gateway import ApiGateway
from trackwatch_cli.demo import demo_registrations, demo_whatsapp_outcomes, play_in_sandbox
from trackwatch_cli.deployment import LocalStack, SimulatedClock, start_stack
from trackwatch_cli.display import message, redact, redact_url, text
from trackwatch_cli.environment import Emulator, SmtpServer
from trackwatch_cli.local_senders import WHATSAPP_OUTCOMES, WhatsAppOutcome
from trackwatch_cli.sandbox import SandboxServer
from trackwatch_cli.shipments_cli import CsvError, read_rows
from trackwatch_cli.stack import StackError
from trackwatch_cli.summary import dead_letters, print_summary, totals_table
from trackwatch_cli.timeline import Timeline, tap

#: The simulated day starts at 09:00 in India, when customers may be messaged.
SIM_START = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
SETTLE_EVERY_MINUTES = 5
DONE_CHECK_MINUTES = 30


class LocalInputError(Exception):
    """Bad input to `trackwatch local`; the message names the problem."""


def default_languages() -> frozenset[str]:
    """The template's default languages: the CSV is checked before the stack exists."""
    return Settings({}).registration.languages


def read_shipments_csv(path: Path) -> list[Registration]:
    """The shipments of FILE.csv, by the same rules as `trackwatch shipments import`;
    any bad row is a LocalInputError naming its line, field and rule."""
    try:
        rows = read_rows(path, default_languages())
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
    #: What the local WhatsApp does with each number's messages (default: read).
    whatsapp_outcomes: dict[str, WhatsAppOutcome] = field(default_factory=dict)


class LocalSystem:
    """Everything `trackwatch local` runs, started and stopped together."""

    def __init__(self, options: LocalOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.clock = SimulatedClock(SIM_START)
        self.polls = 0
        self.whatsapp_outcomes: dict[str, WhatsAppOutcome] = dict(options.whatsapp_outcomes)
        self._stack = ExitStack()
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
        events_out = self._open_out(options.events_out)
        notifications_out = self._open_out(options.notifications_out)

        url, key, username = self._clickpost()
        if self.sandbox is None:
            self._probe(url, key, username)
        self.emulator = Emulator().start()
        self._stack.callback(self.emulator.stop)
        smtp = SmtpServer().start()
        self._stack.callback(smtp.stop)
        self.log_path = Path(tempfile.gettempdir()) / "trackwatch-local.log"
        log = self.log_path.open("w", encoding="utf-8")
        self._stack.callback(log.close)
        self.local = self._deploy(url, (key, username), smtp.port, log)
        for phone, outcome in self.whatsapp_outcomes.items():
            self.local.senders.whatsapp.outcome(phone, outcome)
        self.timeline = Timeline(
            self.console,
            self.emulator.clients,
            tap(self.emulator.clients, self.local.stack.outputs["ShipmentEventsTopicArn"]),
            self.clock,
            senders=self.local.senders,
            mailbox=smtp.mailbox,
            events_out=events_out,
            notifications_out=notifications_out,
        )
        try:
            self.api = ApiGateway(
                self.local.runtime, self.local.stack.routes, port=options.api_port
            ).start()
        except OSError as exc:
            raise LocalInputError(
                f"cannot serve the API on port {options.api_port}: {exc}"
            ) from exc
        self._stack.callback(self.api.stop)
        self._register()

    def _deploy(
        self, url: str, credentials: tuple[str, str], smtp_port: int, log: IO[str]
    ) -> LocalStack:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return start_stack(
                    self.options.template,
                    self.emulator.clients,
                    self.clock,
                    parameters={
                        "ClickpostBaseUrl": url,
                        # One shard per slot: a laptop has no hot partitions to avoid.
                        "DueShards": "1",
                        "EmailTransport": "smtp",
                        "SmtpHost": "127.0.0.1",
                        "SmtpPort": str(smtp_port),
                        "SmtpStartTls": "false",
                    },
                    clickpost_credentials=credentials,
                    log=log,
                )
            except StackError as exc:
                raise LocalInputError(str(exc)) from exc

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
            play_in_sandbox(self.sandbox, self.rows)
        else:
            self.rows = demo_registrations(self.sandbox, default_languages())
            # Some demo customers' WhatsApp messages fail or go unanswered: SMS takes over.
            self.whatsapp_outcomes = {**demo_whatsapp_outcomes(self.rows), **self.whatsapp_outcomes}
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
                f"Clickpost at {redact_url(url)} rejected the key or username: {exc}"
            ) from exc
        except ClickpostInvalidCarrierError:
            return  # the URL and credentials work; that carrier is the user's business
        except ClickpostError as exc:
            raise LocalInputError(f"cannot poll Clickpost at {redact_url(url)}: {exc}") from exc

    def _register(self) -> None:
        results = self.local.container().registration_service.register(self.rows)
        failed = [r for r in results if r.outcome is None or r.rejected or r.error]
        if failed:
            raise LocalInputError(f"{len(failed)} shipments could not be registered: {failed[0]}")
        clickpost = self.sandbox.base_url if self.sandbox else self.options.clickpost_url
        self.console.print(
            Text.assemble(
                ("trackwatch local", "bold"),
                f": {len(self.rows)} shipments, stack ",
                text(self.local.stack.name, style="cyan"),
                f" in moto at {self.emulator.endpoint_url}, Clickpost at ",
                text(redact_url(clickpost or "")),
                f"; shipments API at {self.api.base_url}; function logs in ",
                text(self.log_path),
            )
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
                self.clock.advance(timedelta(seconds=2))
                self._settle()
        except KeyboardInterrupt:
            self.console.print("stopped")

    def _run_cycles(self, cycles: int) -> None:
        with self._progress() as progress:
            task = progress.add_task("poll cycles", total=cycles)
            for _ in range(cycles):
                self.local.runtime.tick(self.clock(), scope="all")
                self._settle()
                self.clock.advance(timedelta(minutes=30))
                progress.advance(task)
            # What the last cycle left waiting (an order's window, a held message) is due now.
            self._settle()

    def _run_clock(self) -> None:
        minutes = int(self.options.hours * 60)
        seconds_per_minute = 1 / self.options.speed
        runtime = self.local.runtime
        with self._progress() as progress:
            task = progress.add_task("simulated minutes", total=minutes)
            # Registration is news: every shipment gets its first poll at once, then
            # the cadence of its status takes over.
            runtime.tick(self.clock(), scope="all")
            for minute in range(minutes):
                started = time.monotonic()
                runtime.tick(self.clock())
                # The dispatcher runs every minute; what it sends is worked off every few
                # simulated minutes, which keeps a simulated day near one real minute.
                if minute % SETTLE_EVERY_MINUTES == 0:
                    self._settle()
                self.clock.advance(timedelta(minutes=1))
                progress.advance(task)
                if minute % DONE_CHECK_MINUTES == 0 and self._all_done():
                    break
                time.sleep(max(0.0, seconds_per_minute - (time.monotonic() - started)))
            self._settle()

    def _records(self) -> dict[ShipmentKey, ShipmentRecord]:
        return self.local.container().shipments.get_many([r.key for r in self.rows])

    def _all_done(self) -> bool:
        return all(
            r.state.is_terminal or r.state.invalid_since is not None or not r.active
            for r in self._records().values()
        )

    def _settle(self) -> None:
        runtime = self.local.runtime
        before = len(runtime.invocations)
        # Delays (quiet hours, WhatsApp's delivery window) run on the simulated clock.
        self.local.release_delayed()
        runtime.settle()
        self.polls += sum(
            i.records for i in runtime.invocations[before:] if i.function == "PollShipmentsFunction"
        )
        self.timeline.collect()

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event published so far."""
        return self.timeline.events

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Every SMS and e-mail sent so far."""
        return self.timeline.notifications

    def _summary(self) -> None:
        totals = totals_table(
            self.polls,
            self.sandbox,
            self.timeline.events,
            self.timeline.notifications,
            dead_letters(self.emulator.clients, self.local.stack),
        )
        print_summary(self.console, [r.key for r in self.rows], self._records(), totals)


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


def check_options(options: LocalOptions) -> None:
    """Every number in range and the Clickpost URL usable, before anything starts."""
    if options.cycles is not None and options.cycles < 1:
        raise LocalInputError(f"--cycles must be at least 1, got {options.cycles}")
    for name, value in (("--speed", options.speed), ("--hours", options.hours)):
        if not math.isfinite(value) or value <= 0:
            raise LocalInputError(f"{name} must be a positive number, got {value}")
    if not 0 <= options.api_port <= 65535:
        raise LocalInputError(f"--api-port must be 0 to 65535, got {options.api_port}")
    if options.clickpost_url is not None:
        check_url("--clickpost-url", options.clickpost_url)


def check_url(option: str, url: str) -> None:
    """An http(s) URL with a host and a port in range; the error shows it redacted."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        reason = redact(str(exc), url)
        raise LocalInputError(f"{option} is not a URL ({reason}): {shown}") from None
    if parts.scheme not in ("http", "https"):
        raise LocalInputError(f"{option} must be an http or https URL, got {shown}")
    if not parts.hostname:
        raise LocalInputError(f"{option} has no host: {shown}")
    out_of_range = LocalInputError(f"{option} has a port out of range 1-65535: {shown}")
    try:
        port = parts.port
    except ValueError:  # urllib's word for a port past 65535
        raise out_of_range from None
    if port == 0:
        raise out_of_range


def whatsapp_outcomes(pairs: list[str]) -> dict[str, WhatsAppOutcome]:
    """`--whatsapp NUMBER=OUTCOME` options as a map; a LocalInputError names a bad one."""
    outcomes: dict[str, WhatsAppOutcome] = {}
    for pair in pairs:
        number, _, outcome = pair.partition("=")
        try:
            phone = check_phone(number.strip())
        except InvalidInputError as exc:
            raise LocalInputError(f"--whatsapp {pair!r}: {exc}") from None
        if outcome not in WHATSAPP_OUTCOMES:
            raise LocalInputError(
                f"--whatsapp {pair!r}: the outcome must be one of {', '.join(WHATSAPP_OUTCOMES)}"
            )
        outcomes[phone] = outcome
    return outcomes


def run_local(options: LocalOptions, console: Console | None = None) -> LocalSystem:
    """Start everything, run, print the summary, stop everything; returns what happened."""
    console = console or Console()
    check_options(options)
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
        Path | None,
        typer.Option(help="Write every WhatsApp message, SMS and e-mail sent, one JSON per line."),
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
    whatsapp: Annotated[
        list[str] | None,
        typer.Option(
            help="NUMBER=OUTCOME: the local WhatsApp's messages to NUMBER are read (default), "
            "delivered, failed, undeliverable or silent (no report: SMS takes over after the "
            "window). Repeatable."
        ),
    ] = None,
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
        options.whatsapp_outcomes = whatsapp_outcomes(whatsapp or [])
        run_local(options, console)
    except LocalInputError as exc:
        # The message quotes CSV cells and paths: text, not markup; the URL redacted.
        reason = redact(str(exc), clickpost_url) if clickpost_url else str(exc)
        Console(stderr=True, soft_wrap=True).print(
            Text.assemble(("error:", "bold red"), " ", message(reason)), highlight=False
        )
        raise typer.Exit(2) from None
