"""`trackwatch local`: the whole system on this machine, with no AWS account and no Docker.

moto's server stands in for AWS (every resource created from template.yaml itself, in a
process of its own), the Clickpost sandbox (or any Clickpost-compatible URL) for
Clickpost, and aiosmtpd for the e-mail relay. `LocalRuntime` invokes the functions as
Lambda would, each event source with the concurrency the template gives it. A simulated
clock plays a day of journeys in about a minute; `--cycles N` polls every shipment N
times as fast as it can, ignoring cadence; `--serve` keeps the whole system running on
that clock (the scheduler's minutes, cadence polls, notifications) until Ctrl-C. In the
simulated day the sandbox's journeys move with that clock, and change capture (the
updated-order feed, the sandbox's webhooks to the local API) runs as deployed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.text import Text

from trackwatch.adapters.clickpost import ClickpostClient, StaticCredentials
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostError,
    ClickpostInvalidCarrierError,
    InvalidInputError,
)
from trackwatch.models.messages import PollRequest
from trackwatch.models.registration import Registration, check_phone
from trackwatch.models.tracking import TrackCall
from trackwatch_cli.api_gateway import ApiGateway
from trackwatch_cli.demo import demo_registrations, demo_whatsapp_outcomes, play_in_sandbox
from trackwatch_cli.deployment import LocalStack, SimulatedClock, start_stack
from trackwatch_cli.display import message, redact, redact_url, text
from trackwatch_cli.endpoints import (
    LocalEndpoints,
    endpoints_file,
    remove_endpoints,
    write_endpoints,
)
from trackwatch_cli.environment import Emulator, EmulatorError, SmtpServer
from trackwatch_cli.local_input import (
    CsvCheck,
    LocalInputError,
    Registered,
    check_shipments_csv,
    csv_registrations,
    default_languages,
    register_stream,
)
from trackwatch_cli.local_senders import WHATSAPP_OUTCOMES, WhatsAppOutcome
from trackwatch_cli.progress import RunProgress, progress
from trackwatch_cli.runtime import LOCAL_CONCURRENCY, Invocation
from trackwatch_cli.sandbox import SandboxServer
from trackwatch_cli.stack import StackError
from trackwatch_cli.summary import dead_letters, print_summary, shipments_table, totals_table
from trackwatch_cli.timeline import DISPLAY_ZONE, Timeline

__all__ = ["LocalInputError", "LocalOptions", "LocalSystem", "local_command", "run_local"]

#: The simulated day starts at 09:00 in India, when customers may be messaged.
SIM_START = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
#: Simulated time between two of `--cycles`' cycles.
CYCLE_MINUTES = 30
DONE_CHECK_MINUTES = 30
#: Above this many shipments the timeline counts events and messages instead of
#: printing a line each (the output files still get every one).
TIMELINE_LINES_UP_TO = 100
#: How often the progress status is refreshed.
STATUS_EVERY_S = 0.5
#: After Ctrl-C, at most this long to collect what the timeline has not yet read.
INTERRUPT_COLLECT_S = 0.2
#: How often (simulated minutes) messages held on the simulated clock are released.
RELEASE_EVERY_MINUTES = 5
#: On the simulated clock the sandbox's journeys run this much faster than the packaged
#: ones (the longest, 160 hours, then fits in a simulated day), and started this long
#: before the day: Clickpost already knows every shipment when it is registered.
JOURNEY_SPEEDUP = 8
JOURNEY_LEAD = timedelta(minutes=10)


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
    concurrency: int = LOCAL_CONCURRENCY
    #: Where the endpoints are written (None: `endpoints_file()`).
    endpoints_path: Path | None = None
    #: Read the updated-order feed (the sandbox's, or --clickpost-url's).
    change_feed: bool = True
    #: Have the sandbox send webhooks to the local API (never to a real account's).
    webhooks: bool = True
    #: What the local WhatsApp does with each number's messages (default: read).
    whatsapp_outcomes: dict[str, WhatsAppOutcome] = field(default_factory=dict)
    #: Function settings over the template's, for harnesses (bench: DELAY_CHECKS=false).
    settings: dict[str, str] = field(default_factory=dict)


class PollCount:
    """AWBs and poll messages the poller handled (failed messages are counted on retry)."""

    def __init__(self) -> None:
        self.messages = 0
        self.awbs = 0
        self._lock = threading.Lock()

    def __call__(self, invocation: Invocation) -> None:
        """The runtime's on_invoke: count a poller batch's successful messages."""
        if invocation.function != "PollShipmentsFunction":
            return
        failed = {
            f["itemIdentifier"]
            for f in (invocation.result or {}).get("batchItemFailures", [])
            if isinstance(invocation.result, dict)
        }
        awbs = 0
        messages = 0
        for record in invocation.event.get("Records", []):
            if record.get("messageId") in failed:
                continue
            try:
                request = PollRequest.model_validate_json(record["body"])
            except ValueError:
                continue
            messages += 1
            awbs += sum(len(call.waybills) for call in request.calls)
        with self._lock:
            self.messages += messages
            self.awbs += awbs


class LocalSystem:
    """Everything `trackwatch local` runs, started and stopped together."""

    def __init__(
        self, options: LocalOptions, console: Console, *, emulator: Emulator | None = None
    ) -> None:
        """`emulator`: one already running to deploy into (the benchmarks run the naive
        poller in the same one); by default a new one is started and stopped."""
        self.options = options
        self.console = console
        self._given_emulator = emulator
        self.clock = SimulatedClock(SIM_START)
        self.polls = PollCount()
        self.whatsapp_outcomes: dict[str, WhatsAppOutcome] = dict(options.whatsapp_outcomes)
        self._stack = ExitStack()
        self.sandbox: SandboxServer | None = None
        self.csv: CsvCheck | None = None
        self.demo: list[Registration] = []
        self.registered = Registered()
        self.interrupted = False
        self.endpoints_path = options.endpoints_path or endpoints_file()
        #: The dispatcher's last cadence mode ("full" or "sweep"), said when it changes.
        self._mode = ""

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
        if options.shipments:
            self.csv = check_shipments_csv(options.shipments)
        if not options.template.is_file():
            raise LocalInputError(f"template {options.template} not found")
        events_out = self._open_out(options.events_out)
        notifications_out = self._open_out(options.notifications_out)

        url, key, username = self._clickpost()
        if self.sandbox is None:
            self._probe(url, key, username)
        if self._given_emulator is not None:
            self.emulator = self._given_emulator
        else:
            try:
                self.emulator = Emulator().start()
            except EmulatorError as exc:
                raise LocalInputError(str(exc)) from exc
            self._stack.callback(self.emulator.stop)
        smtp = SmtpServer().start()
        self._stack.callback(smtp.stop)
        self.log_path = Path(tempfile.gettempdir()) / "trackwatch-local.log"
        log = self.log_path.open("w", encoding="utf-8")
        self._stack.callback(log.close)
        self.local = self._deploy(url, (key, username), smtp.port, log)
        # Registered before anything runs: the table has no other writer yet, so new
        # shipments are created in batches.
        self._register()
        for phone, outcome in self.whatsapp_outcomes.items():
            self.local.senders.whatsapp.outcome(phone, outcome)
        self.timeline = Timeline(
            self.console,
            self.emulator.clients,
            self.local.stack.outputs["AllEventsQueueUrl"],
            self.clock,
            senders=self.local.senders,
            mailbox=smtp.mailbox,
            events_out=events_out,
            notifications_out=notifications_out,
            verbose=self.registered.rows <= TIMELINE_LINES_UP_TO,
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
        self._announce(url)

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
                        # The daily delay digest goes to the local SMTP server too.
                        "OpsDigestEmail": "ops@example.com",
                        "ChangeFeed": "enabled" if self._change_feed else "disabled",
                    },
                    clickpost_credentials=credentials,
                    settings=self.options.settings or None,
                    log=log,
                    on_invoke=self.polls,
                    concurrency=self.options.concurrency,
                    # Thousands of delayed WhatsApp checks would slow every SMS receive.
                    hold_delayed=True,
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
            if self.csv is None:
                raise LocalInputError(
                    "--clickpost-url needs --shipments FILE.csv to know what to poll"
                )
            return options.clickpost_url.rstrip("/"), key, username
        self.sandbox = self._new_sandbox().start()
        self._stack.callback(self.sandbox.stop)
        if self.csv is None:
            today = self.clock().astimezone(DISPLAY_ZONE).date()
            self.demo = demo_registrations(self.sandbox, default_languages(), today)
            # Some demo customers' WhatsApp messages fail or go unanswered: SMS takes over.
            self.whatsapp_outcomes = {**demo_whatsapp_outcomes(self.demo), **self.whatsapp_outcomes}
        return self.sandbox.base_url, "sandbox-key", "sandbox-user"

    @property
    def _timed(self) -> bool:
        """Journeys on the simulated clock: the simulated day (`--cycles` moves them a step
        per poll, ignoring time, so change capture has nothing to add there)."""
        return self.options.cycles is None

    @property
    def _change_feed(self) -> bool:
        return self.options.change_feed and self._timed

    def _new_sandbox(self) -> SandboxServer:
        """Every waybill registered here gets an answer, dated by the simulated clock; in the
        simulated day its journey moves with that clock (eight times faster than written)."""
        if not self._timed:
            return SandboxServer(clock=self.clock, any_waybill=True)
        from trackwatch_cli.sandbox import load_journeys
        from trackwatch_cli.sandbox.timed import naive_local, scaled

        return SandboxServer(
            # The delay demos keep their hours: the delay checks count real business hours.
            journeys={
                n: j if j.holds else scaled(j, 1 / JOURNEY_SPEEDUP)
                for n, j in load_journeys().items()
            },
            journey_start=naive_local(SIM_START - JOURNEY_LEAD),
            clock=self.clock,
            any_waybill=True,
            journey_clock=self.clock,
        )

    def _start_webhooks(self) -> str:
        """Point the sandbox's webhooks at the local API; the timeline line that says so."""
        if self.sandbox is None or not self._timed:
            return ""
        if not self.options.webhooks:
            return "webhooks off (--no-webhooks)"
        url = f"{self.api.base_url}/webhooks/clickpost"
        self.sandbox.send_webhooks_to(url, self.local.webhook_key)
        self._stack.callback(
            lambda: (
                self.sandbox.webhooks.close() if self.sandbox and self.sandbox.webhooks else None
            )
        )
        return f"the sandbox's webhooks to {url}"

    def _change_capture_line(self, webhooks: str) -> str:
        if not self._timed:
            return "change capture: off (--cycles polls every shipment each cycle)"
        if not self._change_feed:
            feed = (
                "the updated-order feed off (--no-change-feed): every shipment at its full cadence"
            )
        else:
            source = "the sandbox's" if self.sandbox else "Clickpost's"
            feed = (
                f"{source} updated-order feed every 5 min, the full cadence relaxed to the sweep "
                "while it is healthy"
            )
        parts = [feed] + ([webhooks] if webhooks else [])
        if self.sandbox is None:
            parts.append("no webhooks (Clickpost cannot reach this machine)")
        return "change capture: " + "; ".join(parts)

    def _probe(self, url: str, key: str, username: str) -> None:
        """One real call before anything starts, so a bad URL or key is a clear error."""
        assert self.csv is not None
        first = self.csv.first

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
        service = self.local.container().registration_service
        if self.csv is not None:
            total = self.csv.rows
            entries: Iterator[Registration] = csv_registrations(self.csv, default_languages())
        else:
            total = len(self.demo)
            entries = iter(self.demo)
        sandbox = self.sandbox if self.csv is not None else None

        def on_row(row: Registration) -> None:
            if sandbox is not None:
                play_in_sandbox(sandbox, row)

        with progress(self.console, "registering", total) as shown:
            try:
                self.registered = register_stream(
                    service, entries, on_row=on_row, on_done=shown.advance
                )
            except KeyboardInterrupt:
                self.console.print(
                    f"interrupted while registering: {shown.completed:,} of {total:,} rows "
                    "were registered (the local stack goes with this run)"
                )
                raise
        self.console.print(self.registered.line(), highlight=False)

    def _announce(self, clickpost: str) -> None:
        stack = self.local.stack
        endpoints = LocalEndpoints(
            emulator_url=self.emulator.endpoint_url,
            region=stack.region,
            stack=stack.name,
            api_url=self.api.base_url,
            pid=os.getpid(),
        )
        try:
            write_endpoints(endpoints, self.endpoints_path)
            self._stack.callback(remove_endpoints, self.endpoints_path, endpoints.pid)
            where = f"endpoints in {self.endpoints_path} (`trackwatch shipments ... --local`)"
        except OSError as exc:
            where = f"could not write the endpoints to {self.endpoints_path}: {exc}"
        # Paths, the stack's name and the user's URL are text, never markup.
        self.console.print(
            Text.assemble(
                ("trackwatch local", "bold"),
                f": {self.registered.rows:,} shipments, stack ",
                text(stack.name, style="cyan"),
                f" in moto at {self.emulator.endpoint_url}, Clickpost at ",
                text(redact_url(clickpost)),
                f"; shipments API at {self.api.base_url}; function logs in ",
                text(self.log_path),
                "; ",
                text(where),
                "; for boto3 or the AWS CLI:",
            )
        )
        for line in endpoints.export_lines():
            self.console.print(text(f"  {line}"), highlight=False)
        if not self.timeline.verbose:
            self.console.print(
                f"more than {TIMELINE_LINES_UP_TO} shipments: events and messages are counted "
                "in the progress line, not printed one by one"
                + (" (every one is in the --events-out / --notifications-out files)")
            )
        self.console.print(text(self._change_capture_line(self._start_webhooks())), highlight=False)

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Play the journeys (N cycles as fast as possible, or a simulated day), print the
        summary, and with --serve keep everything running until Ctrl-C."""
        runtime = self.local.runtime
        runtime.start(watch=[self.local.stack.outputs["AllEventsQueueUrl"]])
        self.timeline.start()
        try:
            try:
                if self.options.cycles is not None:
                    self._run_cycles(self.options.cycles)
                else:
                    self._run_clock()
            except KeyboardInterrupt:
                self._interrupted()
                return
            self._summary()
            if self.options.serve:
                try:
                    self._serve()
                except KeyboardInterrupt:
                    self._interrupted()
        finally:
            # After Ctrl-C nothing is waited for (pollers may sit in a long poll).
            wait_s = 0.0 if self.interrupted else 1.0
            self.timeline.stop(timeout_s=wait_s)
            runtime.stop(timeout_s=wait_s)

    def _interrupted(self) -> None:
        """Ctrl-C: stop taking work, read what is at hand, print what happened."""
        self.interrupted = True
        # The pollers and the timeline's thread may sit in a long poll: not waited for.
        self.local.runtime.stop(timeout_s=0.0)
        self.timeline.stop(timeout_s=0.0)
        self.console.print("[bold]interrupted[/]: what happened until now")
        try:
            self.timeline.collect(deadline=time.monotonic() + INTERRUPT_COLLECT_S)
        except Exception:  # the emulator may be mid-shutdown; the counts so far stand
            logging.getLogger(__name__).debug("collect after Ctrl-C failed", exc_info=True)
        self._summary()

    def _run_cycles(self, cycles: int) -> None:
        runtime = self.local.runtime
        with progress(self.console, "poll cycles", cycles) as shown:
            for cycle in range(cycles):
                runtime.tick(self.clock(), scope="all")
                self._wait_quiet(shown, f"cycle {cycle + 1}")
                self.clock.advance(timedelta(minutes=CYCLE_MINUTES))
                shown.advance()
                shown.status(self._status(f"cycle {cycle + 1} done"), force=True)
            # What the last cycle left waiting (an order's window, a held message) is due now.
            self._wait_quiet(shown, "after the last cycle")
        self.timeline.collect()

    def _wait_quiet(self, shown: RunProgress, doing: str) -> None:
        runtime = self.local.runtime
        # Delays (quiet hours, WhatsApp's delivery window) run on the simulated clock.
        self.local.release_delayed()
        while not runtime.wait_until_quiet(timeout_s=STATUS_EVERY_S):
            shown.status(self._status(doing))

    def _status(self, doing: str) -> str:
        status = self.local.runtime.status()
        depths = ", ".join(
            f"{_short(name)} {depth:,}" for name, depth in sorted(status.queue_depths.items())
        )
        return (
            f"{doing}: {self.polls.awbs:,} polls, {self.timeline.events:,} events, "
            f"{self.timeline.notifications:,} messages; queues: {depths or '-'}; {status.busy}"
        )

    def _run_clock(self) -> None:
        minutes = int(self.options.hours * 60)
        runtime = self.local.runtime
        with progress(self.console, "simulated minutes", minutes) as shown:
            # Registration is news: every shipment gets its first poll at once, then
            # the cadence of its status takes over.
            runtime.tick(self.clock(), scope="all")
            for minute in range(minutes):
                self._minute(shown)
                if minute % DONE_CHECK_MINUTES == 0 and self._all_done():
                    break
            self._wait_quiet(shown, "draining")
        self.timeline.collect()

    def _minute(self, shown: RunProgress) -> None:
        """One simulated minute: the scheduler's tick, then wait out the minute's share of
        real time (the functions keep working in the background meanwhile)."""
        started = time.monotonic()
        if self.sandbox is not None:
            # Clickpost's webhooks for what it recorded this minute (to the local API).
            self.sandbox.deliver_webhooks()
        if self.clock().minute % RELEASE_EVERY_MINUTES == 0:
            # Delays (quiet hours, WhatsApp's delivery window) run on the simulated
            # clock: held messages come back every few simulated minutes.
            self.local.release_delayed()
        self._say_mode(self.local.runtime.tick(self.clock()))
        self.clock.advance(timedelta(minutes=1))
        shown.advance()
        shown.status(self._status(self.timeline.local_time()))
        time.sleep(max(0.0, 1 / self.options.speed - (time.monotonic() - started)))

    def _say_mode(self, answers: list[object]) -> None:
        """A timeline line when the dispatcher changes between the sweep and the full cadence."""
        for answer in answers:
            if not isinstance(answer, dict) or answer.get("mode") not in ("full", "sweep"):
                continue
            mode, reason = str(answer["mode"]), str(answer.get("reason", ""))
            if mode != self._mode:
                self._mode = mode
                label = "sweep (reconciliation)" if mode == "sweep" else "full cadence"
                self.console.print(
                    Text.assemble(
                        (self.timeline.local_time(), "dim"),
                        " ",
                        ("cadence", "yellow"),
                        f" {label}: ",
                        text(reason),
                    ),
                    highlight=False,
                )

    def _all_done(self) -> bool:
        store = self.local.container().shipments
        return all(
            r.state.is_terminal or r.state.invalid_since is not None or not r.active
            for r in store.get_many(store.active()).values()
        )

    def _serve(self) -> None:
        """Keep the whole system running on the simulated clock until Ctrl-C: the
        scheduler ticks every simulated minute, polls follow their cadence, the timeline
        prints what happens."""
        self.timeline.verbose = True
        self.console.print(
            f"serving: the shipments API at {self.api.base_url} (no IAM locally), the "
            f"scheduler every simulated minute ({self.options.speed:g} a second); "
            f"POST /shipments and watch it move; Ctrl-C stops"
        )
        shown = RunProgress(self.console, "serving", None)
        while True:
            self._minute(shown)

    def _summary(self) -> None:
        container = self.local.container()
        keys = self.registered.keys
        # Both reads at once: after Ctrl-C the summary has little time.
        with ThreadPoolExecutor(max_workers=1) as pool:
            dead = pool.submit(dead_letters, self.emulator.clients, self.local.stack)
            records = container.shipments.get_many(keys)
        counts = {
            "poll messages handled": self.polls.messages,
            "AWBs polled": self.polls.awbs,
        }
        if self.sandbox is not None:
            requests = self.sandbox.requests
            counts["Clickpost requests"] = len(requests)
            counts["AWBs asked about"] = sum(len(r.waybills) for r in requests)
        totals = totals_table(
            counts, self.timeline.event_types, self.timeline.channels, dead.result()
        )
        shipments = shipments_table(keys, records, container.cadence, total=self.registered.rows)
        print_summary(self.console, shipments, totals)
        self._change_capture_totals()

    def _change_capture_totals(self) -> None:
        """One line: what the feed and webhooks did, and the polls they asked for."""
        if not self._timed:
            return
        results = [
            i.result
            for i in list(self.local.runtime.invocations)
            if i.function == "CoalesceHintsFunction" and isinstance(i.result, dict)
        ]
        hinted = sum(int(r.get("polled", 0)) for r in results)
        seen = sum(int(r.get("already_seen", 0)) for r in results)
        parts = [f"{hinted} waybills polled on a hint ({seen} hints already seen)"]
        if self.sandbox is not None:
            parts.append(f"{self.sandbox.feed_requests} feed requests")
            if self.sandbox.webhooks is not None:
                sent = self.sandbox.webhooks.sent
                accepted = sum(1 for w in sent if w.status == 200)
                parts.append(f"{len(sent)} webhooks ({accepted} accepted)")
        self.console.print(text("change capture: " + ", ".join(parts)), highlight=False)


def _short(queue: str) -> str:
    """A queue's physical name without the stack prefix and random suffix."""
    parts = queue.split("-")
    return parts[-2] if len(parts) >= 3 else queue


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Libraries that log per request would drown the timeline."""
    names = ("moto", "werkzeug", "httpx", "botocore", "aiosmtpd", "mail.log")
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
    if options.concurrency < 1:
        raise LocalInputError(f"--concurrency must be at least 1, got {options.concurrency}")
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
        bool,
        typer.Option(
            help="After the journeys, keep the whole system running on the simulated clock "
            "(API, scheduler, polls, notifications) until Ctrl-C."
        ),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(
            help="Invocations at once of an event source whose template sets no "
            "MaximumConcurrency (one that does gets that many)."
        ),
    ] = LOCAL_CONCURRENCY,
    change_feed: Annotated[
        bool,
        typer.Option(
            "--change-feed/--no-change-feed",
            help="Read the updated-order feed and relax the cadence while it is healthy.",
        ),
    ] = True,
    webhooks: Annotated[
        bool,
        typer.Option(
            "--webhooks/--no-webhooks",
            help="Have the sandbox send status webhooks to the local API.",
        ),
    ] = True,
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
        concurrency=concurrency,
        change_feed=change_feed,
        webhooks=webhooks,
    )
    # Soft wrap: timeline lines stay whole when piped to a file or another program.
    console = Console(soft_wrap=True)
    try:
        options.whatsapp_outcomes = whatsapp_outcomes(whatsapp or [])
        system = run_local(options, console)
    except LocalInputError as exc:
        # The message quotes CSV cells and paths: text, not markup; the URL redacted.
        reason = redact(str(exc), clickpost_url) if clickpost_url else str(exc)
        Console(stderr=True, soft_wrap=True).print(
            Text.assemble(("error:", "bold red"), " ", message(reason)), highlight=False
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted before the stack was running")
        _exit_now(130)
    if system.interrupted:
        # An invocation still running is abandoned, as Lambda abandons one whose
        # environment shuts down; waiting for it (or its retries against a stopped
        # emulator) would break the promise to stop within two seconds.
        _exit_now(130)


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
