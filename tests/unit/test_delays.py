"""Our own stuck and late checks: business hours, dwell, promises and predictions, by example."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.delay_support import CALENDAR, checks, learned
from tests.factories import CATALOGUE, IST, result, scan
from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.logic.delays import ShipmentDelays
from trackwatch.logic.diff import DiffOutcome, diff, recheck
from trackwatch.models.delays import WEEKDAYS, CalendarSpec, Holiday
from trackwatch.models.events import (
    DelayPredicted,
    SlaBreached,
    Stuck,
    Unstuck,
    event_id,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import ShipmentState

KEY = ShipmentKey.of(4, "LATE1")
# The factories' START is Sunday 1 Nov 2026, 09:00 in India: scan(..., hours) counts from it.
MONDAY_10 = datetime(2026, 11, 2, 10, 0, tzinfo=IST)


def at(day: int, hour: int = 12, month: int = 11) -> datetime:
    """A moment in November 2026 (or `month`), in India."""
    return datetime(2026, month, day, hour, 0, tzinfo=IST)


def poll(
    state: ShipmentState | None,
    scans: list[dict[str, Any]],
    now: datetime,
    delays: ShipmentDelays | None = None,
    **additional: Any,
) -> DiffOutcome:
    return diff(state, KEY, result(scans, **additional), now, CATALOGUE, delays=delays or checks())


def of_type[E](outcomes: list[DiffOutcome], kind: type[E]) -> list[E]:
    return [e for o in outcomes for e in o.events if isinstance(e, kind)]


# --- business hours -------------------------------------------------------------------


def test_business_hours_skip_a_sunday_and_a_national_holiday() -> None:
    # Given Saturday 24 January 2026, 18:00: Sunday follows, then Republic Day (Monday 26th)
    saturday_evening = datetime(2026, 1, 24, 18, 0, tzinfo=IST)
    tuesday_morning = datetime(2026, 1, 27, 6, 0, tzinfo=IST)

    # When
    hours = CALENDAR.hours_between(saturday_evening, tuesday_morning)

    # Then six hours of Saturday and six of Tuesday count; 60 hours passed on the clock
    assert hours == 12.0
    assert (tuesday_morning - saturday_evening) == timedelta(hours=60)
    assert CALENDAR.add_hours(saturday_evening, 12) == tuesday_morning
    assert CALENDAR.add_hours(saturday_evening, 6) == datetime(2026, 1, 25, 0, 0, tzinfo=IST)


def test_business_hours_within_working_hours_and_a_one_off_holiday() -> None:
    # Given a calendar of 09:00-18:00, Saturdays and Sundays off, and Diwali 2026 as a one-off
    calendar = BusinessCalendar(
        CalendarSpec(
            timezone="Asia/Kolkata",
            weekly_off=frozenset({"saturday", "sunday"}),
            working_hours=(9, 18),
            holidays=(Holiday(date="2026-11-09", name="Diwali (observed)"),),
        )
    )
    friday_17 = datetime(2026, 11, 6, 17, 0, tzinfo=IST)
    tuesday_10 = datetime(2026, 11, 10, 10, 0, tzinfo=IST)

    # When / Then: Friday's last hour, nothing on the weekend or on Diwali, Tuesday's first
    assert calendar.hours_between(friday_17, tuesday_10) == 2.0
    assert calendar.add_hours(friday_17, 2) == tuesday_10
    # A long span counts whole working days without walking them: 4 weeks of 5 days, 9 h each
    assert calendar.hours_between(at(2, 9, month=3), at(30, 9, month=3)) == 20 * 9.0


def test_business_hours_are_measured_in_the_destination_s_zone() -> None:
    # Given Saturday 18:00 in India is Saturday 12:30 in London; Sunday is off in both
    start = datetime(2026, 1, 24, 18, 0, tzinfo=IST)
    end = start + timedelta(hours=12)

    # When
    in_india = CALENDAR.hours_between(start, end)
    in_london = CALENDAR.hours_between(start, end, CALENDAR.zone_for("Europe/London"))

    # Then India's Saturday ends after 6 hours; London's lasts 11 hours and 30 minutes more
    assert in_india == 6.0
    assert in_london == 11.5
    assert CALENDAR.zone_for("Not/AZone") == CALENDAR.zone


_PROPERTY_CALENDAR = BusinessCalendar(
    CalendarSpec(
        timezone="Asia/Kolkata",
        weekly_off=frozenset({"saturday", "sunday"}),
        working_hours=(9.5, 18),
        holidays=(
            Holiday(date="01-26", name="Republic Day"),
            Holiday(date="02-29", name="Leap day"),
            Holiday(date="2027-03-22", name="Holi"),
        ),
    )
)


def _walked_hours(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Business hours the slow way: every day of the span, one by one."""
    zone = calendar.zone
    first, last = start.astimezone(zone), end.astimezone(zone)
    total = 0.0
    day = first.date()
    while day <= last.date():
        holiday = calendar.is_holiday(day)
        if calendar.is_working_day(day) != (
            not holiday and WEEKDAYS[day.weekday()] not in calendar.spec.weekly_off
        ):
            raise AssertionError(f"is_working_day disagrees on {day}")
        if not holiday and WEEKDAYS[day.weekday()] not in calendar.spec.weekly_off:
            midnight = datetime.combine(day, datetime.min.time(), tzinfo=zone)
            opens = midnight + timedelta(hours=calendar.spec.working_hours[0])
            closes = midnight + timedelta(hours=calendar.spec.working_hours[1])
            low, high = max(opens, first), min(closes, last)
            total += max(0.0, (high - low).total_seconds())
        day += timedelta(days=1)
    return total / 3600


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2028, 12, 31)),
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
)
def test_business_hours_match_a_day_by_day_walk(start: datetime, span: timedelta) -> None:
    # Given any span of up to 400 days across leap years, yearly and one-off holidays
    begin = start.replace(tzinfo=IST)

    # When / Then the arithmetic agrees with walking the days (and the Indian default too)
    for calendar in (_PROPERTY_CALENDAR, CALENDAR):
        assert calendar.hours_between(begin, begin + span) == pytest.approx(
            _walked_hours(calendar, begin, begin + span)
        )


# --- stuck: no scan for too long ---------------------------------------------------------


def test_no_scan_beyond_the_status_threshold_is_stuck_once_with_the_duration() -> None:
    # Given a shipment in transit since Monday 10:00 (the rule: 36 business hours)
    scans = [scan(1, 4, 24), scan(2, 5, 25)]
    first = poll(None, scans, at(2))

    # When it is polled through Wednesday with nothing new
    outcomes = [first]
    for moment in (at(3, 0), at(3, 12), at(3, 23), at(4, 0)):
        outcomes.append(poll(outcomes[-1].state, scans, moment))

    # Then one stuck event, on the first poll past 36 business hours
    (stuck,) = of_type(outcomes, Stuck)
    assert stuck.detected_at == at(3, 23)
    assert stuck.reason == "no_scan_for"
    assert stuck.no_scan_for_hours == 37.0
    assert (stuck.threshold_hours, stuck.threshold_source) == (36.0, "rule")
    assert stuck.last_scan_at == MONDAY_10
    assert stuck.clickpost_status_code == 5
    assert stuck.event_id == event_id(4, "LATE1", "shipment.stuck", "0")
    assert outcomes[-1].state.stuck_open and outcomes[-1].state.stuck_reason == "no_scan_for"
    assert not outcomes[-1].changed  # an open episode costs no write


def test_a_sunday_does_not_count_towards_the_dwell() -> None:
    # Given in transit since Saturday 7 November, 10:00
    scans = [scan(1, 5, 6 * 24 + 1)]
    first = poll(None, scans, at(7, 11))

    # When polled on Monday 10:00: 48 hours on the clock, 24 business hours
    monday = poll(first.state, scans, at(9, 10))

    # Then not stuck yet
    assert of_type([first, monday], Stuck) == []


def test_a_learned_threshold_replaces_the_rule() -> None:
    # Given the daily job learned that this carrier's in-transit scans come 10 hours apart
    table = learned((4, 5, 10.0, None), at=at(1))
    scans = [scan(1, 5, 25)]
    first = poll(None, scans, at(2, 11), checks(table=table))

    # When
    later = poll(first.state, scans, at(2, 21), checks(table=table))

    # Then
    (stuck,) = of_type([first, later], Stuck)
    assert (stuck.threshold_hours, stuck.threshold_source) == (10.0, "learned")


def test_a_new_scan_after_a_stuck_event_gives_exactly_one_unstuck() -> None:
    # Given a shipment stuck for no scan, then flagged by Clickpost too
    scans = [scan(1, 5, 25)]
    outcomes = [poll(None, scans, at(2))]
    outcomes.append(poll(outcomes[-1].state, scans, at(4)))
    outcomes.append(poll(outcomes[-1].state, scans, at(4, 14), is_stuck=True))

    # When a new scan arrives, and it is polled many more times (Clickpost's flag lagging,
    # then cleared)
    moved = [*scans, scan(2, 1004, 3 * 24 + 5)]
    for hour, flag in ((15, True), (16, True), (18, False), (20, False), (22, None)):
        extra: dict[str, Any] = {} if flag is None else {"is_stuck": flag}
        outcomes.append(poll(outcomes[-1].state, moved, at(4, hour), **extra))

    # Then one stuck, one unstuck: the shipment moved
    (stuck,) = of_type(outcomes, Stuck)
    (unstuck,) = of_type(outcomes, Unstuck)
    assert stuck.reason == "no_scan_for"
    assert unstuck.reason == "moved"
    assert unstuck.detected_at == at(4, 15)
    assert unstuck.clickpost_status_code == 1004
    assert unstuck.event_id == event_id(4, "LATE1", "shipment.unstuck", "1")
    assert not outcomes[-1].state.stuck_open


def test_clickpost_s_flag_is_the_second_reason_and_movement_ends_it() -> None:
    # Given a shipment Clickpost flags one hour after its last scan
    scans = [scan(1, 5, 25)]
    first = poll(None, scans, at(2, 10, month=11), is_stuck=False)
    flagged = poll(first.state, scans, at(2, 11), is_stuck=True)

    # When it moves, Clickpost's flag still set
    moved = poll(flagged.state, [*scans, scan(2, 6, 30)], at(2, 16), is_stuck=True)
    still = poll(moved.state, [*scans, scan(2, 6, 30)], at(2, 18), is_stuck=True)

    # Then stuck for Clickpost's flag, unstuck because it moved, and the lagging flag is no news
    (stuck,) = of_type([flagged], Stuck)
    (unstuck,) = of_type([moved], Unstuck)
    assert stuck.reason == "clickpost_flag"
    assert stuck.no_scan_for_hours == 1.0  # measured all the same
    assert unstuck.reason == "moved"
    assert still.events == ()


def test_clickpost_clearing_its_flag_ends_its_episode_unless_the_shipment_still_sits() -> None:
    # Given two shipments flagged by Clickpost: one 2 hours after its last scan, one 40
    scans = [scan(1, 5, 25)]
    soon = poll(poll(None, scans, at(2, 11)).state, scans, at(2, 12), is_stuck=True)
    late = poll(poll(None, scans, at(2, 11)).state, scans, at(4, 10), is_stuck=True)

    # When Clickpost clears the flag without a new scan
    cleared_soon = poll(soon.state, scans, at(2, 13), is_stuck=False)
    cleared_late = poll(late.state, scans, at(4, 11), is_stuck=False)

    # Then the first is unstuck (Clickpost's word), the second stays stuck, now for sitting
    (unstuck,) = of_type([cleared_soon], Unstuck)
    assert unstuck.reason == "clickpost_flag"
    assert cleared_late.events == ()
    assert cleared_late.state.stuck_open and cleared_late.state.stuck_reason == "no_scan_for"


def test_a_delivered_shipment_is_never_stuck() -> None:
    scans = [scan(1, 5, 25), scan(2, 8, 26)]
    first = poll(None, scans, at(2))

    weeks_later = poll(first.state, scans, at(20))

    assert of_type([first, weeks_later], Stuck) == []


def test_states_stored_before_the_checks_start_from_their_newest_status() -> None:
    # Given a state stored before moved_at existed (its current status from Monday 10:00)
    scans = [scan(1, 5, 25)]
    stored = poll(None, scans, at(2)).state.model_copy(
        update={"moved_at": None, "status_since": None, "first_polled_at": at(1)}
    )

    # When polled on Tuesday with nothing new
    tuesday = poll(stored, scans, at(3, 12))

    # Then it has sat 26 business hours, not since its first poll: not stuck
    assert of_type([tuesday], Stuck) == []


# --- promises ------------------------------------------------------------------------------


def test_a_breach_fires_once_per_promise_however_often_it_is_polled() -> None:
    # Given a shipment whose carrier promised 5 November
    scans = [scan(1, 5, 25)]
    outcomes = [poll(None, scans, at(2), courier_partner_edd="2026-11-05")]

    # When it is polled every two hours for four days
    for hours in range(2, 4 * 24, 2):
        moment = at(4) + timedelta(hours=hours)
        outcomes.append(poll(outcomes[-1].state, scans, moment, courier_partner_edd="2026-11-05"))

    # Then one breach, on the first poll after the 5th ended in India
    (breach,) = of_type(outcomes, SlaBreached)
    assert breach.detected_at == datetime(2026, 11, 6, 0, 0, tzinfo=IST)
    assert breach.promised_delivery_date == date(2026, 11, 5)
    assert breach.promise_source == "courier_partner_edd"
    assert breach.event_id == event_id(4, "LATE1", "shipment.sla_breached", "2026-11-05")


def test_a_new_promise_can_be_breached_again_and_a_registered_one_comes_first() -> None:
    # Given a breached carrier promise, then a new date from the carrier
    scans = [scan(1, 5, 25)]
    first = poll(None, scans, at(2), courier_partner_edd="2026-11-03")
    breached = poll(first.state, scans, at(4), courier_partner_edd="2026-11-03")
    moved_out = poll(breached.state, scans, at(4, 14), courier_partner_edd="2026-11-06")
    missed_again = poll(moved_out.state, scans, at(7, 1), courier_partner_edd="2026-11-06")

    # When the merchant registered a promise of its own
    registered = first.state.model_copy(update={"promised_delivery_date": date(2026, 11, 2)})
    merchant = poll(registered, scans, at(3), courier_partner_edd="2026-11-03")

    # Then
    dates = [
        e.promised_delivery_date for e in of_type([breached, moved_out, missed_again], SlaBreached)
    ]
    assert dates == [date(2026, 11, 3), date(2026, 11, 6)]
    (mine,) = of_type([merchant], SlaBreached)
    assert (mine.promised_delivery_date, mine.promise_source) == (date(2026, 11, 2), "registration")


def test_a_shipment_delivered_in_time_or_late_is_no_breach() -> None:
    scans = [scan(1, 5, 25), scan(2, 8, 24 * 6)]

    outcome = poll(None, scans, at(9), courier_partner_edd="2026-11-05")

    assert of_type([outcome], SlaBreached) == []


@pytest.mark.parametrize(
    ("remaining", "predicted"),
    [(60.0, date(2026, 11, 5)), (20.0, None)],
)
def test_a_delay_is_predicted_once_from_the_learned_time_to_delivery(
    remaining: float, predicted: date | None
) -> None:
    # Given this carrier usually delivers `remaining` business hours after a shipment enters
    # transit, and a promise of 3 November; in transit since Monday 2nd, 12:00
    table = learned((4, 5, None, remaining), at=at(1))
    delays = checks(table=table)
    scans = [scan(1, 4, 26), scan(2, 5, 27)]

    # When it is polled three times on Monday
    outcomes = [poll(None, scans, at(2, 13), delays, courier_partner_edd="2026-11-03")]
    for hour in (15, 17):
        outcomes.append(
            poll(outcomes[-1].state, scans, at(2, hour), delays, courier_partner_edd="2026-11-03")
        )

    # Then 60 hours from Monday noon is Thursday 00:00 (5 November): late, said once
    found = of_type(outcomes, DelayPredicted)
    if predicted is None:
        assert found == []
        return
    (prediction,) = found
    assert prediction.predicted_delivery_date == predicted
    assert prediction.promised_delivery_date == date(2026, 11, 3)
    assert prediction.expected_remaining_hours == remaining
    assert prediction.status_since == datetime(2026, 11, 2, 12, 0, tzinfo=IST)
    assert prediction.event_id == event_id(4, "LATE1", "shipment.delay_predicted", "2026-11-03")


def test_a_visit_without_clickpost_finds_the_stuck_and_the_breach() -> None:
    # Given a stored shipment last polled on Monday, its promise the 3rd
    scans = [scan(1, 5, 25)]
    stored = poll(None, scans, at(2), courier_partner_edd="2026-11-03").state

    # When it is visited on Wednesday (no Clickpost call), and again
    visit = recheck(stored, KEY, at(4, 1), checks())
    again = recheck(visit.state, KEY, at(4, 3), checks())

    # Then it is stuck and has missed its promise, once
    assert [e.event_type for e in visit.events] == ["shipment.stuck", "shipment.sla_breached"]
    assert visit.changed
    assert again.events == () and not again.changed


def test_the_checks_are_off_without_a_policy() -> None:
    scans = [scan(1, 5, 25)]
    first = diff(None, KEY, result(scans, courier_partner_edd="2026-11-03"), at(2), CATALOGUE)

    later = diff(
        first.state, KEY, result(scans, courier_partner_edd="2026-11-03"), at(20), CATALOGUE
    )

    assert later.events == ()


@pytest.mark.parametrize("edd", ["9999-12-31", "0001-01-01", "2026-02-30", "9999-12-31T23:59:59"])
def test_a_carrier_date_at_the_ends_of_the_calendar_is_no_promise_and_breaks_nothing(
    edd: str,
) -> None:
    # Given a carrier EDD no carrier means (the calendar's first or last day, or no day)
    scans = [scan(1, 5, 25)]

    # When the shipment is polled, then visited days later
    first = poll(None, scans, at(2), courier_partner_edd=edd)
    later = poll(first.state, scans, at(20), courier_partner_edd=edd)
    visit = recheck(later.state, KEY, at(25), checks())

    # Then no promise is read from it (no breach, no prediction), and the other checks run
    assert of_type([first, later], SlaBreached) == []
    assert [e.event_type for e in later.events] == ["shipment.stuck"]
    assert visit.events == ()


@pytest.mark.parametrize("promised", [date(9999, 12, 31), date(1, 1, 1)])
def test_a_stored_promise_at_the_ends_of_the_calendar_never_breaks_a_poll(promised: date) -> None:
    # Given a shipment stored with a promise at the calendar's last or first day (as a
    # record written before registration checked the range would hold)
    scans = [scan(1, 5, 25)]
    stored = poll(None, scans, at(2)).state.model_copy(update={"promised_delivery_date": promised})

    # When it is polled and visited
    polled = poll(stored, scans, at(3))
    visit = recheck(stored, KEY, at(3), checks())

    # Then the last day is never missed, the first was missed long ago: once, not a crash
    breaches = of_type([polled], SlaBreached)
    assert len(breaches) == (1 if promised.year == 1 else 0)
    assert len(of_type([visit], SlaBreached)) == len(breaches)
