"""Change capture: which windows the feed poller reads, whether the feed can be trusted,
which shipments the reconciliation sweep polls (and which of the others it visits for
their delay checks alone), and which hints are worth a poll.

Pure: times come in as arguments, nothing is read or written here.

The sweep rewrites nothing. A shipment's due key is ``<class>#<slot>#<shard>`` with
its slot taken modulo the class's full period P; the sweep's period for the class is
k·P. At minute m the dispatcher reads the same due keys as always and keeps a shipment
only when its *phase* (another stable hash of its key, modulo k) equals the cycle
number ``(m // P) mod k``: each shipment then comes round once every k·P minutes, and
the two modes differ only in that filter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from trackwatch.errors import ConfigurationError
from trackwatch.logic.cadence import CadenceClass, period_minutes
from trackwatch.models.change_feed import MAX_WINDOW_SECONDS, FeedState, FeedWindow
from trackwatch.models.hints import ChangeHint
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.policy import Cadence, ChangeFeedPolicy, Sweep
from trackwatch.models.record import ShipmentRecord

# --- the feed's windows -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """The windows one run reads, and how many older ones it gave up on."""

    windows: tuple[FeedWindow, ...]
    #: Windows between the high-water mark and the catch-up limit that will never be read.
    skipped: int = 0


def plan_windows(
    caught_up_to: datetime | None, now: datetime, policy: ChangeFeedPolicy
) -> WindowPlan:
    """Consecutive windows from the high-water mark (less the overlap) towards `now`.

    The first run starts one period (and the overlap) back. After an outage the run reads
    at most `change_feed_max_windows_per_run` windows and the next run goes on from there;
    a gap older than `change_feed_max_catch_up_hours` is skipped (the sweep covers it).
    """
    width = min(policy.window.total_seconds(), MAX_WINDOW_SECONDS)
    earliest = now - policy.max_catch_up
    if caught_up_to is None:
        start = now - policy.period - policy.overlap
    else:
        start = min(caught_up_to, now) - policy.overlap
    skipped = 0
    if start < earliest:
        skipped = int(-(-(earliest - start).total_seconds() // width))
        start = earliest
    windows: list[FeedWindow] = []
    while start < now and len(windows) < policy.change_feed_max_windows_per_run:
        end = min(start + timedelta(seconds=width), now)
        windows.append(FeedWindow(start=start, end=end))
        start = end
    return WindowPlan(tuple(windows), skipped)


# --- is the feed to be trusted -----------------------------------------------------


class FeedHealth(StrEnum):
    """What the dispatcher makes of the feed's state."""

    DISABLED = "disabled"
    NEVER_RAN = "never_ran"
    #: The high-water mark is too far behind: the feed fails (or its poller does not run).
    STALE = "stale"
    #: Nothing listed for too long: fine if nothing is being tracked, suspicious otherwise.
    SILENT = "silent"
    HEALTHY = "healthy"


class CadenceMode(StrEnum):
    """How the dispatcher polls: every class at its full cadence, or the sweep."""

    FULL = "full"
    SWEEP = "sweep"


@dataclass(frozen=True, slots=True)
class ModeDecision:
    """The mode, the feed's health behind it, and a sentence saying why."""

    mode: CadenceMode
    health: FeedHealth
    reason: str


def feed_health(state: FeedState | None, now: datetime, policy: ChangeFeedPolicy) -> FeedHealth:
    """The feed's health at `now`, from what its poller last recorded."""
    if not policy.change_feed_enabled:
        return FeedHealth.DISABLED
    if state is None or state.caught_up_to is None:
        return FeedHealth.NEVER_RAN
    if now - state.caught_up_to > policy.stale:
        return FeedHealth.STALE
    if state.last_entry_at is None or now - state.last_entry_at > policy.silence:
        return FeedHealth.SILENT
    return FeedHealth.HEALTHY


def cadence_mode(
    health: FeedHealth,
    state: FeedState | None,
    now: datetime,
    *,
    shipments_active: bool,
) -> ModeDecision:
    """The sweep while the feed is healthy (or silent with nothing to track); else the
    full cadence, with the reason."""
    if health is FeedHealth.HEALTHY:
        return ModeDecision(CadenceMode.SWEEP, health, "the change feed is healthy")
    if health is FeedHealth.SILENT and not shipments_active:
        return ModeDecision(CadenceMode.SWEEP, health, "nothing is tracked")
    reason = {
        FeedHealth.DISABLED: "the change feed is disabled",
        FeedHealth.NEVER_RAN: "the change feed has not run yet",
        FeedHealth.STALE: "the change feed is {behind} behind{error}",
        FeedHealth.SILENT: "the change feed listed nothing for {quiet}",
    }[health]
    behind = quiet = "a while"
    if state is not None and state.caught_up_to is not None:
        behind = _minutes(now - state.caught_up_to)
    if state is not None and state.last_entry_at is not None:
        quiet = _minutes(now - state.last_entry_at)
    error = f" (last error: {state.last_error})" if state and state.last_error else ""
    return ModeDecision(
        CadenceMode.FULL, health, reason.format(behind=behind, quiet=quiet, error=error)
    )


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


# --- the sweep ---------------------------------------------------------------------------


def sweep_minutes(klass: CadenceClass, sweep: Sweep) -> int:
    """The sweep's period of a class, in minutes."""
    return {
        CadenceClass.OUT_FOR_DELIVERY: sweep.sweep_out_for_delivery_minutes,
        CadenceClass.TRANSIT: sweep.sweep_transit_minutes,
        CadenceClass.NEW: sweep.sweep_new_minutes,
        CadenceClass.GRACE: sweep.sweep_grace_minutes,
        CadenceClass.INVALID: sweep.sweep_invalid_minutes,
    }[klass]


def sweep_factor(klass: CadenceClass, cadence: Cadence, sweep: Sweep) -> int:
    """How many full cycles of its class one sweep period spans (1: the sweep is the cadence)."""
    period = period_minutes(klass, cadence)
    minutes = sweep_minutes(klass, sweep)
    if minutes % period:
        raise ConfigurationError(
            f"SWEEP_{_NAMES[klass]}_MINUTES ({minutes}) must be a whole multiple of "
            f"CADENCE_{_NAMES[klass]}_MINUTES ({period})"
        )
    return minutes // period


_NAMES = {
    CadenceClass.OUT_FOR_DELIVERY: "OUT_FOR_DELIVERY",
    CadenceClass.TRANSIT: "TRANSIT",
    CadenceClass.NEW: "NEW",
    CadenceClass.GRACE: "GRACE",
    CadenceClass.INVALID: "INVALID",
}


def check_sweep(cadence: Cadence, sweep: Sweep) -> None:
    """ConfigurationError unless every sweep period is a whole multiple of its cadence."""
    for klass in CadenceClass:
        sweep_factor(klass, cadence, sweep)


def sweep_phase(pk: str, factor: int) -> int:
    """A shipment's place in its class's sweep: a stable hash of its key, apart from the
    one that chose its slot and shard."""
    digest = hashlib.sha256(f"sweep#{pk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % factor


def in_sweep(pk: str, klass: CadenceClass, minute: int, cadence: Cadence, sweep: Sweep) -> bool:
    """Whether the sweep polls this due shipment at epoch minute `minute`."""
    factor = sweep_factor(klass, cadence, sweep)
    if factor == 1:
        return True
    cycle = minute // period_minutes(klass, cadence)
    return sweep_phase(pk, factor) == cycle % factor


# --- check-only visits ------------------------------------------------------------------
#
# The sweep leaves a shipment that does not move alone for up to a day, and the delay
# checks run when a shipment is visited. The dispatcher already reads every due key at the
# full cadence (the sweep only filters), so the shipments it defers are in hand at no extra
# read: some of them become check-only visits, each on the cycles where
# ``(cycle - sweep phase) mod c == 0``, c full periods apart. Its sweep poll falls on one
# of those cycles when c divides k, and takes that visit's place.


def check_factor(klass: CadenceClass, cadence: Cadence, sweep: Sweep) -> int:
    """Full cycles of its class between two check-only visits of a swept shipment; 0 when
    the class gets none: a terminal class, checks off, or a sweep as frequent as the visits."""
    if sweep.delay_check_minutes == 0 or klass is CadenceClass.GRACE:
        return 0
    # Never more often than the class's cadence: the due keys come round no faster, and the
    # full cadence (the fallback) checks at that pace too.
    every = max(1, sweep.delay_check_minutes // period_minutes(klass, cadence))
    if sweep_factor(klass, cadence, sweep) <= every:
        return 0
    return every


def in_check_visit(
    pk: str, klass: CadenceClass, minute: int, cadence: Cadence, sweep: Sweep
) -> bool:
    """Whether a due shipment the sweep does not poll at epoch minute `minute` is visited
    for its delay checks alone."""
    every = check_factor(klass, cadence, sweep)
    if every == 0:
        return False
    cycle = minute // period_minutes(klass, cadence)
    phase = sweep_phase(pk, sweep_factor(klass, cadence, sweep))
    return (cycle - phase) % every == 0


# --- hints -------------------------------------------------------------------------------


def coalesce(hints: Iterable[ChangeHint]) -> dict[ShipmentKey, ChangeHint]:
    """One hint per waybill. The one kept says the newest thing any of them said: a hint
    without a record time (it cannot be ruled out) wins over any with one."""
    merged: dict[ShipmentKey, ChangeHint] = {}
    for hint in hints:
        key = hint.key
        kept = merged.get(key)
        if kept is None or _newer(hint, kept):
            merged[key] = hint
    return merged


def _newer(hint: ChangeHint, kept: ChangeHint) -> bool:
    if kept.recorded_at is None:
        return False
    return hint.recorded_at is None or hint.recorded_at > kept.recorded_at


def worth_polling(hint: ChangeHint, record: ShipmentRecord) -> bool:
    """Whether a hint for a tracked shipment may bring something the shipment lacks: not
    when every scan Clickpost recorded up to the hint's record time has been seen."""
    if not record.active:
        return False
    seen_until = record.state.recorded_until
    return hint.recorded_at is None or seen_until is None or hint.recorded_at > seen_until
