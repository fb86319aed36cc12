"""Coalesce a window's change hints into the fewest track-order polls.

Every minute the coalescer takes what HintQueue holds: each waybill once however many
hints name it, only the ones trackwatch tracks (a webhook for an unknown waybill may
register it, when the deployment says so), and only those whose hint may bring
something new. They go into PollQueue through the dispatcher's own path
(`enqueue_polls`: at most five waybills of one carrier a call, the fewest calls). A
hint never makes an event: the poll is diffed like any other.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from trackwatch.logic.change_capture import coalesce, worth_polling
from trackwatch.models.clickpost import describe_validation
from trackwatch.models.hints import ChangeHint, HintBatch, QueuedMessage
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.registration import Registration
from trackwatch.ports import HintSource, PollQueueWriter, RejectSink, ShipmentStore
from trackwatch.services.dispatch import enqueue_polls
from trackwatch.services.registration import EntryResult

#: Registers shipments (the registration service's entry point).
Registrar = Callable[[Sequence[Registration]], list[EntryResult]]


@dataclass
class HintSummary:
    """One window, as one log line."""

    messages: int = 0
    hints: Counter[str] = field(default_factory=Counter)
    #: Distinct waybills hinted.
    waybills: int = 0
    #: Waybills polled, and why not the others.
    polled: int = 0
    untracked: Counter[str] = field(default_factory=Counter)
    stopped: int = 0
    already_seen: int = 0
    registered: int = 0
    calls: int = 0
    poll_messages: int = 0
    rejected: int = 0

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "messages": self.messages,
            "hints": dict(self.hints),
            "waybills": self.waybills,
            "polled": self.polled,
            "untracked": dict(self.untracked),
            "stopped": self.stopped,
            "already_seen": self.already_seen,
            "registered": self.registered,
            "calls": self.calls,
            "poll_messages": self.poll_messages,
            "rejected": self.rejected,
        }


class HintService:
    """Drains HintQueue once per window and polls what the hints point at."""

    def __init__(
        self,
        source: HintSource,
        store: ShipmentStore,
        queue: PollQueueWriter,
        rejects: RejectSink,
        clock: Callable[[], datetime],
        *,
        calls_per_message: int = 10,
        max_messages: int = 5000,
        register: Registrar | None = None,
    ) -> None:
        self._source = source
        self._store = store
        self._queue = queue
        self._rejects = rejects
        self._clock = clock
        self._per_message = calls_per_message
        self._max_messages = max_messages
        #: Set when unknown waybills seen on webhooks are to be registered (no contact).
        self._register = register

    def drain(self, *, deadline: float | None = None) -> HintSummary:
        """Take what HintQueue holds (up to `max_messages`, or until `deadline` on
        time.monotonic()), poll it, then delete it; a failure leaves the messages to
        come back (a hint polled twice, never one lost)."""
        summary = HintSummary()
        messages = self._receive(deadline)
        summary.messages = len(messages)
        if not messages:
            return summary
        hints = self._read(messages, summary)
        for hint in hints:
            summary.hints[hint.source] += 1
        wanted = coalesce(hints)
        summary.waybills = len(wanted)
        keys = self._worth_polling(wanted, summary)
        summary.calls, summary.poll_messages = enqueue_polls(
            keys, self._queue, self._per_message, "hint", self._clock()
        )
        summary.polled = len(keys)
        self._source.delete(messages)
        return summary

    def _receive(self, deadline: float | None) -> list[QueuedMessage]:
        received: list[QueuedMessage] = []
        while len(received) < self._max_messages:
            if deadline is not None and time.monotonic() >= deadline:
                break
            batch = self._source.receive(min(10, self._max_messages - len(received)))
            if not batch:
                break
            received.extend(batch)
        return received

    def _read(self, messages: list[QueuedMessage], summary: HintSummary) -> list[ChangeHint]:
        hints: list[ChangeHint] = []
        for message in messages:
            try:
                hints.extend(HintBatch.model_validate_json(message.body).hints)
            except ValidationError as exc:
                # Not ours to read: kept for a human, with the reason; deleted with the rest.
                self._rejects.reject(message.body, describe_validation(exc))
                summary.rejected += 1
        return hints

    def _worth_polling(
        self, wanted: dict[ShipmentKey, ChangeHint], summary: HintSummary
    ) -> list[ShipmentKey]:
        records = self._store.get_many(list(wanted))
        keys: list[ShipmentKey] = []
        unknown: list[ShipmentKey] = []
        for key, hint in wanted.items():
            record = records.get(key)
            if record is None:
                summary.untracked[hint.source] += 1
                if hint.source == "webhook":
                    unknown.append(key)
            elif not record.active:
                summary.stopped += 1
            elif worth_polling(hint, record):
                keys.append(key)
            else:
                summary.already_seen += 1
        if unknown and self._register is not None:
            results = self._register(
                [Registration(waybill=k.waybill, cp_id=k.cp_id) for k in unknown]
            )
            tracked = [r.key for r in results if r.key is not None and r.tracked and not r.error]
            summary.registered = len(tracked)
            # Registered now, and hinted: their first poll need not wait for their slot.
            keys.extend(tracked)
        return keys
