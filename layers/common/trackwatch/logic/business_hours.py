"""Business hours in a destination's zone: its working days (no weekly day off, no holiday)
and, on each, its working hours.

Pure arithmetic over a `CalendarSpec` (data/holidays.json, read by the container). Time
between two moments costs O(holidays in the span), not O(days): the daily threshold job
measures millions of gaps with it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trackwatch.models.delays import WEEKDAYS, CalendarSpec

_DAY = timedelta(days=1)


class BusinessCalendar:
    """Working days and hours of one calendar; times are measured in `zone` (or the one given)."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.zone = ZoneInfo(spec.timezone)
        self._off = frozenset(WEEKDAYS.index(day) for day in spec.weekly_off)
        start, end = spec.working_hours
        self._open = timedelta(hours=start)
        self._close = timedelta(hours=end)
        #: Working seconds in a working day.
        self._day_s = (self._close - self._open).total_seconds()
        self._yearly = frozenset(h.date for h in spec.holidays if h.recurring)
        self._once = frozenset(date.fromisoformat(h.date) for h in spec.holidays if not h.recurring)
        #: year → its holidays that fall on a day not off anyway (filled as years are met).
        self._by_year: dict[int, frozenset[date]] = {}

    def zone_for(self, name: str | None) -> tzinfo:
        """The zone called `name` (a shipment's metadata), else the calendar's own."""
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self.zone

    def is_holiday(self, day: date) -> bool:
        """Whether `day` is a holiday of the calendar (weekly days off aside)."""
        return day in self._once or f"{day.month:02d}-{day.day:02d}" in self._yearly

    def is_working_day(self, day: date) -> bool:
        """Whether business hours run on `day`."""
        return day.weekday() not in self._off and day not in self._holidays_of(day.year)

    def hours_between(self, start: datetime, end: datetime, zone: tzinfo | None = None) -> float:
        """Business hours from `start` to `end` (0 when `end` is not after `start`)."""
        if end <= start:
            return 0.0
        where = zone or self.zone
        first, last = start.astimezone(where), end.astimezone(where)
        if first.date() == last.date():
            return self._within(first.date(), first, last, where) / 3600
        seconds = self._within(first.date(), first, last, where)
        seconds += self._within(last.date(), first, last, where)
        seconds += self._working_days(first.date() + _DAY, last.date()) * self._day_s
        return seconds / 3600

    def add_hours(self, start: datetime, hours: float, zone: tzinfo | None = None) -> datetime:
        """The moment `hours` business hours after `start`."""
        where = zone or self.zone
        moment = start.astimezone(where)
        left = timedelta(hours=max(0.0, hours))
        day = moment.date()
        # A year of days off in a row is a calendar no one can meet: stop there.
        for _ in range(366 + int(hours / 24) * 2):
            if self.is_working_day(day):
                opens, closes = self._window(day, where)
                begin = max(opens, moment)
                if begin < closes:
                    if begin + left <= closes:
                        return begin + left
                    left -= closes - begin
            day += _DAY
            moment = datetime.combine(day, time(0), tzinfo=where)
        raise ValueError(f"no working day found within a year after {start.isoformat()}")

    def end_of_day(self, day: date, zone: tzinfo | None = None) -> datetime:
        """The moment `day` ends in `zone`: a promise for that day is missed from then on."""
        return datetime.combine(day + _DAY, time(0), tzinfo=zone or self.zone)

    # ------------------------------------------------------------------ helpers

    def _window(self, day: date, zone: tzinfo) -> tuple[datetime, datetime]:
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        return midnight + self._open, midnight + self._close

    def _within(self, day: date, start: datetime, end: datetime, zone: tzinfo) -> float:
        """Working seconds of `day` between `start` and `end`."""
        if not self.is_working_day(day):
            return 0.0
        opens, closes = self._window(day, zone)
        low, high = max(opens, start), min(closes, end)
        return max(0.0, (high - low).total_seconds())

    def _working_days(self, first: date, stop: date) -> int:
        """Working days from `first` up to, not including, `stop`."""
        days = (stop - first).days
        if days <= 0:
            return 0
        weeks, rest = divmod(days, 7)
        off = weeks * len(self._off)
        off += sum(1 for i in range(rest) if (first.weekday() + i) % 7 in self._off)
        return days - off - self._holidays_on_working_weekdays(first, stop)

    def _holidays_on_working_weekdays(self, first: date, stop: date) -> int:
        """Holidays from `first` up to `stop` that fall on a day that is not off anyway."""
        return sum(
            1
            for year in range(first.year, stop.year + 1)
            for day in self._holidays_of(year)
            if first <= day < stop
        )

    def _holidays_of(self, year: int) -> frozenset[date]:
        """The holidays of `year` that fall on a day not off anyway; worked out once a year
        (the threshold job measures millions of gaps: no date parsing per gap)."""
        found = self._by_year.get(year)
        if found is None:
            days = {day for day in self._once if day.year == year}
            for month_day in self._yearly:
                try:
                    days.add(date.fromisoformat(f"{year:04d}-{month_day}"))
                except ValueError:  # 02-29 in a year without one
                    continue
            found = frozenset(day for day in days if day.weekday() not in self._off)
            self._by_year[year] = found
        return found
