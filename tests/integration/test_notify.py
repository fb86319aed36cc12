"""The notifiers over moto: deployed from the template, driven as Lambda would, SMS and
WhatsApp through the local senders (moto has neither End User Messaging service), whose
WhatsApp plays Meta's reports back onto the stack's WhatsApp events topic."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from moto.ses.models import ses_backends
from moto.sqs.models import sqs_backends

from tests.integration.conftest import emulated_aws
from tests.notify_samples import EMAIL, KEY, PHONE, ndr_raised, status_changed, stuck
from trackwatch.adapters.events_topic import EventsTopic
from trackwatch.adapters.notifications_table import NotificationsTable
from trackwatch.adapters.shipments_table import to_item
from trackwatch.errors import ProviderUnavailableError
from trackwatch.models.events import EVENT_ADAPTER, ShipmentEvent
from trackwatch.models.notification import Delivery
from trackwatch.observability import logger
from trackwatch_cli.deployment import (
    LocalStack,
    OverLocalStack,
    SimulatedClock,
    start_stack,
    with_local_senders,
)
from trackwatch_cli.runtime import LocalRuntime

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DAYTIME = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata
NIGHT = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 22:30 in Kolkata
SMS_FIRST = ["sms", "email"]


class Inbox:
    """A real SMTP server's mailbox (aiosmtpd)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted"


@dataclass
class Notify(OverLocalStack):
    local: LocalStack

    @property
    def clock(self) -> SimulatedClock:
        return self.local.clock

    def reconfigure(self, **variables: str) -> None:
        """The same stack, with its functions started again with some settings changed."""
        self.local.runtime = LocalRuntime(
            self.stack,
            self.clients,
            clock=self.clock,
            settings=variables,
            overrides=with_local_senders(self.local.senders, {}),
            real_time_waits=False,
        )

    def shipment(self, **contact: Any) -> None:
        """Store the sample shipment with a contact (defaults: both addresses, English, every
        channel, WhatsApp first)."""
        value = {"phone": PHONE, "email": EMAIL, "language": "en", **contact}
        self.clients.dynamodb.put_item(
            TableName=self.stack.physical_ids["ShipmentsTable"],
            Item=to_item(
                {
                    "pk": KEY.pk,
                    "cp_id": KEY.cp_id,
                    "waybill": KEY.waybill,
                    "version": 1,
                    "state": json.dumps(
                        {"order_id": "ORD-1042", "edd": {"courier_partner_edd": "2026-12-04"}}
                    ),
                    "registered_at": DAYTIME.isoformat(),
                    "contact": {k: v for k, v in value.items() if v is not None},
                    "metadata": {},
                    "outbox_seq": 1,
                }
            ),
        )

    def item(self) -> dict[str, Any]:
        answer = self.clients.dynamodb.get_item(
            TableName=self.stack.physical_ids["ShipmentsTable"], Key={"pk": {"S": KEY.pk}}
        )
        item: dict[str, Any] = answer["Item"]
        return item

    def memory(self, channel: str) -> dict[str, Any]:
        """One channel's memory of the sample shipment (its item in NotificationsTable)."""
        answer = self.clients.dynamodb.get_item(
            TableName=self.stack.physical_ids["NotificationsTable"],
            Key={"pk": {"S": f"channel#{channel}#{KEY.pk}"}},
        )
        item: dict[str, Any] = answer.get("Item", {})
        return item

    def publish(self, *events: ShipmentEvent) -> None:
        """Publish as the pipeline does: SNS, message attributes, filtered raw delivery."""
        topic = EventsTopic(self.stack.outputs["ShipmentEventsTopicArn"], self.clients.sns)
        topic.publish(list(events))

    def drain(self, function: str) -> int:
        (source,) = self.stack.sources_of(function)
        return self.runtime.drain_queue(source)

    def settle(self) -> None:
        """Every notifier and the WhatsApp events consumer, until nothing moves."""
        self.runtime.settle(
            only={
                "NotifySmsFunction",
                "NotifyWhatsAppFunction",
                "NotifyEmailFunction",
                "RecordWhatsAppEventsFunction",
            }
        )

    def later(self, delta: timedelta) -> None:
        """Let simulated time pass, and the queue delays with it."""
        self.clock.advance(delta)
        self.local.release_delayed()
        self.settle()

    def sms(self) -> list[tuple[str, str]]:
        return [(m.to, m.body) for m in self.local.senders.sms.messages]

    def whatsapp(self) -> list[tuple[str, str]]:
        return [(m.to, m.body) for m in self.local.senders.whatsapp.messages]

    def emails(self) -> list[Any]:
        return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)

    def queue(self, logical_id: str) -> Any:
        name = self.stack.physical_ids[logical_id].rsplit("/", 1)[1]
        return sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[name]

    def record(self, event: ShipmentEvent, channel: str) -> Delivery | None:
        table = NotificationsTable(
            self.stack.physical_ids["NotificationsTable"], self.clients.dynamodb, 3600
        )
        return table.delivery(event.event_id, channel)  # type: ignore[arg-type]


@pytest.fixture
def notify() -> Iterator[Notify]:
    with emulated_aws() as clients:
        local = start_stack(
            ROOT / "template.yaml",
            clients,
            SimulatedClock(DAYTIME),
            stack_name="trackwatch-notify",
            real_time_waits=False,
        )
        email_from = local.stack.functions["NotifyEmailFunction"].environment["EMAIL_FROM"]
        clients.ses.verify_email_identity(EmailAddress=email_from)
        yield Notify(local=local)


def test_a_redelivered_event_sends_one_sms_and_one_email(notify: Notify) -> None:
    # Given a shipment whose customer prefers SMS, and its out-for-delivery event delivered
    # twice by SNS
    notify.shipment(channels=SMS_FIRST)
    event = status_changed(6)
    notify.publish(event)
    notify.publish(event)

    # When both consumers drain their queues
    notify.drain("NotifySmsFunction")
    notify.drain("NotifyEmailFunction")

    # Then exactly one message per channel
    ((phone, text),) = notify.sms()
    assert phone == PHONE
    assert "ORD-1042 is out for delivery" in text
    (mail,) = notify.emails()
    assert mail.destinations["ToAddresses"] == [EMAIL]
    assert mail.subject == "Your order ORD-1042 is out for delivery"


def test_a_poison_record_fails_alone_and_ends_in_the_dead_letter_queue(notify: Notify) -> None:
    # Given a batch with a good event and a body that is no event at all
    notify.shipment(channels=SMS_FIRST)
    sqs = notify.clients.sqs
    url = notify.stack.outputs["SmsQueueUrl"]
    poison = sqs.send_message(QueueUrl=url, MessageBody='{"event_type": "nonsense"}')
    sqs.send_message(QueueUrl=url, MessageBody=EVENT_ADAPTER.dump_json(stuck()).decode())

    # When
    notify.drain("NotifySmsFunction")

    # Then the first batch failed only the poison; the good one was sent once
    first = notify.runtime.invocations[0]
    assert first.records == 2
    assert first.result["batchItemFailures"] == [{"itemIdentifier": poison["MessageId"]}]
    assert len(notify.sms()) == 1
    dead = sqs.receive_message(
        QueueUrl=notify.stack.outputs["SmsDeadLetterQueueUrl"], MaxNumberOfMessages=10
    )
    assert [m["MessageId"] for m in dead["Messages"]] == [poison["MessageId"]]


def test_provider_throttling_is_retried_then_dead_lettered(notify: Notify) -> None:
    # Given End User Messaging throttles every SMS
    notify.shipment(channels=SMS_FIRST)
    notify.local.senders.sms.failure = ProviderUnavailableError("Throttling")
    notify.publish(status_changed(8))

    # When
    notify.drain("NotifySmsFunction")

    # Then it was tried on each of the queue's 5 receives, then moved to the DLQ
    assert [i.failed for i in notify.runtime.invocations] == [1] * 5
    assert notify.sms() == []
    sqs = notify.clients.sqs
    dead = sqs.receive_message(QueueUrl=notify.stack.outputs["SmsDeadLetterQueueUrl"])
    assert len(dead["Messages"]) == 1

    # And once it recovers, a redrive of that message is sent (the failure was not recorded)
    notify.local.senders.sms.failure = None
    sqs.send_message(
        QueueUrl=notify.stack.outputs["SmsQueueUrl"], MessageBody=dead["Messages"][0]["Body"]
    )
    notify.drain("NotifySmsFunction")
    assert len(notify.sms()) == 1


def test_quiet_hours_delay_the_message_until_0900_in_kolkata(notify: Notify) -> None:
    # Given it is 22:30 in Kolkata
    notify.shipment(channels=SMS_FIRST)
    notify.clock.now = NIGHT
    notify.publish(status_changed(6))

    # When
    notify.drain("NotifySmsFunction")

    # Then nothing is sent; a copy waits in the queue, 15 minutes at a time, marked 09:00 IST
    assert notify.sms() == []
    (held,) = notify.queue("SmsQueue")._messages
    assert held.delayed_until - held.sent_timestamp == pytest.approx(900_000, abs=50)
    not_before = held.message_attributes["not_before"]["StringValue"]
    assert datetime.fromisoformat(not_before) == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert held.message_attributes["event_type"]["StringValue"] == "shipment.status_changed"

    # When it comes back at 08:50 it waits the last 10 minutes; at 09:00:05 it is sent
    notify.clock.now = datetime(2026, 11, 28, 3, 20, tzinfo=UTC)
    held.delayed_until = 0
    notify.drain("NotifySmsFunction")
    (again,) = notify.queue("SmsQueue")._messages
    assert again.delayed_until - again.sent_timestamp == pytest.approx(600_000, abs=50)
    notify.clock.now = datetime(2026, 11, 28, 3, 30, 5, tzinfo=UTC)
    again.delayed_until = 0
    notify.drain("NotifySmsFunction")
    assert len(notify.sms()) == 1


def test_a_flapping_out_for_delivery_sends_one_message(notify: Notify) -> None:
    # Given out for delivery, a failed attempt and out for delivery again within the hour
    notify.shipment(channels=SMS_FIRST)
    for minutes, event in (
        (0, status_changed(6, "a")),
        (20, ndr_raised()),
        (40, status_changed(6, "b")),
    ):
        notify.clock.now = DAYTIME + timedelta(minutes=minutes)
        notify.publish(event)
        notify.drain("NotifySmsFunction")

    # Then one out-for-delivery SMS, and one about the failed attempt with its reason
    texts = [text for _, text in notify.sms()]
    assert len(texts) == 2
    assert sum("out for delivery" in t for t in texts) == 1
    assert any("Customer Unavailable" in t for t in texts)


def test_an_sms_opt_out_is_honoured_and_email_still_goes(notify: Notify) -> None:
    notify.shipment(channels=SMS_FIRST, opt_out=["sms"])
    notify.publish(status_changed(8))
    notify.drain("NotifySmsFunction")
    notify.drain("NotifyEmailFunction")
    assert notify.sms() == []
    assert len(notify.emails()) == 1


def test_an_invalid_number_is_remembered_and_not_retried(notify: Notify) -> None:
    # Given a number that cannot be a phone number
    notify.shipment(phone="12345", channels=SMS_FIRST)
    shipment = notify.item()
    notify.publish(status_changed(6))

    # When
    notify.drain("NotifySmsFunction")

    # Then the message succeeded (no retries, nothing in the DLQ), the failure is in SMS's
    # memory of the shipment, and the shipment item is as it was
    assert [i.failed for i in notify.runtime.invocations] == [0]
    assert notify.memory("sms")["contact_failure"]["M"]["reason"] == {"S": "invalid_number"}
    assert notify.item() == shipment


def test_a_send_never_writes_the_shipment(notify: Notify) -> None:
    # Given a customer on every channel
    notify.shipment()
    shipment = notify.item()

    # When two pieces of news go out by WhatsApp and e-mail
    notify.publish(status_changed(6))
    notify.settle()
    notify.publish(ndr_raised())
    notify.settle()

    # Then each channel remembers in its own small item, and the shipment item is untouched
    assert len(notify.whatsapp()) == 2
    assert len(notify.emails()) == 2
    for channel in ("whatsapp", "email"):
        log = notify.memory(channel)["log"]["M"]
        assert log["seq"] == {"N": "2"}
        assert "expires_at" in notify.memory(channel)
    assert notify.memory("sms") == {}
    assert notify.item() == shipment


def test_memory_kept_on_the_shipment_by_an_earlier_layout_is_still_read(notify: Notify) -> None:
    # Given a shipment whose WhatsApp log was kept on its item, at today's cap
    notify.reconfigure(NOTIFY_DAILY_CAP="1")
    notify.shipment(channels=["whatsapp"])
    today = DAYTIME.date().isoformat()
    notify.clients.dynamodb.update_item(
        TableName=notify.stack.physical_ids["ShipmentsTable"],
        Key={"pk": {"S": KEY.pk}},
        UpdateExpression="SET notified_whatsapp = :log",
        ExpressionAttributeValues=to_item(
            {":log": {"seq": 4, "last_event_id": "earlier", "day": today, "day_count": 1}}
        ),
    )

    # When news comes
    notify.publish(status_changed(6))
    notify.settle()

    # Then the old log still counts: the day's one message was sent already
    assert notify.whatsapp() == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_emails_reach_a_real_smtp_server_in_hindi(notify: Notify) -> None:
    # Given an SMTP relay (an open one: its secret has no username) and a Hindi customer
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # (start_stack made the relay's secret: an open relay, an empty username.)
        notify.reconfigure(
            EMAIL_TRANSPORT="smtp",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(port),
            SMTP_STARTTLS="false",
        )
        notify.shipment(language="hi")
        notify.publish(ndr_raised())

        # When
        notify.drain("NotifyEmailFunction")
    finally:
        controller.stop()

    # Then
    (mail,) = inbox.messages
    assert mail["To"] == EMAIL
    # (A non-ASCII subject travels as encoded words; decoding may double a space.)
    assert " ".join(mail["Subject"].split()) == "हम आपका ऑर्डर ORD-1042 डिलीवर नहीं कर सके"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "बताया गया कारण: Customer Unavailable" in text
    assert "अनुमानित डिलीवरी: 4 दिसंबर 2026" in text


def test_no_phone_number_or_email_address_reaches_the_logs(
    notify: Notify, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given every logger at DEBUG, and both notifiers down every path they have
    caplog.set_level(logging.DEBUG)
    logger.setLevel("DEBUG")
    # powertools' Logger holds the stdout it started with; point it at a buffer of ours.
    structured = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(structured)
    try:
        # WhatsApp fails for this number: every message goes by SMS too
        notify.local.senders.whatsapp.outcome(PHONE, "failed")
        notify.shipment()
        notify.publish(status_changed(6, "a"), status_changed(6, "a"), ndr_raised())  # dup
        notify.publish(status_changed(6, "b"))  # a repeat
        notify.settle()
        notify.later(timedelta(minutes=31))  # the delivery checks
        notify.clock.now = NIGHT
        notify.publish(stuck())  # held for quiet hours
        notify.settle()
        notify.clock.now = DAYTIME
        notify.local.senders.whatsapp.reply(PHONE, "STOP")  # an opt-out by number
        notify.settle()
        notify.shipment(phone="+91 12", email="not-an-address")
        notify.publish(status_changed(8))  # rejected addresses
        sqs = notify.clients.sqs
        sqs.send_message(QueueUrl=notify.stack.outputs["SmsQueueUrl"], MessageBody="poison")
        notify.settle()
    finally:
        logger.setLevel("INFO")
        if previous is not None:
            handler.setStream(previous)

    # When
    captured = capfd.readouterr()
    logs = structured.getvalue() + captured.out + captured.err + caplog.text

    # Then the summaries are there, and no address in any form (WhatsApp's reports carry the
    # number without its "+")
    assert '"outcomes"' in logs
    assert "whatsapp events batch" in logs
    assert notify.whatsapp()
    assert notify.sms()
    for secret in (PHONE, PHONE[1:], PHONE[3:], EMAIL, "+91 12", "not-an-address"):
        assert secret not in logs, secret
    assert not re.search(r"[\w.+-]+@example\.in", logs)


# --------------------------------------------------------------------------- WhatsApp


def test_whatsapp_goes_first_and_a_delivered_message_needs_no_sms(notify: Notify) -> None:
    # Given a customer who named no channels, whose WhatsApp messages are read
    notify.shipment()
    event = status_changed(6)
    notify.publish(event)

    # When every queue is worked off, and the delivery window passes
    notify.settle()
    notify.later(timedelta(minutes=31))

    # Then one WhatsApp message (the approved template), an e-mail, and no SMS
    ((to, body),) = notify.whatsapp()
    assert to == PHONE
    assert body.startswith("Your order ORD-1042 is out for delivery today with Delhivery.")
    (message,) = notify.local.senders.whatsapp.messages
    assert message.whatsapp is not None
    assert message.whatsapp.name == "trackwatch_out_for_delivery"
    assert len(notify.emails()) == 1
    assert notify.sms() == []
    record = notify.record(event, "whatsapp")
    assert record is not None and record.state.value == "read"
    assert record.provider_message_id == "wamid.local-1"


@pytest.mark.parametrize(
    ("outcome", "reason", "wait"),
    [
        ("failed", "failed", timedelta(0)),
        ("undeliverable", "undeliverable", timedelta(0)),
        ("silent", "timeout", timedelta(minutes=31)),
    ],
)
def test_an_undelivered_whatsapp_message_goes_by_sms_once_and_the_record_says_why(
    notify: Notify, outcome: Any, reason: str, wait: timedelta
) -> None:
    # Given WhatsApp messages to this number fail, cannot be delivered, or are never reported
    notify.local.senders.whatsapp.outcome(PHONE, outcome)
    notify.shipment()
    event = status_changed(6)
    notify.publish(event)
    # The SMS notifier takes its copy first and stands by for WhatsApp (a status report
    # that came before it would make SMS the first choice instead: the next test's case).
    notify.drain("NotifySmsFunction")

    # When everything settles (and for silence, the delivery window passes)
    notify.settle()
    notify.later(wait)
    notify.later(timedelta(minutes=31))

    # Then one SMS in its place, and both notification records say why
    ((to, body),) = notify.sms()
    assert to == PHONE
    assert "out for delivery" in body
    (sms,) = notify.local.senders.sms.messages
    assert sms.fallback is not None and sms.fallback.reason == reason
    whatsapp = notify.record(event, "whatsapp")
    sms_record = notify.record(event, "sms")
    assert whatsapp is not None and whatsapp.fallback is not None
    assert (whatsapp.fallback.to_channel, whatsapp.fallback.reason) == ("sms", reason)
    assert sms_record is not None and sms_record.fallback_of is not None
    assert sms_record.fallback_of.reason == reason
    assert notify.runtime.crashes == []
    dead = [
        n
        for n, url in notify.stack.outputs.items()
        if n.endswith("DeadLetterQueueUrl")
        and notify.clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        != "0"
    ]
    assert dead == []


def test_a_number_not_on_whatsapp_gets_sms_first_from_then_on(notify: Notify) -> None:
    # Given a number WhatsApp reports undeliverable (Meta's 131026)
    notify.local.senders.whatsapp.outcome(PHONE, "undeliverable")
    notify.shipment()
    notify.publish(status_changed(6))
    notify.settle()

    # When the next event comes
    notify.publish(ndr_raised())
    notify.settle()

    # Then the shipment remembers, and the next message went by SMS alone
    assert notify.memory("whatsapp")["contact_failure"]["M"]["reason"] == {"S": "whatsapp_131026"}
    assert len(notify.whatsapp()) == 1
    assert len(notify.sms()) == 2
    assert notify.local.senders.sms.messages[1].fallback is None


def test_a_stop_reply_opts_the_number_out_of_whatsapp(notify: Notify) -> None:
    # Given a customer who replied STOP on WhatsApp
    notify.shipment()
    notify.local.senders.whatsapp.reply(PHONE, "Stop")
    notify.settle()

    # When an event comes
    notify.publish(status_changed(6))
    notify.settle()
    notify.later(timedelta(minutes=31))

    # Then no WhatsApp message, and SMS (now first) and e-mail went
    assert notify.whatsapp() == []
    assert len(notify.sms()) == 1
    assert len(notify.emails()) == 1


def test_quiet_hours_hold_a_fallback_too(notify: Notify) -> None:
    # Given a WhatsApp message at 20:50 in Kolkata that is never reported delivered
    notify.local.senders.whatsapp.outcome(PHONE, "silent")
    notify.shipment()
    notify.clock.now = datetime(2026, 11, 27, 15, 20, tzinfo=UTC)
    notify.publish(status_changed(6))
    notify.settle()

    # When its delivery check comes at 21:20, and then through the night in 15-minute hops
    notify.later(timedelta(minutes=31))
    held_overnight = notify.sms()
    while notify.clock.now < datetime(2026, 11, 28, 3, 35, tzinfo=UTC):
        notify.later(timedelta(minutes=15))

    # Then the SMS waited for 09:00
    assert held_overnight == []
    assert len(notify.sms()) == 1


def test_the_customers_order_of_channels_is_kept(notify: Notify) -> None:
    # Given a customer who prefers SMS to WhatsApp, and no e-mail
    notify.shipment(channels=["sms", "whatsapp"])
    notify.publish(status_changed(6))

    # When
    notify.settle()
    notify.later(timedelta(minutes=31))

    # Then SMS only: WhatsApp stands by (and no delivery check: SMS reports nothing)
    assert len(notify.sms()) == 1
    assert notify.whatsapp() == []
    assert notify.emails() == []
