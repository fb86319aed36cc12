"""The notifier use case over in-memory fakes: each channel alone, and WhatsApp, SMS and e-mail
together (preference, fallback on failure, undeliverable numbers and silence)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.notify_fakes import (
    MemoryDeferrer,
    MemoryHandover,
    MemoryLedger,
    MemoryRecipients,
    MemorySender,
)
from tests.notify_samples import (
    KEY,
    OCCURRED,
    ORDER_ID,
    PHONE,
    RENDERER,
    RULES,
    ndr_raised,
    order_event,
    recipient,
    status_changed,
    stuck,
)
from trackwatch.errors import (
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientRejectedError,
    StaleStateError,
)
from trackwatch.logic.channels import Routing
from trackwatch.models.events import ShipmentEvent, TopicEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import (
    CHANNELS,
    NOTIFY_ATTRIBUTE,
    Channel,
    ChannelLog,
    Delivery,
    DeliveryState,
    Fallback,
    Message,
    NotificationRequest,
    Outcome,
    Recipient,
)
from trackwatch.models.policy import NotifyPolicy
from trackwatch.services.notify import Chain, Notifier

DAYTIME = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata
NIGHT = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 22:30 in Kolkata
WINDOW = timedelta(minutes=30)
SMS_FIRST: tuple[Channel, ...] = ("sms", "email")


class World:
    """Three notifiers over one set of fakes, as three functions over one stack."""

    def __init__(
        self,
        who: Recipient | None = None,
        enabled: frozenset[str] = frozenset(CHANNELS),
        order_size: int = 0,
        ledger: MemoryLedger | None = None,
    ) -> None:
        self.recipients = MemoryRecipients(who or recipient(), order_sizes={ORDER_ID: order_size})
        self.senders = {channel: MemorySender() for channel in CHANNELS}
        self.deferrer = MemoryDeferrer()
        self.ledger = ledger or MemoryLedger()
        self.handover = MemoryHandover()
        self.now = DAYTIME
        self.enabled = enabled
        phone = {"sms", "whatsapp"}
        self.notifiers = {
            channel: Notifier(
                channel,
                rules=RULES,
                policy=NotifyPolicy(),
                recipients=self.recipients,
                sender=self.senders[channel],
                deferrer=self.deferrer,
                ledger=self.ledger,
                renderer=RENDERER,
                clock=lambda: self.now,
                chain=Chain(
                    enabled=enabled,
                    delivery_window=WINDOW,
                    handover=self.handover if channel in phone else None,
                ),
            )
            for channel in CHANNELS
        }

    def handle(self, event: TopicEvent, channel: Channel = "sms", **extra: object) -> Outcome:
        request = NotificationRequest(event=event, **extra)  # type: ignore[arg-type]
        return self.notifiers[channel].handle(request)[0]

    def everywhere(self, event: TopicEvent) -> dict[Channel, Outcome]:
        """The event as the topic delivers it: to every channel's queue."""
        return {channel: self.handle(event, channel) for channel in CHANNELS}

    def routed(self, event: ShipmentEvent) -> dict[Channel, Outcome]:
        """The event as the routed topic delivers it: to the channels the publisher names
        (from the contact alone: it knows no STOP, no failed number), then what a channel
        passed on, as the next channel's queue delivers it."""
        routing = Routing(RULES, self.enabled)
        published = recipient().model_copy(
            update={"channels": self.recipients.recipients[KEY].channels}
        )
        names = routing.audience(event, published)
        attributes = {NOTIFY_ATTRIBUTE: ("String.Array", json.dumps(list(names)))}
        outcomes = {
            channel: self.notifiers[channel].handle(
                NotificationRequest(event=event, attributes=attributes)
            )[0]
            for channel in names
        }
        for request, channel in list(self.handover.passed):
            outcomes[channel] = self.notifiers[channel].handle(request)[0]
        return outcomes

    def fallbacks(self, channel: Channel = "sms") -> list[Outcome]:
        """Deliver what was handed to `channel`, as its queue would (after any delay)."""
        outcomes = []
        due = sorted(self.handover.requests(channel), key=lambda r: r.not_before or self.now)
        for request in due:
            if request.not_before is not None:
                self.now = max(self.now, request.not_before)
            outcomes.append(self.notifiers[channel].handle(request)[0])
        self.handover.handed.clear()
        return outcomes

    def sent(self, channel: Channel) -> int:
        return len(self.senders[channel].sent)

    def report(self, event: ShipmentEvent, state: DeliveryState) -> None:
        """What the WhatsApp events consumer does with a report (services/whatsapp_events)."""
        record = self.ledger.delivery(event.event_id, "whatsapp")
        assert record is not None
        self.ledger.update(
            record.model_copy(update={"state": state, "version": record.version + 1})
        )


# --------------------------------------------------------------------------- one channel


def test_an_event_redelivered_is_sent_once() -> None:
    world = World(recipient(channels=SMS_FIRST))
    event = status_changed(6)
    assert world.handle(event) is Outcome.SENT
    assert world.handle(event) is Outcome.DUPLICATE
    (message,) = world.senders["sms"].sent
    assert message.to == PHONE
    assert "out for delivery" in message.body
    assert message.dlt_template_id == "1107161234501000002"
    assert (message.encoding, message.segments) == ("gsm7", 1)


class Died(BaseException):
    """The invocation died: nothing catches it."""


def die_sending(world: World, event: TopicEvent, *, until: datetime, sent: bool) -> None:
    """An SMS invocation that may run `until` dies at the provider: before it took the
    message, or (`sent`) just after."""
    sender = world.senders["sms"]
    original = sender.send

    def die(message: Message) -> str | None:
        if sent:
            original(message)
        raise Died

    sender.send = die  # type: ignore[method-assign]
    try:
        with pytest.raises(Died):
            world.notifiers["sms"].handle(NotificationRequest(event=event), until)
    finally:
        sender.send = original  # type: ignore[method-assign]


def test_every_channel_keeps_its_record_and_an_email_redelivered_is_sent_once() -> None:
    world = World()
    event = status_changed(6)
    assert world.handle(event, "email") is Outcome.SENT
    assert world.handle(event, "email") is Outcome.DUPLICATE
    assert world.sent("email") == 1
    record = world.ledger.delivery(event.event_id, "email")
    assert record is not None
    assert (record.state, record.provider_message_id) == (DeliveryState.SENT, "email-1")


def test_a_record_held_by_a_live_attempt_stops_a_twin_until_that_attempt_s_time_is_up() -> None:
    # Given an attempt that wrote its record, then died before the provider was called
    world = World(recipient(channels=SMS_FIRST))
    event = status_changed(6)
    die_sending(world, event, until=DAYTIME + timedelta(seconds=50), sent=False)

    # When a twin comes while that invocation could still be running: it must wait
    world.now = DAYTIME + timedelta(seconds=10)
    with pytest.raises(StaleStateError):
        world.handle(event)
    assert world.sent("sms") == 0

    # When the retry comes after the dead invocation's time: it takes the record over, once
    world.now = DAYTIME + timedelta(seconds=60)
    assert world.handle(event) is Outcome.SENT
    assert world.handle(event) is Outcome.DUPLICATE
    assert world.sent("sms") == 1
    record = world.ledger.delivery(event.event_id, "sms")
    assert record is not None
    assert (record.state, record.version) == (DeliveryState.SENT, 2)


def test_a_death_after_the_provider_took_the_message_sends_it_again_the_stated_window() -> None:
    # Given an attempt that died after the provider accepted, before the record said so
    world = World(recipient(channels=SMS_FIRST))
    event = status_changed(6)
    die_sending(world, event, until=DAYTIME, sent=True)

    # When it comes back: the record is still pending, so it goes again (one duplicate)
    world.now = DAYTIME + timedelta(minutes=1)
    assert world.handle(event) is Outcome.SENT
    assert world.sent("sms") == 2
    assert world.handle(event) is Outcome.DUPLICATE


def test_a_failed_send_frees_its_record_for_an_immediate_retry() -> None:
    world = World(recipient(channels=SMS_FIRST))
    event = status_changed(6)
    world.senders["sms"].fail = ProviderUnavailableError("Throttling")
    with pytest.raises(ProviderUnavailableError):
        world.handle(event)
    record = world.ledger.delivery(event.event_id, "sms")
    assert record is not None
    assert (record.state, record.attempt_until) == (DeliveryState.PENDING, None)


def test_an_invocation_holds_its_records_until_its_lambda_timeout() -> None:
    world = World(recipient(channels=SMS_FIRST))

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 42_000

    notifier = world.notifiers["sms"]
    assert notifier.attempt_until(Context()) == DAYTIME + timedelta(seconds=42)


class OptOutCounter(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def opted_out(self, channel: Channel, phone: str) -> bool:
        self.asked.append(channel)
        return super().opted_out(channel, phone)


def test_only_the_phone_channels_look_up_stop_replies() -> None:
    ledger = OptOutCounter()
    world = World(ledger=ledger)
    assert world.handle(status_changed(6), "email") is Outcome.SENT
    assert ledger.asked == []
    world.handle(status_changed(6), "whatsapp")
    assert ledger.asked == ["whatsapp"]


def test_each_notifier_reads_only_the_memory_it_decides_with() -> None:
    # Given a customer on every channel
    world = World()

    # When the event reaches every channel's notifier
    world.everywhere(status_changed(6))

    # Then the phone channels read both phone channels' memory (which one comes first, which
    # takes over); e-mail reads its own alone
    assert world.recipients.read == [("whatsapp", "sms"), ("whatsapp", "sms"), ("email",)]


def test_a_hindi_customer_gets_hindi() -> None:
    world = World(recipient("hi", channels=SMS_FIRST))
    world.handle(status_changed(8))
    (message,) = world.senders["sms"].sent
    assert "डिलीवर हो गया है" in message.body
    assert message.encoding == "ucs2"


def test_a_flapping_out_for_delivery_sends_one_message() -> None:
    # Given out for delivery, a failed attempt, out for delivery again within the hour
    world = World(recipient(channels=SMS_FIRST))
    outcomes = []
    for i, event in enumerate([status_changed(6, "a"), ndr_raised(), status_changed(6, "b")]):
        world.now = DAYTIME + timedelta(minutes=20 * i)
        outcomes.append(world.handle(event))

    # Then the customer hears of the failure and of one delivery run
    assert outcomes == [Outcome.SENT, Outcome.SENT, Outcome.REPEAT]
    assert world.sent("sms") == 2


def test_opt_outs_missing_addresses_and_failed_addresses_are_honoured() -> None:
    sms_first = recipient(channels=SMS_FIRST)
    opted = sms_first.model_copy(update={"opt_out": frozenset({"sms"})})
    assert World(opted).handle(stuck()) is Outcome.OPTED_OUT
    assert World(recipient(channels=SMS_FIRST, phone=None)).handle(stuck()) is Outcome.NO_ADDRESS
    assert World(sms_first).handle(stuck(), "email") is Outcome.SENT
    assert World(opted).handle(stuck(), "email") is Outcome.SENT


def test_a_rejected_number_is_recorded_and_not_tried_again() -> None:
    # Given a number the provider refuses for the recipient's own reason
    world = World(recipient(channels=SMS_FIRST))
    world.senders["sms"].fail = RecipientRejectedError("sms_ConflictException")

    # When two events come
    first = world.handle(status_changed(6))
    world.senders["sms"].fail = None
    second = world.handle(stuck())

    # Then the first records the failure and succeeds; the second is not attempted
    assert first is Outcome.REJECTED
    assert second is Outcome.ADDRESS_FAILED
    assert world.recipients.recipients[KEY].failures["sms"].reason == "sms_ConflictException"
    assert world.senders["sms"].sent == []
    # and the first's record says the message could not be delivered (no longer held)
    record = world.ledger.delivery(status_changed(6).event_id, "sms")
    assert record is not None and record.state is DeliveryState.UNDELIVERABLE
    assert record.attempt_until is None


def test_a_retry_of_the_claimed_event_that_fails_writes_no_release() -> None:
    # Given an attempt that died after claiming the channel's log for the event (so a
    # retry's claim is the log as it stands), and a provider that now fails
    world = World(recipient(channels=SMS_FIRST))
    event = status_changed(6)
    world.senders["sms"].fail = ProviderUnavailableError("sms_ThrottlingException")
    claimed = ChannelLog(seq=1, last_event_id=event.event_id, sent_at={"out_for_delivery": DAYTIME})
    world.recipients.recipients[KEY] = world.recipients.recipients[KEY].model_copy(
        update={"logs": {"sms": claimed}}
    )
    releases: list[ChannelLog] = []
    release = world.recipients.release

    def counted(key: ShipmentKey, channel: Channel, claimed: ChannelLog, seen: ChannelLog) -> None:
        releases.append(claimed)
        release(key, channel, claimed, seen)

    world.recipients.release = counted  # type: ignore[method-assign]

    # When the retry's send fails
    with pytest.raises(ProviderUnavailableError):
        world.handle(event)

    # Then nothing was claimed, so nothing is released; the log is as it was
    assert releases == []
    assert world.recipients.recipients[KEY].log("sms") == claimed


def test_a_request_the_provider_refuses_as_ours_fails_without_blaming_the_number() -> None:
    # Given SMS refused for a reason of ours (say, an unregistered sender id)
    world = World(recipient(channels=SMS_FIRST))
    world.senders["sms"].fail = ProviderRejectedError("sms_ValidationException")

    # When / Then: the message fails (to its DLQ, which alarms); the number stays usable
    with pytest.raises(ProviderRejectedError):
        world.handle(status_changed(6))
    assert world.recipients.recipients[KEY].failures == {}
    assert world.recipients.recipients[KEY].log("sms").day_count == 0


def test_an_invalid_number_is_rejected_before_any_provider() -> None:
    world = World(recipient(phone="12345", channels=SMS_FIRST))
    assert world.handle(stuck()) is Outcome.REJECTED
    assert world.recipients.recipients[KEY].failures["sms"].reason == "invalid_number"


def test_a_throttled_send_is_retried_and_then_sent_without_counting_twice() -> None:
    # Given the provider throttles once
    world = World(recipient(channels=SMS_FIRST))
    world.senders["sms"].fail = ProviderUnavailableError("Throttling")

    # When the event fails, then comes back
    with pytest.raises(ProviderUnavailableError):
        world.handle(status_changed(6))
    world.senders["sms"].fail = None
    retried = world.handle(status_changed(6))

    # Then it was released, not recorded as sent, and the retry goes out once
    assert retried is Outcome.SENT
    assert world.sent("sms") == 1
    assert world.recipients.recipients[KEY].log("sms").day_count == 1


def test_quiet_hours_hold_the_message_without_recording_it_sent() -> None:
    # Given 22:30 in Kolkata
    world = World(recipient(channels=SMS_FIRST))
    world.now = NIGHT

    # When
    outcome = world.handle(status_changed(6))

    # Then
    assert outcome is Outcome.DEFERRED
    ((request, deferral),) = world.deferrer.deferred
    assert deferral.delay_s == 900
    assert deferral.not_before == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert world.ledger.records == {}

    # When it comes back after 09:00 with its marker
    world.now = deferral.not_before + timedelta(seconds=5)
    assert world.handle(request.event, not_before=deferral.not_before) is Outcome.SENT


def test_a_customer_in_another_zone_gets_their_own_quiet_hours() -> None:
    world = World(recipient(timezone="Europe/London", channels=SMS_FIRST))
    world.now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 17:00 in London
    assert world.handle(status_changed(6)) is Outcome.SENT


def test_unknown_shipments_and_non_customer_events_are_skipped() -> None:
    world = World()
    world.recipients.recipients.clear()
    assert world.handle(status_changed(6)) is Outcome.NO_SHIPMENT
    assert world.handle(status_changed(1004)) is Outcome.NOT_NOTIFIED


# --------------------------------------------------------------------------- preference


def test_by_default_whatsapp_goes_first_sms_waits_and_email_goes_besides() -> None:
    # Given a customer who named no channels
    world = World()

    # When an event reaches every channel's queue
    outcomes = world.everywhere(status_changed(6))

    # Then WhatsApp and e-mail send, SMS stands by, and SMS has a delivery check queued
    assert outcomes == {
        "whatsapp": Outcome.SENT,
        "sms": Outcome.STANDBY,
        "email": Outcome.SENT,
    }
    (message,) = world.senders["whatsapp"].sent
    assert message.whatsapp is not None
    assert message.whatsapp.name == "trackwatch_out_for_delivery"
    assert message.whatsapp.parameters == ("ORD-1042", "Delhivery")
    ((_, to, fallback, not_before),) = world.handover.handed
    assert (to, fallback) == ("sms", Fallback(from_channel="whatsapp", reason="timeout"))
    assert not_before == DAYTIME + WINDOW
    record = world.ledger.delivery(status_changed(6).event_id, "whatsapp")
    assert record is not None
    assert (record.state, record.provider_message_id) == (DeliveryState.SENT, "whatsapp-1")


def test_the_customers_order_decides_and_sms_first_has_no_check() -> None:
    world = World(recipient(channels=("sms", "whatsapp")))
    outcomes = world.everywhere(status_changed(6))
    assert outcomes == {
        "whatsapp": Outcome.STANDBY,
        "sms": Outcome.SENT,
        "email": Outcome.OPTED_OUT,
    }
    assert world.handover.handed == []


def test_whatsapp_off_in_this_deployment_makes_sms_first() -> None:
    world = World(enabled=frozenset({"sms", "email"}))
    outcomes = world.everywhere(status_changed(6))
    assert outcomes["sms"] is Outcome.SENT
    assert outcomes["whatsapp"] is Outcome.OPTED_OUT


def test_a_whatsapp_stop_makes_sms_first() -> None:
    world = World()
    world.ledger.opt_out("whatsapp", PHONE, DAYTIME)
    outcomes = world.everywhere(status_changed(6))
    assert outcomes["whatsapp"] is Outcome.OPTED_OUT
    assert outcomes["sms"] is Outcome.SENT


def test_routed_a_whatsapp_stop_passes_the_event_to_sms_as_its_own_message() -> None:
    # Given a customer who replied STOP on WhatsApp (the publisher cannot know)
    world = World()
    world.ledger.opt_out("whatsapp", PHONE, DAYTIME)

    # When the event comes as routed: to WhatsApp and e-mail only
    outcomes = world.routed(status_changed(6))

    # Then WhatsApp passes it on, and SMS sends it as its own message (not a fallback)
    assert outcomes == {
        "whatsapp": Outcome.OPTED_OUT,
        "email": Outcome.SENT,
        "sms": Outcome.SENT,
    }
    assert world.sent("sms") == 1
    assert world.senders["sms"].sent[0].fallback is None


def test_routed_a_failed_whatsapp_number_passes_every_later_event_to_sms() -> None:
    world = World(recipient(failures={"whatsapp": {"reason": "whatsapp_131026", "at": DAYTIME}}))
    assert world.routed(ndr_raised())["sms"] is Outcome.SENT
    assert world.sent("sms") == 1


def test_routed_a_reachable_first_choice_passes_nothing_on() -> None:
    world = World()
    outcomes = world.routed(status_changed(6))
    assert outcomes == {"whatsapp": Outcome.SENT, "email": Outcome.SENT}
    assert world.handover.passed == []


def test_an_unrouted_message_is_not_passed_on_the_topic_gave_it_to_every_channel() -> None:
    world = World()
    world.ledger.opt_out("whatsapp", PHONE, DAYTIME)
    world.everywhere(status_changed(6))
    assert world.handover.passed == []
    assert world.sent("sms") == 1


# --------------------------------------------------------------------------- fallback


def test_a_failed_whatsapp_message_goes_by_sms_once_and_the_records_say_why() -> None:
    # Given WhatsApp sent, then Meta reported it failed (the consumer hands it to SMS)
    world = World()
    event = status_changed(6)
    world.everywhere(event)
    world.handover.handed.clear()
    world.report(event, DeliveryState.FAILED)
    failed = Fallback(from_channel="whatsapp", reason="failed")
    world.handover.hand_over(event, "sms", failed)
    world.handover.hand_over(event, "sms", failed)  # the report delivered twice

    # When SMS gets the requests, and later the delivery check
    outcomes = world.fallbacks()
    check = world.handle(
        event, fallback=Fallback(from_channel="whatsapp", reason="timeout"), not_before=world.now
    )

    # Then one SMS, marked as the fallback, and both records say so
    assert outcomes == [Outcome.FALLBACK_SENT, Outcome.DUPLICATE]
    assert check is Outcome.DUPLICATE
    (sms,) = world.senders["sms"].sent
    assert sms.fallback == failed
    sms_record = world.ledger.delivery(event.event_id, "sms")
    whatsapp_record = world.ledger.delivery(event.event_id, "whatsapp")
    assert sms_record is not None and sms_record.fallback_of == failed
    assert whatsapp_record is not None and whatsapp_record.fallback is not None
    assert (whatsapp_record.fallback.to_channel, whatsapp_record.fallback.reason) == (
        "sms",
        "failed",
    )


def test_no_report_of_delivery_within_the_window_sends_the_sms() -> None:
    world = World()
    event = status_changed(6)
    world.everywhere(event)

    # When the delivery check comes with WhatsApp still only "sent"
    assert world.fallbacks() == [Outcome.FALLBACK_SENT]
    (sms,) = world.senders["sms"].sent
    assert sms.fallback == Fallback(from_channel="whatsapp", reason="timeout")
    record = world.ledger.delivery(event.event_id, "whatsapp")
    assert record is not None and record.fallback is not None
    assert record.fallback.reason == "timeout"


def test_a_delivered_whatsapp_message_needs_no_sms() -> None:
    world = World()
    event = status_changed(6)
    world.everywhere(event)
    world.report(event, DeliveryState.DELIVERED)
    reads = len(world.recipients.read)
    assert world.fallbacks() == [Outcome.DELIVERED_ELSEWHERE]
    assert world.sent("sms") == 0
    # The check read the WhatsApp record and nothing else: no recipient, no opt-out
    assert len(world.recipients.read) == reads


def test_a_number_whatsapp_cannot_reach_goes_by_sms_at_once_and_stays_there() -> None:
    # Given a number End User Messaging refuses as the recipient's
    world = World()
    world.senders["whatsapp"].fail = RecipientRejectedError("whatsapp_undeliverable")
    event = status_changed(6)

    # When WhatsApp tries, SMS gets the hand-over, then SMS's own copy of the event comes
    tried = world.handle(event, "whatsapp")
    handed = world.fallbacks()
    own_copy = world.handle(event, "sms")

    # Then SMS took over at once, once, saying why
    assert tried is Outcome.REJECTED
    assert handed[0] is Outcome.FALLBACK_SENT
    assert set(handed[1:]) <= {Outcome.DUPLICATE}
    assert own_copy is Outcome.DUPLICATE
    (sms,) = world.senders["sms"].sent
    assert sms.fallback == Fallback(from_channel="whatsapp", reason="undeliverable")

    # And from then on SMS comes first for this customer
    later = world.everywhere(stuck())
    assert later["whatsapp"] is Outcome.ADDRESS_FAILED
    assert later["sms"] is Outcome.SENT


def test_one_sms_per_event_whichever_way_it_comes_first() -> None:
    # Given WhatsApp found unreachable, and SMS's own copy of the event handled before the
    # hand-over (queues are not ordered with each other)
    world = World()
    world.senders["whatsapp"].fail = RecipientRejectedError("whatsapp_undeliverable")
    event = status_changed(6)
    world.handle(event, "whatsapp")

    # When
    own_copy = world.handle(event, "sms")
    handed = world.fallbacks()

    # Then the first way sends, the other finds it sent
    assert own_copy is Outcome.SENT
    assert set(handed) == {Outcome.DUPLICATE}
    assert world.sent("sms") == 1


def test_a_fallback_waits_for_quiet_hours_to_end() -> None:
    world = World()
    event = status_changed(6)
    world.now = DAYTIME.replace(hour=15, minute=20)  # 20:50 in Kolkata
    world.everywhere(event)

    # When the check comes at 21:20 in Kolkata
    assert world.fallbacks() == [Outcome.DEFERRED]
    ((held, deferral),) = world.deferrer.deferred
    assert held.fallback == Fallback(from_channel="whatsapp", reason="timeout")
    assert deferral.not_before == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert world.sent("sms") == 0


def test_a_fallback_counts_against_the_sms_daily_cap() -> None:
    # Given a customer whose SMS cap for today is reached
    world = World()
    world.notifiers["sms"]._policy = NotifyPolicy(daily_cap=1)
    world.everywhere(status_changed(6))
    assert world.fallbacks() == [Outcome.FALLBACK_SENT]

    # When a second WhatsApp message is not delivered either
    world.now += timedelta(minutes=5)
    world.everywhere(ndr_raised())

    # Then its fallback is refused by the cap: each channel keeps its own
    assert world.fallbacks() == [Outcome.DAILY_CAP]
    assert world.sent("sms") == 1
    assert world.sent("whatsapp") == 2


def test_a_fallback_for_news_whatsapp_has_since_overtaken_is_not_sent() -> None:
    # Given out for delivery on WhatsApp, unreported, then delivered on WhatsApp
    world = World()
    world.everywhere(status_changed(6, occurred=OCCURRED))
    world.now += timedelta(minutes=10)
    world.everywhere(status_changed(8, occurred=OCCURRED + timedelta(hours=1)))

    # When both delivery checks come
    outcomes = world.fallbacks()

    # Then only the newest news goes by SMS
    assert outcomes == [Outcome.SUPERSEDED, Outcome.FALLBACK_SENT]
    (sms,) = world.senders["sms"].sent
    assert sms.kind == "delivered"


# --------------------------------------------------------------------------- orders


def test_a_box_of_an_order_of_three_leaves_its_milestones_to_the_order() -> None:
    # Given a shipment that is one of three boxes of its order
    world = World(recipient(channels=SMS_FIRST), order_size=3)

    # When its own milestones, a failed attempt and a return reach the SMS notifier
    outcomes = [
        world.handle(status_changed(code))
        for code in (4, 6, 8)  # shipped, out for delivery, delivered
    ]
    failed = world.handle(ndr_raised())
    world.now += timedelta(days=1)
    returning = world.handle(status_changed(11))

    # Then the milestones are the order's to say; the failure and the return are said per box
    assert outcomes == [Outcome.ORDER_LEVEL] * 3
    assert (failed, returning) == (Outcome.SENT, Outcome.SENT)
    assert world.sent("sms") == 2
    # And the order's size came with each milestone's one read of the recipient, not apart
    assert world.recipients.orders_asked == [ORDER_ID] * 3 + [None, None]


def test_a_single_piece_order_is_told_as_before() -> None:
    world = World(recipient(channels=SMS_FIRST), order_size=1)
    assert world.handle(status_changed(6)) is Outcome.SENT
    lone = order_event(standings=("shipped", "placed", "placed")).model_copy(update={"total": 1})
    assert world.handle(lone) is Outcome.NOT_NOTIFIED


def test_an_order_says_each_milestone_first_and_when_every_box_reaches_it() -> None:
    # Given an order of three boxes, told shipped 1, 2, then 3 of 3 within the repeat window
    world = World(recipient(channels=SMS_FIRST), order_size=3)
    first = order_event(standings=("shipped", "placed", "placed"))
    second = order_event(standings=("shipped", "shipped", "placed"))
    third = order_event(standings=("shipped", "shipped", "shipped")).model_copy(
        update={"milestone": "shipped"}
    )

    # When each reaches the SMS notifier, ten minutes apart
    outcomes = []
    for i, event in enumerate((first, second, third)):
        world.now = DAYTIME + timedelta(minutes=10 * i)
        outcomes.append(world.handle(event))

    # Then "1 of 3" and "3 of 3" go, the count between does not
    assert outcomes == [Outcome.SENT, Outcome.REPEAT, Outcome.SENT]
    bodies = [m.body for m in world.senders["sms"].sent]
    assert "1 of 3 parcels have been shipped" in bodies[0]
    assert "3 of 3 parcels have been shipped" in bodies[1]
    assert world.senders["sms"].sent[0].dlt_template_id


def test_an_order_event_goes_once_per_channel_and_partial_delivery_is_told() -> None:
    world = World(order_size=3)
    delivered = order_event(stage="delivered", standings=("delivered", "delivered", "delivered"))
    partial = order_event(
        "order.partially_delivered", standings=("delivered", "delivered", "returning")
    )

    assert world.everywhere(delivered) == {
        "whatsapp": Outcome.SENT,
        "sms": Outcome.STANDBY,
        "email": Outcome.SENT,
    }
    assert world.everywhere(delivered)["whatsapp"] is Outcome.DUPLICATE
    world.now += timedelta(minutes=5)
    assert world.handle(partial, "email") is Outcome.SENT
    (whatsapp,) = world.senders["whatsapp"].sent
    assert whatsapp.whatsapp is not None
    assert whatsapp.whatsapp.name == "trackwatch_order_delivered"
    assert whatsapp.whatsapp.parameters == (ORDER_ID, "3", "3")
    assert "could not be delivered" in world.senders["email"].sent[-1].body


def test_an_orders_messages_may_go_past_its_boxs_daily_cap() -> None:
    # Given the box the order's messages are told on has had its day's five messages
    world = World(recipient(channels=SMS_FIRST), order_size=3)
    (box,) = world.recipients.recipients
    log = world.recipients.recipients[box].log("sms")
    today = DAYTIME.date()
    full = log.model_copy(update={"day": today, "day_count": 5})
    world.recipients.recipients[box] = world.recipients.recipients[box].model_copy(
        update={"logs": {"sms": full}}
    )

    # When the order is told delivered, and the box itself is stuck
    delivered = world.handle(
        order_event(stage="delivered", standings=("delivered", "delivered", "delivered"))
    )
    own = world.handle(stuck())

    # Then the order's message goes; the box's own is capped as before
    assert (delivered, own) == (Outcome.SENT, Outcome.DAILY_CAP)


# ------------------------------------------------------------------ the record after a send


class CountingLedger(MemoryLedger):
    """Counts reads of the records; `report` moves a record as the provider's report would,
    between the record's first write and the note of the provider's id."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.report: DeliveryState | None = None

    def delivery(self, event_id: str, channel: Channel) -> Delivery | None:
        self.reads += 1
        return super().delivery(event_id, channel)

    def begin(self, delivery: Delivery, until: datetime | None = None) -> Delivery:
        written = super().begin(delivery, until)
        if self.report is not None:
            moved = written.model_copy(
                update={"state": self.report, "version": written.version + 1}
            )
            self.records[(delivery.event_id, delivery.channel)] = moved
        return written


def test_the_provider_id_is_noted_on_the_record_just_written_without_reading_it() -> None:
    ledger = CountingLedger()
    world = World(ledger=ledger)

    assert world.handle(status_changed(6), "whatsapp") is Outcome.SENT

    record = ledger.delivery(status_changed(6).event_id, "whatsapp")
    assert record is not None
    assert (record.state, record.provider_message_id) == (DeliveryState.SENT, "whatsapp-1")
    assert ledger.reads == 1  # the read just above: the notifier read none


def test_a_report_that_moved_the_record_before_the_note_is_kept() -> None:
    # Given a record that a delivery report moved on between its write and the note
    ledger = CountingLedger()
    ledger.report = DeliveryState.DELIVERED
    world = World(ledger=ledger)

    # When the message is sent
    assert world.handle(status_changed(6), "whatsapp") is Outcome.SENT

    # Then the note re-read the record and kept the report's state, with the provider's id
    assert ledger.reads == 1
    record = ledger.records[(status_changed(6).event_id, "whatsapp")]
    assert (record.state, record.provider_message_id) == (DeliveryState.DELIVERED, "whatsapp-1")
    assert record.version == 2  # written at 0, moved by the report to 1, noted at 2
