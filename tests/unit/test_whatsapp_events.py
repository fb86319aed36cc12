"""The WhatsApp events consumer over fakes: Meta's reports move the notification record, a
failure hands the message to SMS, "STOP" opts the number out; and the pure rules behind it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.notify_fakes import MemoryHandover, MemoryLedger, MemoryRecipients
from tests.notify_samples import KEY, PHONE, recipient, status_changed
from trackwatch.data import load_registry
from trackwatch.logic.delivery import (
    advance,
    apply_report,
    is_opt_out,
    state_of_report,
    with_fallback,
)
from trackwatch.models.notification import Delivery, DeliveryState, Fallback
from trackwatch.models.whatsapp import WhatsAppEvent
from trackwatch.services.whatsapp_events import WhatsAppEvents
from trackwatch_cli.local_senders import reply_event, status_event

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
EVENT = status_changed(6)
KEYWORDS = load_registry().opt_out_keywords()


class Consumer:
    def __init__(self) -> None:
        self.ledger = MemoryLedger()
        self.handover = MemoryHandover()
        self.recipients = MemoryRecipients(recipient())
        self.service = WhatsAppEvents(
            ledger=self.ledger,
            handover=self.handover,
            recipients=self.recipients,
            opt_out_keywords=KEYWORDS,
            clock=lambda: NOW,
        )

    def sent(self, **update: object) -> None:
        """A WhatsApp message of EVENT, recorded as the notifier records it."""
        self.ledger.begin(
            Delivery(
                event_id=EVENT.event_id,
                channel="whatsapp",
                key=KEY,
                kind="out_for_delivery",
                language="en",
                event=EVENT,
                state_at=NOW,
            ).model_copy(update=update)
        )

    def receive(self, *bodies: str) -> dict[str, int]:
        outcomes: dict[str, int] = {}
        for body in bodies:
            for name, count in self.service.handle(WhatsAppEvent.from_sns_message(body)).items():
                outcomes[name] = outcomes.get(name, 0) + count
        return outcomes

    @property
    def state(self) -> DeliveryState:
        record = self.ledger.delivery(EVENT.event_id, "whatsapp")
        assert record is not None
        return record.state


def report(
    status: str, error: int | None = None, minutes: int = 1, event_id: str | None = None
) -> str:
    return status_event(
        "wamid.1",
        status,
        PHONE,
        EVENT.event_id if event_id is None else event_id,
        NOW + timedelta(minutes=minutes),
        error,
    )


def test_reports_move_the_record_forward_only() -> None:
    # Given a message sent; its reports arrive out of order, one of them twice
    consumer = Consumer()
    consumer.sent()

    # When
    outcomes = consumer.receive(
        report("sent"),
        report("read", minutes=3),
        report("delivered", minutes=2),
        report("read", minutes=3),
    )

    # Then read stays read, and the provider's id is on the record
    assert consumer.state is DeliveryState.READ
    assert outcomes == {"sent": 1, "read": 1, "unchanged": 2}
    record = consumer.ledger.delivery(EVENT.event_id, "whatsapp")
    assert record is not None and record.provider_message_id == "wamid.1"
    assert consumer.handover.handed == []


def test_a_sent_report_after_the_notifiers_note_writes_nothing() -> None:
    # Given a message the notifier has noted as sent with the provider's id (as it does
    # after every send), and a ledger that counts writes
    consumer = Consumer()
    consumer.sent(state=DeliveryState.SENT, provider_message_id="wamid.1")
    writes: list[Delivery] = []
    update = consumer.ledger.update

    def counted(delivery: Delivery) -> None:
        writes.append(delivery)
        update(delivery)

    consumer.ledger.update = counted  # type: ignore[method-assign]

    # When Meta's reports come: sent, delivered, read
    outcomes = consumer.receive(
        report("sent"), report("delivered", minutes=2), report("read", minutes=3)
    )

    # Then only delivered and read write the record (what the bill counts: two a message)
    assert outcomes == {"unchanged": 1, "delivered": 1, "read": 1}
    assert [w.state for w in writes] == [DeliveryState.DELIVERED, DeliveryState.READ]


def test_a_failed_report_hands_the_message_to_sms() -> None:
    consumer = Consumer()
    consumer.sent()

    outcomes = consumer.receive(report("sent"), report("failed", error=131049, minutes=2))

    assert outcomes == {"sent": 1, "fallback_failed": 1}
    ((event, to, fallback, not_before),) = consumer.handover.handed
    assert (event, to, fallback, not_before) == (
        EVENT,
        "sms",
        Fallback(from_channel="whatsapp", reason="failed"),
        None,
    )
    record = consumer.ledger.delivery(EVENT.event_id, "whatsapp")
    assert record is not None
    assert (record.state, record.error_code) == (DeliveryState.FAILED, "131049")
    # A failed message is not the number's fault: WhatsApp stays first for the next one
    assert consumer.recipients.recipients[KEY].failures == {}


def test_an_undeliverable_report_hands_over_and_marks_the_number() -> None:
    consumer = Consumer()
    consumer.sent()

    consumer.receive(report("failed", error=131026))

    ((_, _, fallback, _),) = consumer.handover.handed
    assert fallback.reason == "undeliverable"
    assert consumer.state is DeliveryState.UNDELIVERABLE
    failure = consumer.recipients.recipients[KEY].failures["whatsapp"]
    assert failure.reason == "whatsapp_131026"


def test_a_failure_after_delivery_changes_nothing() -> None:
    consumer = Consumer()
    consumer.sent()
    consumer.receive(report("delivered"), report("failed", error=131049, minutes=2))
    assert consumer.state is DeliveryState.DELIVERED
    assert consumer.handover.handed == []


def test_a_whatsapp_message_that_stood_in_for_an_sms_hands_nothing_back() -> None:
    consumer = Consumer()
    consumer.sent(fallback_of=Fallback(from_channel="sms", reason="undeliverable"))
    consumer.receive(report("failed", error=131049))
    assert consumer.state is DeliveryState.FAILED
    assert consumer.handover.handed == []


def test_reports_on_messages_that_are_not_ours_are_ignored() -> None:
    consumer = Consumer()
    body = status_event("wamid.9", "delivered", PHONE, None, NOW)
    assert consumer.receive(body) == {"not_ours": 1}
    assert consumer.receive(report("delivered", event_id="unknown-event")) == {"unknown_message": 1}


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop! ", "UNSUBSCRIBE", "रोकें", "बंद करें।"])
def test_a_stop_reply_opts_the_number_out_of_whatsapp(text: str) -> None:
    consumer = Consumer()
    assert consumer.receive(reply_event(PHONE, text, NOW)) == {"opted_out": 1}
    assert consumer.ledger.opted_out("whatsapp", PHONE)
    assert not consumer.ledger.opted_out("sms", PHONE)


@pytest.mark.parametrize("text", ["Please stop by tomorrow", "Where is my order?", "stopp"])
def test_other_replies_opt_nobody_out(text: str) -> None:
    consumer = Consumer()
    assert consumer.receive(reply_event(PHONE, text, NOW)) == {"reply_ignored": 1}
    assert consumer.ledger.opt_outs == {}


def test_the_envelope_may_carry_the_whole_webhook_payload() -> None:
    # Given Meta's payload with its "object" and "entry" list, rather than one entry
    envelope = json.loads(status_event("wamid.1", "read", PHONE, EVENT.event_id, NOW))
    entry = json.loads(envelope["whatsAppWebhookEntry"])
    envelope["whatsAppWebhookEntry"] = json.dumps(
        {"object": "whatsapp_business_account", "entry": [entry]}
    )

    # When
    parsed = WhatsAppEvent.from_sns_message(json.dumps(envelope))

    # Then
    (status,) = parsed.statuses
    assert (status.status, status.biz_opaque_callback_data) == (
        "read",
        f"trackwatch:{EVENT.event_id}",
    )


def test_a_message_that_is_no_social_event_is_refused() -> None:
    with pytest.raises(ValueError, match="not an End User Messaging Social event"):
        WhatsAppEvent.from_sns_message('{"event_type": "shipment.stuck"}')


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("current", "reported", "after"),
    [
        (DeliveryState.PENDING, DeliveryState.SENT, DeliveryState.SENT),
        (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.DELIVERED),
        (DeliveryState.DELIVERED, DeliveryState.SENT, DeliveryState.DELIVERED),
        (DeliveryState.READ, DeliveryState.DELIVERED, DeliveryState.READ),
        (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.FAILED),
        (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.DELIVERED),
        (DeliveryState.FAILED, DeliveryState.DELIVERED, DeliveryState.DELIVERED),
        (DeliveryState.FAILED, DeliveryState.SENT, DeliveryState.FAILED),
    ],
)
def test_states_only_move_forward(
    current: DeliveryState, reported: DeliveryState, after: DeliveryState
) -> None:
    assert advance(current, reported) is after


def test_meta_statuses_and_errors_map_to_states() -> None:
    assert state_of_report("failed", ("131026",)) is DeliveryState.UNDELIVERABLE
    assert state_of_report("failed", ("131049",)) is DeliveryState.FAILED
    assert state_of_report("read", ()) is DeliveryState.READ
    assert state_of_report("deleted", ()) is None


def test_a_record_handed_over_once_is_not_handed_over_again_by_a_late_report() -> None:
    record = Delivery(
        event_id="e",
        channel="whatsapp",
        key=KEY,
        kind="stuck",
        language="en",
        event=EVENT,
        state_at=NOW,
    )
    noted = with_fallback(record, "sms", "timeout", NOW)
    _, reason = apply_report(
        noted,
        DeliveryState.FAILED,
        provider_message_id=None,
        error_code=None,
        at=NOW,
        next_channel_open=True,
    )
    assert reason is None


def test_opt_out_keywords_are_whole_replies() -> None:
    keywords = frozenset({"STOP"})
    assert is_opt_out("stop.", keywords)
    assert not is_opt_out("", keywords)
    assert not is_opt_out(None, keywords)
