"""The notifier use case over in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.notify_fakes import MemoryDeferrer, MemoryGuard, MemoryRecipients, MemorySender
from tests.notify_samples import (
    KEY,
    PHONE,
    RENDERER,
    RULES,
    ndr_raised,
    recipient,
    status_changed,
    stuck,
)
from trackwatch.errors import ProviderUnavailableError, RecipientRejectedError
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.notification import Channel, NotificationRequest, Outcome, Recipient
from trackwatch.models.policy import NotifyPolicy
from trackwatch.services.notify import Notifier

DAYTIME = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata


class World:
    def __init__(self, who: Recipient | None = None, channel: Channel = "sms") -> None:
        self.recipients = MemoryRecipients(who or recipient())
        self.sender = MemorySender()
        self.deferrer = MemoryDeferrer()
        self.guard = MemoryGuard()
        self.now = DAYTIME
        self.notifier = Notifier(
            channel,
            rules=RULES,
            policy=NotifyPolicy(),
            recipients=self.recipients,
            sender=self.sender,
            deferrer=self.deferrer,
            guard=self.guard,
            renderer=RENDERER,
            clock=lambda: self.now,
        )

    def handle(self, event: ShipmentEvent, **extra: object) -> Outcome:
        return self.notifier.handle(NotificationRequest(event=event, **extra))[0]  # type: ignore[arg-type]


def test_an_event_redelivered_is_sent_once() -> None:
    world = World()
    event = status_changed(6)
    assert world.handle(event) is Outcome.SENT
    assert world.handle(event) is Outcome.DUPLICATE
    assert len(world.sender.sent) == 1
    assert world.sender.sent[0].to == PHONE
    assert "out for delivery" in world.sender.sent[0].body


def test_a_hindi_customer_gets_hindi() -> None:
    world = World(recipient("hi"))
    world.handle(status_changed(8))
    assert "डिलीवर हो गया है" in world.sender.sent[0].body


def test_a_flapping_out_for_delivery_sends_one_message() -> None:
    # Given out for delivery, a failed attempt, out for delivery again within the hour
    world = World()
    outcomes = []
    for i, event in enumerate([status_changed(6, "a"), ndr_raised(), status_changed(6, "b")]):
        world.now = DAYTIME + timedelta(minutes=20 * i)
        outcomes.append(world.handle(event))

    # Then the customer hears of the failure and of one delivery run
    assert outcomes == [Outcome.SENT, Outcome.SENT, Outcome.REPEAT]
    assert len(world.sender.sent) == 2


def test_opt_outs_missing_addresses_and_failed_addresses_are_honoured() -> None:
    assert World(recipient(opt_out=frozenset({"sms"}))).handle(stuck()) is Outcome.OPTED_OUT
    assert World(recipient(phone=None)).handle(stuck()) is Outcome.NO_ADDRESS
    assert World(recipient(), channel="email").handle(stuck()) is Outcome.SENT
    assert World(recipient(opt_out=frozenset({"sms"})), "email").handle(stuck()) is Outcome.SENT


def test_a_rejected_number_is_recorded_and_not_tried_again() -> None:
    # Given a number SNS refuses
    world = World()
    world.sender.fail = RecipientRejectedError("sns_InvalidParameter")

    # When two events come
    first = world.handle(status_changed(6))
    world.sender.fail = None
    second = world.handle(stuck())

    # Then the first records the failure and succeeds; the second is not attempted
    assert first is Outcome.REJECTED
    assert second is Outcome.ADDRESS_FAILED
    failure = world.recipients.recipients[KEY].failures["sms"]
    assert failure.reason == "sns_InvalidParameter"
    assert world.sender.sent == []


def test_an_invalid_number_is_rejected_before_any_provider() -> None:
    world = World(recipient(phone="12345"))
    assert world.handle(stuck()) is Outcome.REJECTED
    assert world.recipients.recipients[KEY].failures["sms"].reason == "invalid_number"


def test_a_throttled_send_is_retried_and_then_sent_without_counting_twice() -> None:
    # Given the provider throttles once
    world = World()
    world.sender.fail = ProviderUnavailableError("Throttling")

    # When the event fails, then comes back
    with pytest.raises(ProviderUnavailableError):
        world.handle(status_changed(6))
    world.sender.fail = None
    retried = world.handle(status_changed(6))

    # Then it was released, not recorded as sent, and the retry goes out once
    assert retried is Outcome.SENT
    assert len(world.sender.sent) == 1
    assert world.recipients.recipients[KEY].log("sms").day_count == 1


def test_quiet_hours_hold_the_message_without_recording_it_sent() -> None:
    # Given 22:30 in Kolkata
    world = World()
    world.now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)

    # When
    outcome = world.handle(status_changed(6))

    # Then
    assert outcome is Outcome.DEFERRED
    ((request, deferral),) = world.deferrer.deferred
    assert deferral.delay_s == 900
    assert deferral.not_before == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert world.guard.done == {}

    # When it comes back after 09:00 with its marker
    world.now = deferral.not_before + timedelta(seconds=5)
    assert world.handle(request.event, not_before=deferral.not_before) is Outcome.SENT


def test_a_customer_in_another_zone_gets_their_own_quiet_hours() -> None:
    world = World(recipient(timezone="Europe/London"))
    world.now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 17:00 in London
    assert world.handle(status_changed(6)) is Outcome.SENT


def test_unknown_shipments_and_non_customer_events_are_skipped() -> None:
    world = World()
    world.recipients.recipients.clear()
    assert world.handle(status_changed(6)) is Outcome.NO_SHIPMENT
    assert world.handle(status_changed(1004)) is Outcome.NOT_NOTIFIED
