"""Find the shipments due this minute and enqueue the fewest Clickpost calls for them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from trackwatch.logic.batching import plan_calls
from trackwatch.logic.cadence import due_keys_at, epoch_minute
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest, ScheduleTick
from trackwatch.models.policy import Cadence
from trackwatch.models.tracking import TrackCall
from trackwatch.ports import PollQueueWriter, ShipmentStore


@dataclass
class DispatchSummary:
    """One dispatch, as one log line."""

    minute: int
    due: int = 0
    calls: int = 0
    messages: int = 0

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "minute": self.minute,
            "due": self.due,
            "calls": self.calls,
            "messages": self.messages,
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
    ) -> None:
        self._store = store
        self._queue = queue
        self._cadence = cadence
        self._clock = clock
        self._per_message = calls_per_message

    def dispatch(self, tick: ScheduleTick) -> DispatchSummary:
        """Enqueue polls for every shipment due at the tick's minute (or every active one)."""
        scheduled_at = tick.at(self._clock())
        minute = epoch_minute(scheduled_at)
        summary = DispatchSummary(minute=minute)
        keys = (
            self._store.active()
            if tick.scope == "all"
            else self._store.due(due_keys_at(minute, self._cadence))
        )
        summary.due = len(keys)
        summary.calls, summary.messages = enqueue_polls(
            keys, self._queue, self._per_message, "schedule", scheduled_at
        )
        return summary
