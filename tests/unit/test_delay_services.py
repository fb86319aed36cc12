"""The delay services over fakes: learning thresholds from an event log, the operations
digest from real events, the poller's checks (with and without a Clickpost call)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tests.delay_fakes import MemoryInbox, MemoryThresholds
from tests.delay_support import CALENDAR, RULES, checks, learned, policy
from tests.factories import CADENCE, CATALOGUE, IST, START, result, scan
from tests.fakes import FakeTracker, MemoryEventLog, MemoryStore
from tests.notify_fakes import MemorySender
from trackwatch.adapters.event_log import LEARN_SHARDS
from trackwatch.errors import ProviderUnavailableError
from trackwatch.logic.cadence import CadenceClass, due_key
from trackwatch.logic.diff import diff
from trackwatch.logic.digest import build_digest, render_digest
from trackwatch.logic.thresholds import quantile
from trackwatch.models.events import ShipmentEvent
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import CHECK_ONLY, PollRequest
from trackwatch.models.tracking import TrackCall
from trackwatch.services.delays import DelayPolicies, LearnThresholds, OpsDigest
from trackwatch.services.poll import PollService

# Monday 2 November 2026, 09:00 in India: the factories' START (a Sunday) plus a day.
MONDAY = START + timedelta(days=1)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=IST)


def first_sight(
    key: ShipmentKey, scans: list[dict[str, Any]], now: datetime
) -> list[ShipmentEvent]:
    """The events of a shipment's first poll: what the publisher logs as one change."""
    return list(diff(None, key, result(scans), now, CATALOGUE).events)


def nearest_rank(samples: Sequence[float], q: float) -> float:
    """The quantile as done by hand: sort, take the ceil(q * n)-th."""
    return sorted(samples)[math.ceil(q * len(samples)) - 1]


# --- learning ------------------------------------------------------------------------------


def test_thresholds_learned_from_an_event_log_match_the_quantile_computed_by_hand() -> None:
    # Given an event log of carrier 4's shipments in transit for 1..12 hours before the
    # next scan (weekday hours: business hours are clock hours), and carrier 5's for 20..25
    log = MemoryEventLog()
    gaps = {4: [float(h) for h in range(1, 13)], 5: [20.0, 21.0, 22.0, 23.0, 24.0, 25.0]}
    to_delivery: dict[int, list[float]] = {4: [], 5: []}
    for cp_id, hours in gaps.items():
        for n, gap in enumerate(hours):
            # Picked up Monday 09:00, in transit at 10:00, out for delivery `gap` hours
            # later, delivered an hour after that.
            scans = [scan(1, 4, 24), scan(2, 5, 25), scan(3, 6, 25 + gap), scan(4, 8, 26 + gap)]
            key = ShipmentKey.of(cp_id, f"L{cp_id}-{n}")
            log.append([first_sight(key, scans, at(5))])
            to_delivery[cp_id].append(2 + gap)
    # and one logged 40 days ago, outside the 30-day window
    old = ShipmentKey.of(4, "OLD")
    log.append([first_sight(old, [scan(1, 5, 0), scan(2, 6, 500)], at(5) - timedelta(days=40))])
    store = MemoryThresholds()
    job = LearnThresholds(
        log,
        store,
        CALENDAR,
        RULES,
        lambda: at(6),
        quantile=0.9,
        min_samples=5,
        window_days=30,
        terminal_codes=CATALOGUE.terminal_codes,
    )

    # When
    table, summary = job.run()

    # Then the in-transit threshold is the p90 of each carrier's gaps, and of all of them
    assert store.table == table
    assert table.dwell_hours(4, 5) == nearest_rank(gaps[4], 0.9) == 11.0
    assert table.dwell_hours(5, 5) == nearest_rank(gaps[5], 0.9) == 25.0
    every = next(r for r in table.rows if r.cp_id is None and r.clickpost_status_code == 5)
    assert every.dwell_hours == nearest_rank(gaps[4] + gaps[5], 0.9)
    assert every.dwell_samples == 18
    # the time to delivery from picked up is the median (nearest rank) of each carrier's
    assert table.remaining_hours(4, 4) == nearest_rank(to_delivery[4], 0.5) == 8.0
    assert table.remaining_hours(5, 5) == nearest_rank([g + 1 for g in gaps[5]], 0.5)
    # out for delivery: an hour each, for both carriers
    assert table.dwell_hours(4, 6) == 1.0
    # and the run read the window only: 30 days of each shard, one entry per change
    assert summary.items_read == 18
    assert len(log.queried) == 30 * LEARN_SHARDS
    assert all(p >= (at(6).date() - timedelta(days=29)).isoformat() for p in log.queried)


def test_too_few_samples_learn_nothing_and_the_rules_stand() -> None:
    # Given two shipments only
    log = MemoryEventLog()
    for n in range(2):
        key = ShipmentKey.of(4, f"FEW{n}")
        log.append([first_sight(key, [scan(1, 5, 24), scan(2, 6, 30)], at(5))])
    store = MemoryThresholds()
    job = LearnThresholds(
        log,
        store,
        CALENDAR,
        RULES,
        lambda: at(6),
        quantile=0.9,
        min_samples=5,
        window_days=7,
        terminal_codes=CATALOGUE.terminal_codes,
    )

    # When
    table, _ = job.run()

    # Then the samples are counted, nothing is learned, and a poller keeps the rule
    row = next(r for r in table.rows if r.cp_id == 4 and r.clickpost_status_code == 5)
    assert (row.dwell_samples, row.dwell_hours) == (2, None)
    assert policy(table).threshold(4, 5).source == "rule"


def test_a_run_out_of_time_learns_from_the_shards_it_read_and_says_so() -> None:
    # Given shipments spread over the LearnIndex shards
    log = MemoryEventLog()
    for n in range(64):
        key = ShipmentKey.of(4, f"SH{n}")
        log.append([first_sight(key, [scan(1, 5, 24), scan(2, 6, 26)], at(5))])

    def job(store: MemoryThresholds) -> LearnThresholds:
        return LearnThresholds(
            log,
            store,
            CALENDAR,
            RULES,
            lambda: at(6),
            quantile=0.9,
            min_samples=1,
            window_days=7,
            terminal_codes=CATALOGUE.terminal_codes,
        )

    # When one run has all the time it needs and another's deadline has already passed
    whole, whole_summary = job(MemoryThresholds()).run(time.monotonic() + 600)
    store = MemoryThresholds()
    sample, summary = job(store).run(time.monotonic() - 1)

    # Then the first reads every shard; the second one shard (a run always learns
    # something), writes what it learned, and says it is a sample
    assert (whole.shards_read, whole.complete, whole_summary.items_read) == (LEARN_SHARDS, True, 64)
    assert (sample.shards_read, sample.complete, summary.complete) == (1, False, False)
    assert 0 < summary.items_read < 64
    assert store.table == sample
    assert sample.dwell_hours(4, 5) == whole.dwell_hours(4, 5) == 2.0


def test_gaps_are_counted_in_business_hours() -> None:
    # Given a scan on Saturday 7 November 18:00 and the next on Monday 06:00
    log = MemoryEventLog()
    for n in range(3):
        key = ShipmentKey.of(4, f"WKND{n}")
        log.append([first_sight(key, [scan(1, 5, 6 * 24 + 9), scan(2, 6, 8 * 24 - 3)], at(9))])
    job = LearnThresholds(
        log,
        MemoryThresholds(),
        CALENDAR,
        RULES,
        lambda: at(9),
        quantile=0.9,
        min_samples=1,
        window_days=2,
        terminal_codes=CATALOGUE.terminal_codes,
    )

    # When
    table, _ = job.run()

    # Then 36 hours passed, 12 of them business hours (Sunday is off)
    assert table.dwell_hours(4, 5) == 12.0


def test_quantile_is_nearest_rank_over_counted_values() -> None:
    from collections import Counter

    samples = Counter({5: 3, 1: 1, 9: 6})  # 1, 5, 5, 5, 9 x6

    assert quantile(samples, 0.5) == 9  # the 5th of 10
    assert quantile(samples, 0.4) == 5
    assert quantile(samples, 0.1) == 1


# --- the poller's policy -------------------------------------------------------------------


def test_pollers_read_the_learned_table_again_after_the_refresh_and_survive_a_failure() -> None:
    # Given
    store = MemoryThresholds(learned((4, 5, 10.0, None), at=at(1)))
    now = [at(2, 9)]
    policies = DelayPolicies(CALENDAR, RULES, store, lambda: now[0], timedelta(hours=1))

    # When
    first = policies()
    now[0] += timedelta(minutes=30)
    cached = policies()
    reads_in_the_hour = store.loads
    store.fail = True
    now[0] += timedelta(hours=1)
    after_failure = policies()

    # Then one read per hour; an unreadable table keeps the last one
    assert cached is first and reads_in_the_hour == 1
    assert after_failure.threshold(4, 5).source == "learned"
    assert store.loads == 2


def poll_service(store: MemoryStore, tracker: FakeTracker, now: datetime) -> PollService:
    thresholds = MemoryThresholds()
    policies = DelayPolicies(CALENDAR, RULES, thresholds, lambda: now)
    return PollService(store, CATALOGUE, CADENCE, lambda: now, lambda: tracker, policies)


def test_the_poller_reports_a_shipment_that_sat_too_long() -> None:
    # Given a shipment polled on Monday, in transit since 10:00
    key = ShipmentKey.of(4, "SAT1")
    store, tracker = MemoryStore(), FakeTracker()
    store.add(key, due_key(key.pk, CadenceClass.TRANSIT, CADENCE), at(2))
    tracker.results[key] = result([scan(1, 5, 25)])
    request = {
        "m1": PollRequest(calls=(TrackCall(cp_id=4, waybills=("SAT1",)),), requested_at=at(2))
    }
    asyncio.run(poll_service(store, tracker, at(2)).poll(request))

    # When it is polled on Wednesday, Clickpost saying the same
    _, summary = asyncio.run(poll_service(store, tracker, at(4)).poll(request))

    # Then the stuck event is written with the state
    assert summary.events == {"shipment.stuck": 1}
    _, events = store.outboxes[-1]
    assert [e.event_type for e in events] == ["shipment.stuck"]


def test_a_check_only_visit_calls_no_one_and_writes_only_news() -> None:
    # Given a shipment last polled on Monday, its promise the 3rd
    key = ShipmentKey.of(4, "CHK1")
    store, tracker = MemoryStore(), FakeTracker()
    store.add(key, due_key(key.pk, CadenceClass.TRANSIT, CADENCE), at(2))
    tracker.results[key] = result([scan(1, 5, 25)], courier_partner_edd="2026-11-03")
    call = TrackCall(cp_id=4, waybills=("CHK1",))
    asyncio.run(
        poll_service(store, tracker, at(2)).poll(
            {"m1": PollRequest(calls=(call,), requested_at=at(2))}
        )
    )
    calls_before = len(tracker.calls)
    check = {"m2": PollRequest(calls=(call,), reason=CHECK_ONLY, requested_at=at(4))}

    # When it is visited for the checks alone on Wednesday, twice
    failures, summary = asyncio.run(poll_service(store, tracker, at(4)).poll(check))
    _, again = asyncio.run(poll_service(store, tracker, at(4, 14)).poll(check))

    # Then no call; stuck and breached once
    assert failures == {"m2": None}
    assert len(tracker.calls) == calls_before
    assert summary.checked == 1 and summary.events == {
        "shipment.stuck": 1,
        "shipment.sla_breached": 1,
    }
    assert again.events == {} and again.unchanged == 1


class ReadsBefore(MemoryStore):
    """A store whose next eventually consistent read answers what it held before a write
    that raced it (as a check visit's `BatchGetItem` may, while a hint poll commits)."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: dict[ShipmentKey, Any] | None = None

    def get_many(self, keys: Any, *, consistent: bool = False) -> dict[ShipmentKey, Any]:
        if self.stale is not None and not consistent:
            old, self.stale = self.stale, None
            self.reads += 1
            return {k: old[k] for k in keys if k in old}
        return super().get_many(keys, consistent=consistent)


def polled_on_monday(
    waybill: str,
) -> tuple[ShipmentKey, ReadsBefore, FakeTracker, TrackCall]:
    """A shipment in transit since Monday 10:00, polled on Monday."""
    key = ShipmentKey.of(4, waybill)
    store, tracker = ReadsBefore(), FakeTracker()
    store.add(key, due_key(key.pk, CadenceClass.TRANSIT, CADENCE), at(2))
    call = TrackCall(cp_id=4, waybills=(key.waybill,))
    tracker.results[key] = result([scan(1, 5, 25)])
    asyncio.run(
        poll_service(store, tracker, at(2)).poll(
            {"m1": PollRequest(calls=(call,), requested_at=at(2))}
        )
    )
    return key, store, tracker, call


def test_a_check_visit_that_read_before_a_hint_poll_moved_the_shipment_writes_nothing() -> None:
    # Given a shipment in transit since Monday 10:00, polled on Monday
    key, store, tracker, call = polled_on_monday("RACE1")
    # and, on Wednesday, a hint poll that finds it moved an hour ago, committed after a
    # check visit read the shipment (its read answers Monday's state)
    monday = dict(store.records)
    tracker.results[key] = result([scan(1, 5, 25), scan(2, 6, 74)])
    asyncio.run(
        poll_service(store, tracker, at(4)).poll(
            {"m2": PollRequest(calls=(call,), reason="hint", requested_at=at(4))}
        )
    )
    store.stale = monday
    calls, writes = len(tracker.calls), store.writes

    # When the check visit decides on what it read
    check = {"m3": PollRequest(calls=(call,), reason=CHECK_ONLY, requested_at=at(4))}
    _, summary = asyncio.run(poll_service(store, tracker, at(4)).poll(check))

    # Then its write is refused (the version moved), it decides again on the shipment as it
    # now is, and finds nothing: no stuck, no call, no write, no event after the scan
    assert summary.conflicts == 1 and summary.unchanged == 1 and summary.events == {}
    assert (len(tracker.calls), store.writes) == (calls, writes)
    kinds = [e.event_type for _, events in store.outboxes for e in events]
    assert "shipment.stuck" not in kinds


def test_a_hint_poll_that_read_before_a_check_visit_wrote_stuck_reports_unstuck_after() -> None:
    # Given a shipment in transit since Monday 10:00, polled on Monday
    key, store, tracker, call = polled_on_monday("RACE2")
    # and, on Wednesday, a check visit that reports it stuck, committed after a hint poll
    # read the shipment (its read answers Monday's state)
    monday = dict(store.records)
    check = {"m2": PollRequest(calls=(call,), reason=CHECK_ONLY, requested_at=at(4))}
    asyncio.run(poll_service(store, tracker, at(4)).poll(check))
    store.stale = monday

    # When the hint poll brings the scan of an hour ago
    tracker.results[key] = result([scan(1, 5, 25), scan(2, 6, 74)])
    _, summary = asyncio.run(
        poll_service(store, tracker, at(4)).poll(
            {"m3": PollRequest(calls=(call,), reason="hint", requested_at=at(4))}
        )
    )

    # Then the poll decides again on the stuck shipment: the scan, then unstuck, once each,
    # after the stuck event, in the order they were written
    assert summary.conflicts == 1
    kinds = [e.event_type for _, events in store.outboxes for e in events]
    assert kinds[2:] == [
        "shipment.stuck",
        "shipment.scan_added",
        "shipment.status_changed",
        "shipment.unstuck",
    ]
    assert kinds.count("shipment.stuck") == kinds.count("shipment.unstuck") == 1


# --- the digest ----------------------------------------------------------------------------


def delay_events() -> list[ShipmentEvent]:
    """Real events: three shipments of two carriers that sat, missed or will miss their
    promise, and one that moved again after it was reported stuck."""
    table = learned((5, 5, None, 72.0), at=at(1))
    events: list[ShipmentEvent] = []

    def journey(
        key: ShipmentKey, moments: list[datetime], start: float = 24, **additional: Any
    ) -> None:
        state = None
        scans = [scan(1, 4, start), scan(2, 5, start + 1)]
        additional.setdefault("courier_name", "BlueDart" if key.cp_id == 5 else "Delhivery")
        for n, moment in enumerate(moments):
            if additional.get("moves_at") == n:
                scans = [*scans, scan(3, 6, (moment - START).total_seconds() / 3600)]
            extra = {k: v for k, v in additional.items() if k != "moves_at"}
            outcome = diff(
                state,
                key,
                result(scans, **extra),
                moment,
                CATALOGUE,
                delays=checks(key.cp_id, table),
            )
            state = outcome.state
            events.extend(outcome.events)

    journey(ShipmentKey.of(4, "DLV-OLD"), [at(2), at(4, 9)], order_id="ORD-OLD")
    journey(ShipmentKey.of(4, "DLV-NEW"), [at(3), at(5, 9)], start=48)
    journey(ShipmentKey.of(4, "DLV-MOVED"), [at(2), at(4, 9), at(4, 11)], moves_at=2)
    journey(ShipmentKey.of(5, "BD-LATE"), [at(2, 11), at(4, 2)], courier_partner_edd="2026-11-03")
    journey(ShipmentKey.of(5, "BD-SOON"), [at(2, 11)], courier_partner_edd="2026-11-04")
    return events


def test_the_daily_digest_renders_from_real_events() -> None:
    # Given the events the delay checks produced, each delivered twice
    events = delay_events()
    assert {e.event_type for e in events} >= {
        "shipment.stuck",
        "shipment.unstuck",
        "shipment.sla_breached",
        "shipment.delay_predicted",
    }

    # When
    digest = build_digest([*events, *events], at(5, 18).date())
    subject, body = render_digest(digest, IST, lambda code: CATALOGUE.lookup(code or 0).name)

    # Then counts per carrier, and the oldest cases first
    assert subject == (
        "trackwatch delays 05 Nov 2026: 3 stuck, 1 missed their promise, 2 predicted late"
    )
    lines = body.splitlines()
    delhivery = next(line for line in lines if line.startswith("Delhivery (cp_id 4)  "))
    bluedart = next(line for line in lines if line.startswith("BlueDart (cp_id 5)  "))
    assert delhivery.split()[-4:] == ["2", "1", "0", "0"]
    assert bluedart.split()[-4:] == ["1", "0", "1", "2"]
    stuck = [line for line in lines if "no scan for" in line]
    assert [line.split()[0] for line in stuck] == ["DLV-OLD", "DLV-NEW", "BD-LATE"]
    assert "(order ORD-OLD)" in stuck[0] and "since 02 Nov 10:00" in stuck[0]
    assert "InTransit" in stuck[0]
    assert "BD-LATE (order ORD-1): promised 03 Nov (courier_partner_edd), 1 day late" in body
    assert "BD-SOON (order ORD-1): promised 04 Nov, now expected 05 Nov" in body
    assert "DLV-MOVED" not in body


def test_the_digest_service_sends_once_and_leaves_only_what_it_could_not_read() -> None:
    # Given the queue holds the events and one body that is not an event
    inbox = MemoryInbox([*delay_events(), None])
    sender = MemorySender()
    digest = OpsDigest(
        inbox, sender, "ops@example.com", CATALOGUE, lambda: at(5, 18), "Asia/Kolkata"
    )

    # When
    summary = digest.send()

    # Then one e-mail, every event deleted, the unreadable one left for the dead-letter queue
    (message,) = sender.sent
    assert message.to == "ops@example.com" and message.channel == "email"
    assert message.subject is not None and message.subject.startswith("trackwatch delays")
    assert summary.sent and summary.unreadable == 1
    assert list(inbox.messages.values()) == [None]


def test_a_digest_that_cannot_be_sent_deletes_nothing() -> None:
    inbox = MemoryInbox(delay_events())
    sender = MemorySender()
    sender.fail = ProviderUnavailableError("SMTP failed: OSError")
    digest = OpsDigest(
        inbox, sender, "ops@example.com", CATALOGUE, lambda: at(5, 18), "Asia/Kolkata"
    )

    try:
        digest.send()
    except ProviderUnavailableError:
        pass
    else:
        raise AssertionError("the send failure must reach the handler")

    assert inbox.deleted == []


def test_nothing_to_report_sends_nothing() -> None:
    sender = MemorySender()
    digest = OpsDigest(MemoryInbox(), sender, "ops@example.com", CATALOGUE, lambda: at(5), "UTC")

    summary = digest.send()

    assert sender.sent == [] and not summary.sent


def test_the_digest_clips_and_flattens_what_a_carrier_wrote() -> None:
    # Given stuck events whose location is 300 KB of a carrier's text with control and
    # bidi characters (as an event on the queue may carry)
    hostile = "\x1b[31mHub\x00\r\n\u202e" + "Nagpur " * 43_000 + "\x07"
    events = [
        e.model_copy(update={"location": hostile})
        for e in delay_events()
        if e.event_type == "shipment.stuck"
    ]
    assert events

    # When
    digest = build_digest(events, at(5, 18).date())
    _, body = render_digest(digest, IST, lambda code: CATALOGUE.lookup(code or 0).name)

    # Then each case is one short line of printable text
    cases = [line for line in body.splitlines() if "no scan for" in line]
    assert cases
    for line in cases:
        assert len(line) < 400, len(line)
        assert line.isprintable(), repr(line)
    assert len(body) < 10_000
