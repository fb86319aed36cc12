"""Change capture's services over fakes: the feed poller, the coalescer, the webhook receiver,
and the dispatcher's two modes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import CADENCE
from tests.fakes import (
    FakeFeed,
    MemoryFeedState,
    MemoryHintQueue,
    MemoryQueue,
    MemoryRejects,
    MemoryStore,
    StaticWebhookKeys,
)
from trackwatch.errors import ClickpostUnavailableError, StorageError
from trackwatch.logic.cadence import CadenceClass, due_key
from trackwatch.models.change_feed import FeedState, UpdatedOrder
from trackwatch.models.hints import ChangeHint, HintBatch
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import CHECK_ONLY, PollRequest, ScheduleTick
from trackwatch.models.policy import ChangeFeedPolicy, Sweep
from trackwatch.models.state import ShipmentState
from trackwatch.models.webhook import WebhookRequest
from trackwatch.services.change_feed import FeedService
from trackwatch.services.dispatch import DispatchService, DispatchSummary
from trackwatch.services.hints import HintService, Registrar
from trackwatch.services.registration import RegistrationService
from trackwatch.services.webhooks import WebhookOutcome, WebhookService

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
POLICY = ChangeFeedPolicy(change_feed_enabled=True)
KEY = "a-webhook-key-of-some-length"


def order(waybill: str, minutes_ago: float, cp_id: int = 4) -> UpdatedOrder:
    return UpdatedOrder(
        key=ShipmentKey.of(cp_id, waybill),
        updated_at=NOW - timedelta(minutes=minutes_ago),
        timestamp=None,
        clickpost_status_code=5,
    )


def feed_service(feed: FakeFeed, state: MemoryFeedState, queue: MemoryHintQueue) -> FeedService:
    return FeedService(lambda: feed, state, queue, POLICY, lambda: NOW)


# --- the feed poller ------------------------------------------------------------------


def test_the_feed_poller_hints_each_listed_waybill_and_moves_its_mark() -> None:
    # Given the mark five minutes back, and three entries (one waybill twice)
    feed, state, queue = (
        FakeFeed(),
        MemoryFeedState(FeedState(caught_up_to=NOW - timedelta(minutes=5))),
        MemoryHintQueue(),
    )
    feed.orders = [order("A", 2), order("A", 1), order("B", 4), order("OLD", 60)]

    # When
    summary = asyncio.run(feed_service(feed, state, queue).run(NOW))

    # Then one hint per waybill in the window, the mark at now, the feed alive
    hints = [h for b in queue.hints for h in b.hints]
    assert sorted(h.waybill for h in hints) == ["A", "B"]
    assert {h.source for h in hints} == {"feed"}
    assert next(h for h in hints if h.waybill == "A").recorded_at == NOW - timedelta(minutes=1)
    assert summary.entries == 3
    assert summary.hinted == 2
    assert state.state is not None
    assert state.state.caught_up_to == NOW
    assert state.state.last_entry_at == NOW


def test_a_failing_feed_stops_the_run_records_why_and_keeps_the_mark() -> None:
    mark = NOW - timedelta(minutes=5)
    feed, state, queue = (
        FakeFeed(),
        MemoryFeedState(FeedState(caught_up_to=mark)),
        MemoryHintQueue(),
    )
    feed.fail = ClickpostUnavailableError("429 x4")

    summary = asyncio.run(feed_service(feed, state, queue).run(NOW))

    assert summary.error == "unavailable"
    assert queue.messages == {}
    assert state.state is not None
    assert state.state.caught_up_to == mark
    assert state.state.last_error == "unavailable"
    assert state.state.consecutive_failures == 1


def test_an_outage_is_caught_up_window_by_window_over_several_runs() -> None:
    # Given the mark eight hours back and an update every twenty minutes
    feed, state, queue = (
        FakeFeed(),
        MemoryFeedState(FeedState(caught_up_to=NOW - timedelta(hours=8))),
        MemoryHintQueue(),
    )
    feed.orders = [order(f"W{i}", 20 * i + 1) for i in range(24)]
    service = feed_service(feed, state, queue)

    # When the poller runs three times
    runs = [asyncio.run(service.run(NOW)) for _ in range(3)]

    # Then the first two runs read a bounded number of windows, the state saved after each
    assert [r.windows for r in runs][:2] == [12, 5]
    assert state.saves == 17 + 1
    assert state.state is not None and state.state.caught_up_to == NOW
    hinted = {h.waybill for b in queue.hints for h in b.hints}
    assert hinted == {f"W{i}" for i in range(24)}


def test_a_disabled_feed_reads_nothing() -> None:
    feed, state, queue = FakeFeed(), MemoryFeedState(), MemoryHintQueue()
    service = FeedService(lambda: feed, state, queue, ChangeFeedPolicy(), lambda: NOW)

    asyncio.run(service.run(NOW))

    assert feed.windows == []
    assert state.saves == 0


# --- the coalescer -------------------------------------------------------------------


def hint(
    waybill: str, source: str = "webhook", cp_id: int = 4, recorded: float | None = None
) -> ChangeHint:
    return ChangeHint.model_validate(
        {
            "cp_id": cp_id,
            "waybill": waybill,
            "source": source,
            "recorded_at": None if recorded is None else NOW - timedelta(minutes=recorded),
            "received_at": NOW,
        }
    )


def tracked(store: MemoryStore, *waybills: str, cp_id: int = 4) -> None:
    for waybill in waybills:
        key = ShipmentKey.of(cp_id, waybill)
        store.add(key, due_key(key.pk, CadenceClass.TRANSIT, CADENCE), NOW)


def coalescer(
    store: MemoryStore,
    hints: MemoryHintQueue,
    polls: MemoryQueue,
    rejects: MemoryRejects | None = None,
    register: Registrar | None = None,
) -> HintService:
    return HintService(
        hints, store, polls, rejects or MemoryRejects(), lambda: NOW, register=register
    )


def test_a_waybill_hinted_many_times_in_a_window_is_polled_once_in_the_fewest_calls() -> None:
    # Given twenty hints: A eight times (webhooks and the feed), six other waybills of two carriers
    store, queue, polls = MemoryStore(), MemoryHintQueue(), MemoryQueue()
    tracked(store, "A", "B", "C", "D", "E", "F")
    tracked(store, "Z", cp_id=6)
    for _ in range(4):
        queue.send([HintBatch(hints=(hint("A"),))])
    queue.send(
        [HintBatch(hints=tuple(hint(w, "feed") for w in ("A", "A", "A", "A", "B", "C", "D")))]
    )
    queue.send([HintBatch(hints=(hint("E"), hint("F"), hint("Z", cp_id=6), hint("B")))])

    # When the window is drained
    summary = coalescer(store, queue, polls).drain()

    # Then each waybill once: carrier 4's six in two calls, carrier 6's one in one
    calls = [c for r in polls.sent for c in r.calls]
    polled = [k for c in calls for k in c.keys]
    assert len(polled) == len(set(polled)) == 7
    assert [len(c.waybills) for c in calls] == [5, 1, 1]
    assert {r.reason for r in polls.sent} == {"hint"}
    assert summary.waybills == 7 and summary.polled == 7
    assert summary.hints == {"webhook": 8, "feed": 7}
    assert queue.messages == {}


def test_hints_for_untracked_stopped_or_already_seen_waybills_are_counted_not_polled() -> None:
    store, queue, polls = MemoryStore(), MemoryHintQueue(), MemoryQueue()
    tracked(store, "SEEN", "STOPPED", "NEW")
    seen = ShipmentKey.of(4, "SEEN")
    store.records[seen] = store.records[seen].model_copy(
        update={"state": ShipmentState(recorded_until=NOW)}
    )
    stopped = ShipmentKey.of(4, "STOPPED")
    store.records[stopped] = store.records[stopped].model_copy(update={"stop_reason": "delivered"})
    queue.send(
        [
            HintBatch(
                hints=(
                    hint("SEEN", "feed", recorded=3),
                    hint("STOPPED", "feed", recorded=1),
                    hint("NEW", "feed", recorded=1),
                    hint("UNKNOWN", "feed"),
                    hint("UNKNOWN2", "webhook"),
                )
            )
        ]
    )

    summary = coalescer(store, queue, polls).drain()

    assert [k.waybill for r in polls.sent for c in r.calls for k in c.keys] == ["NEW"]
    assert summary.untracked == {"feed": 1, "webhook": 1}
    assert summary.stopped == 1
    assert summary.already_seen == 1


def test_an_unreadable_hint_message_is_set_aside_and_the_rest_polled() -> None:
    store, queue, polls, rejects = MemoryStore(), MemoryHintQueue(), MemoryQueue(), MemoryRejects()
    tracked(store, "A")
    queue.put('{"hints": "nonsense"}')
    queue.send([HintBatch(hints=(hint("A"),))])

    summary = coalescer(store, queue, polls, rejects).drain()

    assert summary.rejected == 1
    assert rejects.rejected[0][0] == '{"hints": "nonsense"}'
    assert summary.polled == 1
    assert queue.messages == {}


def test_hints_stay_queued_when_their_polls_cannot_be_sent() -> None:
    class Broken(MemoryQueue):
        def send(self, requests: Sequence[PollRequest]) -> None:
            raise StorageError("PollQueue unavailable")

    store, queue = MemoryStore(), MemoryHintQueue()
    tracked(store, "A")
    queue.send([HintBatch(hints=(hint("A"),))])

    with pytest.raises(StorageError, match="PollQueue"):
        coalescer(store, queue, Broken()).drain()

    queue.release()
    assert len(queue.messages) == 1


def test_an_unknown_waybill_on_a_webhook_is_registered_and_polled_when_asked_to() -> None:
    store, queue, polls = MemoryStore(), MemoryHintQueue(), MemoryQueue()
    registration = RegistrationService(store, CADENCE, lambda: NOW)
    queue.send([HintBatch(hints=(hint("FRESH"), hint("FEEDONLY", "feed")))])

    summary = coalescer(store, queue, polls, register=registration.register).drain()

    fresh = ShipmentKey.of(4, "FRESH")
    assert summary.registered == 1
    assert fresh in store.records and store.records[fresh].contact.phone is None
    assert ShipmentKey.of(4, "FEEDONLY") not in store.records
    assert [k for r in polls.sent for c in r.calls for k in c.keys] == [fresh]


def test_without_auto_registration_an_unknown_webhook_waybill_is_only_counted() -> None:
    store, queue, polls = MemoryStore(), MemoryHintQueue(), MemoryQueue()
    queue.send([HintBatch(hints=(hint("FRESH"),))])

    summary = coalescer(store, queue, polls).drain()

    assert store.records == {}
    assert polls.sent == []
    assert summary.untracked == {"webhook": 1}


# --- the webhook receiver --------------------------------------------------------------


def webhook_body(**overrides: object) -> bytes:
    body = {
        "waybill": "4210610508756",
        "cp_id": 4,
        "clickpost_status_code": 6,
        "timestamp": "2026-11-27 11:55:00",
        "additional": {"latest_status": {"clickpost_status_code": 6}, "receiver": "Asha, +9198"},
        **overrides,
    }
    return json.dumps(body).encode()


def receiver(queue: MemoryHintQueue, *keys: str) -> WebhookService:
    return WebhookService(StaticWebhookKeys(*(keys or (KEY,))), queue, lambda: NOW)


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"webhook_key": KEY}, {}),
        ({"x-webhook-key": KEY}, {}),
        ({}, {"webhook_key": KEY}),
    ],
)
def test_a_webhook_with_the_key_becomes_one_hint(
    headers: dict[str, str], query: dict[str, str]
) -> None:
    queue = MemoryHintQueue()

    reply = receiver(queue).receive(WebhookRequest(headers, query, webhook_body()))

    assert reply.status_code == 200
    (batch,) = queue.hints
    (only,) = batch.hints
    assert (only.cp_id, only.waybill, only.source) == (4, "4210610508756", "webhook")
    assert only.clickpost_status_code == 6
    assert only.recorded_at is None
    # Nothing of the body beyond the shipment and the code is kept
    assert "Asha" not in batch.model_dump_json()


@pytest.mark.parametrize(
    "headers", [{}, {"webhook_key": ""}, {"webhook_key": KEY[:-1]}, {"webhook_key": KEY + "x"}]
)
def test_a_wrong_or_missing_key_is_401_and_enqueues_nothing(headers: dict[str, str]) -> None:
    queue = MemoryHintQueue()

    reply = receiver(queue).receive(WebhookRequest(headers, {}, webhook_body()))

    assert reply.status_code == 401
    assert reply.webhook is None
    assert queue.messages == {}


def test_the_previous_key_is_accepted_while_it_is_rotated_out() -> None:
    queue = MemoryHintQueue()
    service = receiver(queue, "the-new-key-of-some-length", KEY)

    reply = service.receive(WebhookRequest({"webhook_key": KEY}, {}, webhook_body()))

    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("body", "outcome", "status"),
    [
        (b"x" * (64 * 1024 + 1), WebhookOutcome.TOO_LARGE, 413),
        (b"not json", WebhookOutcome.UNREADABLE, 400),
        (webhook_body(waybill="A,B"), WebhookOutcome.UNREADABLE, 400),
        (webhook_body(cp_id="four"), WebhookOutcome.UNREADABLE, 400),
        (webhook_body(unknown_field={"anything": [1, 2]}), WebhookOutcome.ACCEPTED, 200),
    ],
)
def test_a_webhook_is_bounded_and_read_leniently(
    body: bytes, outcome: WebhookOutcome, status: int
) -> None:
    queue = MemoryHintQueue()

    reply = receiver(queue).receive(WebhookRequest({"webhook_key": KEY}, {}, body))

    assert (reply.outcome, reply.status_code) == (outcome, status)
    assert len(queue.messages) == (1 if status == 200 else 0)


def test_a_queue_that_cannot_be_reached_is_a_503_so_clickpost_retries() -> None:
    reply = receiver(MemoryHintQueue(fail=True)).receive(
        WebhookRequest({"webhook_key": KEY}, {}, webhook_body())
    )

    assert reply.status_code == 503
    assert reply.error == "storage"


# --- the dispatcher's two modes ----------------------------------------------------------


def dispatcher(store: MemoryStore, queue: MemoryQueue, state: MemoryFeedState) -> DispatchService:
    return DispatchService(
        store, queue, CADENCE, lambda: NOW, feed=POLICY, sweep=Sweep(), feed_state=state
    )


def _transit(store: MemoryStore, count: int) -> list[ShipmentKey]:
    keys = [ShipmentKey.of(4, f"T{i:04d}") for i in range(count)]
    for key in keys:
        store.add(key, due_key(key.pk, CadenceClass.TRANSIT, CADENCE), NOW)
    return keys


def _dispatch_day(service: DispatchService, start: datetime) -> int:
    polled = 0
    for minute in range(24 * 60):
        at = start + timedelta(minutes=minute)
        polled += service.dispatch(ScheduleTick(scheduled_time=at)).due
    return polled


def test_a_healthy_feed_sweeps_transit_shipments_once_a_day_instead_of_twelve_times() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    _transit(store, 40)
    healthy = MemoryFeedState(FeedState(caught_up_to=NOW, last_entry_at=NOW))
    service = DispatchService(
        store, queue, CADENCE, lambda: NOW, feed=POLICY, sweep=Sweep(), feed_state=healthy
    )

    # The feed's state is judged at each minute's time: keep it fresh for the day
    start = NOW.replace(hour=0, minute=0)
    polled = 0
    for minute in range(24 * 60):
        at = start + timedelta(minutes=minute)
        healthy.state = FeedState(caught_up_to=at, last_entry_at=at)
        summary = service.dispatch(ScheduleTick(scheduled_time=at))
        assert summary.mode == "sweep"
        polled += summary.due

    assert polled == 40


def _healthy_day(
    store: MemoryStore, queue: MemoryQueue, sweep: Sweep
) -> tuple[list[DispatchSummary], MemoryFeedState]:
    healthy = MemoryFeedState(FeedState(caught_up_to=NOW, last_entry_at=NOW))
    service = DispatchService(
        store, queue, CADENCE, lambda: NOW, feed=POLICY, sweep=sweep, feed_state=healthy
    )
    start = NOW.replace(hour=0, minute=0)
    summaries = []
    for minute in range(24 * 60):
        at = start + timedelta(minutes=minute)
        healthy.state = FeedState(caught_up_to=at, last_entry_at=at)
        summaries.append(service.dispatch(ScheduleTick(scheduled_time=at)))
    return summaries, healthy


def test_the_sweep_visits_a_transit_shipment_for_its_checks_every_two_hours_it_is_not_polled() -> (
    None
):
    # Given 40 shipments in transit and a healthy feed for a day
    store, queue = MemoryStore(), MemoryQueue()
    keys = _transit(store, 40)

    # When the dispatcher runs every minute of it
    summaries, _ = _healthy_day(store, queue, Sweep())

    # Then each is polled once and visited for its checks at the other 11 cycles
    polls = [r for r in queue.sent if r.reason != CHECK_ONLY]
    checks = [r for r in queue.sent if r.reason == CHECK_ONLY]
    polled = Counter(k for r in polls for c in r.calls for k in c.keys)
    checked = Counter(k for r in checks for c in r.calls for k in c.keys)
    assert polled == Counter(dict.fromkeys(keys, 1))
    assert checked == Counter(dict.fromkeys(keys, 11))
    assert sum(s.checks for s in summaries) == 440
    assert sum(s.check_messages for s in summaries) == len(checks)
    # never polled and visited at the same minute, and nothing written to the index
    for request in checks:
        same_minute = [r for r in polls if r.requested_at == request.requested_at]
        assert not {k for c in request.calls for k in c.keys} & {
            k for r in same_minute for c in r.calls for k in c.keys
        }
    assert store.writes == 0


def test_no_visits_when_checks_are_off_or_a_class_is_swept_at_its_cadence() -> None:
    # Given shipments in transit with the checks' visits off, and new ones (swept at their
    # cadence, 240 minutes: polled as often as a visit could come)
    store, queue = MemoryStore(), MemoryQueue()
    _transit(store, 20)
    for i in range(20):
        key = ShipmentKey.of(4, f"N{i:04d}")
        store.add(key, due_key(key.pk, CadenceClass.NEW, CADENCE), NOW)

    summaries, _ = _healthy_day(store, queue, Sweep(delay_check_minutes=0))

    assert sum(s.checks for s in summaries) == 0
    assert all(r.reason != CHECK_ONLY for r in queue.sent)
    assert sum(s.due for s in summaries) == 20 + 20 * 6


def test_a_failing_feed_brings_back_the_full_cadence_and_says_so() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    _transit(store, 40)
    stale = MemoryFeedState(
        FeedState(caught_up_to=NOW - timedelta(hours=3), last_error="unavailable")
    )
    service = dispatcher(store, queue, stale)

    summary = service.dispatch(ScheduleTick(scheduled_time=NOW))
    polled = _dispatch_day(service, NOW.replace(hour=0, minute=0))

    assert summary.mode == "full"
    assert summary.fallback is True
    assert "behind" in summary.reason and "unavailable" in summary.reason
    assert polled == 40 * 12
    # and the full cadence polls every shipment at each cycle: no visit on top
    assert all(r.reason != CHECK_ONLY for r in queue.sent)


def test_a_silent_feed_falls_back_only_while_something_is_tracked() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    quiet = MemoryFeedState(FeedState(caught_up_to=NOW, last_entry_at=NOW - timedelta(hours=2)))
    service = dispatcher(store, queue, quiet)

    empty = service.dispatch(ScheduleTick(scheduled_time=NOW))
    _transit(store, 1)
    busy = service.dispatch(ScheduleTick(scheduled_time=NOW))

    assert (empty.mode, empty.fallback) == ("sweep", False)
    assert (busy.mode, busy.fallback) == ("full", True)


def test_switching_modes_rewrites_no_shipment() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    keys = _transit(store, 30)
    before = {k: store.records[k] for k in keys}
    state = MemoryFeedState(FeedState(caught_up_to=NOW, last_entry_at=NOW))
    service = dispatcher(store, queue, state)

    service.dispatch(ScheduleTick(scheduled_time=NOW))
    state.state = FeedState(caught_up_to=NOW - timedelta(hours=1))
    service.dispatch(ScheduleTick(scheduled_time=NOW + timedelta(minutes=1)))

    assert store.writes == 0
    assert {k: store.records[k] for k in keys} == before


def test_a_tick_of_every_shipment_ignores_the_mode() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    _transit(store, 7)
    service = dispatcher(
        store, queue, MemoryFeedState(FeedState(caught_up_to=NOW, last_entry_at=NOW))
    )

    summary = service.dispatch(ScheduleTick(scheduled_time=NOW, scope="all"))

    assert (summary.mode, summary.due, summary.checks) == ("all", 7, 0)
