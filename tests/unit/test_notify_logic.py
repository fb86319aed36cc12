"""The notifiers' pure decisions: which events, quiet hours, repeats, caps, addresses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import CATALOGUE
from tests.notify_samples import (
    RULES,
    delay_predicted,
    ndr_raised,
    scan_added,
    status_changed,
    stuck,
)
from trackwatch.errors import ConfigurationError, RecipientRejectedError
from trackwatch.logic.addresses import e164, mailbox
from trackwatch.logic.notify_rules import NotifyRules
from trackwatch.logic.pacing import admit, hold, quiet_until
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.notification import ChannelLog, Outcome

IST = ZoneInfo("Asia/Kolkata")
QUIET = (time(21, 0), time(9, 0))


# --- which events ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (status_changed(4), "shipped"),
        (status_changed(5), "shipped"),
        (status_changed(6), "out_for_delivery"),
        (status_changed(8), "delivered"),
        (status_changed(11), "rto_started"),
        (status_changed(21), "rto_started"),
        (ndr_raised(), "failed_delivery"),
        (stuck(), "stuck"),
        # Failed delivery is told by the NDR event, which carries the reason; not twice.
        (status_changed(9), None),
        (status_changed(1004), None),
        (scan_added(), None),
        # Our own checks go to operations: a customer hears of Clickpost's flag only, and of
        # no predicted delay, unless the rules say so.
        (stuck().model_copy(update={"reason": "no_scan_for"}), None),
        (delay_predicted(), None),
    ],
)
def test_default_rules_pick_the_customer_facing_events(
    event: ShipmentEvent, kind: str | None
) -> None:
    rules = RULES
    for channel in ("sms", "email"):
        assert rules.kind_of(event, channel) == kind


def test_rules_can_never_notify_scan_added() -> None:
    text = '{"kinds": {"scan": {"event_type": "shipment.scan_added"}}, "channels": {}}'
    with pytest.raises(ConfigurationError):
        NotifyRules.from_json(text, "test", CATALOGUE)


def test_rules_reject_status_codes_the_catalogue_does_not_know() -> None:
    text = (
        '{"kinds": {"x": {"event_type": "shipment.status_changed", "status_codes": [999]}},'
        ' "channels": {"sms": {"kinds": ["x"]}}}'
    )
    with pytest.raises(ConfigurationError, match="999"):
        NotifyRules.from_json(text, "test", CATALOGUE)


def test_a_channel_can_send_fewer_kinds_and_let_some_bypass_quiet_hours() -> None:
    # Given e-mail only for deliveries, which may arrive at night
    text = (
        '{"kinds": {"delivered": {"event_type": "shipment.status_changed", "status_codes": [8]},'
        ' "stuck": {"event_type": "shipment.stuck"}},'
        ' "channels": {"sms": {"kinds": ["delivered", "stuck"]},'
        ' "email": {"kinds": ["delivered"], "quiet_hours_bypass": ["delivered"]}}}'
    )
    rules = NotifyRules.from_json(text, "test", CATALOGUE)

    # Then
    assert rules.kind_of(stuck(), "email") is None
    assert rules.kind_of(stuck(), "sms") == "stuck"
    assert rules.bypasses_quiet_hours("delivered", "email")
    assert not rules.bypasses_quiet_hours("delivered", "sms")


def test_a_rule_turns_on_predicted_delays_and_our_own_stuck_checks_for_customers() -> None:
    # Given rules that tell customers by SMS of predicted delays, and of any stuck
    text = (
        '{"kinds": {"delay_predicted": {"event_type": "shipment.delay_predicted"},'
        ' "stuck": {"event_type": "shipment.stuck"}},'
        ' "channels": {"sms": {"kinds": ["delay_predicted", "stuck"]}}}'
    )
    rules = NotifyRules.from_json(text, "test", CATALOGUE)

    # Then
    assert rules.kind_of(delay_predicted(), "sms") == "delay_predicted"
    assert rules.kind_of(stuck().model_copy(update={"reason": "no_scan_for"}), "sms") == "stuck"


def test_reasons_are_only_for_stuck_kinds() -> None:
    text = (
        '{"kinds": {"x": {"event_type": "shipment.ndr_raised", "reasons": ["no_scan_for"]}},'
        ' "channels": {}}'
    )
    with pytest.raises(ConfigurationError, match="reasons"):
        NotifyRules.from_json(text, "test", CATALOGUE)


# --- quiet hours ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "until"),
    [
        (datetime(2026, 11, 27, 22, 30, tzinfo=IST), datetime(2026, 11, 28, 9, 0, tzinfo=IST)),
        (datetime(2026, 11, 27, 3, 0, tzinfo=IST), datetime(2026, 11, 27, 9, 0, tzinfo=IST)),
        (datetime(2026, 11, 27, 21, 0, tzinfo=IST), datetime(2026, 11, 28, 9, 0, tzinfo=IST)),
        (datetime(2026, 11, 27, 9, 0, tzinfo=IST), None),
        (datetime(2026, 11, 27, 14, 0, tzinfo=IST), None),
    ],
)
def test_quiet_hours_end_in_the_customers_zone(local: datetime, until: datetime | None) -> None:
    # When the time arrives in UTC
    got = quiet_until(local.astimezone(UTC), IST, *QUIET)

    # Then
    assert got == until


def test_a_message_at_2230_waits_till_0900_in_15_minute_steps() -> None:
    # Given 22:30 in Kolkata
    now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)

    # When
    deferral = hold(now, quiet_until(now, IST, *QUIET), None)

    # Then: 10 h 30 min remain; SQS can hold a message 15 minutes at a time
    assert deferral is not None
    assert deferral.not_before == datetime(2026, 11, 28, 9, 0, tzinfo=IST)
    assert deferral.delay_s == 900


def test_the_last_step_waits_exactly_the_remainder() -> None:
    # Given a held message back at 08:52:30 with its not_before
    not_before = datetime(2026, 11, 28, 9, 0, tzinfo=IST)
    now = datetime(2026, 11, 28, 8, 52, 30, tzinfo=IST)

    # When
    deferral = hold(now, quiet_until(now, IST, *QUIET), not_before)

    # Then
    assert deferral is not None
    assert deferral.delay_s == 450
    assert hold(not_before + timedelta(seconds=1), None, not_before) is None


def test_quiet_hours_in_another_zone_and_none_when_start_equals_end() -> None:
    london = ZoneInfo("Europe/London")
    now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 22:30 in Kolkata, 17:00 in London
    assert quiet_until(now, london, *QUIET) is None
    assert quiet_until(now, IST, time(0, 0), time(0, 0)) is None


# --- pacing -----------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def _admit(log: ChannelLog, kind: str, event_id: str, now: datetime = NOW, **kw: object):  # type: ignore[no-untyped-def]
    return admit(
        log,
        kind=kind,
        once=bool(kw.get("once", False)),
        event_id=event_id,
        occurred_at=kw.get("occurred_at", now),  # type: ignore[arg-type]
        now=now,
        today=now.astimezone(IST).date(),
        repeat_window=timedelta(hours=6),
        daily_cap=int(kw.get("cap", 5)),  # type: ignore[call-overload]
    )


def test_a_flapping_out_for_delivery_is_told_once_per_window() -> None:
    # Given out-for-delivery was told at 06:00
    first = _admit(ChannelLog(), "out_for_delivery", "e1")
    assert first.refused is None

    # When it comes back at 07:00 (after a failed attempt in between), and at 13:00
    failed = _admit(first.log, "failed_delivery", "e2", NOW + timedelta(minutes=30))
    again = _admit(failed.log, "out_for_delivery", "e3", NOW + timedelta(hours=1))
    later = _admit(failed.log, "out_for_delivery", "e4", NOW + timedelta(hours=7))

    # Then
    assert failed.refused is None
    assert again.refused is Outcome.REPEAT
    assert later.refused is None


def test_once_only_kinds_older_news_and_the_daily_cap() -> None:
    sent = _admit(ChannelLog(), "delivered", "d1", once=True).log
    assert _admit(sent, "delivered", "d2", NOW + timedelta(days=2), once=True).refused is (
        Outcome.ALREADY_SENT
    )
    older = _admit(sent, "stuck", "s1", occurred_at=NOW - timedelta(hours=1))
    assert older.refused is Outcome.SUPERSEDED

    log = ChannelLog()
    for i in range(3):
        log = _admit(log, f"kind{i}", f"c{i}", cap=3).log
    assert _admit(log, "kind9", "c9", cap=3).refused is Outcome.DAILY_CAP
    # The cap counts the customer's day: tomorrow (IST) starts again.
    assert _admit(log, "kind9", "c9", NOW + timedelta(days=1), cap=3).refused is None
    assert log.day == date(2026, 11, 27)


def test_a_retry_of_the_claimed_event_is_not_a_repeat() -> None:
    claimed = _admit(ChannelLog(), "out_for_delivery", "e1").log
    retry = _admit(claimed, "out_for_delivery", "e1", NOW + timedelta(minutes=5))
    assert retry.refused is None
    assert retry.log == claimed


# --- addresses --------------------------------------------------------------------


def test_phone_numbers_are_normalised_to_e164_and_bad_ones_rejected() -> None:
    assert e164("98765 43210", "IN") == "+919876543210"
    assert e164("+91 98765-43210", "IN") == "+919876543210"
    with pytest.raises(RecipientRejectedError) as rejected:
        e164("12345", "IN")
    assert rejected.value.reason == "invalid_number"
    assert "12345" not in str(rejected.value)


def test_email_addresses_are_checked_without_dns() -> None:
    assert mailbox("Priya@Example.in") == "Priya@example.in"
    with pytest.raises(RecipientRejectedError):
        mailbox("not-an-address")


def test_turning_predicted_delays_on_for_every_channel_needs_only_the_rule() -> None:
    # Given the packaged rules with delay_predicted added to every channel
    from trackwatch.data import load_registry, load_templates
    from trackwatch.logic.registry import problems

    raw = RULES.model_dump(mode="json")
    for channel in raw["channels"].values():
        channel["kinds"] = [*channel["kinds"], "delay_predicted"]
    rules = NotifyRules.model_validate(raw)

    # When the container's start-up check runs over the packaged templates and registry
    found = problems(load_registry(), load_templates(), rules, {"en", "hi"}, 3)

    # Then every template is there, registered and within the SMS segment limit
    assert found == []
