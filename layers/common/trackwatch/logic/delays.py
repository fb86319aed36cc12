"""How late a shipment is: dwell against its threshold, its promise, and a predicted delivery.

Pure: the diff engine (logic/diff.py) asks these questions at every visit of a shipment
and turns the answers into events. What they decide with is a `DelayPolicy`: the
business-hours calendar and the dwell rules (data files, read by the container) and the
thresholds the daily job learned from the event log (a table, read by the container).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.models.delays import DelayRules, Promise, ThresholdTable
from trackwatch.models.events import ThresholdSource
from trackwatch.models.inputs import is_promise_date
from trackwatch.models.state import ShipmentState


@dataclass(frozen=True, slots=True)
class Threshold:
    """How many business hours a status may go without a scan, and who said so."""

    hours: float
    source: ThresholdSource


@dataclass(frozen=True, slots=True)
class Dwell:
    """How long a shipment has gone without moving, against its threshold."""

    since: datetime
    hours: float
    threshold: Threshold

    @property
    def over(self) -> bool:
        """Whether it has sat longer than its status allows."""
        return self.hours > self.threshold.hours


@dataclass(frozen=True, slots=True)
class Prediction:
    """When a shipment is expected now, from the time its carrier usually needs."""

    delivery_at: datetime
    delivery_date: date
    remaining_hours: float


class DelayPolicy:
    """The calendar, the rules and the learned thresholds: what the checks decide with."""

    def __init__(
        self,
        calendar: BusinessCalendar,
        rules: DelayRules,
        learned: ThresholdTable | None = None,
    ) -> None:
        self.calendar = calendar
        self.rules = rules
        self.learned = learned

    def threshold(self, cp_id: int, code: int | None) -> Threshold:
        """The learned threshold where there were enough samples, else the rules'."""
        if self.learned is not None:
            hours = self.learned.dwell_hours(cp_id, code)
            if hours is not None:
                return Threshold(hours=hours, source="learned")
        return Threshold(
            hours=self.rules.stuck_after_business_hours.hours_for(cp_id, code), source="rule"
        )

    def for_shipment(self, cp_id: int, timezone: str | None = None) -> ShipmentDelays:
        """The checks for one shipment: its carrier, and its destination's zone."""
        return ShipmentDelays(self, cp_id, self.calendar.zone_for(timezone))


class ShipmentDelays:
    """The delay checks of one shipment, in its destination's zone."""

    def __init__(self, policy: DelayPolicy, cp_id: int, zone: tzinfo) -> None:
        self.policy = policy
        self.cp_id = cp_id
        self.zone = zone

    @property
    def calendar(self) -> BusinessCalendar:
        """The business-hours calendar."""
        return self.policy.calendar

    def dwell(self, state: ShipmentState, now: datetime) -> Dwell | None:
        """How long the shipment has gone without moving; None once its journey has ended
        (or Clickpost does not know it), or before anything is known."""
        if state.is_terminal or state.invalid_since is not None:
            return None
        since = state.moved_at or state.first_polled_at
        if since is None:
            return None
        code = state.current.clickpost_status_code if state.current else None
        return Dwell(
            since=since,
            hours=self.calendar.hours_between(since, now, self.zone),
            threshold=self.policy.threshold(self.cp_id, code),
        )

    def promise(self, state: ShipmentState) -> Promise | None:
        """The promised delivery date: the first of the rules' sources that has one."""
        for source in self.policy.rules.promise_sources:
            found = _promise_from(source, state, self.zone)
            if found is not None:
                return found
        return None

    def missed(self, promise: Promise, now: datetime) -> bool:
        """Whether the promised day has ended in the destination's zone (the calendar's
        last day, which a record may hold from before registration checked dates, never
        ends)."""
        try:
            return now >= self.calendar.end_of_day(promise.date, self.zone)
        except OverflowError:
            return False

    def predict(self, state: ShipmentState, now: datetime) -> Prediction | None:
        """When the shipment should arrive, from its status and the time this carrier (or,
        with too few samples, every carrier) usually needs from there; None if unknown."""
        learned = self.policy.learned
        if learned is None or state.current is None or state.is_terminal:
            return None
        remaining = learned.remaining_hours(self.cp_id, state.current.clickpost_status_code)
        start = state.status_since or state.moved_at
        if remaining is None or start is None:
            return None
        # A shipment already past its usual time arrives no earlier than now.
        at = max(self.calendar.add_hours(start, remaining, self.zone), now)
        local = at.astimezone(self.zone)
        return Prediction(delivery_at=local, delivery_date=local.date(), remaining_hours=remaining)


def _promise_from(source: str, state: ShipmentState, zone: tzinfo) -> Promise | None:
    if source == "registration":
        if state.promised_delivery_date is not None:
            return Promise(date=state.promised_delivery_date, source="registration")
        return None
    edd = state.edd
    if edd is None:
        return None
    if source == "courier_partner_edd":
        if edd.courier_partner_edd:
            try:
                day = date.fromisoformat(edd.courier_partner_edd[:10])
            except ValueError:  # the carrier's text, not a date
                return None
            if not is_promise_date(day):  # a placeholder such as 9999-12-31
                return None
            return Promise(date=day, source="courier_partner_edd")
        return None
    days = edd.exact_sla if edd.exact_sla is not None else edd.max_sla
    if source == "clickpost_sla" and days is not None and state.first_scan_at is not None:
        start = state.first_scan_at.astimezone(zone).date()
        try:
            day = date.fromordinal(start.toordinal() + max(0, days))
        except (OverflowError, ValueError):  # SLA days past the calendar's end
            return None
        return Promise(date=day, source="clickpost_sla") if is_promise_date(day) else None
    return None
