"""Delay checks for the tests: the packaged calendar and rules, and learned tables to order."""

from __future__ import annotations

from datetime import datetime

from tests.factories import CATALOGUE
from trackwatch.data import load_calendar, load_delay_rules
from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.logic.delays import DelayPolicy, ShipmentDelays
from trackwatch.models.delays import ThresholdRow, ThresholdTable

#: India's calendar (Sundays, the three national holidays), as packaged.
CALENDAR: BusinessCalendar = load_calendar()
RULES = load_delay_rules(CATALOGUE)


def learned(
    *rows: tuple[int | None, int, float | None, float | None], at: datetime
) -> ThresholdTable:
    """A learned table of (cp_id, status code, dwell hours, hours to delivery) rows."""
    return ThresholdTable(
        computed_at=at,
        window_days=30,
        quantile=0.9,
        min_samples=1,
        items_read=0,
        rows=tuple(
            ThresholdRow(
                cp_id=cp_id,
                clickpost_status_code=code,
                dwell_samples=0 if dwell is None else 10,
                dwell_hours=dwell,
                remaining_samples=0 if remaining is None else 10,
                remaining_hours=remaining,
            )
            for cp_id, code, dwell, remaining in rows
        ),
    )


def policy(table: ThresholdTable | None = None) -> DelayPolicy:
    """The packaged calendar and rules, with `table` as what the daily job learned."""
    return DelayPolicy(CALENDAR, RULES, table)


def checks(cp_id: int = 4, table: ThresholdTable | None = None) -> ShipmentDelays:
    """One shipment's delay checks (carrier `cp_id`, India's zone)."""
    return policy(table).for_shipment(cp_id)
