"""The scan diff engine: (stored state, fresh AWB result, now) → (new state, events).

Pure: no I/O, no clock. Its rules —
- a scan is new when its checkpoint was never seen; duplicates produce nothing;
- the order of scans in a response does not matter;
- the current status is `latest_status` when present, else the newest scan;
  it only ever moves forward in time, and never from a terminal status to a
  non-terminal one;
- a time that is absent, unreadable or more than a margin in the future orders
  nothing: such a scan is still a scan (new if its checkpoint is), its events
  say so (`time_quality`) and carry the detection time, and a status with such a
  time replaces the current one if it is a different status (arrival order), so a
  scan dated 9999 never freezes a shipment;
- text from Clickpost is clipped to TEXT_LIMIT characters wherever it is kept;
- every event id is a function of the shipment and the change, so running the
  engine again on the same input yields the same ids (or nothing at all).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from trackwatch.logic.catalogue import StatusCatalogue, StatusInfo
from trackwatch.models.clickpost import AwbResult, Ndr, Scan, StatusObject
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
    TimeQuality,
    Unstuck,
    event_id,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import MAX_SEEN, CurrentStatus, ShipmentState

#: Characters of Clickpost text (remarks, locations, statuses) kept in events and state.
TEXT_LIMIT = 500
#: A scan dated further ahead of now than this is not trusted to order anything.
FUTURE_MARGIN = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class DiffOutcome:
    """The engine's answer: the state to store, the events to publish."""

    state: ShipmentState
    events: tuple[ShipmentEvent, ...]
    #: Status codes the catalogue does not know (kept, reported, treated as non-terminal).
    unknown_status_codes: tuple[int, ...]
    #: Whether the state must be written: an unchanged shipment costs no write.
    changed: bool


def seen_key(checkpoint: str) -> str:
    """How a checkpoint is remembered: 8 characters (48 bits) of its digest. Collisions
    within one shipment's thousand checkpoints are a 1 in 10^8 event."""
    digest = hashlib.blake2b(checkpoint.encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


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


def diff(
    state: ShipmentState | None,
    key: ShipmentKey,
    result: AwbResult,
    now: datetime,
    catalogue: StatusCatalogue,
    *,
    future_margin: timedelta = FUTURE_MARGIN,
) -> DiffOutcome:
    """Compare what we knew with what Clickpost says now."""
    before = state or ShipmentState()
    extra = result.additional
    shipment = _Shipment(
        key=key,
        order_id=_clip(extra.order_id) or before.order_id,
        courier_name=_clip(extra.courier_name) or before.courier_name,
        now=now,
        trusted_until=now + future_margin,
    )
    if not result.valid:
        return _invalid(before, shipment)

    fresh = _fresh_scans(before, result.scans, shipment)
    source = _status_source(result, shipment)
    scans = _scan_step(fresh, extra.ndr, before.ndr_attempts, shipment, catalogue)
    status = _status_step(before, source, _recorded_at(source, result), shipment, catalogue)
    stuck = _stuck_step(before, extra.is_stuck, status.current, shipment)
    edd = _edd_step(before, _edd_of(result), status.terminal, shipment)
    recorded = _recorded_until(before, fresh, result.scans, shipment)
    after = _next_state(before, shipment, fresh, scans, status, stuck, edd, recorded)
    # Reported unknown: the codes of every status this diff looked up in the catalogue.
    looked_up = [scan for _, scan in fresh] + ([source] if source is not None else [])
    return DiffOutcome(
        state=after,
        events=(*scans.events, *status.events, *stuck.events, *edd.events),
        unknown_status_codes=_unknown_codes(looked_up, catalogue),
        changed=after != before,
    )


# --- the envelope ----------------------------------------------------------------


class _Envelope(TypedDict):
    """The fields every event carries; spread into an event class, mypy checks each one."""

    event_id: str
    waybill: str
    cp_id: int
    order_id: str | None
    courier_name: str | None
    occurred_at: datetime
    detected_at: datetime
    time_quality: TimeQuality
    reported_time: str | None
    recorded_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Time:
    """A status's time as the engine may use it: trusted, or why not (and what was sent)."""

    trusted: datetime | None
    quality: TimeQuality
    reported: str | None = None


#: The time of a change that has no carrier time of its own (stuck, EDD, invalid).
_DETECTED = _Time(trusted=None, quality="detected")


@dataclass(frozen=True, slots=True)
class _Shipment:
    """The shipment the events are about, and when the diff runs."""

    key: ShipmentKey
    order_id: str | None
    courier_name: str | None
    now: datetime
    #: Times after this are in the future beyond the margin: not trusted.
    trusted_until: datetime

    def time_of(self, status: StatusObject) -> _Time:
        """Whether `status`'s time can order statuses; if not, why not."""
        moment = status.timestamp
        if moment is None:
            if status.timestamp_raw is not None:
                return _Time(trusted=None, quality="unreadable", reported=status.timestamp_raw)
            return _DETECTED
        if moment > self.trusted_until:
            return _Time(trusted=None, quality="future", reported=moment.isoformat())
        return _Time(trusted=moment, quality="carrier")

    def recorded(self, moment: datetime | None) -> datetime | None:
        """Clickpost's record time of a status, when it can be believed (not in the future)."""
        return moment if moment is not None and moment <= self.trusted_until else None

    def envelope(
        self,
        event_type: str,
        change: str,
        time: _Time,
        recorded_at: datetime | None = None,
    ) -> _Envelope:
        """The envelope of one event; its id is a function of the shipment and `change`
        (never of the times, which may differ between two sightings of one change)."""
        return _Envelope(
            event_id=event_id(self.key.cp_id, self.key.waybill, event_type, change),
            waybill=self.key.waybill,
            cp_id=self.key.cp_id,
            order_id=self.order_id,
            courier_name=self.courier_name,
            occurred_at=time.trusted or self.now,
            detected_at=self.now,
            time_quality=time.quality,
            reported_time=time.reported,
            recorded_at=self.recorded(recorded_at),
        )


# --- the steps, in the order diff() takes them -------------------------------------


def _invalid(before: ShipmentState, shipment: _Shipment) -> DiffOutcome:
    """valid: false — reported once, until Clickpost knows the AWB again."""
    if before.invalid_since is not None:
        return DiffOutcome(state=before, events=(), unknown_status_codes=(), changed=False)
    event = Invalid(**shipment.envelope("shipment.invalid", str(before.invalid_reports), _DETECTED))
    after = before.model_copy(
        update={
            "order_id": shipment.order_id,
            "courier_name": shipment.courier_name,
            "invalid_since": shipment.now,
            "invalid_reports": before.invalid_reports + 1,
        }
    )
    return DiffOutcome(state=after, events=(event,), unknown_status_codes=(), changed=True)


def _fresh_scans(
    before: ShipmentState, scans: Sequence[Scan], shipment: _Shipment
) -> list[tuple[str, Scan]]:
    """The scans never seen before, once each, oldest first, with their checkpoint keys.

    In time order so attempt numbers do not depend on the order Clickpost listed them in;
    scans whose time cannot be trusted come first, in the order Clickpost sent them.
    """
    fresh: dict[str, Scan] = {}
    floor = before.seen_floor
    for scan in scans:
        ckey = checkpoint_key(scan)
        if ckey in fresh or seen_key(ckey) in before.seen:
            continue
        trusted = shipment.time_of(scan).trusted
        if floor is not None and trusted is not None and _epoch(trusted) <= floor:
            continue
        fresh[ckey] = scan
    return sorted(fresh.items(), key=lambda item: _sort_key(item[1], item[0], shipment))


@dataclass(frozen=True, slots=True)
class _ScanStep:
    """What the new scans produced, and the failed deliveries counted so far."""

    events: tuple[ScanAdded | NdrRaised, ...]
    ndr_attempts: int


def _scan_step(
    fresh: list[tuple[str, Scan]],
    ndr: Ndr | None,
    ndr_attempts: int,
    shipment: _Shipment,
    catalogue: StatusCatalogue,
) -> _ScanStep:
    """A scan_added per new scan, and an ndr_raised (numbered) per failed delivery among them."""
    events: list[ScanAdded | NdrRaised] = []
    for ckey, scan in fresh:
        info = _info(scan, catalogue)
        time = shipment.time_of(scan)
        checkpoint: int | str = scan.checkpoint_id if scan.checkpoint_id is not None else ckey
        events.append(
            ScanAdded(
                **shipment.envelope("shipment.scan_added", ckey, time, scan.created_at),
                checkpoint_id=checkpoint,
                tracking_id=scan.tracking_id,
                scan=_status_fields(scan),
                is_terminal=info.terminal,
            )
        )
        if info.failed_delivery:
            ndr_attempts += 1
            events.append(
                NdrRaised(
                    **shipment.envelope("shipment.ndr_raised", ckey, time, scan.created_at),
                    checkpoint_id=checkpoint,
                    attempt=ndr_attempts,
                    ndr_bucket_code=ndr.ndr_bucket_code if ndr else None,
                    ndr_description=_clip(ndr.ndr_description) if ndr else None,
                    location=_clip(scan.location),
                    remark=_clip(scan.remark),
                )
            )
    return _ScanStep(events=tuple(events), ndr_attempts=ndr_attempts)


def _status_source(result: AwbResult, shipment: _Shipment) -> StatusObject | None:
    """The current status as Clickpost reports it: latest_status, else the newest scan."""
    if result.latest_status is not None:
        return result.latest_status
    if not result.scans:
        return None
    return max(result.scans, key=lambda s: _sort_key(s, checkpoint_key(s), shipment))


@dataclass(frozen=True, slots=True)
class _StatusStep:
    """The current status after this diff, when the journey ended, and the news."""

    current: CurrentStatus | None
    terminal_at: datetime | None
    events: tuple[StatusChanged, ...]

    @property
    def terminal(self) -> bool:
        """Whether the journey has ended, as of this diff."""
        return self.current is not None and self.current.is_terminal


def _recorded_at(source: StatusObject | None, result: AwbResult) -> datetime | None:
    """When Clickpost recorded the current status: the created_at of its scan.

    `latest_status` carries a created_at of its own, but in Clickpost's sample it is the
    order's creation, days older than the status; the scan with the same time and code
    says when the status itself was recorded.
    """
    if source is None:
        return None
    if isinstance(source, Scan):
        return source.created_at
    if source.timestamp is None:
        return None
    for scan in result.scans:
        if (
            scan.timestamp == source.timestamp
            and scan.clickpost_status_code == source.clickpost_status_code
        ):
            return scan.created_at
    return None


def _recorded_until(
    before: ShipmentState, fresh: list[tuple[str, Scan]], scans: Sequence[Scan], shipment: _Shipment
) -> datetime | None:
    """The newest record time of any scan seen so far; moved on only by a poll that found
    new scans, so an unchanged shipment is never rewritten for it."""
    if not fresh:
        return before.recorded_until
    times = [t for scan in scans if (t := shipment.recorded(scan.created_at)) is not None]
    if before.recorded_until is not None:
        times.append(before.recorded_until)
    return max(times, default=None)


def _status_step(
    before: ShipmentState,
    source: StatusObject | None,
    recorded_at: datetime | None,
    shipment: _Shipment,
    catalogue: StatusCatalogue,
) -> _StatusStep:
    """Move the current status forward; a change of bucket is a status_changed."""
    unchanged = _StatusStep(current=before.current, terminal_at=before.terminal_at, events=())
    if source is None:
        return unchanged
    previous = before.current
    time = shipment.time_of(source)
    candidate = _current(source, _info(source, catalogue), time, previous)
    if not _moves_forward(previous, candidate):
        return unchanged
    same_bucket = (
        previous is not None
        and previous.clickpost_status_bucket == candidate.clickpost_status_bucket
    )
    terminal_at = before.terminal_at
    if candidate.is_terminal and terminal_at is None:
        terminal_at = shipment.now
    return _StatusStep(
        current=candidate,
        terminal_at=terminal_at,
        events=()
        if same_bucket
        else (_status_changed(previous, candidate, time, recorded_at, shipment),),
    )


def _status_changed(
    previous: CurrentStatus | None,
    candidate: CurrentStatus,
    time: _Time,
    recorded_at: datetime | None,
    shipment: _Shipment,
) -> StatusChanged:
    change = "|".join(
        (
            str(candidate.clickpost_status_bucket),
            str(candidate.clickpost_status_code),
            candidate.timestamp.isoformat() if candidate.timestamp else (time.reported or ""),
        )
    )
    return StatusChanged(
        **shipment.envelope("shipment.status_changed", change, time, recorded_at),
        from_bucket=previous.clickpost_status_bucket if previous else None,
        from_bucket_description=(
            previous.clickpost_status_bucket_description if previous else None
        ),
        to_bucket=candidate.clickpost_status_bucket,
        to_bucket_description=candidate.clickpost_status_bucket_description,
        clickpost_status_code=candidate.clickpost_status_code,
        clickpost_status_description=candidate.clickpost_status_description,
        status=candidate.status,
        location=candidate.location,
        remark=candidate.remark,
        is_terminal=candidate.is_terminal,
    )


@dataclass(frozen=True, slots=True)
class _StuckStep:
    """Clickpost's stuck flag as remembered, the flips so far, and the news."""

    is_stuck: bool | None
    stuck_changes: int
    events: tuple[Stuck | Unstuck, ...]


def _stuck_step(
    before: ShipmentState,
    reported: bool | None,
    current: CurrentStatus | None,
    shipment: _Shipment,
) -> _StuckStep:
    """Transitions of Clickpost's stuck flag; a finished journey is not stuck."""
    terminal = current is not None and current.is_terminal
    if reported is None or reported == before.is_stuck or (terminal and reported):
        return _StuckStep(is_stuck=before.is_stuck, stuck_changes=before.stuck_changes, events=())
    if not reported and before.is_stuck is None:
        # Unknown → not stuck is no news (every other flip is), but it is remembered.
        return _StuckStep(is_stuck=False, stuck_changes=before.stuck_changes, events=())
    event_type, model = ("shipment.stuck", Stuck) if reported else ("shipment.unstuck", Unstuck)
    event = model(
        **shipment.envelope(event_type, str(before.stuck_changes), _DETECTED),
        clickpost_status_code=current.clickpost_status_code if current else None,
        clickpost_status_bucket=current.clickpost_status_bucket if current else None,
        location=current.location if current else None,
    )
    return _StuckStep(is_stuck=reported, stuck_changes=before.stuck_changes + 1, events=(event,))


@dataclass(frozen=True, slots=True)
class _EddStep:
    """The expected delivery as remembered, the changes so far, and the news."""

    edd: Edd | None
    edd_changes: int
    events: tuple[EddChanged, ...]


def _edd_step(
    before: ShipmentState, reported: Edd | None, terminal: bool, shipment: _Shipment
) -> _EddStep:
    """Expected delivery: recorded at first sight, reported when it changes after."""
    if reported is None:
        return _EddStep(edd=before.edd, edd_changes=before.edd_changes, events=())
    first_sight = before.first_polled_at is None
    if reported == before.edd or first_sight or terminal:
        return _EddStep(edd=reported, edd_changes=before.edd_changes, events=())
    digest = hashlib.sha256(reported.model_dump_json().encode()).hexdigest()[:12]
    event = EddChanged(
        **shipment.envelope("shipment.edd_changed", f"{before.edd_changes}|{digest}", _DETECTED),
        previous=before.edd or Edd(),
        current=reported,
    )
    return _EddStep(edd=reported, edd_changes=before.edd_changes + 1, events=(event,))


def _next_state(
    before: ShipmentState,
    shipment: _Shipment,
    fresh: list[tuple[str, Scan]],
    scans: _ScanStep,
    status: _StatusStep,
    stuck: _StuckStep,
    edd: _EddStep,
    recorded_until: datetime | None,
) -> ShipmentState:
    """The state to store: the steps' results over what we knew, the AWB valid again."""
    seen, seen_floor = _remember(before, fresh, shipment)
    return before.model_copy(
        update={
            "order_id": shipment.order_id,
            "courier_name": shipment.courier_name,
            "first_polled_at": before.first_polled_at or shipment.now,
            "current": status.current,
            "seen": seen,
            "seen_floor": seen_floor,
            "scan_count": before.scan_count + len(fresh),
            "ndr_attempts": scans.ndr_attempts,
            "is_stuck": stuck.is_stuck,
            "stuck_changes": stuck.stuck_changes,
            "edd": edd.edd,
            "edd_changes": edd.edd_changes,
            "invalid_since": None,
            "unreadable_since": None,
            "unreadable_reason": None,
            "unreadable_fragment": None,
            "terminal_at": status.terminal_at,
            "recorded_until": recorded_until,
        }
    )


# --- helpers -----------------------------------------------------------------------


def _epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def _sort_key(scan: Scan, key: str, shipment: _Shipment) -> tuple[int, str]:
    return (_epoch(shipment.time_of(scan).trusted), key)


def _clip(text: str | None) -> str | None:
    """Clickpost's text, at most TEXT_LIMIT characters (a marker says how much was cut)."""
    if text is None or len(text) <= TEXT_LIMIT:
        return text
    return f"{text[:TEXT_LIMIT]}… [{len(text) - TEXT_LIMIT} more characters]"


def _status_fields(status: StatusObject) -> StatusFields:
    return StatusFields(
        clickpost_status_code=status.clickpost_status_code,
        clickpost_status_description=_clip(status.clickpost_status_description),
        clickpost_status_bucket=status.clickpost_status_bucket,
        clickpost_status_bucket_description=_clip(status.clickpost_status_bucket_description),
        status=_clip(status.status),
        location=_clip(status.location),
        remark=_clip(status.remark),
    )


def _current(
    status: StatusObject, info: StatusInfo, time: _Time, previous: CurrentStatus | None
) -> CurrentStatus:
    return CurrentStatus(
        clickpost_status_code=status.clickpost_status_code,
        clickpost_status_description=_clip(status.clickpost_status_description) or info.name,
        clickpost_status_bucket=status.clickpost_status_bucket,
        clickpost_status_bucket_description=_clip(status.clickpost_status_bucket_description),
        status=_clip(status.status),
        location=_clip(status.location),
        remark=_clip(status.remark),
        # Only a trusted time is kept: a scan dated 9999 must not outrank every later one.
        timestamp=time.trusted,
        is_terminal=info.terminal,
        clock=time.trusted or (previous.ordered_until if previous else None),
    )


_TIMES: set[str] = {"timestamp", "clock"}


def _same_status(a: CurrentStatus, b: CurrentStatus) -> bool:
    """Whether two statuses say the same thing, whatever their times."""
    return a.model_dump(exclude=_TIMES) == b.model_dump(exclude=_TIMES)


def _moves_forward(current: CurrentStatus | None, candidate: CurrentStatus) -> bool:
    """Whether `candidate` may replace `current`: newer in time, never out of a terminal."""
    if current is None:
        return True
    if current.is_terminal and not candidate.is_terminal:
        return False
    until = current.ordered_until
    if candidate.timestamp is not None and until is not None:
        return candidate.timestamp > until
    # A time that is absent, unreadable or too far ahead cannot order the two: the status
    # that arrived now replaces the one before it if it says something different.
    return not _same_status(current, candidate)


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


def _info(status: StatusObject, catalogue: StatusCatalogue) -> StatusInfo:
    code = status.clickpost_status_code
    return catalogue.lookup(code if code is not None else 0, status.clickpost_status_description)


def _unknown_codes(statuses: Sequence[StatusObject], catalogue: StatusCatalogue) -> tuple[int, ...]:
    """The codes among `statuses` that the catalogue does not know, each once, ascending."""
    return tuple(
        sorted(
            {
                status.clickpost_status_code
                for status in statuses
                if status.clickpost_status_code is not None and not _info(status, catalogue).known
            }
        )
    )


def _remember(
    before: ShipmentState, ordered: list[tuple[str, Scan]], shipment: _Shipment
) -> tuple[dict[str, int], int | None]:
    """Add the new checkpoints to `seen`, evicting the oldest past MAX_SEEN.

    A scan is remembered at its trusted time (0 when it has none), so a scan dated in
    the future can never raise the watermark over scans still to come.
    """
    if not ordered:
        return before.seen, before.seen_floor
    seen = dict(before.seen)
    for ckey, scan in ordered:
        seen[seen_key(ckey)] = _epoch(shipment.time_of(scan).trusted)
    floor = before.seen_floor
    if len(seen) > MAX_SEEN:
        by_age = sorted(seen.items(), key=lambda item: (item[1], item[0]))
        evicted = by_age[: len(seen) - MAX_SEEN]
        floor = max([floor or 0, *(epoch for _, epoch in evicted)])
        for ckey, _ in evicted:
            del seen[ckey]
    return seen, floor
