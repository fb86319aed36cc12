"""The daily e-mail for operations: per carrier, how many shipments were reported stuck,
missed their promise or were predicted late, and the oldest cases of each.

Pure: built from the events themselves (what `OpsDigestQueue` collected since the last
digest), rendered as plain text. Waybills and order numbers are in it (operations act on
them); no contact detail is, because no event carries one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from trackwatch.models.events import (
    DelayPredicted,
    ShipmentEvent,
    SlaBreached,
    Stuck,
    Unstuck,
)
from trackwatch.models.inputs import visible

#: Cases listed per carrier and kind.
OLDEST_CASES = 5
#: Clickpost text (a location) quoted in a case line, at most.
_TEXT = 60


@dataclass
class CarrierDigest:
    """One carrier's cases."""

    cp_id: int
    courier_name: str | None
    stuck: list[Stuck] = field(default_factory=list)
    #: Stuck shipments that moved again before the digest went out.
    moved_again: int = 0
    breached: list[SlaBreached] = field(default_factory=list)
    predicted: list[DelayPredicted] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The carrier as people read it."""
        return (
            f"{self.courier_name} (cp_id {self.cp_id})"
            if self.courier_name
            else f"cp_id {self.cp_id}"
        )


@dataclass(frozen=True)
class Digest:
    """What the digest says: the carriers with cases, and the span of the events read."""

    day: date
    carriers: tuple[CarrierDigest, ...]
    events: int
    first_detected: datetime | None
    last_detected: datetime | None

    @property
    def empty(self) -> bool:
        """Whether there is nothing to report."""
        return not self.carriers


def build_digest(events: Iterable[ShipmentEvent], day: date) -> Digest:
    """The digest of `events` (repeats dropped by event id), for `day`."""
    unique = {e.event_id: e for e in events}
    ordered = sorted(unique.values(), key=lambda e: (e.detected_at, e.event_id))
    # A shipment's stuck episode ends with an unstuck that came after it.
    last_stuck: dict[tuple[int, str], Stuck] = {}
    moved: set[str] = set()
    carriers: dict[int, CarrierDigest] = {}

    def carrier(event: ShipmentEvent) -> CarrierDigest:
        found = carriers.get(event.cp_id)
        if found is None:
            found = carriers[event.cp_id] = CarrierDigest(event.cp_id, event.courier_name)
        found.courier_name = found.courier_name or event.courier_name
        return found

    for event in ordered:
        match event:
            case Stuck():
                last_stuck[(event.cp_id, event.waybill)] = event
                carrier(event).stuck.append(event)
            case Unstuck():
                opened = last_stuck.pop((event.cp_id, event.waybill), None)
                if opened is not None:
                    moved.add(opened.event_id)
            case SlaBreached():
                carrier(event).breached.append(event)
            case DelayPredicted():
                carrier(event).predicted.append(event)
            case _:
                pass
    for found in carriers.values():
        found.moved_again = sum(1 for e in found.stuck if e.event_id in moved)
        found.stuck = sorted((e for e in found.stuck if e.event_id not in moved), key=_stuck_since)
        found.breached.sort(key=lambda e: (e.promised_delivery_date, e.waybill))
        found.predicted.sort(key=lambda e: (e.promised_delivery_date, e.waybill))
    return Digest(
        day=day,
        carriers=tuple(sorted(carriers.values(), key=lambda c: c.cp_id)),
        events=len(unique),
        first_detected=ordered[0].detected_at if ordered else None,
        last_detected=ordered[-1].detected_at if ordered else None,
    )


def render_digest(
    digest: Digest, zone: tzinfo, status_name: Callable[[int | None], str]
) -> tuple[str, str]:
    """(subject, body) of the digest e-mail, times in `zone`."""
    stuck = sum(len(c.stuck) for c in digest.carriers)
    breached = sum(len(c.breached) for c in digest.carriers)
    predicted = sum(len(c.predicted) for c in digest.carriers)
    subject = (
        f"trackwatch delays {digest.day:%d %b %Y}: {stuck} stuck, {breached} missed their "
        f"promise, {predicted} predicted late"
    )
    lines = [f"Shipment delays reported {_span(digest, zone)}.", ""]
    lines += _counts(digest)
    for found in digest.carriers:
        lines += ["", found.name]
        lines += _cases("stuck, longest without a scan first", found.stuck, zone, status_name)
        lines += _cases(
            "missed their promise, oldest promise first", found.breached, zone, status_name
        )
        lines += _cases("predicted late", found.predicted, zone, status_name)
    lines += [
        "",
        "Each case is an event on ShipmentEventsTopic (AllEventsQueue has them all); a shipment",
        "listed stuck that moves again gets shipment.unstuck. Thresholds: `trackwatch delays",
        "thresholds`.",
    ]
    return subject, "\n".join(lines) + "\n"


def _span(digest: Digest, zone: tzinfo) -> str:
    if digest.first_detected is None or digest.last_detected is None:
        return "since the last digest: none"
    first, last = digest.first_detected.astimezone(zone), digest.last_detected.astimezone(zone)
    return f"from {first:%d %b %H:%M} to {last:%d %b %H:%M} ({first:%Z})"


def _counts(digest: Digest) -> list[str]:
    rows = [
        f"{'carrier':<32} {'stuck':>6} {'moved again':>12} {'missed promise':>15} "
        f"{'predicted late':>15}"
    ]
    totals = [0, 0, 0, 0]
    for found in digest.carriers:
        counts = [len(found.stuck), found.moved_again, len(found.breached), len(found.predicted)]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        rows.append(_row(found.name, counts))
    rows.append(_row("all carriers", totals))
    return rows


def _row(name: str, counts: list[int]) -> str:
    stuck, moved, missed, late = counts
    return f"{name[:32]:<32} {stuck:>6} {moved:>12} {missed:>15} {late:>15}"


def _cases(
    title: str,
    events: list[Stuck] | list[SlaBreached] | list[DelayPredicted],
    zone: tzinfo,
    status_name: Callable[[int | None], str],
) -> list[str]:
    if not events:
        return []
    shown = events[:OLDEST_CASES]
    more = len(events) - len(shown)
    lines = [f"  {title}:"]
    for event in shown:
        lines.append(f"    {_case(event, zone, status_name)}")
    if more:
        lines.append(f"    ... and {more} more")
    return lines


def _case(
    event: Stuck | SlaBreached | DelayPredicted,
    zone: tzinfo,
    status_name: Callable[[int | None], str],
) -> str:
    who = event.waybill + (f" (order {event.order_id})" if event.order_id else "")
    where = status_name(event.clickpost_status_code)
    if event.location:
        where += f" at {_clip(event.location)}"
    match event:
        case Stuck() if event.reason == "no_scan_for" and event.last_scan_at is not None:
            since = event.last_scan_at.astimezone(zone)
            return (
                f"{who}: no scan for {event.no_scan_for_hours:g} business hours since "
                f"{since:%d %b %H:%M} (threshold {event.threshold_hours:g}, "
                f"{event.threshold_source}); {where}"
            )
        case Stuck():
            return f"{who}: flagged stuck by Clickpost; {where}"
        case SlaBreached():
            late = (event.detected_at.astimezone(zone).date() - event.promised_delivery_date).days
            return (
                f"{who}: promised {event.promised_delivery_date:%d %b} ({event.promise_source}), "
                f"{max(late, 1)} day{'s' if late > 1 else ''} late; {where}"
            )
        case DelayPredicted():
            return (
                f"{who}: promised {event.promised_delivery_date:%d %b}, now expected "
                f"{event.predicted_delivery_date:%d %b}; {where}"
            )


def _stuck_since(event: Stuck) -> tuple[datetime, str]:
    return (event.last_scan_at or event.detected_at, event.waybill)


def _clip(text: str) -> str:
    """A carrier's text on one short line: whitespace runs as one space, then clipped, then
    what a mail reader or terminal would act on (ESC, a bidi override) shown escaped."""
    flat = " ".join(text.split())
    return visible(flat if len(flat) <= _TEXT else flat[: _TEXT - 1] + "…")
