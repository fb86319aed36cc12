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
  engine again on the same input yields the same ids (or nothing at all);
- given the delay checks of the shipment (logic/delays.py), a shipment that has not
  moved for longer than its status allows is stuck (`no_scan_for`), as it is when
  Clickpost flags it (`clickpost_flag`); an open stuck episode ends, once, when it moves
  again (or Clickpost clears the flag it was raised for); a shipment still on its way
  when its promised day ends is `sla_breached`, and one whose carrier usually needs
  longer than it has left is `delay_predicted`, each once per promise. `recheck` asks
  the same time-based questions of a stored state without a Clickpost answer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypedDict

from trackwatch.logic.catalogue import StatusCatalogue, StatusInfo
from trackwatch.logic.delays import Dwell, ShipmentDelays
from trackwatch.models.clickpost import AwbResult, Ndr, Scan, StatusObject
from trackwatch.models.events import (
    DelayPredicted,
    Edd,
    EddChanged,
    Invalid,
    NdrRaised,
    ScanAdded,
    ShipmentEvent,
    SlaBreached,
    StatusChanged,
    StatusFields,
    Stuck,
    StuckReason,
    ThresholdSource,
    TimeQuality,
    Unstuck,
    UnstuckReason,
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


def scans_digest(checkpoint_ids: Sequence[object]) -> str | None:
    """The checkpoints of an answer, in any order, as 16 hex characters; None when a scan
    has no checkpoint_id (its identity is its content: the full diff decides)."""
    ids = []
    for checkpoint_id in checkpoint_ids:
        if checkpoint_id is None or checkpoint_id == "":
            return None
        ids.append(str(checkpoint_id))
    ids.sort()
    # repr() of a list of strings is unambiguous (each is quoted and escaped).
    return hashlib.blake2b(repr(ids).encode(), digest_size=8).hexdigest()


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
    delays: ShipmentDelays | None = None,
) -> DiffOutcome:
    """Compare what we knew with what Clickpost says now (and, given `delays`, how late the
    shipment is)."""
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

    digest = scans_digest(result.checkpoint_ids)
    # The steady poll: the same checkpoints as the answer the state was written from, so
    # none is new, and no scan is built or digested.
    steady = digest is not None and digest == before.scans_digest
    if steady and _quiet(before, result, shipment):
        source = result.latest_status
        unknown = _unknown_codes([source] if source else [], catalogue)
        if delays is not None:
            # Nothing Clickpost said moves the shipment; time alone still may (dwell, promise).
            return replace(recheck(before, key, now, delays), unknown_status_codes=unknown)
        return DiffOutcome(state=before, events=(), unknown_status_codes=unknown, changed=False)
    fresh = [] if steady else _fresh_scans(before, result.scans, shipment)
    source = _status_source(result, shipment)
    scans = _scan_step(fresh, extra.ndr, before.ndr_attempts, shipment, catalogue)
    status = _status_step(before, source, lambda: _recorded_at(source, result), shipment, catalogue)
    motion = _motion_step(before, fresh, status, shipment)
    dwell = _dwell_of(delays, before, motion, status, shipment)
    stuck = _stuck_step(before, extra.is_stuck, status.current, motion.moved, dwell, shipment)
    edd = _edd_step(before, _edd_of(result, before.edd), status.terminal, shipment)
    recorded = _recorded_until(before, fresh, result, shipment)
    after = _next_state(before, shipment, fresh, scans, status, stuck, edd, motion, recorded)
    # Reported unknown: the codes of every status this diff looked up in the catalogue.
    looked_up = [scan for _, scan in fresh] + ([source] if source is not None else [])
    changed = after != before
    if changed and digest != before.scans_digest:
        # Remembered only with a write that happens anyway: a new digest alone is no news.
        after = after.model_copy(update={"scans_digest": digest})
    promise = _promise_step(after, delays, shipment)
    return DiffOutcome(
        state=promise.state,
        events=(*scans.events, *status.events, *stuck.events, *edd.events, *promise.events),
        unknown_status_codes=_unknown_codes(looked_up, catalogue),
        changed=changed or promise.state is not after,
    )


def _quiet(before: ShipmentState, result: AwbResult, shipment: _Shipment) -> bool:
    """Whether an answer with no new scan leaves every step below unchanged: a shortcut
    for the common poll, taken only when sure (when not, the steps decide)."""
    current, latest, extra = before.current, result.latest_status, result.additional
    if current is None or latest is None or before.first_polled_at is None:
        return False
    until, trusted = current.ordered_until, shipment.time_of(latest).trusted
    reported = extra.is_stuck
    return (
        # the status cannot move (_status_step)
        until is not None
        and trusted is not None
        and trusted <= until
        # nor the stuck flag (_stuck_step)
        and (reported is None or reported == before.is_stuck or (current.is_terminal and reported))
        # nor the expected delivery (_edd_step)
        and _edd_of(result, before.edd) in (None, before.edd)
        # nor anything else _next_state sets
        and shipment.order_id == before.order_id
        and shipment.courier_name == before.courier_name
        and before.invalid_since is None
        and before.unreadable_since is None
        and before.unreadable_reason is None
        and before.unreadable_fragment is None
    )


def recheck(
    state: ShipmentState, key: ShipmentKey, now: datetime, delays: ShipmentDelays
) -> DiffOutcome:
    """The time-based checks alone, for a visit without a Clickpost answer: has the stored
    shipment sat too long, or passed (or is it bound to miss) its promise, by now?"""
    shipment = _Shipment(
        key=key,
        order_id=state.order_id,
        courier_name=state.courier_name,
        now=now,
        trusted_until=now,
    )
    dwell = delays.dwell(state, now)
    stuck = _stuck_step(state, None, state.current, False, dwell, shipment)
    after = state.model_copy(
        update={
            "is_stuck": stuck.is_stuck,
            "stuck_changes": stuck.stuck_changes,
            "stuck_reason": stuck.reason,
        }
    )
    promise = _promise_step(after, delays, shipment)
    return DiffOutcome(
        state=promise.state,
        events=(*stuck.events, *promise.events),
        unknown_status_codes=(),
        changed=promise.state != state,
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
    before: ShipmentState, fresh: list[tuple[str, Scan]], result: AwbResult, shipment: _Shipment
) -> datetime | None:
    """The newest record time of any scan seen so far; moved on only by a poll that found
    new scans, so an unchanged shipment is never rewritten for it (nor its scans built)."""
    if not fresh:
        return before.recorded_until
    times = [t for scan in result.scans if (t := shipment.recorded(scan.created_at)) is not None]
    if before.recorded_until is not None:
        times.append(before.recorded_until)
    return max(times, default=None)


def _status_step(
    before: ShipmentState,
    source: StatusObject | None,
    recorded_at: Callable[[], datetime | None],
    shipment: _Shipment,
    catalogue: StatusCatalogue,
) -> _StatusStep:
    """Move the current status forward; a change of bucket is a status_changed."""
    unchanged = _StatusStep(current=before.current, terminal_at=before.terminal_at, events=())
    if source is None:
        return unchanged
    previous = before.current
    time = shipment.time_of(source)
    until = previous.ordered_until if previous is not None else None
    if until is not None and time.trusted is not None and time.trusted <= until:
        # Not newer than what we know: it cannot move the status (see _moves_forward).
        return unchanged
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
        else (_status_changed(previous, candidate, time, recorded_at(), shipment),),
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
class _Motion:
    """When the shipment last moved, when its status began, its first scan, and whether
    this diff moved it."""

    moved_at: datetime | None
    status_since: datetime | None
    first_scan_at: datetime | None
    moved: bool


def _motion_step(
    before: ShipmentState, fresh: list[tuple[str, Scan]], status: _StatusStep, shipment: _Shipment
) -> _Motion:
    """Movement: a new scan or status newer than the last one (a scan whose time cannot be
    used moves the shipment when it is noticed). A late scan dated before it does not."""
    times = [shipment.time_of(scan).trusted or shipment.now for _, scan in fresh]
    current = status.current
    new_status = current is not None and current != before.current
    if new_status and current is not None:
        times.append(current.timestamp or shipment.now)
    moved_at = max([t for t in (before.moved_at, *times) if t is not None], default=None)
    trusted = [t for _, scan in fresh if (t := shipment.time_of(scan).trusted) is not None]
    first_scan_at = min(
        [t for t in (before.first_scan_at, *trusted) if t is not None], default=None
    )
    status_since = before.status_since
    code = current.clickpost_status_code if current is not None else None
    previous = before.current.clickpost_status_code if before.current is not None else None
    if current is not None and (code != previous or status_since is None):
        # The status began with its first scan among the new ones, else when it was seen.
        entered = [
            t
            for _, scan in fresh
            if scan.clickpost_status_code == code
            and (t := shipment.time_of(scan).trusted) is not None
        ]
        status_since = min(entered, default=None) or current.timestamp or shipment.now
    return _Motion(
        moved_at=moved_at,
        status_since=status_since,
        first_scan_at=first_scan_at,
        moved=moved_at is not None and moved_at != before.moved_at,
    )


def _dwell_of(
    delays: ShipmentDelays | None,
    before: ShipmentState,
    motion: _Motion,
    status: _StatusStep,
    shipment: _Shipment,
) -> Dwell | None:
    """How long the shipment has gone without moving, as of this diff (None: not checked)."""
    if delays is None:
        return None
    # States stored before moved_at existed: the newest status time stands in for it.
    since = motion.moved_at or (status.current.ordered_until if status.current else None)
    state = before.model_copy(
        update={
            "current": status.current,
            "moved_at": since,
            "first_polled_at": before.first_polled_at or shipment.now,
            "invalid_since": None,
        }
    )
    return delays.dwell(state, shipment.now)


@dataclass(frozen=True, slots=True)
class _StuckStep:
    """Clickpost's stuck flag as remembered, the episodes so far, and the news."""

    is_stuck: bool | None
    #: Every stuck and unstuck counts one: an episode is open while this is odd.
    stuck_changes: int
    reason: StuckReason | None
    events: tuple[Stuck | Unstuck, ...]


def _stuck_step(
    before: ShipmentState,
    reported: bool | None,
    current: CurrentStatus | None,
    moved: bool,
    dwell: Dwell | None,
    shipment: _Shipment,
) -> _StuckStep:
    """Stuck episodes, whatever opened them. One opens when Clickpost's flag turns true or
    the shipment sits longer than its status allows; it closes, once, when the shipment
    moves (or its journey ends), or when Clickpost clears the flag it was opened for and
    the shipment has not sat too long meanwhile. A finished journey is never stuck."""
    terminal = current is not None and current.is_terminal
    # A finished journey's flag is not worth a write.
    flag = before.is_stuck if reported is None or (terminal and reported) else reported
    changes = before.stuck_changes
    code = current.clickpost_status_code if current else None
    bucket = current.clickpost_status_bucket if current else None
    location = current.location if current else None

    def open_(reason: StuckReason) -> _StuckStep:
        stuck = Stuck(
            **shipment.envelope("shipment.stuck", str(changes), _DETECTED),
            clickpost_status_code=code,
            clickpost_status_bucket=bucket,
            location=location,
            reason=reason,
            **_dwell_fields(dwell),
        )
        return _StuckStep(flag, changes + 1, reason, (stuck,))

    def close(reason: UnstuckReason) -> _StuckStep:
        unstuck = Unstuck(
            **shipment.envelope("shipment.unstuck", str(changes), _DETECTED),
            clickpost_status_code=code,
            clickpost_status_bucket=bucket,
            location=location,
            reason=reason,
        )
        return _StuckStep(flag, changes + 1, None, (unstuck,))

    if before.stuck_open:
        # States stored before stuck_reason existed only had Clickpost's flag.
        opened_for = before.stuck_reason or "clickpost_flag"
        if moved or terminal:
            return close("moved")
        if opened_for == "clickpost_flag" and reported is False and before.is_stuck:
            if dwell is not None and dwell.over:
                # Clickpost let go, but the shipment still sits: stuck, now for that reason.
                return _StuckStep(flag, changes, "no_scan_for", ())
            return close("clickpost_flag")
        return _StuckStep(flag, changes, opened_for, ())
    if not terminal:
        if reported and not before.is_stuck:
            return open_("clickpost_flag")
        if dwell is not None and dwell.over:
            return open_("no_scan_for")
    # A flag seen false for the first time is no news, but it is remembered.
    return _StuckStep(flag, changes, None, ())


class _DwellFields(TypedDict, total=False):
    """What a stuck event says about the dwell, when it was measured."""

    no_scan_for_hours: float
    threshold_hours: float
    threshold_source: ThresholdSource
    last_scan_at: datetime


def _dwell_fields(dwell: Dwell | None) -> _DwellFields:
    if dwell is None:
        return _DwellFields()
    return _DwellFields(
        no_scan_for_hours=round(dwell.hours, 1),
        threshold_hours=round(dwell.threshold.hours, 1),
        threshold_source=dwell.threshold.source,
        last_scan_at=dwell.since,
    )


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
    if reported is before.edd or reported == before.edd or first_sight or terminal:
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
    motion: _Motion,
    recorded_until: datetime | None,
) -> ShipmentState:
    """The state to store: the steps' results over what we knew, the AWB valid again."""
    seen, seen_floor = _remember(before, fresh, shipment)
    update = {
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
        "stuck_reason": stuck.reason,
        "moved_at": motion.moved_at,
        "status_since": motion.status_since,
        "first_scan_at": motion.first_scan_at,
        "edd": edd.edd,
        "edd_changes": edd.edd_changes,
        "invalid_since": None,
        "unreadable_since": None,
        "unreadable_reason": None,
        "unreadable_fragment": None,
        "terminal_at": status.terminal_at,
        "recorded_until": recorded_until,
    }
    values = before.__dict__
    if all(value is values[name] or value == values[name] for name, value in update.items()):
        # The steady poll: nothing moved, so no copy to build and compare.
        return before
    return before.model_copy(update=update)


@dataclass(frozen=True, slots=True)
class _PromiseStep:
    """The state with the promises reported so far, and the news."""

    state: ShipmentState
    events: tuple[SlaBreached | DelayPredicted, ...]


def _promise_step(
    state: ShipmentState, delays: ShipmentDelays | None, shipment: _Shipment
) -> _PromiseStep:
    """A shipment still on its way when its promised day has ended breaches it; one whose
    carrier usually needs longer than it has left is predicted late. Each once per promise
    (the event id is the promise's date)."""
    if delays is None or state.is_terminal or state.invalid_since is not None:
        return _PromiseStep(state=state, events=())
    promise = delays.promise(state)
    if promise is None or state.breached_promise == promise.date:
        return _PromiseStep(state=state, events=())
    current = state.current
    code = current.clickpost_status_code if current else None
    bucket = current.clickpost_status_bucket if current else None
    location = current.location if current else None
    change = promise.date.isoformat()
    if delays.missed(promise, shipment.now):
        breached = SlaBreached(
            **shipment.envelope("shipment.sla_breached", change, _DETECTED),
            promised_delivery_date=promise.date,
            promise_source=promise.source,
            clickpost_status_code=code,
            clickpost_status_bucket=bucket,
            location=location,
        )
        after = state.model_copy(update={"breached_promise": promise.date})
        return _PromiseStep(state=after, events=(breached,))
    if state.predicted_promise == promise.date:
        return _PromiseStep(state=state, events=())
    prediction = delays.predict(state, shipment.now)
    if prediction is None or prediction.delivery_date <= promise.date:
        return _PromiseStep(state=state, events=())
    predicted = DelayPredicted(
        **shipment.envelope("shipment.delay_predicted", change, _DETECTED),
        promised_delivery_date=promise.date,
        promise_source=promise.source,
        predicted_delivery_date=prediction.delivery_date,
        expected_remaining_hours=round(prediction.remaining_hours, 1),
        status_since=state.status_since,
        clickpost_status_code=code,
        clickpost_status_bucket=bucket,
        location=location,
    )
    after = state.model_copy(update={"predicted_promise": promise.date})
    return _PromiseStep(state=after, events=(predicted,))


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


def _edd_of(result: AwbResult, known: Edd | None) -> Edd | None:
    """The expected delivery Clickpost reports; `known` itself when it reports the same."""
    extra = result.additional
    sla = extra.edd
    fields = (
        extra.courier_partner_edd,
        sla.min_sla if sla else None,
        sla.max_sla if sla else None,
        sla.exact_sla if sla else None,
    )
    if fields == (None, None, None, None):
        return None
    if known is not None and fields == (
        known.courier_partner_edd,
        known.min_sla,
        known.max_sla,
        known.exact_sla,
    ):
        return known
    courier_partner_edd, min_sla, max_sla, exact_sla = fields
    snapshot = Edd(
        courier_partner_edd=courier_partner_edd,
        min_sla=min_sla,
        max_sla=max_sla,
        exact_sla=exact_sla,
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
