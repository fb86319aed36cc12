"""The scan diff engine: (stored state, fresh AWB result, now) → (new state, events).

Pure: no I/O, no clock. Its rules —
- a scan is new when its checkpoint was never seen; duplicates produce nothing;
- the order of scans in a response does not matter;
- the current status is `latest_status` when present, else the newest scan;
  it only ever moves forward in time, and never from a terminal status to a
  non-terminal one;
- every event id is a function of the shipment and the change, so running the
  engine again on the same input yields the same ids (or nothing at all).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from trackwatch.logic.catalogue import StatusCatalogue, StatusInfo
from trackwatch.models.clickpost import AwbResult, Scan, StatusObject
from trackwatch.models.events import (
    Edd,
    EddChanged,
    Invalid,
    NdrRaised,
    ScanAdded,
    ShipmentEvent,
    StatusChanged,
    StatusFields,
    Stuck,
    Unstuck,
    event_id,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import (
    MAX_SEEN,
    TIMELINE_LIMIT,
    CurrentStatus,
    ShipmentState,
    TimelineEntry,
)


@dataclass(frozen=True, slots=True)
class DiffOutcome:
    """The engine's answer: the state to store, the events to publish."""

    state: ShipmentState
    events: tuple[ShipmentEvent, ...]
    #: Status codes the catalogue does not know (kept, reported, treated as non-terminal).
    unknown_status_codes: tuple[int, ...]
    #: Whether the state must be written: an unchanged shipment costs no write.
    changed: bool


def checkpoint_key(scan: Scan) -> str:
    """The identity of a scan: its checkpoint_id, or a digest of its content when absent."""
    if scan.checkpoint_id is not None and str(scan.checkpoint_id) != "":
        return str(scan.checkpoint_id)
    # Some carriers' scans arrive without an id; their content is their identity.
    content = "|".join(
        str(part)
        for part in (
            scan.timestamp.isoformat() if scan.timestamp else "",
            scan.clickpost_status_code,
            scan.status,
            scan.location,
            scan.remark,
        )
    )
    return "h:" + hashlib.sha256(content.encode()).hexdigest()[:20]


def _epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def _sort_key(scan: Scan, key: str) -> tuple[int, str]:
    return (_epoch(scan.timestamp), key)


def _status_fields(status: StatusObject) -> StatusFields:
    return StatusFields(
        clickpost_status_code=status.clickpost_status_code,
        clickpost_status_description=status.clickpost_status_description,
        clickpost_status_bucket=status.clickpost_status_bucket,
        clickpost_status_bucket_description=status.clickpost_status_bucket_description,
        status=status.status,
        location=status.location,
        remark=status.remark,
    )


def _current(status: StatusObject, info: StatusInfo) -> CurrentStatus:
    return CurrentStatus(
        clickpost_status_code=status.clickpost_status_code,
        clickpost_status_description=status.clickpost_status_description or info.name,
        clickpost_status_bucket=status.clickpost_status_bucket,
        clickpost_status_bucket_description=status.clickpost_status_bucket_description,
        status=status.status,
        location=status.location,
        remark=status.remark,
        timestamp=status.timestamp,
        is_terminal=info.terminal,
    )


def _moves_forward(current: CurrentStatus | None, candidate: CurrentStatus) -> bool:
    """Whether `candidate` may replace `current`: newer in time, never out of a terminal."""
    if current is None:
        return True
    if current.is_terminal and not candidate.is_terminal:
        return False
    if candidate.timestamp is None or current.timestamp is None:
        # Without times, only a status that is actually different can replace one.
        return current.timestamp is None and candidate != current
    return candidate.timestamp > current.timestamp


def _edd_of(result: AwbResult) -> Edd | None:
    extra = result.additional
    sla = extra.edd
    snapshot = Edd(
        courier_partner_edd=extra.courier_partner_edd,
        min_sla=sla.min_sla if sla else None,
        max_sla=sla.max_sla if sla else None,
        exact_sla=sla.exact_sla if sla else None,
    )
    return None if snapshot == Edd() else snapshot


class _Builder:
    """Accumulates events with the shipment's envelope filled in."""

    def __init__(self, key: ShipmentKey, order_id: str | None, courier: str | None, now: datetime):
        self.key, self.order_id, self.courier, self.now = key, order_id, courier, now
        self.events: list[ShipmentEvent] = []

    def envelope(
        self, event_type: str, change: str, occurred_at: datetime | None
    ) -> dict[str, object]:
        return {
            "event_id": event_id(self.key.cp_id, self.key.waybill, event_type, change),
            "waybill": self.key.waybill,
            "cp_id": self.key.cp_id,
            "order_id": self.order_id,
            "courier_name": self.courier,
            "occurred_at": occurred_at or self.now,
            "detected_at": self.now,
        }


def diff(
    state: ShipmentState | None,
    key: ShipmentKey,
    result: AwbResult,
    now: datetime,
    catalogue: StatusCatalogue,
) -> DiffOutcome:
    """Compare what we knew with what Clickpost says now."""
    before = state or ShipmentState()
    extra = result.additional
    order_id = extra.order_id or before.order_id
    courier = extra.courier_name or before.courier_name
    out = _Builder(key, order_id, courier, now)
    unknown: set[int] = set()

    def info_of(status: StatusObject) -> StatusInfo:
        code = status.clickpost_status_code
        found = catalogue.lookup(
            code if code is not None else 0, status.clickpost_status_description
        )
        if not found.known and code is not None:
            unknown.add(code)
        return found

    if not result.valid:
        return _invalid(before, out, order_id, courier, sorted(unknown))

    # New scans, deduplicated, in time order so attempt numbers do not depend on
    # the order Clickpost listed them in.
    fresh: dict[str, Scan] = {}
    for scan in result.scans:
        ckey = checkpoint_key(scan)
        if ckey in before.seen or ckey in fresh:
            continue
        floor = before.seen_floor
        if floor is not None and scan.timestamp is not None and _epoch(scan.timestamp) <= floor:
            continue
        fresh[ckey] = scan
    ordered = sorted(fresh.items(), key=lambda item: _sort_key(item[1], item[0]))

    ndr = extra.ndr
    ndr_attempts = before.ndr_attempts
    for ckey, scan in ordered:
        info = info_of(scan)
        checkpoint: int | str = scan.checkpoint_id if scan.checkpoint_id is not None else ckey
        out.events.append(
            ScanAdded.model_validate(
                {
                    **out.envelope("shipment.scan_added", ckey, scan.timestamp),
                    "checkpoint_id": checkpoint,
                    "tracking_id": scan.tracking_id,
                    "scan": _status_fields(scan),
                    "is_terminal": info.terminal,
                }
            )
        )
        if info.failed_delivery:
            ndr_attempts += 1
            out.events.append(
                NdrRaised.model_validate(
                    {
                        **out.envelope("shipment.ndr_raised", ckey, scan.timestamp),
                        "checkpoint_id": checkpoint,
                        "attempt": ndr_attempts,
                        "ndr_bucket_code": ndr.ndr_bucket_code if ndr else None,
                        "ndr_description": ndr.ndr_description if ndr else None,
                        "location": scan.location,
                        "remark": scan.remark,
                    }
                )
            )

    # The current status: latest_status when Clickpost gives one, else the newest scan.
    candidate_source: StatusObject | None = result.latest_status
    if candidate_source is None and result.scans:
        candidate_source = max(result.scans, key=lambda s: _sort_key(s, checkpoint_key(s)))
    current = before.current
    terminal_at = before.terminal_at
    if candidate_source is not None:
        candidate = _current(candidate_source, info_of(candidate_source))
        if _moves_forward(current, candidate):
            if (
                current is None
                or current.clickpost_status_bucket != candidate.clickpost_status_bucket
            ):
                change = "|".join(
                    (
                        str(candidate.clickpost_status_bucket),
                        str(candidate.clickpost_status_code),
                        candidate.timestamp.isoformat() if candidate.timestamp else "",
                    )
                )
                out.events.append(
                    StatusChanged.model_validate(
                        {
                            **out.envelope("shipment.status_changed", change, candidate.timestamp),
                            "from_bucket": current.clickpost_status_bucket if current else None,
                            "from_bucket_description": (
                                current.clickpost_status_bucket_description if current else None
                            ),
                            "to_bucket": candidate.clickpost_status_bucket,
                            "to_bucket_description": candidate.clickpost_status_bucket_description,
                            "clickpost_status_code": candidate.clickpost_status_code,
                            "clickpost_status_description": candidate.clickpost_status_description,
                            "status": candidate.status,
                            "location": candidate.location,
                            "remark": candidate.remark,
                            "is_terminal": candidate.is_terminal,
                        }
                    )
                )
            current = candidate
            if candidate.is_terminal and terminal_at is None:
                terminal_at = now
    terminal = current is not None and current.is_terminal

    # Stuck and unstuck: transitions of Clickpost's flag; a finished journey is not stuck.
    reported = extra.is_stuck
    is_stuck = before.is_stuck
    stuck_changes = before.stuck_changes
    if reported is not None and reported != before.is_stuck and not (terminal and reported):
        # Unknown → not stuck is no news; every other flip is.
        if reported or before.is_stuck:
            event_type = "shipment.stuck" if reported else "shipment.unstuck"
            model = Stuck if reported else Unstuck
            out.events.append(
                model.model_validate(
                    {
                        **out.envelope(event_type, str(stuck_changes), None),
                        "clickpost_status_code": current.clickpost_status_code if current else None,
                        "clickpost_status_bucket": (
                            current.clickpost_status_bucket if current else None
                        ),
                        "location": current.location if current else None,
                    }
                )
            )
            stuck_changes += 1
        is_stuck = reported

    # Expected delivery: recorded at first sight, reported when it changes after.
    edd = _edd_of(result)
    edd_changes = before.edd_changes
    first_sight = before.first_polled_at is None
    if edd is None:
        edd = before.edd
    elif edd != before.edd and not first_sight and not terminal:
        digest = hashlib.sha256(edd.model_dump_json().encode()).hexdigest()[:12]
        out.events.append(
            EddChanged.model_validate(
                {
                    **out.envelope("shipment.edd_changed", f"{edd_changes}|{digest}", None),
                    "previous": before.edd or Edd(),
                    "current": edd,
                }
            )
        )
        edd_changes += 1

    seen, seen_floor = _remember(before, ordered)
    timeline = _timeline(before.timeline, ordered)
    after = before.model_copy(
        update={
            "order_id": order_id,
            "courier_name": courier,
            "first_polled_at": before.first_polled_at or now,
            "current": current,
            "seen": seen,
            "seen_floor": seen_floor,
            "scan_count": before.scan_count + len(ordered),
            "timeline": timeline,
            "ndr_attempts": ndr_attempts,
            "is_stuck": is_stuck,
            "stuck_changes": stuck_changes,
            "edd": edd,
            "edd_changes": edd_changes,
            "invalid_since": None,
            "terminal_at": terminal_at,
        }
    )
    return DiffOutcome(
        state=after,
        events=tuple(out.events),
        unknown_status_codes=tuple(sorted(unknown)),
        changed=after != before,
    )


def _invalid(
    before: ShipmentState,
    out: _Builder,
    order_id: str | None,
    courier: str | None,
    unknown: list[int],
) -> DiffOutcome:
    """valid: false — reported once, until Clickpost knows the AWB again."""
    if before.invalid_since is not None:
        return DiffOutcome(
            state=before, events=(), unknown_status_codes=tuple(unknown), changed=False
        )
    out.events.append(
        Invalid.model_validate(out.envelope("shipment.invalid", str(before.invalid_reports), None))
    )
    after = before.model_copy(
        update={
            "order_id": order_id,
            "courier_name": courier,
            "invalid_since": out.now,
            "invalid_reports": before.invalid_reports + 1,
        }
    )
    return DiffOutcome(
        state=after, events=tuple(out.events), unknown_status_codes=tuple(unknown), changed=True
    )


def _remember(
    before: ShipmentState, ordered: list[tuple[str, Scan]]
) -> tuple[dict[str, int], int | None]:
    """Add the new checkpoints to `seen`, evicting the oldest past MAX_SEEN."""
    if not ordered:
        return before.seen, before.seen_floor
    seen = dict(before.seen)
    for ckey, scan in ordered:
        seen[ckey] = _epoch(scan.timestamp)
    floor = before.seen_floor
    if len(seen) > MAX_SEEN:
        by_age = sorted(seen.items(), key=lambda item: (item[1], item[0]))
        evicted = by_age[: len(seen) - MAX_SEEN]
        floor = max([floor or 0, *(epoch for _, epoch in evicted)])
        for ckey, _ in evicted:
            del seen[ckey]
    return seen, floor


def _timeline(
    kept: tuple[TimelineEntry, ...], ordered: list[tuple[str, Scan]]
) -> tuple[TimelineEntry, ...]:
    """The newest TIMELINE_LIMIT scans, newest first."""
    if not ordered:
        return kept
    added = [
        TimelineEntry(
            checkpoint_id=scan.checkpoint_id if scan.checkpoint_id is not None else ckey,
            timestamp=scan.timestamp,
            clickpost_status_code=scan.clickpost_status_code,
            clickpost_status_description=scan.clickpost_status_description,
            clickpost_status_bucket=scan.clickpost_status_bucket,
            status=scan.status,
            location=scan.location,
            remark=scan.remark,
        )
        for ckey, scan in ordered
    ]
    merged = sorted(
        [*kept, *added],
        key=lambda entry: (_epoch(entry.timestamp), str(entry.checkpoint_id)),
        reverse=True,
    )
    return tuple(merged[:TIMELINE_LIMIT])
