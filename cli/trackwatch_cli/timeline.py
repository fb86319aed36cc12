"""What `trackwatch local` shows as it happens: each event, SMS and e-mail, one line each.

It is the consumer of the stack's `AllEventsQueue` (the audit queue, which gets every
event exactly as subscribers receive it, and which nothing else in the stack reads),
reads SMS from the local SMS sender and e-mails from the local SMTP server, prints
them, and writes them to the `--events-out` / `--notifications-out` files. It runs in
a thread of its own while the stack runs, so the queue stays short (the emulator's
sends slow down as a queue grows), and keeps counts, not the events themselves.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.text import Text

from trackwatch.adapters.aws import AwsClients
from trackwatch.models.notification import Message
from trackwatch_cli.deployment import LocalSenders
from trackwatch_cli.display import text
from trackwatch_cli.environment import Mailbox

DISPLAY_ZONE = ZoneInfo("Asia/Kolkata")


def masked_phone(phone: str) -> str:
    """A phone number with its middle hidden."""
    return phone[:3] + "*" * max(0, len(phone) - 5) + phone[-2:]


def masked_email(address: str) -> str:
    """An e-mail address with its user hidden."""
    user, _, domain = address.partition("@")
    return f"{user[:1]}***@{domain}"


def _detail(kind: str, event: dict[str, Any]) -> Text:
    # Every value here is Clickpost's text: shown as text (see display.py), never markup.
    if kind == "status_changed":
        return Text.assemble(
            text(event.get("from_bucket_description") or "-"),
            " → ",
            text(event.get("to_bucket_description"), style="bold"),
            " (final)" if event.get("is_terminal") else "",
        )
    if kind == "ndr_raised":
        return Text.assemble(f"attempt {event['attempt']}: ", text(event.get("ndr_description")))
    if kind == "edd_changed":
        return Text.assemble(
            text(event["previous"].get("courier_partner_edd")),
            " → ",
            text(event["current"].get("courier_partner_edd")),
        )
    return _delay_detail(kind, event)


def _delay_detail(kind: str, event: dict[str, Any]) -> Text:
    """What the delay checks' events say: why stuck, which promise, when now expected."""
    if kind == "stuck" and event.get("reason") == "no_scan_for":
        return Text(
            f"no scan for {event.get('no_scan_for_hours')} business hours "
            f"(threshold {event.get('threshold_hours')}, {event.get('threshold_source')})",
            style="yellow",
        )
    if kind == "stuck":
        return Text("flagged by Clickpost", style="yellow")
    if kind == "unstuck":
        return Text("moved again" if event.get("reason") == "moved" else "Clickpost cleared it")
    if kind == "sla_breached":
        return Text(
            f"missed its promise of {event['promised_delivery_date']} ({event['promise_source']})",
            style="red",
        )
    if kind == "delay_predicted":
        return Text(
            f"promised {event['promised_delivery_date']}, now expected "
            f"{event['predicted_delivery_date']}",
            style="yellow",
        )
    return Text()


def _order_detail(event: dict[str, Any]) -> Text:
    """An order event's counts: "2 of 3 delivered", or how its members stand."""
    if event["event_type"] == "order.status_changed":
        return text(f"{event['reached']} of {event['total']} {event['stage']}", style="bold")
    counts = event.get("counts") or {}
    return text(", ".join(f"{n} {standing}" for standing, n in sorted(counts.items())))


def event_line(event: dict[str, Any], when: str) -> Text | None:
    """The timeline's line for an event (None for scans, which are not shown)."""
    if event["event_type"].startswith("order."):
        kind = event["event_type"].removeprefix("order.")
        return Text.assemble(
            (when, "dim"),
            " ",
            ("order", "cyan"),
            f" {kind:<15} ",
            text(event["order_id"]),
            " ",
            _order_detail(event),
        )
    kind = event["event_type"].removeprefix("shipment.")
    if kind == "scan_added":
        return None
    return Text.assemble(
        (when, "dim"),
        " ",
        ("event", "green"),
        f" {kind:<15} ",
        text(event["waybill"]),
        " ",
        _detail(kind, event),
    )


def notification_line(
    channel: str, to: str, body: str, when: str, instead_of: str | None = None
) -> Text:
    """The timeline's line for a WhatsApp message or an SMS (its first 90 characters; an SMS
    standing in for WhatsApp says why) or an e-mail (its subject)."""
    if channel in ("sms", "whatsapp"):
        first = body.splitlines()[0] if body else ""
        return Text.assemble(
            (when, "dim"),
            " ",
            (channel, "magenta" if channel == "sms" else "green"),
            " " * (9 - len(channel)),
            "to ",
            text(masked_phone(to)),
            (f" (for whatsapp: {instead_of})", "yellow") if instead_of else "",
            ": ",
            text(first[:90]),
        )
    return Text.assemble(
        (when, "dim"), " ", ("email", "blue"), " to ", text(masked_email(to)), ": ", text(body)
    )


def message_record(message: Message) -> dict[str, Any]:
    """A WhatsApp message or an SMS as a `--notifications-out` line."""
    record: dict[str, Any] = {
        "channel": message.channel,
        "to": message.to,
        "kind": message.kind,
        "language": message.language,
        "body": message.body,
    }
    if message.whatsapp is not None:
        record["template"] = message.whatsapp.name
        record["template_language"] = message.whatsapp.language_code
        record["parameters"] = list(message.whatsapp.parameters)
    if message.dlt_template_id is not None:
        record["dlt_template_id"] = message.dlt_template_id
        record["encoding"] = message.encoding
        record["segments"] = message.segments
    if message.fallback is not None:
        record["fallback_of"] = message.fallback.from_channel
        record["fallback_reason"] = message.fallback.reason
    return record


#: How long the timeline's thread waits for an event before it looks at messages again.
COLLECT_WAIT_S = 1
#: The pause between two collections.
COLLECT_PAUSE_S = 0.5


class Timeline:
    """Collects and prints events and notifications; counts them for the summary."""

    def __init__(
        self,
        console: Console,
        clients: AwsClients,
        events_queue: str,
        clock: Callable[[], datetime],
        *,
        senders: LocalSenders,
        mailbox: Mailbox,
        events_out: IO[str] | None = None,
        notifications_out: IO[str] | None = None,
        verbose: bool = True,
    ) -> None:
        """`events_queue`: the URL of a raw-delivery queue on the topic with no filter;
        `verbose`: print a line per event and message (else only count them)."""
        self.console = console
        self._sqs = clients.sqs
        self._queue = events_queue
        self._clock = clock
        self._senders = senders
        self._mailbox = mailbox
        self._events_out = events_out
        self._notifications_out = notifications_out
        self.verbose = verbose
        self.event_types: Counter[str] = Counter()
        self.channels: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def events(self) -> int:
        """Events received so far."""
        return sum(self.event_types.values())

    @property
    def notifications(self) -> int:
        """SMS and e-mails sent so far."""
        return sum(self.channels.values())

    def start(self) -> None:
        """Collect in a thread of its own until `stop()`."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                # Long polling: the thread waits in the emulator, not in a loop of requests;
                # then a pause, so events are read ten at a time rather than as they trickle.
                self.collect(wait_s=COLLECT_WAIT_S)
            except Exception:  # the emulator going away at shutdown
                logging.getLogger(__name__).debug("timeline collect failed", exc_info=True)
            self._stopping.wait(COLLECT_PAUSE_S)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the thread (what is left can still be `collect()`ed)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def collect(self, *, deadline: float | None = None, wait_s: int = 0) -> None:
        """Read, print and count what happened since the last call (until the queue is
        empty, or until the monotonic `deadline`, if the thread lets go by then); the
        first read waits up to `wait_s`."""
        if not self._lock.acquire(
            timeout=-1 if deadline is None else max(0.0, deadline - time.monotonic())
        ):
            return
        try:
            self._collect_events(deadline, wait_s)
            self._collect_notifications()
            for handle in (self._events_out, self._notifications_out):
                if handle is not None:
                    handle.flush()
        finally:
            self._lock.release()

    def _collect_events(self, deadline: float | None, wait_s: int) -> None:
        while deadline is None or time.monotonic() < deadline:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
            ).get("Messages", [])
            wait_s = 0
            if not messages:
                return
            for message in messages:
                self._event(json.loads(message["Body"]), message["Body"])
            self._sqs.delete_message_batch(
                QueueUrl=self._queue,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def _event(self, event: dict[str, Any], raw: str) -> None:
        self.event_types[event["event_type"]] += 1
        if self._events_out is not None:
            self._events_out.write(raw + "\n")
        if not self.verbose:
            return
        line = event_line(event, self.local_time())
        if line is not None:
            self.console.print(line)

    def _collect_notifications(self) -> None:
        for message in self._senders.whatsapp.take():
            self._notification(message_record(message))
            if self.verbose:
                self.console.print(
                    notification_line("whatsapp", message.to, message.body, self.local_time())
                )
        for report in self._senders.whatsapp.take_reports():
            if report.status == "failed" and self.verbose:
                self.console.print(
                    Text.assemble(
                        (self.local_time(), "dim"),
                        " ",
                        ("whatsapp failed", "red"),
                        " (",
                        text(report.error_code),
                        ") for ",
                        text(masked_phone(report.to)),
                        ": SMS takes over",
                    )
                )
        for message in self._senders.sms.take():
            self._notification(message_record(message))
            reason = message.fallback.reason if message.fallback is not None else None
            if self.verbose:
                self.console.print(
                    notification_line("sms", message.to, message.body, self.local_time(), reason)
                )
        for mail in self._mailbox.take():
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
            if self.verbose:
                self.console.print(
                    notification_line(
                        "email", str(mail["To"]), str(mail["Subject"]), self.local_time()
                    )
                )

    def _notification(self, record: dict[str, Any]) -> None:
        self.channels[record["channel"]] += 1
        if self._notifications_out is not None:
            self._notifications_out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def local_time(self) -> str:
        """The simulated time, as the user reads it."""
        return f"{self._clock().astimezone(DISPLAY_ZONE):%d %b %H:%M}"
