"""Every handler over a container of fakes, driven by its sample event under events/.

The handlers are built exactly as Lambda builds them (`handler(container)`), with
in-memory ports instead of AWS: no emulator, no sockets. Malformed records and partial
batch failures are reported per record, as the SQS and stream event sources expect.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.delay_fakes import MemoryInbox, MemoryThresholds
from tests.delay_support import checks
from tests.factories import CADENCE, CATALOGUE, result, scan
from tests.fakes import (
    FakeFeed,
    FakeTracker,
    MemoryEventLog,
    MemoryFeedState,
    MemoryHintQueue,
    MemoryPublisher,
    MemoryQueue,
    MemoryRejects,
    MemoryStore,
    StaticWebhookKeys,
)
from tests.notify_fakes import (
    MemoryDeferrer,
    MemoryHandover,
    MemoryLedger,
    MemoryRecipients,
    MemorySender,
)
from tests.notify_samples import KEY, PHONE, recipient
from tests.order_fakes import MemoryOrderPublisher, MemoryOrders, MemoryScheduler
from trackwatch.bootstrap import Container, Handler, bootstrap
from trackwatch.config import Settings
from trackwatch.errors import ClickpostUnavailableError, StorageError
from trackwatch.logic.cadence import CadenceClass, due_key, due_keys_at, epoch_minute
from trackwatch.logic.diff import diff
from trackwatch.models.change_feed import FeedState, UpdatedOrder
from trackwatch.models.events import EVENT_ADAPTER, OrderStatusChanged
from trackwatch.models.hints import ChangeHint, HintBatch
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.messages import CHECK_ONLY, PollRequest
from trackwatch.models.notification import Channel, Delivery, DeliveryState
from trackwatch_cli.runtime import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)  # 12:00 in India: not quiet hours
CONTEXT = LambdaContext(function_name="unit-test")


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
    return loaded


def handler_of(function: str, container: Container) -> Handler:
    """functions/<function>/app.py's handler, built over `container` as Lambda would."""
    factory: Callable[[Container], Handler] = importlib.import_module(f"{function}.app").handler
    return factory(container)


def failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# --------------------------------------------------------------------------- dispatch


def test_dispatch_sample_enqueues_the_polls_of_its_minute() -> None:
    # Given two shipments due at the sample's minute and one that is not
    event = sample("dispatch_polls_schedule.json")
    minute = epoch_minute(datetime.fromisoformat(event["scheduled_time"]))
    store, queue = MemoryStore(), MemoryQueue()
    for waybill in ("D1", "D2"):
        store.add(ShipmentKey.of(4, waybill), due_keys_at(minute, CADENCE)[0], NOW)
    store.add(ShipmentKey.of(4, "LATER"), "transit#999#0", NOW)
    container = bootstrap(Settings({}), clock=lambda: NOW, shipments=store, poll_queue=queue)

    # When
    answer = handler_of("dispatch_polls", container)(event, CONTEXT)

    # Then one call for the two due shipments, in one message
    assert answer["minute"] == minute
    assert answer["due"] == 2
    assert [c.waybills for r in queue.sent for c in r.calls] == [("D1", "D2")]


def test_dispatch_sample_sends_check_only_visits_for_what_the_sweep_leaves() -> None:
    # Given a healthy change feed, and shipments in transit due at the sample's minute: the
    # sweep polls the one whose turn of the day it is, and visits the others for their checks
    event = sample("dispatch_polls_schedule.json")
    at = datetime.fromisoformat(event["scheduled_time"])
    minute = epoch_minute(at)
    store, queue = MemoryStore(), MemoryQueue()
    state = MemoryFeedState(FeedState(caught_up_to=at, last_entry_at=at))
    transit = f"transit#{minute % CADENCE.cadence_transit_minutes}#0"
    keys = [ShipmentKey.of(4, f"V{i}") for i in range(24)]
    for key in keys:
        store.add(key, transit, NOW)
    container = bootstrap(
        Settings({**FEED_SETTINGS, "DUE_SHARDS": "1"}),
        clock=lambda: NOW,
        shipments=store,
        poll_queue=queue,
        feed_state=state,
    )

    # When
    answer = handler_of("dispatch_polls", container)(event, CONTEXT)

    # Then the sweep's share is polled, the rest visited without a Clickpost call (every
    # cycle at the default 120 minutes), none both, none left out
    polled = {k for r in queue.sent if r.reason == "schedule" for c in r.calls for k in c.keys}
    checked = {k for r in queue.sent if r.reason == CHECK_ONLY for c in r.calls for k in c.keys}
    assert answer["mode"] == "sweep"
    assert (answer["due"], answer["checks"]) == (len(polled), len(checked))
    assert polled and checked and not polled & checked
    assert polled | checked == set(keys)
    assert answer["check_messages"] == len([r for r in queue.sent if r.reason == CHECK_ONLY])


# --------------------------------------------------------------------------- poll


def poll_world() -> tuple[Container, MemoryStore, FakeTracker, list[ShipmentKey]]:
    event = sample("poll_shipments_sqs.json")
    request = PollRequest.model_validate_json(event["Records"][0]["body"])
    keys = [k for call in request.calls for k in call.keys]
    store, tracker = MemoryStore(), FakeTracker()
    for key in keys:
        store.add(key, due_key(key.pk, CadenceClass.NEW, CADENCE), NOW)
        tracker.results[key] = result([scan(1, 4, 0), scan(2, 5, 3)])
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        shipments=store,
        trackers=lambda: tracker,
        thresholds=MemoryThresholds(),
    )
    return container, store, tracker, keys


def test_poll_sample_commits_each_shipment_it_asks_about() -> None:
    container, store, tracker, keys = poll_world()

    answer = handler_of("poll_shipments", container)(sample("poll_shipments_sqs.json"), CONTEXT)

    assert failures(answer) == []
    assert len(tracker.calls) == 2  # the sample's two calls, one per carrier
    assert all(store.records[k].state.current is not None for k in keys)


def test_poll_reports_a_malformed_message_alone() -> None:
    # Given the sample batch with a second message that is no poll request
    container, store, _, keys = poll_world()
    event = sample("poll_shipments_sqs.json")
    broken = copy.deepcopy(event["Records"][0])
    broken["messageId"] = "not-a-poll-request"
    broken["body"] = '{"calls": "nonsense"}'
    event["Records"].append(broken)

    # When
    answer = handler_of("poll_shipments", container)(event, CONTEXT)

    # Then only that message fails (its redelivery will fail again: the DLQ keeps it)
    assert failures(answer) == ["not-a-poll-request"]
    assert all(store.records[k].version == 2 for k in keys)


def test_poll_fails_only_the_message_whose_call_failed() -> None:
    # Given carrier 6 unavailable, and a second message for carrier 4 only
    container, store, tracker, _ = poll_world()
    tracker.fail[6] = ClickpostUnavailableError("503 x4")
    event = sample("poll_shipments_sqs.json")
    first = event["Records"][0]["messageId"]
    other = copy.deepcopy(event["Records"][0])
    other["messageId"] = "carrier-4-only"
    key = ShipmentKey.of(4, "EXTRA1")
    store.add(key, due_key(key.pk, CadenceClass.NEW, CADENCE), NOW)
    tracker.results[key] = result([scan(1, 4, 0)])
    other["body"] = PollRequest.model_validate(
        {"calls": [{"cp_id": 4, "waybills": ["EXTRA1"]}], "requested_at": NOW}
    ).model_dump_json()
    event["Records"].append(other)

    # When
    answer = handler_of("poll_shipments", container)(event, CONTEXT)

    # Then the sample's message is retried (its carrier-4 half is committed), the other is not
    assert failures(answer) == [first]
    assert store.records[key].version == 2
    assert store.records[ShipmentKey.of(4, "SBXDL0000001")].version == 2
    assert store.records[ShipmentKey.of(6, "SBXEE0000001")].version == 1


# --------------------------------------------------------------------------- publish


def test_publish_sample_logs_then_publishes_its_outbox() -> None:
    event = sample("publish_events_stream.json")
    outbox = json.loads(event["Records"][0]["dynamodb"]["NewImage"]["outbox"]["S"])
    topic, log = MemoryPublisher(), MemoryEventLog()
    container = bootstrap(
        Settings({}), publisher=topic, event_log=log, publish_rejects=MemoryRejects()
    )

    answer = handler_of("publish_events", container)(event, CONTEXT)

    assert failures(answer) == []
    assert [e.event_id for e in topic.published] == [e["event_id"] for e in outbox]
    assert len(log.events) == len(outbox)


def test_a_failed_publish_fails_its_stream_record_after_logging() -> None:
    event = sample("publish_events_stream.json")
    sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]
    log = MemoryEventLog()
    container = bootstrap(
        Settings({}),
        publisher=MemoryPublisher(fail=True),
        event_log=log,
        publish_rejects=MemoryRejects(),
    )

    answer = handler_of("publish_events", container)(event, CONTEXT)

    assert failures(answer) == [sequence]
    assert log.events  # kept for replay, though not yet published


def _stream_batch(count: int) -> dict[str, Any]:
    """The sample record `count` times, as consecutive writes of one shipment."""
    event = sample("publish_events_stream.json")
    first = event["Records"][0]
    records = []
    for i in range(count):
        record = copy.deepcopy(first)
        record["dynamodb"]["SequenceNumber"] = f"{100 + i}"
        record["dynamodb"]["NewImage"]["outbox_seq"] = {"N": str(10 + i)}
        record["dynamodb"]["OldImage"]["outbox_seq"] = {"N": str(9 + i)}
        records.append(record)
    return {"Records": records}


def test_a_batch_is_logged_and_published_together_and_an_outage_retries_it_whole() -> None:
    # Given three records of one batch
    class Counting(MemoryPublisher):
        calls = 0

        def publish(self, events: Any, audiences: Any = None) -> None:
            self.calls += 1
            super().publish(events, audiences)

    topic, log = Counting(), MemoryEventLog()
    container = bootstrap(
        Settings({}), publisher=topic, event_log=log, publish_rejects=MemoryRejects()
    )
    handle = handler_of("publish_events", container)

    # When it is handled, Then its events go out together (the adapter packs them ten to a
    # PublishBatch request, whatever record they came from), one log item per change
    assert failures(handle(_stream_batch(3), CONTEXT)) == []
    assert topic.calls == 1
    (change,) = log.changes.values()  # the sample's three records carry the same change
    assert len(topic.published) == 3 * len(change)

    # And when SNS is down, every record of the batch is retried, in order
    topic.fail = True
    assert failures(handle(_stream_batch(3), CONTEXT)) == ["100", "101", "102"]


def test_an_outbox_that_does_not_decode_is_set_aside_whole_and_the_batch_goes_on() -> None:
    # Given a record whose outbox is not events at all, then a good one
    batch = _stream_batch(2)
    batch["Records"][0]["dynamodb"]["NewImage"]["outbox"] = {"S": '[{"event_type": "x\u0000"}]'}
    topic, rejects = MemoryPublisher(), MemoryRejects()
    container = bootstrap(
        Settings({}), publisher=topic, event_log=MemoryEventLog(), publish_rejects=rejects
    )

    # When
    answer = handler_of("publish_events", container)(batch, CONTEXT)

    # Then nothing fails, the poison is kept with its content and reason, the good one goes
    assert failures(answer) == []
    ((body, reason),) = rejects.rejected
    assert "x\u0000" in body
    assert reason.startswith("the outbox does not decode")
    assert topic.published


# --------------------------------------------------------------------------- ingest


def test_ingest_sample_registers_the_good_entry_and_sets_aside_the_bad_one() -> None:
    store, rejects = MemoryStore(), MemoryRejects()
    container = bootstrap(Settings({}), clock=lambda: NOW, shipments=store, ingest_rejects=rejects)

    answer = handler_of("ingest_shipments", container)(sample("ingest_shipments_sqs.json"), CONTEXT)

    assert failures(answer) == []
    assert set(store.records) == {ShipmentKey.of(4, "4210610508757")}
    ((body, reason),) = rejects.rejected
    assert json.loads(body)["waybill"] == "4210610508758"
    assert reason.startswith("cp_id:")


def test_ingest_retries_a_message_that_hit_a_storage_failure() -> None:
    class DownStore(MemoryStore):
        def get_many(self, *args: Any, **kwargs: Any) -> Any:
            raise StorageError("DynamoDB BatchGetItem failed: InternalServerError")

        def get(self, key: ShipmentKey) -> Any:
            raise StorageError("DynamoDB GetItem failed: InternalServerError")

    event = sample("ingest_shipments_sqs.json")
    container = bootstrap(
        Settings({}), clock=lambda: NOW, shipments=DownStore(), ingest_rejects=MemoryRejects()
    )

    answer = handler_of("ingest_shipments", container)(event, CONTEXT)

    assert failures(answer) == [event["Records"][0]["messageId"]]


# --------------------------------------------------------------------------- notify


@pytest.mark.parametrize(
    ("channel", "channels", "address"),
    [
        ("whatsapp", ("whatsapp", "sms", "email"), PHONE),
        ("sms", ("sms", "email"), PHONE),
        ("email", ("whatsapp", "sms", "email"), None),
    ],
)
def test_notify_samples_send_one_message_and_fail_a_poison_record_alone(
    channel: Channel, channels: tuple[Channel, ...], address: str | None
) -> None:
    # Given the sample (an out-for-delivery event) and a record that is no event
    event = sample(f"notify_{channel}_sqs.json")
    poison = copy.deepcopy(event["Records"][0])
    poison["messageId"] = "poison"
    poison["body"] = '{"event_type": "nonsense"}'
    event["Records"].append(poison)
    sender, ledger = MemorySender(), MemoryLedger()
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        recipients=MemoryRecipients(recipient(channels=channels)),
        senders={channel: sender},
        deferrer=MemoryDeferrer(),
        ledger=ledger,
        handover=MemoryHandover(),
    )

    # When
    answer = handler_of(f"notify_{channel}", container)(event, CONTEXT)

    # Then one message, the poison reported alone, and its record held by the invocation
    # until its Lambda timeout (the context's remaining time)
    assert failures(answer) == ["poison"]
    (message,) = sender.sent
    assert message.channel == channel
    assert address is None or message.to == address
    record = ledger.delivery(message.event_id, channel)
    assert record is not None
    assert record.state is DeliveryState.SENT
    assert record.attempt_until == NOW + timedelta(
        milliseconds=CONTEXT.get_remaining_time_in_millis()
    )


def test_a_fallback_request_is_read_from_its_message_attributes() -> None:
    # Given the SMS sample, marked as WhatsApp's delivery check
    event = sample("notify_sms_sqs.json")
    event["Records"][0]["messageAttributes"].update(
        {
            "fallback_from": {"stringValue": "whatsapp", "dataType": "String"},
            "fallback_reason": {"stringValue": "timeout", "dataType": "String"},
        }
    )
    sender = MemorySender()
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        recipients=MemoryRecipients(recipient()),
        senders={"sms": sender},
        deferrer=MemoryDeferrer(),
        ledger=MemoryLedger(),
        handover=MemoryHandover(),
    )

    # When
    answer = handler_of("notify_sms", container)(event, CONTEXT)

    # Then WhatsApp's customer got the SMS in its place
    assert failures(answer) == []
    (message,) = sender.sent
    assert message.fallback is not None
    assert (message.fallback.from_channel, message.fallback.reason) == ("whatsapp", "timeout")


def test_whatsapp_events_sample_records_a_delivery_and_a_stop() -> None:
    # Given the sample (a "delivered" report and a "STOP" reply) and the message it reports on
    notify = sample("notify_whatsapp_sqs.json")
    shipment_event = EVENT_ADAPTER.validate_json(notify["Records"][0]["body"])
    ledger = MemoryLedger()
    ledger.begin(
        Delivery(
            event_id=shipment_event.event_id,
            channel="whatsapp",
            key=KEY,
            kind="out_for_delivery",
            language="en",
            event=shipment_event,
            state_at=NOW,
        )
    )
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        recipients=MemoryRecipients(recipient()),
        ledger=ledger,
        handover=MemoryHandover(),
    )
    event = sample("record_whatsapp_events_sqs.json")
    poison = copy.deepcopy(event["Records"][0])
    poison["messageId"] = "poison"
    poison["body"] = '{"whatsAppWebhookEntry": "not json"}'
    event["Records"].append(poison)

    # When
    answer = handler_of("record_whatsapp_events", container)(event, CONTEXT)

    # Then
    assert failures(answer) == ["poison"]
    record = ledger.delivery(shipment_event.event_id, "whatsapp")
    assert record is not None and record.state is DeliveryState.DELIVERED
    assert ledger.opted_out("whatsapp", PHONE)


# --------------------------------------------------------------------------- shipments API


def test_the_api_samples_register_then_show_a_shipment() -> None:
    store = MemoryStore()
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        shipments=store,
        poll_queue=MemoryQueue(),
        event_log=MemoryEventLog(),
        publisher=MemoryPublisher(),
    )
    handle = handler_of("shipments_api", container)

    created = handle(sample("shipments_api_register.json"), CONTEXT)
    shown = handle(sample("shipments_api_get.json"), CONTEXT)
    missing = handle(
        {
            **sample("shipments_api_get.json"),
            "rawPath": "/shipments/4/UNKNOWN",
        },
        CONTEXT,
    )

    assert created["statusCode"] in (200, 201, 207), created["body"]
    assert shown["statusCode"] == 200, shown["body"]
    assert json.loads(shown["body"])["waybill"] == "4210610508756"
    assert missing["statusCode"] == 404


# --------------------------------------------------------------------------- orders


def test_roll_up_samples_join_two_boxes_then_a_tick_tells_the_first_one_shipped() -> None:
    # Given the stream sample (two boxes of one order registered at 06:00, the first shipped
    # at 06:30) and the settle tick sample (06:40)
    orders, topic, ticks = MemoryOrders(), MemoryOrderPublisher(), MemoryScheduler()
    clock = [NOW]
    container = bootstrap(
        Settings({"ORDERS_TABLE_NAME": "unit-orders"}),
        clock=lambda: clock[0],
        orders=orders,
        order_publisher=topic,
        settle_scheduler=ticks,
    )
    handle = handler_of("roll_up_orders", container)

    # When the stream batch is rolled up
    answer = handle(sample("roll_up_orders_stream.json"), CONTEXT)

    # Then the order has both boxes, nothing is told yet, and a tick is asked for 06:40
    assert failures(answer) == []
    record = orders.records["ORD-3BOX"]
    assert record.member_count == 2
    assert topic.published == []
    assert ticks.ticks == [("ORD-3BOX", NOW + timedelta(minutes=10))]

    # And when the tick comes at 06:40, one box of two is told shipped
    clock[0] = NOW + timedelta(minutes=10)
    answer = handle(sample("roll_up_orders_settle_sqs.json"), CONTEXT)
    assert failures(answer) == []
    (event,) = topic.published
    assert isinstance(event, OrderStatusChanged)
    assert (event.stage, event.reached, event.total) == ("shipped", 1, 2)
    assert orders.records["ORD-3BOX"].pending == ()


def test_roll_up_retries_the_records_of_an_order_it_could_not_publish() -> None:
    orders, topic = MemoryOrders(), MemoryOrderPublisher(fail=True)
    container = bootstrap(
        Settings({"ORDERS_TABLE_NAME": "unit-orders"}),
        clock=lambda: NOW + timedelta(hours=1),
        orders=orders,
        order_publisher=topic,
        settle_scheduler=MemoryScheduler(),
    )

    answer = handler_of("roll_up_orders", container)(sample("roll_up_orders_stream.json"), CONTEXT)

    # The windows closed at once (an hour later), the event is kept pending, the batch retried
    assert failures(answer) == ["100", "101", "102"]
    assert [e.event_type for e in orders.records["ORD-3BOX"].pending] == ["order.status_changed"]


def test_the_api_shows_an_order_the_roll_up_keeps() -> None:
    # Given the roll-up's stream sample rolled up into the orders table
    orders = MemoryOrders()
    roll_up = bootstrap(
        Settings({"ORDERS_TABLE_NAME": "unit-orders"}),
        clock=lambda: NOW + timedelta(hours=1),
        orders=orders,
        order_publisher=MemoryOrderPublisher(),
        settle_scheduler=MemoryScheduler(),
    )
    handler_of("roll_up_orders", roll_up)(sample("roll_up_orders_stream.json"), CONTEXT)
    api = bootstrap(
        Settings({"ORDERS_TABLE_NAME": "unit-orders"}),
        clock=lambda: NOW + timedelta(hours=1),
        shipments=MemoryStore(),
        poll_queue=MemoryQueue(),
        event_log=MemoryEventLog(),
        publisher=MemoryPublisher(),
        orders=orders,
    )
    handle = handler_of("shipments_api", api)
    request = sample("shipments_api_get_order.json")

    # When
    shown = handle(request, CONTEXT)
    missing = handle({**request, "rawPath": "/orders/ORD-NONE"}, CONTEXT)
    invisible = handle({**request, "rawPath": "/orders/ORD%E2%80%8B3BOX"}, CONTEXT)

    # Then
    assert shown["statusCode"] == 200, shown["body"]
    body = json.loads(shown["body"])
    assert (body["order_id"], body["total"], body["milestone"]) == ("ORD-3BOX", 2, "placed")
    assert [m["waybill"] for m in body["members"]] == ["SBXORD000001", "SBXORD000002"]
    assert any(entry["what"] == "order.status_changed" for entry in body["timeline"])
    assert missing["statusCode"] == 404
    assert invisible["statusCode"] == 422, invisible["body"]


def _request(method: str, path: str, query: str = "") -> dict[str, Any]:
    event = copy.deepcopy(sample("shipments_api_get.json"))
    event["rawPath"], event["rawQueryString"] = path, query
    event["requestContext"]["http"]["method"] = method
    pairs = [pair.split("=", 1) for pair in query.split("&") if pair]
    event["queryStringParameters"] = {k: ",".join(v for n, v in pairs if n == k) for k, _ in pairs}
    return event


@pytest.mark.parametrize(
    ("method", "path", "query", "status", "fields"),
    [
        # No route: the resolver's own answer, not an ErrorView
        ("GET", "/nothing", "", 404, None),
        ("PUT", "/shipments/4/X1", "", 404, None),
        ("GET", "/shipments/4/a%2Fb/c", "", 404, None),
        # Every broken parameter reported at once, in the route's order
        ("POST", "/shipments/0/X1/replay", "since=soon", 422, ["cp_id", "since"]),
        ("GET", "/shipments/abc/" + "x" * 301, "", 422, ["cp_id", "waybill"]),
        (
            "POST",
            "/shipments/4/X1/replay",
            "since=2026-01-01T00:00:00Z&since=2026-01-02",
            422,
            ["since"],
        ),
        # Lax like the resolver: text to int
        ("GET", "/shipments/+4/X1", "", 404, []),
    ],
)
def test_the_api_router_answers_as_the_resolver_did(
    method: str, path: str, query: str, status: int, fields: list[str] | None
) -> None:
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        shipments=MemoryStore(),
        poll_queue=MemoryQueue(),
        event_log=MemoryEventLog(),
        publisher=MemoryPublisher(),
    )
    handle = handler_of("shipments_api", container)

    response = handle(_request(method, path, query), CONTEXT)

    assert response["statusCode"] == status, response["body"]
    body = json.loads(response["body"])
    if fields is None:
        assert body == {"statusCode": 404, "message": "Not found"}
    else:
        assert [problem["field"] for problem in body["errors"]] == fields


# --------------------------------------------------------------------------- delays


def test_learn_thresholds_sample_learns_from_the_window_and_writes_the_table() -> None:
    # Given an event log with three shipments' first polls, logged today
    log = MemoryEventLog()
    for n in range(3):
        key = ShipmentKey.of(4, f"LT{n}")
        awb = result([scan(1, 4, 0), scan(2, 5, 2), scan(3, 6, 5 + n)])
        log.append([diff(None, key, awb, NOW, CATALOGUE).events])
    thresholds = MemoryThresholds()
    settings = Settings({"DELAY_THRESHOLDS_TABLE_NAME": "thresholds", "DELAY_MIN_SAMPLES": "3"})
    container = bootstrap(settings, clock=lambda: NOW, scan_log=log, thresholds=thresholds)

    # When
    answer = handler_of("learn_thresholds", container)(
        sample("learn_thresholds_schedule.json"), CONTEXT
    )

    # Then
    assert answer["items_read"] == 3
    assert thresholds.table is not None
    assert thresholds.table.dwell_hours(4, 5) is not None


def test_send_ops_digest_sample_e_mails_what_its_queue_collected() -> None:
    # Given a stuck shipment's event in the digest's queue
    key = ShipmentKey.of(4, "OPS1")
    awb = result([scan(1, 5, 0)])
    events = diff(None, key, awb, NOW, CATALOGUE, delays=checks()).events
    inbox = MemoryInbox([e for e in events if e.event_type == "shipment.stuck"])
    sender = MemorySender()
    settings = Settings(
        {"OPS_DIGEST_QUEUE_URL": "ops-queue", "OPS_DIGEST_EMAIL": "ops@example.com"}
    )
    container = bootstrap(settings, clock=lambda: NOW, ops_inbox=inbox, senders={"email": sender})

    # When
    answer = handler_of("send_ops_digest", container)(
        sample("send_ops_digest_schedule.json"), CONTEXT
    )

    # Then
    assert answer["sent"] is True and answer["events"] == 1
    (message,) = sender.sent
    assert "OPS1" in message.body
    assert inbox.messages == {}


# --------------------------------------------------------------------------- change capture

FEED_SETTINGS = {"CHANGE_FEED_ENABLED": "true"}
SAMPLE_WEBHOOK_KEY = "sandbox-webhook-key-0123456789"


def test_feed_sample_reads_its_window_and_hints_what_it_lists() -> None:
    # Given the feed listing one waybill updated five minutes before the sample's time
    event = sample("poll_change_feed_schedule.json")
    at = datetime.fromisoformat(event["scheduled_time"])
    feed, state, hints = FakeFeed(), MemoryFeedState(), MemoryHintQueue()
    feed.orders = [
        UpdatedOrder(
            key=ShipmentKey.of(4, "F1"),
            updated_at=at - timedelta(minutes=5),
            timestamp=None,
            clickpost_status_code=6,
        )
    ]
    container = bootstrap(
        Settings(FEED_SETTINGS),
        clock=lambda: NOW,
        change_feeds=lambda: feed,
        feed_state=state,
        hint_sink=hints,
    )

    # When
    answer = handler_of("poll_change_feed", container)(event, CONTEXT)

    # Then
    assert answer["hinted"] == 1
    assert [h.waybill for b in hints.hints for h in b.hints] == ["F1"]
    assert state.state is not None and state.state.caught_up_to == at


def test_feed_failure_is_recorded_not_raised() -> None:
    feed, state = FakeFeed(), MemoryFeedState()
    feed.fail = ClickpostUnavailableError("503 x4")
    container = bootstrap(
        Settings(FEED_SETTINGS),
        clock=lambda: NOW,
        change_feeds=lambda: feed,
        feed_state=state,
        hint_sink=MemoryHintQueue(),
    )

    answer = handler_of("poll_change_feed", container)(
        sample("poll_change_feed_schedule.json"), CONTEXT
    )

    assert answer["error"] == "unavailable"
    assert state.state is not None and state.state.last_error == "unavailable"


def test_coalesce_sample_polls_each_hinted_waybill_once() -> None:
    store, polls, hints = MemoryStore(), MemoryQueue(), MemoryHintQueue()
    key = ShipmentKey.of(4, "H1")
    store.add(key, due_key(key.pk, CadenceClass.TRANSIT, CADENCE), NOW)
    for _ in range(3):
        hints.send(
            [
                HintBatch(
                    hints=(ChangeHint(cp_id=4, waybill="H1", source="webhook", received_at=NOW),)
                )
            ]
        )
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        shipments=store,
        poll_queue=polls,
        hint_source=hints,
        hint_rejects=MemoryRejects(),
    )

    answer = handler_of("coalesce_hints", container)(
        sample("coalesce_hints_schedule.json"), CONTEXT
    )

    assert (answer["messages"], answer["polled"]) == (3, 1)
    assert [c.waybills for r in polls.sent for c in r.calls] == [("H1",)]


def test_webhook_sample_is_accepted_and_a_wrong_key_is_401_with_no_detail() -> None:
    hints = MemoryHintQueue()
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        hint_sink=hints,
        webhook_keys=StaticWebhookKeys(SAMPLE_WEBHOOK_KEY),
    )
    handle = handler_of("receive_webhooks", container)
    event = sample("receive_webhooks_api.json")
    wrong = copy.deepcopy(event)
    wrong["headers"]["webhook_key"] = "not-the-key-at-all-00000"

    encoded = copy.deepcopy(event)
    encoded["body"] = base64.b64encode(event["body"].encode()).decode()
    encoded["isBase64Encoded"] = True

    accepted = handle(event, CONTEXT)
    refused = handle(wrong, CONTEXT)
    accepted_encoded = handle(encoded, CONTEXT)

    assert accepted["statusCode"] == 200
    assert refused["statusCode"] == 401
    assert json.loads(refused["body"]) == {"message": "Unauthorized"}
    assert accepted_encoded["statusCode"] == 200
    assert len(hints.messages) == 2
