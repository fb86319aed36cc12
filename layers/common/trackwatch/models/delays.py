"""Delay detection as data: the holiday calendar, the dwell rules, the learned thresholds.

The calendar and the rules are data files a deployment may replace (trackwatch/data,
read by the container); the learned thresholds are what the daily job writes and the
poller reads. The logic (logic/business_hours.py, logic/delays.py) only sees these
frozen values.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from trackwatch.models.events import PromiseSource

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_HOLIDAY_DATE = re.compile(r"^(\d{4}-)?\d{2}-\d{2}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Holiday(_Frozen):
    """A day off: every year ("MM-DD") or once ("YYYY-MM-DD")."""

    date: str = Field(description="MM-DD for every year, YYYY-MM-DD for one year only.")
    name: str = Field(min_length=1)

    @field_validator("date")
    @classmethod
    def _a_real_day(cls, value: str) -> str:
        if not _HOLIDAY_DATE.match(value):
            raise ValueError("must be MM-DD or YYYY-MM-DD")
        # 2024 is a leap year: 02-29 is a day that exists in some years.
        date.fromisoformat(value if len(value) == 10 else f"2024-{value}")
        return value

    @property
    def recurring(self) -> bool:
        """Whether it comes back every year."""
        return len(self.date) == 5


class CalendarSpec(_Frozen):
    """When business hours run, in the destination's zone (data/holidays.json)."""

    #: The zone of a destination whose shipment does not name one (metadata "timezone").
    timezone: str = "Asia/Kolkata"
    weekly_off: frozenset[Weekday] = frozenset({"sunday"})
    #: The working part of a working day, in hours of the local day: [0, 24] is all of it.
    working_hours: tuple[float, float] = (0.0, 24.0)
    holidays: tuple[Holiday, ...] = ()

    @model_validator(mode="after")
    def _sane(self) -> Self:
        start, end = self.working_hours
        if not 0 <= start < end <= 24:
            raise ValueError("working_hours must be [start, end] with 0 <= start < end <= 24")
        if len(self.weekly_off) == len(WEEKDAYS):
            raise ValueError("weekly_off leaves no working day")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


class DwellRules(_Frozen):
    """How many business hours a shipment may go without a new scan, by its current status."""

    #: Any status the rules do not name.
    default_hours: float = Field(gt=0)
    #: clickpost_status_code → hours.
    by_status: dict[int, float] = Field(default_factory=dict)
    #: cp_id → clickpost_status_code → hours: a carrier's own, before by_status.
    by_carrier: dict[int, dict[int, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _positive(self) -> Self:
        values = [*self.by_status.values()] + [
            hours for table in self.by_carrier.values() for hours in table.values()
        ]
        if any(hours <= 0 for hours in values):
            raise ValueError("every threshold must be a positive number of hours")
        return self

    def hours_for(self, cp_id: int, code: int | None) -> float:
        """The rule's threshold for a carrier and status."""
        if code is not None:
            own = self.by_carrier.get(cp_id, {})
            if code in own:
                return own[code]
            if code in self.by_status:
                return self.by_status[code]
        return self.default_hours


class DelayRules(_Frozen):
    """The delay rules data file (data/delays.json)."""

    stuck_after_business_hours: DwellRules
    #: The statuses that mean the parcel reached the customer: what "remaining time to
    #: delivery" runs to.
    delivered_status_codes: frozenset[int] = Field(min_length=1)
    #: Where a promise comes from, first found first: a deployment may leave some out.
    promise_sources: tuple[PromiseSource, ...] = ("registration", "courier_partner_edd")


class ThresholdRow(_Frozen):
    """What the event log says about one carrier (or all of them) and one status."""

    #: None: every carrier together (the fallback for a carrier with too few samples).
    cp_id: int | None
    clickpost_status_code: int
    #: Gaps between a scan with this status and the next scan, in the window.
    dwell_samples: int = Field(ge=0)
    #: The quantile of those gaps in business hours; None when the samples are too few.
    dwell_hours: float | None
    #: Shipments delivered in the window that had this status on their way.
    remaining_samples: int = Field(ge=0)
    #: The median business hours from entering this status to delivery; None when too few.
    remaining_hours: float | None


class ThresholdTable(_Frozen):
    """The learned thresholds: what the daily job writes and the poller reads."""

    computed_at: AwareDatetime
    window_days: int = Field(ge=1)
    quantile: float = Field(gt=0, lt=1)
    min_samples: int = Field(ge=1)
    #: Event-log items the job read (one per change with carrier-timed scans).
    items_read: int = Field(ge=0)
    #: LearnIndex shards read: fewer than all when the run's time ran out first. Shards are
    #: a hash of the shipment, so those read are a uniform sample of the window's shipments.
    shards_read: int | None = Field(default=None, ge=0)
    #: Whether every shard of the window was read.
    complete: bool = True
    rows: tuple[ThresholdRow, ...] = ()
    _by_key: dict[tuple[int | None, int], ThresholdRow] | None = PrivateAttr(default=None)

    def dwell_hours(self, cp_id: int, code: int | None) -> float | None:
        """The learned threshold of this carrier and status, if it had enough samples."""
        row = self._row(cp_id, code)
        return row.dwell_hours if row is not None else None

    def remaining_hours(self, cp_id: int, code: int | None) -> float | None:
        """The learned time to delivery from this status: the carrier's, else all carriers'."""
        for carrier in (cp_id, None):
            row = self._row(carrier, code)
            if row is not None and row.remaining_hours is not None:
                return row.remaining_hours
        return None

    def _row(self, cp_id: int | None, code: int | None) -> ThresholdRow | None:
        if code is None:
            return None
        return self._index().get((cp_id, code))

    def _index(self) -> dict[tuple[int | None, int], ThresholdRow]:
        # Built on first use and kept: the poller looks rows up on every poll.
        if self._by_key is None:
            self._by_key = {(r.cp_id, r.clickpost_status_code): r for r in self.rows}
        return self._by_key


class Promise(_Frozen):
    """A promised delivery date and where it came from."""

    date: date
    source: PromiseSource
