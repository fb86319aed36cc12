"""Read Clickpost's updated-order feed forward from the high-water mark; hint what it lists."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from trackwatch.errors import ClickpostError
from trackwatch.logic.change_capture import coalesce, plan_windows
from trackwatch.models.change_feed import FeedRead, FeedState
from trackwatch.models.hints import ChangeHint, batches
from trackwatch.models.policy import ChangeFeedPolicy
from trackwatch.ports import ChangeFeedFactory, FeedStateStore, HintSink


@dataclass
class FeedRunSummary:
    """One run, as one log line and a few metrics."""

    windows: int = 0
    pages: int = 0
    requests: int = 0
    #: Entries the feed listed, and the distinct waybills hinted for them.
    entries: int = 0
    hinted: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)
    #: Windows older than the catch-up limit, never to be read.
    skipped: int = 0
    #: The error kind that stopped the run, if one did.
    error: str | None = None
    #: Seconds between the high-water mark and the run's time, after the run.
    behind_s: float | None = None
    caught_up_to: datetime | None = None

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "windows": self.windows,
            "pages": self.pages,
            "requests": self.requests,
            "entries": self.entries,
            "hinted": self.hinted,
            "unreadable": dict(self.unreadable),
            "skipped_windows": self.skipped,
            "error": self.error,
            "behind_s": None if self.behind_s is None else round(self.behind_s),
            "caught_up_to": None if self.caught_up_to is None else self.caught_up_to.isoformat(),
        }


class FeedService:
    """The feed poller: windows from the high-water mark, each read whole, its waybills
    sent as hints, the mark moved on; a failure stops the run and is recorded."""

    def __init__(
        self,
        feeds: ChangeFeedFactory,
        state: FeedStateStore,
        hints: HintSink,
        policy: ChangeFeedPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._feeds = feeds
        self._state = state
        self._hints = hints
        self._policy = policy
        self._clock = clock

    async def run(self, scheduled_at: datetime, *, deadline: float | None = None) -> FeedRunSummary:
        """Read every window due by `scheduled_at` (at most a run's worth), or stop at the
        first failure; `deadline` (time.monotonic()) stops the run between windows."""
        summary = FeedRunSummary()
        if not self._policy.change_feed_enabled:
            return summary
        state = self._state.load() or FeedState()
        plan = plan_windows(state.caught_up_to, scheduled_at, self._policy)
        summary.skipped = plan.skipped
        if plan.skipped:
            state = state.model_copy(
                update={"skipped_windows": state.skipped_windows + plan.skipped}
            )
        async with self._feeds() as feed:
            for window in plan.windows:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    read = await feed.updated_orders(
                        window, max_pages=self._policy.change_feed_max_pages, deadline=deadline
                    )
                except ClickpostError as exc:
                    summary.error = exc.kind
                    state = state.model_copy(
                        update={
                            "last_failure_at": self._clock(),
                            "last_error": exc.kind,
                            "consecutive_failures": state.consecutive_failures + 1,
                        }
                    )
                    break
                state = self._hint(read, state, summary)
                # Saved after each window: a run cut short resumes from here.
                self._state.save(state)
        if summary.error is not None or (plan.skipped and not plan.windows):
            self._state.save(state)
        summary.caught_up_to = state.caught_up_to
        summary.behind_s = state.behind(scheduled_at)
        return summary

    def _hint(self, read: FeedRead, state: FeedState, summary: FeedRunSummary) -> FeedState:
        """Send one window's waybills as hints; the state with the mark at its end."""
        now = self._clock()
        newest = coalesce(
            ChangeHint(
                cp_id=order.key.cp_id,
                waybill=order.key.waybill,
                source="feed",
                recorded_at=order.updated_at,
                clickpost_status_code=order.clickpost_status_code,
                received_at=now,
            )
            for order in read.orders
        )
        if newest:
            self._hints.send(batches(list(newest.values())))
        summary.windows += 1
        summary.pages += read.pages
        summary.requests += read.requests
        summary.entries += len(read.orders)
        summary.hinted += len(newest)
        summary.unreadable.update(read.unreadable)
        listed = bool(read.orders) or bool(read.unreadable)
        return state.model_copy(
            update={
                "caught_up_to": read.window.end,
                "last_entry_at": now if listed else state.last_entry_at,
                "last_error": None,
                "consecutive_failures": 0,
            }
        )
