"""Find the shipments due this minute and enqueue the fewest Clickpost calls for them.

While change capture is healthy (the updated-order feed keeps up and lists what moves),
the dispatcher polls only the reconciliation sweep, a slower pass over the same due
keys; when the feed fails or falls silent while shipments are tracked, it polls every
class at its full cadence again, by itself, and says why. Switching rewrites nothing.
In the sweep, some of the due shipments it does not poll are sent as check-only visits
(no Clickpost call), so that a shipment that sits is found stuck or late in hours, not
a day later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from trackwatch.logic.batching import plan_calls
from trackwatch.logic.cadence import CadenceClass, class_due_keys_at, epoch_minute
from trackwatch.logic.change_capture import (
    CadenceMode,
    FeedHealth,
    ModeDecision,
    cadence_mode,
    check_sweep,
    feed_health,
    in_check_visit,
    in_sweep,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import CHECK_ONLY, PollRequest, ScheduleTick
from trackwatch.models.policy import Cadence, ChangeFeedPolicy, Sweep
from trackwatch.models.tracking import TrackCall
from trackwatch.ports import FeedStateStore, PollQueueWriter, ShipmentStore


@dataclass
class DispatchSummary:
    """One dispatch, as one log line."""

    minute: int
    due: int = 0
    calls: int = 0
    messages: int = 0
    #: "full" or "sweep"; "all" for a tick that polls every active shipment.
    mode: str = CadenceMode.FULL.value
    #: Why this mode: the change feed's health, in a sentence.
    reason: str = ""
    #: Due shipments the sweep leaves for a later cycle (the visited among them).
    deferred: int = 0
    #: Deferred shipments sent as check-only visits (the delay checks, no Clickpost call).
    checks: int = 0
    #: PollQueue messages that carry them (`messages` counts the polls' alone).
    check_messages: int = 0
    #: The change feed's health as judged this minute (None for a tick of every shipment).
    health: str | None = None
    #: Whether the feed is enabled but the full cadence is in force (the fallback).
    fallback: bool = False

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "minute": self.minute,
            "due": self.due,
            "calls": self.calls,
            "messages": self.messages,
            "mode": self.mode,
            "reason": self.reason,
            "deferred": self.deferred,
            "checks": self.checks,
            "check_messages": self.check_messages,
            "health": self.health,
            "fallback": self.fallback,
        }


def pack(calls: list[TrackCall], per_message: int, reason: str, now: datetime) -> list[PollRequest]:
    """Calls packed into PollQueue messages of at most `per_message` calls."""
    return [
        PollRequest(calls=tuple(calls[i : i + per_message]), reason=reason, requested_at=now)
        for i in range(0, len(calls), per_message)
    ]


def enqueue_polls(
    keys: list[ShipmentKey],
    queue: PollQueueWriter,
    per_message: int,
    reason: str,
    now: datetime,
) -> tuple[int, int]:
    """The one path every poll takes into PollQueue; returns (calls, messages)."""
    calls = plan_calls(keys)
    requests = pack(calls, per_message, reason, now)
    if requests:
        queue.send(requests)
    return len(calls), len(requests)


class DispatchService:
    """Finds the shipments due at a scheduled minute and enqueues their polls."""

    def __init__(
        self,
        store: ShipmentStore,
        queue: PollQueueWriter,
        cadence: Cadence,
        clock: Callable[[], datetime],
        calls_per_message: int = 10,
        *,
        feed: ChangeFeedPolicy | None = None,
        sweep: Sweep | None = None,
        feed_state: FeedStateStore | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._cadence = cadence
        self._clock = clock
        self._per_message = calls_per_message
        #: Without a feed (or its state), the full cadence always.
        self._feed = feed or ChangeFeedPolicy()
        self._sweep = sweep or Sweep()
        self._feed_state = feed_state
        if self._feed.change_feed_enabled:
            check_sweep(cadence, self._sweep)

    def mode(self, now: datetime) -> ModeDecision:
        """The cadence in force at `now`, from the change feed's recorded health."""
        enabled = self._feed.change_feed_enabled and self._feed_state is not None
        state = self._feed_state.load() if enabled and self._feed_state is not None else None
        health = feed_health(state, now, self._feed) if enabled else FeedHealth.DISABLED
        # Only a silent feed needs to know whether anything is tracked: one key's read.
        active = health is FeedHealth.SILENT and self._store.has_active()
        return cadence_mode(health, state, now, shipments_active=active)

    def dispatch(self, tick: ScheduleTick) -> DispatchSummary:
        """Enqueue polls for every shipment due at the tick's minute (or every active one)."""
        scheduled_at = tick.at(self._clock())
        minute = epoch_minute(scheduled_at)
        summary = DispatchSummary(minute=minute)
        visits: list[ShipmentKey] = []
        if tick.scope == "all":
            keys = self._store.active()
            summary.mode, summary.reason = "all", "every active shipment"
        else:
            decision = self.mode(scheduled_at)
            summary.mode, summary.reason = decision.mode.value, decision.reason
            summary.health = decision.health.value
            summary.fallback = (
                decision.mode is CadenceMode.FULL and decision.health is not FeedHealth.DISABLED
            )
            keys = self._due(minute, decision.mode, summary, visits)
        summary.due = len(keys)
        summary.calls, summary.messages = enqueue_polls(
            keys, self._queue, self._per_message, "schedule", scheduled_at
        )
        summary.checks = len(visits)
        _, summary.check_messages = enqueue_polls(
            visits, self._queue, self._per_message, CHECK_ONLY, scheduled_at
        )
        return summary

    def _due(
        self,
        minute: int,
        mode: CadenceMode,
        summary: DispatchSummary,
        visits: list[ShipmentKey],
    ) -> list[ShipmentKey]:
        """The shipments of every class due at `minute`; in the sweep, its share of them,
        and the deferred ones whose check-only visit is due go to `visits`."""
        keys: list[ShipmentKey] = []
        for klass in CadenceClass:
            found = self._store.due(class_due_keys_at(klass, minute, self._cadence))
            if mode is CadenceMode.SWEEP:
                kept: list[ShipmentKey] = []
                for key in found:
                    if in_sweep(key.pk, klass, minute, self._cadence, self._sweep):
                        kept.append(key)
                    elif in_check_visit(key.pk, klass, minute, self._cadence, self._sweep):
                        visits.append(key)
                summary.deferred += len(found) - len(kept)
                found = kept
            keys.extend(found)
        return keys
