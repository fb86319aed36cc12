"""Learning dwell thresholds and times to delivery from the scans in the event log.

Pure, one pass: `Learner.add` takes one shipment's scans (its carrier, and each scan's
epoch second and clickpost_status_code) and counts, per carrier and per status (and for
every carrier together):

- the gaps between a scan with that status and the next scan, in business hours: what a
  stuck check measures (`no_scan_for`), so the quantile (p90 by default) is the threshold;
- for a shipment delivered in the window, the business hours from entering that status to
  delivery: its median is the expected remaining time a prediction adds.

Durations are counted at whole minutes, so a quantile is exact to the minute and is
found by walking the distinct values (at most a window's worth of minutes), not by
sorting the samples: the job stays linear in the scans of its window. Quantiles are
nearest-rank: the smallest value with at least q of the samples at or below it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise

from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.models.delays import ThresholdRow, ThresholdTable

#: The quantile of the time to delivery that a prediction adds: the median, what is expected.
EXPECTED_QUANTILE = 0.5

#: (epoch second, clickpost_status_code) of one scan.
type ScanPoint = tuple[int, int]
#: A carrier (None: all of them) and a status.
type Key = tuple[int | None, int]


def quantile(counts: Counter[int], q: float) -> int:
    """The nearest-rank `q` quantile of samples given as value → count."""
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the total")


@dataclass
class Learner:
    """Counts the samples of one window, shipment by shipment; `table()` says what it learned."""

    calendar: BusinessCalendar
    #: Statuses that end a journey: nothing waits for the next scan after them.
    terminal_codes: frozenset[int]
    #: Statuses that mean delivered: what the time to delivery runs to.
    delivered_codes: frozenset[int]
    quantile: float = 0.9
    min_samples: int = 30
    #: Business-hour minutes → how many, per (carrier, status).
    gaps: defaultdict[Key, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    remaining: defaultdict[Key, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    shipments: int = 0

    def add(self, cp_id: int, scans: Iterable[ScanPoint]) -> None:
        """One shipment's scans (any order, repeats allowed)."""
        ordered = sorted(set(scans))
        if not ordered:
            return
        self.shipments += 1
        for (at, code), (after, _) in pairwise(ordered):
            if code not in self.terminal_codes:
                self._count(self.gaps, cp_id, code, self._minutes(at, after))
        delivered = next((at for at, code in ordered if code in self.delivered_codes), None)
        if delivered is None:
            return
        entered: dict[int, int] = {}
        for at, code in ordered:
            if at >= delivered:
                break
            entered.setdefault(code, at)
        for code, at in entered.items():
            self._count(self.remaining, cp_id, code, self._minutes(at, delivered))

    def table(
        self,
        computed_at: datetime,
        window_days: int,
        items_read: int,
        shards_read: int | None = None,
        complete: bool = True,
    ) -> ThresholdTable:
        """The learned thresholds: a row per carrier (and for all carriers) and status seen."""
        keys = sorted({*self.gaps, *self.remaining}, key=lambda k: (k[0] is None, k[0] or 0, k[1]))
        rows = tuple(
            ThresholdRow(
                cp_id=cp_id,
                clickpost_status_code=code,
                dwell_samples=sum(self.gaps.get((cp_id, code), Counter()).values()),
                dwell_hours=self._hours(self.gaps.get((cp_id, code)), self.quantile),
                remaining_samples=sum(self.remaining.get((cp_id, code), Counter()).values()),
                remaining_hours=self._hours(self.remaining.get((cp_id, code)), EXPECTED_QUANTILE),
            )
            for cp_id, code in keys
        )
        return ThresholdTable(
            computed_at=computed_at,
            window_days=window_days,
            quantile=self.quantile,
            min_samples=self.min_samples,
            items_read=items_read,
            shards_read=shards_read,
            complete=complete,
            rows=rows,
        )

    def _minutes(self, start: int, end: int) -> int:
        hours = self.calendar.hours_between(
            datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )
        return round(hours * 60)

    @staticmethod
    def _count(table: defaultdict[Key, Counter[int]], cp_id: int, code: int, minutes: int) -> None:
        table[(cp_id, code)][minutes] += 1
        table[(None, code)][minutes] += 1

    def _hours(self, counts: Counter[int] | None, q: float) -> float | None:
        if not counts or sum(counts.values()) < self.min_samples:
            return None
        return round(quantile(counts, q) / 60, 2)
