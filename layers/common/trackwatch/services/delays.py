"""Delays: the policy pollers decide with, the daily threshold job, the operations digest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from trackwatch.errors import TrackwatchError
from trackwatch.logic.business_hours import BusinessCalendar
from trackwatch.logic.catalogue import StatusCatalogue
from trackwatch.logic.delays import DelayPolicy
from trackwatch.logic.digest import build_digest, render_digest
from trackwatch.logic.thresholds import Learner
from trackwatch.models.delays import DelayRules, ThresholdTable
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.notification import Message
from trackwatch.ports import Inbox, ScanLog, ScanPoints, Sender, ThresholdStore

logger = Logger(service="trackwatch", child=True)


class DelayPolicies:
    """The policy a poller decides with: the calendar and rules, and the learned thresholds
    read again every `refresh` (a table that cannot be read keeps the last one, or none)."""

    def __init__(
        self,
        calendar: BusinessCalendar,
        rules: DelayRules,
        store: ThresholdStore,
        clock: Callable[[], datetime],
        refresh: timedelta = timedelta(hours=1),
    ) -> None:
        self._calendar = calendar
        self._rules = rules
        self._store = store
        self._clock = clock
        self._refresh = refresh
        self._policy: DelayPolicy | None = None
        self._read_at: datetime | None = None

    def __call__(self) -> DelayPolicy:
        """The current policy."""
        now = self._clock()
        if self._policy is None or self._read_at is None or now - self._read_at >= self._refresh:
            learned = self._policy.learned if self._policy is not None else None
            try:
                learned = self._store.load()
            except TrackwatchError as exc:
                # Polling goes on: the rules (or yesterday's table) are a fine answer for now.
                logger.warning("delay thresholds not read", extra={"kind": exc.kind})
            self._policy = DelayPolicy(self._calendar, self._rules, learned)
            self._read_at = now
        return self._policy


@dataclass(frozen=True)
class LearnSummary:
    """One run of the threshold job, as one log line."""

    days: int
    items_read: int
    shipments: int
    rows: int
    learned_dwell: int
    learned_remaining: int
    shards_read: int = 0
    complete: bool = True

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "days": self.days,
            "items_read": self.items_read,
            "shards_read": self.shards_read,
            "complete": self.complete,
            "shipments": self.shipments,
            "rows": self.rows,
            "learned_dwell": self.learned_dwell,
            "learned_remaining": self.learned_remaining,
        }


class LearnThresholds:
    """The daily job: the event log's window of scans → the thresholds table."""

    def __init__(
        self,
        log: ScanLog,
        store: ThresholdStore,
        calendar: BusinessCalendar,
        rules: DelayRules,
        clock: Callable[[], datetime],
        *,
        quantile: float,
        min_samples: int,
        window_days: int,
        terminal_codes: frozenset[int],
    ) -> None:
        self._log = log
        self._store = store
        self._calendar = calendar
        self._rules = rules
        self._clock = clock
        self._quantile = quantile
        self._min_samples = min_samples
        self._window_days = window_days
        self._terminal = terminal_codes

    def window(self, now: datetime) -> list[date]:
        """The days logged that the run reads: the last `window_days`, today's included."""
        today = now.date()
        return [today - timedelta(days=n) for n in range(self._window_days)]

    def run(self, deadline: float | None = None) -> tuple[ThresholdTable, LearnSummary]:
        """Learn from the window and replace the stored table; one pass over its entries.

        With a `deadline` (time.monotonic()), no shard is started that would likely end
        after it (one and a half times the slowest so far): the table is then learned from
        the shards read, a uniform sample of the window's shipments, and says so."""
        now = self._clock()
        learner = Learner(
            calendar=self._calendar,
            terminal_codes=self._terminal,
            delivered_codes=self._rules.delivered_status_codes,
            quantile=self._quantile,
            min_samples=self._min_samples,
        )
        items = shards = 0
        complete = True
        slowest = 0.0
        batches = self._log.scan_sequences(self.window(now))
        while True:
            started = time.monotonic()
            if deadline is not None and shards and started + 1.5 * slowest > deadline:
                complete = False
                break
            batch = next(batches, None)
            if batch is None:
                break
            items += len(batch)
            by_shipment: dict[ShipmentKey, ScanPoints] = {}
            for key, points in batch:
                by_shipment.setdefault(key, []).extend(points)
            for key, points in by_shipment.items():
                learner.add(key.cp_id, points)
            shards += 1
            slowest = max(slowest, time.monotonic() - started)
        table = learner.table(
            computed_at=now,
            window_days=self._window_days,
            items_read=items,
            shards_read=shards,
            complete=complete,
        )
        self._store.save(table)
        summary = LearnSummary(
            days=self._window_days,
            items_read=items,
            shipments=learner.shipments,
            rows=len(table.rows),
            learned_dwell=sum(1 for r in table.rows if r.dwell_hours is not None),
            learned_remaining=sum(1 for r in table.rows if r.remaining_hours is not None),
            shards_read=shards,
            complete=complete,
        )
        return table, summary


@dataclass(frozen=True)
class DigestSummary:
    """One digest, as one log line."""

    messages: int
    events: int
    unreadable: int
    carriers: int
    sent: bool

    def as_log(self) -> dict[str, object]:
        """The summary as structured log fields."""
        return {
            "messages": self.messages,
            "events": self.events,
            "unreadable": self.unreadable,
            "carriers": self.carriers,
            "sent": self.sent,
        }


class OpsDigest:
    """The daily operations e-mail, from the events its queue collected since the last one."""

    def __init__(
        self,
        inbox: Inbox,
        sender: Sender | None,
        recipient: str | None,
        catalogue: StatusCatalogue,
        clock: Callable[[], datetime],
        zone: str,
    ) -> None:
        self._inbox = inbox
        self._sender = sender
        self._recipient = recipient
        self._catalogue = catalogue
        self._clock = clock
        self._zone = ZoneInfo(zone)

    def send(self, deadline: float | None = None) -> DigestSummary:
        """Drain the queue, send the digest (if there is anything and anyone to tell), then
        delete what it covered. A failed send raises and leaves the messages for the next run."""
        messages = self._inbox.receive(deadline)
        events = [m.event for m in messages if m.event is not None]
        today = self._clock().astimezone(self._zone).date()
        digest = build_digest(events, today)
        sent = False
        if not digest.empty and self._sender is not None and self._recipient is not None:
            subject, body = render_digest(digest, self._zone, self._status_name)
            self._sender.send(
                Message(
                    channel="email",
                    to=self._recipient,
                    subject=subject,
                    body=body,
                    event_id=f"ops-digest-{today.isoformat()}",
                    kind="ops_digest",
                )
            )
            sent = True
        # An unreadable body stays for its dead-letter queue (after its receives run out).
        self._inbox.delete([m.receipt for m in messages if m.event is not None])
        return DigestSummary(
            messages=len(messages),
            events=digest.events,
            unreadable=sum(1 for m in messages if m.event is None),
            carriers=len(digest.carriers),
            sent=sent,
        )

    def _status_name(self, code: int | None) -> str:
        return "status unknown" if code is None else self._catalogue.lookup(code).name
