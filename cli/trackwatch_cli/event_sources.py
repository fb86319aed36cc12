"""Event source mappings, worked as Lambda works them: pollers feeding concurrent invocations.

For each SQS mapping, one poller receives batches and hands each to an invocation slot,
at most as many at once as the mapping's `MaximumConcurrency` (or the runtime's local
cap); a batch is received only when a slot is free, so no message sits invisible
waiting for one. For each stream shard, one poller reads records and delivers them a
batch at a time, in order, as Lambda does with a parallelization factor of 1.

Queue pollers long-poll (`LONG_POLL_S`): an idle queue costs one request a second, and a
message is picked up the moment it arrives instead of at the next poll. A batch smaller
than the mapping's batch size waits up to its `MaximumBatchingWindowInSeconds` to fill,
as Lambda's does: fewer, fuller invocations (and fewer receives and deletes).

**Knowing when everything is done.** Every invocation's end and every non-empty read is
*activity* (a counter). The stream poller, reading nothing, notes the activity count it
saw before it read. Everything is quiet when no invocation is running, the stream
poller has read nothing since the last activity, and every queue holds no message,
visible or in flight, with the activity count the same before and after looking:
whatever an invocation sent or wrote, it did before it ended, and the emulator is
consistent at once. Delayed messages (a notifier holding a message for quiet hours)
are not waited for.

**Keeping the emulator's queues short.** moto does work in proportion to a queue's length
(every message it holds, visible, in flight or delayed) on every send, receive and
delete: it counts the queue's messages for its attributes on each SendMessage and for
each message a ReceiveMessage returns (its retention check reads the queue's attributes,
three times), and rebuilds the list on each delete. Receiving ten messages (and making
them visible again, client included, moto in-process) took 18 ms from a queue of 10, 24
ms from 50, 67 ms from 200 and 335 ms from 1,000. So the stream poller, the only
producer that can be held back without holding up an invocation, reads one batch at a
time and, before each, reads the watched queues' depths (the subscriber queues its
publishes fan out to): while one holds more than `backlog_limit` messages, in flight
included (delayed ones are not: only the simulated clock releases them), it waits;
the records wait in the stream, which costs the emulator nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trackwatch_cli.stack import EventSource

#: Seconds a stream poller waits before reading an empty stream again, at first and at most.
IDLE_WAIT_S = (0.01, 0.2)
#: Seconds a queue poller's receive waits for a message (SQS long polling).
LONG_POLL_S = 1
#: How often queue depths are read for backpressure and progress.
MONITOR_EVERY_S = 1.0
#: Messages (visible and in flight) a watched queue may hold before the stream poller
#: waits for it (below some 50, a receive costs moto about the same: its fixed cost per
#: message dominates).
BACKLOG_LIMIT = 50


class Activity:
    """Invocations running, and a count of everything that happened; see the module doc."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.count = 0
        self.running: Counter[str] = Counter()

    def started(self, function: str) -> None:
        """An invocation began."""
        with self._changed:
            self.running[function] += 1

    def ended(self, function: str) -> None:
        """An invocation ended (after its batch was deleted or made visible again)."""
        with self._changed:
            self.running[function] -= 1
            self.count += 1
            self._changed.notify_all()

    def happened(self) -> None:
        """Something was read."""
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def notify(self) -> None:
        """Wake whoever waits (a poller found its source empty)."""
        with self._changed:
            self._changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `predicate()` holds (checked under the lock), at most `timeout_s`."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout=timeout_s)

    @property
    def in_flight(self) -> int:
        """Invocations running now."""
        return sum(self.running.values())


@dataclass
class SourceState:
    """One mapping's poller, as the runtime sees it."""

    source: EventSource
    concurrency: int
    #: Activity count before the last read that found nothing (-1: none yet).
    quiet_at: int = -1
    delivered: int = 0
    invocations: int = 0
    #: Why the poller is not reading right now, if it is waiting for something.
    waiting_for: str = ""


#: Delivers one batch as one invocation (the stream's retries included). A queue poller
#: counts the invocation as started before it hands the batch over (so no moment passes
#: in which the batch is neither in the queue nor running); the delivery ends it.
Deliver = Callable[[EventSource, list[dict[str, Any]]], None]


class Poller(threading.Thread):
    """Reads one event source and delivers what it reads; stops when `stopping` is set."""

    def __init__(self, state: SourceState, activity: Activity, stopping: threading.Event) -> None:
        super().__init__(name=f"poller-{state.source.function}", daemon=True)
        self.state = state
        self.activity = activity
        self.stopping = stopping

    def _idle(self, seen: int, wait_s: float) -> float:
        """Nothing was read: note it, wait a little, and return the next wait."""
        self.state.quiet_at = seen
        self.activity.notify()
        self.stopping.wait(wait_s)
        return min(wait_s * 2, IDLE_WAIT_S[1])


class QueuePoller(Poller):
    """An SQS mapping: receive a batch when an invocation slot is free; invoke in the slot."""

    def __init__(
        self,
        state: SourceState,
        activity: Activity,
        stopping: threading.Event,
        receive: Callable[[EventSource], list[dict[str, Any]]],
        deliver: Deliver,
        release: Callable[[EventSource, list[dict[str, Any]]], None],
        receive_more: Callable[[EventSource, int], list[dict[str, Any]]],
    ) -> None:
        """`receive` long-polls; `receive_more(source, n)` takes up to n more at once;
        `release` makes messages received after a stop visible again (they belong to the
        next run)."""
        super().__init__(state, activity, stopping)
        self._receive = receive
        self._receive_more = receive_more
        self._deliver = deliver
        self._release = release
        self._slots = threading.Semaphore(state.concurrency)

    def run(self) -> None:
        """Until stopped: wait for a slot, receive, hand the batch to a slot's thread."""
        source = self.state.source
        while not self.stopping.is_set():
            if not self._slots.acquire(timeout=0.1):
                continue
            try:
                messages = self._receive(source)
            except Exception:  # the emulator going away at shutdown; try again, or stop
                self._slots.release()
                self.stopping.wait(IDLE_WAIT_S[1])
                continue
            if not messages:
                self._slots.release()
                continue
            messages = self._fill(source, messages)
            if self.stopping.is_set():
                self._slots.release()
                self._release(source, messages)
                return
            self.activity.started(source.function)
            self.activity.happened()
            self.state.delivered += len(messages)
            self.state.invocations += 1
            threading.Thread(
                target=self._run_slot,
                args=(messages,),
                name=f"lambda-{source.function}",
                daemon=True,
            ).start()

    def _fill(self, source: EventSource, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A short batch waits out the batching window, then takes what came meanwhile
        (one more receive, not one per trickle)."""
        if len(messages) >= source.batch_size or source.batching_window_s <= 0:
            return messages
        self.stopping.wait(source.batching_window_s)
        try:
            messages.extend(self._receive_more(source, source.batch_size - len(messages)))
        except Exception:  # the emulator going away: deliver what is in hand
            logging.getLogger(__name__).debug("filling a batch failed", exc_info=True)
        return messages

    def _run_slot(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._deliver(self.state.source, messages)
        finally:
            self._slots.release()


class StreamPoller(Poller):
    """A stream mapping: read records in order and deliver them a batch at a time."""

    def __init__(
        self,
        state: SourceState,
        activity: Activity,
        stopping: threading.Event,
        read: Callable[[EventSource], list[dict[str, Any]]],
        deliver: Deliver,
        backlog: Callable[[bool], tuple[str, int] | None],
    ) -> None:
        """`backlog(fresh)`: the watched queue over the limit, if one is; `fresh` reads the
        depths now rather than using the monitor's last reading (after a delivery: an
        idle or waiting stream poller would read them too often)."""
        super().__init__(state, activity, stopping)
        self._read = read
        self._deliver = deliver
        self._backlog = backlog

    def run(self) -> None:
        """Until stopped: read what is new, deliver it in batches; wait out long backlogs."""
        wait_s = IDLE_WAIT_S[0]
        source = self.state.source
        fresh = True
        while not self.stopping.is_set():
            full = self._backlog(fresh)
            fresh = False
            if full is not None:
                name, depth = full
                self.state.waiting_for = f"{name} to drain ({depth:,} messages)"
                self.stopping.wait(MONITOR_EVERY_S / 2)
                continue
            self.state.waiting_for = ""
            seen = self.activity.count
            try:
                records = self._read(source)
            except Exception:  # the emulator going away at shutdown
                self.stopping.wait(IDLE_WAIT_S[1])
                continue
            if not records:
                wait_s = self._idle(seen, wait_s)
                continue
            wait_s = IDLE_WAIT_S[0]
            fresh = True
            self.activity.happened()
            for start in range(0, len(records), source.batch_size):
                batch = records[start : start + source.batch_size]
                self.state.delivered += len(batch)
                self.state.invocations += 1
                self._deliver(source, batch)


@dataclass
class QueueDepths:
    """Visible messages per watched queue, as last read (by queue name), and those plus the
    ones in flight (what moto's work grows with, but for delayed ones, which no consumer
    can drain)."""

    depths: dict[str, int] = field(default_factory=dict)
    read_at: float = 0.0
    held: dict[str, int] = field(default_factory=dict)


class DepthMonitor(threading.Thread):
    """Reads the depth of the watched queues every MONITOR_EVERY_S."""

    def __init__(
        self,
        queues: Mapping[str, str],
        depth_of: Callable[[str], tuple[int, int]],
        stopping: threading.Event,
        every: Callable[[], object] = lambda: None,
    ) -> None:
        """`every`: also run each period (the runtime releases delayed messages that are
        due)."""
        super().__init__(name="queue-depths", daemon=True)
        self._every = every
        self._queues = dict(queues)
        self._depth_of = depth_of
        self.stopping = stopping
        self.latest = QueueDepths()

    def run(self) -> None:
        """Until stopped."""
        while not self.stopping.is_set():
            try:
                self._every()
            except Exception:  # the emulator going away at shutdown
                logging.getLogger(__name__).debug("periodic work failed", exc_info=True)
            self.read()
            self.stopping.wait(MONITOR_EVERY_S)

    @property
    def urls(self) -> frozenset[str]:
        """The watched queues' URLs."""
        return frozenset(self._queues.values())

    def read(self) -> QueueDepths:
        """Read every watched queue's depth now."""
        depths: dict[str, int] = {}
        held: dict[str, int] = {}
        for name, url in self._queues.items():
            try:
                depths[name], held[name] = self._depth_of(url)
            except Exception:  # the emulator going away at shutdown
                return self.latest
        self.latest = QueueDepths(depths, time.monotonic(), held)
        return self.latest

    def over(self, limit: int) -> tuple[str, int] | None:
        """The fullest watched queue if it holds more than `limit` messages, in flight
        included."""
        held = self.latest.held
        if not held:
            return None
        name, depth = max(held.items(), key=lambda item: item[1])
        return (name, depth) if depth > limit else None


def queue_name(url: str) -> str:
    """A queue URL's last segment."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def settled_streams(states: Iterable[SourceState], activity: Activity) -> bool:
    """No invocation running, and every stream read empty since the last activity (the
    first half of being quiet; the queues are looked at next)."""
    return activity.in_flight == 0 and all(
        s.quiet_at == activity.count for s in states if s.source.kind != "sqs"
    )


def busy_summary(states: Sequence[SourceState], activity: Activity) -> str:
    """What the sources are doing, for a progress line."""
    running = [f"{name.removesuffix('Function')} x{n}" for name, n in activity.running.items() if n]
    waiting = [s.waiting_for for s in states if s.waiting_for]
    parts = []
    if running:
        parts.append("running " + ", ".join(sorted(running)))
    if waiting:
        parts.append("waiting for " + "; ".join(waiting))
    return "; ".join(parts) or "checking queues"
