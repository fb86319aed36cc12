"""What `trackwatch local` shows as it happens: each event, SMS and e-mail, one line each.

It reads events from a queue of its own on the topic (exactly what subscribers get),
SMS from the local SMS sender and e-mails from the local SMTP server, prints them,
and writes them to the `--events-out` / `--notifications-out` files.
"""

from __future__ import annotations

import json
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


def tap(clients: AwsClients, topic_arn: str, name: str = "trackwatch-local-timeline") -> str:
    """A queue of our own on the topic: every event exactly as subscribers receive it."""
    sqs = clients.sqs
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    clients.sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


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


class Timeline:
    """Collects and prints events and notifications; keeps them for the summary."""

    def __init__(
        self,
        console: Console,
        clients: AwsClients,
        tap_queue: str,
        clock: Callable[[], datetime],
        *,
        senders: LocalSenders,
        mailbox: Mailbox,
        events_out: IO[str] | None = None,
        notifications_out: IO[str] | None = None,
    ) -> None:
        self.console = console
        self._sqs = clients.sqs
        self._tap = tap_queue
        self._clock = clock
        self._senders = senders
        self._mailbox = mailbox
        self._events_out = events_out
        self._notifications_out = notifications_out
        self.events: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self._sms_seen = 0
        self._whatsapp_seen = 0
        self._reports_seen = 0
        self._mail_seen = 0

    def collect(self) -> None:
        """Read, print and keep what happened since the last call."""
        self._collect_events()
        self._collect_notifications()

    def _collect_events(self) -> None:
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._tap, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                self._event(json.loads(message["Body"]), message["Body"])
            self._sqs.delete_message_batch(
                QueueUrl=self._tap,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def _event(self, event: dict[str, Any], raw: str) -> None:
        self.events.append(event)
        if self._events_out is not None:
            self._events_out.write(raw + "\n")
            self._events_out.flush()
        line = event_line(event, self.local_time())
        if line is not None:
            self.console.print(line)

    def _collect_notifications(self) -> None:
        whatsapp = self._senders.whatsapp.since(self._whatsapp_seen)
        self._whatsapp_seen += len(whatsapp)
        for message in whatsapp:
            self._notification(message_record(message))
            self.console.print(
                notification_line("whatsapp", message.to, message.body, self.local_time())
            )
        reports = self._senders.whatsapp.reports_since(self._reports_seen)
        self._reports_seen += len(reports)
        for report in reports:
            if report.status == "failed":
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
        sms = self._senders.sms.since(self._sms_seen)
        self._sms_seen += len(sms)
        for message in sms:
            self._notification(message_record(message))
            reason = message.fallback.reason if message.fallback is not None else None
            self.console.print(
                notification_line("sms", message.to, message.body, self.local_time(), reason)
            )
        mails = self._mailbox.since(self._mail_seen)
        self._mail_seen += len(mails)
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
                notification_line("email", str(mail["To"]), str(mail["Subject"]), self.local_time())
            )

    def _notification(self, record: dict[str, Any]) -> None:
        self.notifications.append(record)
        if self._notifications_out is not None:
            self._notifications_out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._notifications_out.flush()

    def local_time(self) -> str:
        """The simulated time, as the user reads it."""
        return f"{self._clock().astimezone(DISPLAY_ZONE):%d %b %H:%M}"
