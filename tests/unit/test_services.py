"""The dispatch, poll and publish use cases over in-memory fakes of the ports."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from tests.factories import CADENCE, CATALOGUE, NOW, result, scan
from tests.fakes import (
    FakeTracker,
    MemoryEventLog,
    MemoryPublisher,
    MemoryQueue,
    MemoryRejects,
    MemoryStore,
)
from trackwatch.adapters.shipments_table import StreamImages
from trackwatch.errors import (
    ClickpostAuthError,
    ClickpostInvalidCarrierError,
    ClickpostResponseTooLargeError,
    ClickpostUnavailableError,
    PublishError,
)
from trackwatch.logic.cadence import CadenceClass, due_key, due_keys_at, epoch_minute
from trackwatch.logic.poll_decision import OUTBOX_EVENTS_PER_WRITE
from trackwatch.models.events import EVENT_LIST_ADAPTER
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import PollRequest, ScheduleTick
from trackwatch.models.record import ShipmentRecord, StreamChange
from trackwatch.models.tracking import TrackCall
from trackwatch.services.dispatch import DispatchService
from trackwatch.services.poll import PollService
from trackwatch.services.publish import PublishService


def new_store(keys: list[ShipmentKey], klass: CadenceClass = CadenceClass.NEW) -> MemoryStore:
    store = MemoryStore()
    for key in keys:
        store.add(key, due_key(key.pk, klass, CADENCE), NOW)
    return store


def service(
    store: MemoryStore, now: datetime = NOW, *, tracker: FakeTracker | None = None
) -> PollService:
    fake = tracker or FakeTracker()
    return PollService(store, CATALOGUE, CADENCE, lambda: now, lambda: fake)


def request(*keys: ShipmentKey) -> PollRequest:
    calls = [TrackCall(cp_id=k.cp_id, waybills=(k.waybill,)) for k in keys]
    return PollRequest(calls=tuple(calls), requested_at=NOW)


def test_dispatch_sends_the_fewest_calls_for_the_due_shipments() -> None:
    # Given 12 shipments over 3 carriers (5, 5, 2), all due in one minute
    keys = [
        ShipmentKey.of(cp, f"W{cp}-{i}") for cp, n in ((4, 5), (6, 5), (9, 2)) for i in range(n)
    ]
    minute = epoch_minute(NOW)
    store = MemoryStore()
    for key in keys:
        store.add(key, due_keys_at(minute, CADENCE)[0], NOW)
    store.add(ShipmentKey.of(4, "NOT-DUE"), "transit#999#0", NOW)
    queue = MemoryQueue()

    # When the dispatcher runs for that minute, two calls a message
    dispatcher = DispatchService(store, queue, CADENCE, lambda: NOW, calls_per_message=2)
    summary = dispatcher.dispatch(ScheduleTick(scheduled_time=NOW))

    # Then 3 calls (one per carrier) go out in 2 messages, covering exactly the due shipments
    calls = [c for r in queue.sent for c in r.calls]
    assert summary.due == 12
    assert len(calls) == 3
    assert len(queue.sent) == 2
    assert {k for c in calls for k in c.keys} == set(keys)


def test_a_first_poll_writes_state_and_events_and_a_repeat_writes_nothing() -> None:
    key = ShipmentKey.of(4, "A1")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 1, 0), scan(2, 4, 3)])

    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"m1": request(key)}))
    assert failures == {"m1": None}
    assert summary.written == 1
    assert store.records[key].version == 2
    assert store.records[key].due_key == due_key(key.pk, CadenceClass.TRANSIT, CADENCE)
    assert [e.event_type for e in store.outboxes[0][1]].count("shipment.scan_added") == 2

    failures, again = asyncio.run(service(store, tracker=tracker).poll({"m2": request(key)}))
    assert again.written == 0
    assert again.unchanged == 1
    assert store.writes == 1


class RacingStore(MemoryStore):
    """A store where another worker commits between our read and our write, once."""

    def __init__(self, rival: FakeTracker) -> None:
        super().__init__()
        self.rival = rival
        self.raced = False

    def get_many(
        self, keys: Iterable[ShipmentKey], *, consistent: bool = False
    ) -> dict[ShipmentKey, ShipmentRecord]:
        records = super().get_many(list(keys), consistent=consistent)
        if not self.raced:
            self.raced = True
            rival_requests = {"rival": request(*records)}
            asyncio.run(service(self, tracker=self.rival).poll(rival_requests))
        return records


def test_two_pollers_on_one_shipment_emit_its_events_once() -> None:
    # Given two workers that read the same version of one shipment
    key = ShipmentKey.of(4, "RACE")
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0), scan(2, 6, 4)])
    store = RacingStore(tracker)
    store.add(key, due_key(key.pk, CadenceClass.NEW, CADENCE), NOW)

    # When both poll it and the rival commits first
    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"mine": request(key)}))

    # Then ours loses the condition, re-reads, finds nothing new: the events exist once
    assert failures == {"mine": None}
    assert summary.conflicts == 1
    assert summary.written == 0
    assert len(store.outboxes) == 1
    assert store.records[key].version == 2


def test_a_failed_call_fails_its_message_after_committing_the_rest() -> None:
    good, bad = ShipmentKey.of(4, "OK1"), ShipmentKey.of(6, "KO1")
    store = new_store([good, bad])
    tracker = FakeTracker()
    tracker.results[good] = result([scan(1, 5, 0)])
    tracker.fail[6] = ClickpostUnavailableError("503 x4")

    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"m": request(good, bad)}))

    assert isinstance(failures["m"], ClickpostUnavailableError)
    assert store.records[good].version == 2
    assert store.records[bad].version == 1
    assert summary.errors == {"unavailable": 1}


def test_an_authentication_failure_outranks_other_failures() -> None:
    a, b = ShipmentKey.of(4, "A"), ShipmentKey.of(6, "B")
    store = new_store([a, b])
    tracker = FakeTracker()
    tracker.fail[4] = ClickpostUnavailableError("503")
    tracker.fail[6] = ClickpostAuthError("wrong key")
    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"m": request(a, b)}))
    assert isinstance(failures["m"], ClickpostAuthError)
    assert summary.errors["auth"] == 1


def test_an_unknown_carrier_stops_its_shipments_with_the_reason() -> None:
    key = ShipmentKey.of(777, "X1")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.fail[777] = ClickpostInvalidCarrierError(777)
    failures, _ = asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    assert failures == {"m": None}
    record = store.records[key]
    assert record.due_key is None
    assert record.stop_reason is not None
    assert "777" in record.stop_reason


def test_a_delivered_shipment_is_polled_through_its_grace_then_stops() -> None:
    key = ShipmentKey.of(4, "DONE")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 6, 0), scan(2, 8, 2)])
    asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    assert store.records[key].due_key == due_key(key.pk, CadenceClass.GRACE, CADENCE)

    # a late scan within the grace period is still recorded
    tracker.results[key] = result([scan(1, 6, 0), scan(2, 8, 2), scan(3, 5, 1)])
    later = NOW + timedelta(hours=1)
    asyncio.run(service(store, later, tracker=tracker).poll({"m": request(key)}))
    assert store.records[key].state.scan_count == 3
    assert store.records[key].active

    end = NOW + timedelta(hours=CADENCE.terminal_grace_hours)
    asyncio.run(service(store, end, tracker=tracker).poll({"m": request(key)}))
    assert store.records[key].due_key is None
    reason = store.records[key].stop_reason
    assert reason is not None
    assert "grace" in reason


def test_a_stopped_shipment_is_not_polled_into_again() -> None:
    key = ShipmentKey.of(4, "STOP")
    store = new_store([key])
    store.records[key] = store.records[key].model_copy(update={"stop_reason": "deleted"})
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0)])
    _, summary = asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    assert summary.skipped == 1
    assert store.writes == 0


def test_a_missing_awb_changes_nothing() -> None:
    key = ShipmentKey.of(4, "GONE")
    store = new_store([key])
    failures, summary = asyncio.run(service(store, tracker=FakeTracker()).poll({"m": request(key)}))
    assert failures == {"m": None}
    assert summary.awbs == {"missing": 1}
    assert store.writes == 0


def publisher(topic: MemoryPublisher, log: MemoryEventLog) -> PublishService:
    return PublishService(StreamImages(), topic, log, MemoryRejects(), lambda: NOW)


def change(record_id: str, events_json: str, seq: int = 1) -> StreamChange:
    return StreamChange(record_id=record_id, new_image=_image(seq, events_json), old_image=None)


def _image(seq: int | None, events_json: str = "[]") -> dict[str, object]:
    """A stream image in attribute-value form, its outbox compressed as the table writes it."""
    image: dict[str, object] = {"pk": {"S": "4#A"}}
    if seq is not None:
        packed = zlib.compress(events_json.encode())
        image |= {"outbox_seq": {"N": str(seq)}, "outbox": {"B": packed}}
    return image


def test_the_publisher_publishes_only_the_outbox_a_write_put_there() -> None:
    key = ShipmentKey.of(4, "A")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0)])
    asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    events_json = EVENT_LIST_ADAPTER.dump_json(list(store.outboxes[0][1])).decode()

    publish = publisher(MemoryPublisher(), MemoryEventLog())
    assert len(publish.events_of(_image(1, events_json), _image(None))) == 2
    assert len(publish.events_of(_image(1, events_json), None)) == 2
    # a later write that did not touch the outbox (a contact update) publishes nothing
    assert publish.events_of(_image(1, events_json), _image(1, events_json)) == []
    assert publish.events_of(_image(None), _image(None)) == []


def test_a_publish_failure_fails_the_stream_record() -> None:
    key = ShipmentKey.of(4, "A")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0)])
    asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    events_json = EVENT_LIST_ADAPTER.dump_json(list(store.outboxes[0][1])).decode()
    log = MemoryEventLog()
    report = publisher(MemoryPublisher(fail=True), log).publish([change("r1", events_json)])
    assert report.failed == ["r1"]
    assert report.error == PublishError.kind
    # the events were logged first, so a replay can still send them
    assert len(log.events) == 2


def test_the_publisher_logs_each_event_once_however_often_it_is_retried() -> None:
    # Given a committed change with two events
    key = ShipmentKey.of(4, "A")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0)])
    asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    events_json = EVENT_LIST_ADAPTER.dump_json(list(store.outboxes[0][1])).decode()
    topic, log = MemoryPublisher(), MemoryEventLog()

    # When its stream record is delivered twice
    publisher(topic, log).publish([change("r1", events_json)])
    publisher(topic, log).publish([change("r1", events_json)])

    # Then both deliveries published (subscribers dedupe on event_id), the log holds each once
    assert len(topic.published) == 4
    assert sorted(e.event_id for e in log.history(key)) == sorted(
        {e.event_id for e in topic.published}
    )


# --- hostile answers ---------------------------------------------------------------


def test_an_unreadable_waybill_costs_only_itself_and_is_stopped_after_the_give_up() -> None:
    # Given a call of three waybills, one of whose entries cannot be read
    good1, bad, good2 = ShipmentKey.of(4, "G1"), ShipmentKey.of(4, "BAD"), ShipmentKey.of(4, "G2")
    store = new_store([good1, bad, good2])
    tracker = FakeTracker()
    for key in (good1, bad, good2):
        tracker.results[key] = result([scan(1, 5, 0)])
    tracker.unreadable[bad] = "scans.3.timestamp: datetime_parsing"
    call = PollRequest(calls=(TrackCall(cp_id=4, waybills=("G1", "BAD", "G2")),), requested_at=NOW)

    # When it is polled
    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"m": call}))

    # Then the message succeeds, its call-mates are committed, and the bad one is recorded
    assert failures == {"m": None}
    assert store.records[good1].state.current is not None
    assert store.records[good2].state.current is not None
    state = store.records[bad].state
    assert state.current is None
    assert state.unreadable_since == NOW
    assert state.unreadable_reason == "scans.3.timestamp: datetime_parsing"
    assert state.unreadable_fragment is not None
    assert summary.unreadable == {"scans.timestamp: datetime_parsing": 1}
    assert [e for _, e in store.outboxes if _ == bad] == []  # no event for it

    # And polled again within the give-up period, it writes nothing more
    writes = store.writes
    asyncio.run(service(store, NOW + timedelta(hours=1), tracker=tracker).poll({"m": call}))
    assert store.writes == writes
    assert store.records[bad].active

    # But after the give-up period it is stopped, with its reason
    later = NOW + timedelta(hours=CADENCE.unreadable_give_up_hours)
    asyncio.run(service(store, later, tracker=tracker).poll({"m": call}))
    record = store.records[bad]
    assert not record.active
    assert record.stop_reason is not None and record.stop_reason.startswith("unreadable:")
    assert "scans.3.timestamp" in record.stop_reason

    # And had it become readable meanwhile, the mark would have gone
    tracker.unreadable.clear()
    store.records[bad] = record.model_copy(update={"stop_reason": None, "due_key": "x"})
    asyncio.run(service(store, later, tracker=tracker).poll({"m": call}))
    assert store.records[bad].state.unreadable_since is None


def test_a_first_sight_with_a_long_history_is_written_in_parts_of_bounded_size() -> None:
    # Given a shipment first seen with 120 scans (120 scan_added events and more)
    key = ShipmentKey.of(4, "LONG")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(i, 5, i / 10) for i in range(1, 121)])

    # When it is polled
    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))

    # Then every event reaches an outbox, no outbox holds more than the per-write limit, and
    # the new state is written by the last write only
    assert failures == {"m": None}
    sizes = [len(events) for k, events in store.outboxes if k == key]
    assert sum(sizes) == sum(summary.events.values()) >= 121
    assert max(sizes) <= OUTBOX_EVENTS_PER_WRITE
    assert len(sizes) == -(-sum(sizes) // OUTBOX_EVENTS_PER_WRITE)
    assert store.records[key].state.scan_count == 120
    assert store.records[key].version == 1 + len(sizes)


def test_a_shipment_is_tracked_for_at_most_its_maximum_age() -> None:
    key = ShipmentKey.of(4, "OLD")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0)])
    asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}))
    assert store.records[key].active

    later = NOW + timedelta(days=CADENCE.max_tracking_days)
    tracker.results[key] = result([scan(1, 5, 0), scan(2, 5, 24)])
    asyncio.run(service(store, later, tracker=tracker).poll({"m": request(key)}))

    record = store.records[key]
    assert not record.active
    assert record.stop_reason is not None and record.stop_reason.startswith("max age:")


def test_the_invocation_deadline_reaches_every_call() -> None:
    key = ShipmentKey.of(4, "D1")
    store = new_store([key])
    tracker = FakeTracker()
    tracker.results[key] = result([scan(1, 5, 0)])
    asyncio.run(service(store, tracker=tracker).poll({"m": request(key)}, deadline=1234.5))
    assert tracker.deadlines == [1234.5]


def _trio() -> tuple[MemoryStore, FakeTracker, list[ShipmentKey], PollRequest]:
    keys = [ShipmentKey.of(4, w) for w in ("OK1", "ODD", "OK2")]
    store, tracker = new_store(keys), FakeTracker()
    for key in keys:
        tracker.results[key] = result([scan(1, 5, 0)])
    call = PollRequest(
        calls=(TrackCall(cp_id=4, waybills=("OK1", "ODD", "OK2")),), requested_at=NOW
    )
    return store, tracker, keys, call


def test_a_body_too_large_for_one_waybill_is_asked_again_waybill_by_waybill() -> None:
    # Given a call whose answer is too large because of one waybill
    store, tracker, (ok1, odd, ok2), call = _trio()
    tracker.fail_with["ODD"] = ClickpostResponseTooLargeError(4, 5 * 1024 * 1024)

    # When it is polled (for the first time)
    failures, summary = asyncio.run(service(store, tracker=tracker).poll({"m": call}))

    # Then the call is asked again one waybill at a time: the others are committed, the odd
    # one is blamed alone, and the message succeeds
    assert failures == {"m": None}
    assert [c.waybills for c in tracker.calls] == [
        ("OK1", "ODD", "OK2"),
        ("OK1",),
        ("ODD",),
        ("OK2",),
    ]
    assert store.records[ok1].state.current is not None
    assert store.records[ok2].state.current is not None
    assert store.records[odd].state.unreadable_reason == "no answer: too_large"
    assert summary.calls == 4


def test_a_waybill_that_hangs_holds_its_call_mates_back_once_only() -> None:
    # Given a call in which one waybill makes Clickpost time out
    store, tracker, (ok1, odd, ok2), call = _trio()
    tracker.fail_with["ODD"] = ClickpostUnavailableError("call budget spent")

    # When the message first fails, then comes back (a redelivery)
    first, _ = asyncio.run(service(store, tracker=tracker).poll({"m": call}))
    again, _ = asyncio.run(service(store, tracker=tracker).poll({"m": call}, redelivered={"m"}))

    # Then the first time it fails whole (it may be an outage), the second time its call-mates
    # are answered alone and the waybill that hangs is blamed, and the message succeeds
    assert isinstance(first["m"], ClickpostUnavailableError)
    assert again == {"m": None}
    assert store.records[ok1].state.current is not None
    assert store.records[ok2].state.current is not None
    assert store.records[odd].state.unreadable_reason == "no answer: unavailable"


def test_an_outage_is_not_blamed_on_any_waybill() -> None:
    # Given Clickpost down for every call
    store, tracker, keys, call = _trio()
    tracker.fail[4] = ClickpostUnavailableError("503 x4")

    # When a redelivered message is polled
    failures, _ = asyncio.run(service(store, tracker=tracker).poll({"m": call}, redelivered={"m"}))

    # Then it fails as before (to be retried), and no shipment is marked
    assert isinstance(failures["m"], ClickpostUnavailableError)
    assert all(store.records[k].state.unreadable_since is None for k in keys)
    assert store.writes == 0


def test_the_table_adapter_refuses_a_write_past_dynamodbs_item_limit_before_sending_it() -> None:
    # Given a change whose state alone is over 400 KB even compressed (moto would half-apply it)
    import secrets

    from trackwatch.adapters.shipments_table import ShipmentsTable
    from trackwatch.errors import ItemTooLargeError
    from trackwatch.models.record import StateChange
    from trackwatch.models.state import ShipmentState

    class NoCalls:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"DynamoDB was called ({name})")

    key = ShipmentKey.of(4, "FAT")
    fat = ShipmentState(order_id=secrets.token_urlsafe(600_000))
    table = ShipmentsTable("t", NoCalls())  # type: ignore[arg-type]

    # When / Then: refused as DynamoDB would refuse it, without a request
    with pytest.raises(ItemTooLargeError, match="item limit"):
        table.commit(StateChange(key=key, expected_version=1, state=fat, due_key="new#0#0"))
