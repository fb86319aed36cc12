"""Find the shipments due this minute and enqueue the fewest Clickpost calls for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trackwatch.config import CadenceSettings
from trackwatch.logic.batching import TrackCall, plan_calls
from trackwatch.logic.cadence import due_keys_at, epoch_minute
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest
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


def dispatch(
    scheduled_at: datetime,
    store: ShipmentStore,
    queue: PollQueueWriter,
    cadence: CadenceSettings,
    per_message: int,
    scope: str = "due",
) -> DispatchSummary:
    """Enqueue polls for every shipment due at the scheduled minute (or every active one)."""
    minute = epoch_minute(scheduled_at)
    summary = DispatchSummary(minute=minute)
    keys = store.active() if scope == "all" else store.due(due_keys_at(minute, cadence))
    summary.due = len(keys)
    summary.calls, summary.messages = enqueue_polls(
        keys, queue, per_message, "schedule", scheduled_at
    )
    return summary
