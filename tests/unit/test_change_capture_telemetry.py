"""What change capture tells operators, and what it must never tell them.

The metrics the alarms and the freshness figures rest on (`ChangeFeedFallback`,
`EventLag`, `<Channel>NotificationLag`) are read back from the EMF lines the handlers
print; the webhook receiver's log is read back whole, to show that nothing of a
delivery-detail webhook but its waybill and status code reaches it.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from tests.fakes import (
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
from tests.notify_samples import recipient
from tests.unit.test_handlers import (
    CONTEXT,
    NOW,
    SAMPLE_WEBHOOK_KEY,
    failures,
    handler_of,
    sample,
)
from trackwatch.bootstrap import bootstrap
from trackwatch.config import Settings
from trackwatch.models.change_feed import FeedState

FEED_ON = {"CHANGE_FEED_ENABLED": "true"}


@pytest.fixture
def emf(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> pytest.CaptureFixture[str]:
    """Metrics switched on for the test (the test environment may switch them off)."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    capfd.readouterr()
    return capfd


def _metric_values(output: str, name: str) -> list[tuple[dict[str, Any], list[float]]]:
    """(the line's dimensions, its values) for every EMF line that carries `name`."""
    found = []
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        directive = blob["_aws"]["CloudWatchMetrics"][0]
        if name not in {m["Name"] for m in directive["Metrics"]}:
            continue
        dimensions = {d: blob[d] for ds in directive["Dimensions"] for d in ds}
        values = blob[name] if isinstance(blob[name], list) else [blob[name]]
        found.append((dimensions, [float(v) for v in values]))
    return found


# --------------------------------------------------------------------------- the fallback


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (FeedState(caught_up_to=NOW, last_entry_at=NOW), 0.0),
        (FeedState(caught_up_to=NOW - timedelta(hours=3), last_error="unavailable"), 1.0),
    ],
    ids=["healthy: the sweep", "failing: the full cadence"],
)
def test_the_dispatcher_reports_the_fallback_as_a_metric(
    emf: pytest.CaptureFixture[str], state: FeedState, expected: float
) -> None:
    # Given a feed whose state is healthy, or hours behind after failures
    container = bootstrap(
        Settings(FEED_ON),
        clock=lambda: NOW,
        shipments=MemoryStore(),
        poll_queue=MemoryQueue(),
        feed_state=MemoryFeedState(state),
    )
    event = sample("dispatch_polls_schedule.json")
    event["scheduled_time"] = NOW.isoformat()

    # When the dispatcher runs its minute
    handler_of("dispatch_polls", container)(event, CONTEXT)

    # Then ChangeFeedFallback (what the alarm watches) says which cadence is in force
    ((_, values),) = _metric_values(emf.readouterr().out, "ChangeFeedFallback")
    assert values == [expected]


def test_without_the_feed_there_is_no_fallback_to_report(emf: pytest.CaptureFixture[str]) -> None:
    container = bootstrap(
        Settings({}), clock=lambda: NOW, shipments=MemoryStore(), poll_queue=MemoryQueue()
    )

    handler_of("dispatch_polls", container)(sample("dispatch_polls_schedule.json"), CONTEXT)

    assert _metric_values(emf.readouterr().out, "ChangeFeedFallback") == []


# --------------------------------------------------------------------------- freshness


def test_the_publisher_records_each_event_s_lag_by_event_type(
    emf: pytest.CaptureFixture[str],
) -> None:
    # Given the sample's outbox, its scans recorded by Clickpost 3 and 7 minutes before now
    event = sample("publish_events_stream.json")
    image = event["Records"][0]["dynamodb"]["NewImage"]
    outbox = json.loads(image["outbox"]["S"])
    recorded = {
        "shipment.status_changed": NOW - timedelta(minutes=3),
        "shipment.scan_added": NOW - timedelta(minutes=7),
    }
    for item in outbox:
        item["recorded_at"] = recorded[item["event_type"]].isoformat()
    image["outbox"]["S"] = json.dumps(outbox)
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        publisher=MemoryPublisher(),
        event_log=MemoryEventLog(),
        publish_rejects=MemoryRejects(),
    )

    # When it is published
    answer = handler_of("publish_events", container)(event, CONTEXT)

    # Then EventLag carries each event's lag, in seconds, under its event type
    assert failures(answer) == []
    lags = {
        dims["event_type"]: values
        for dims, values in _metric_values(emf.readouterr().out, "EventLag")
    }
    assert lags == {"shipment.status_changed": [180.0], "shipment.scan_added": [420.0]}


def test_the_notifier_records_the_lag_to_the_customer_s_message(
    emf: pytest.CaptureFixture[str],
) -> None:
    # Given the SMS sample's event, recorded by Clickpost 4 minutes before now
    event = sample("notify_sms_sqs.json")
    body = json.loads(event["Records"][0]["body"])
    body["recorded_at"] = (NOW - timedelta(minutes=4)).isoformat()
    event["Records"][0]["body"] = json.dumps(body)
    sender = MemorySender()
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        recipients=MemoryRecipients(recipient(channels=("sms", "email"))),
        senders={"sms": sender},
        deferrer=MemoryDeferrer(),
        ledger=MemoryLedger(),
        handover=MemoryHandover(),
    )

    # When the SMS goes out
    answer = handler_of("notify_sms", container)(event, CONTEXT)

    # Then SmsNotificationLag holds its 240 seconds, under the message's kind
    assert failures(answer) == []
    assert len(sender.sent) == 1
    ((dims, values),) = _metric_values(emf.readouterr().out, "SmsNotificationLag")
    assert values == [240.0]
    assert dims["kind"]


# --------------------------------------------------------------------------- the webhook log

PHONE = "+919812345678"
NAME = "Rekha Srinivasan"


def _delivery_detail_webhook(**changes: Any) -> dict[str, Any]:
    """The sample webhook as a delivery-detail one: the receiver's name and number in it."""
    event = copy.deepcopy(sample("receive_webhooks_api.json"))
    body = json.loads(event["body"])
    body["remark"] = f"Delivered to {NAME}, {PHONE}"
    body["additional"].update(
        {"receiver_name": NAME, "receiver_phone": PHONE, "ndr_status_description": NAME}
    )
    body.update(changes)
    event["body"] = json.dumps(body)
    return event


@pytest.mark.parametrize(
    ("changes", "status"),
    [({}, 200), ({"waybill": None}, 400)],
    ids=["accepted", "unreadable"],
)
def test_the_receiver_logs_the_waybill_and_status_code_and_nothing_else(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    changes: dict[str, Any],
    status: int,
) -> None:
    # Given a delivery-detail webhook (the receiver's name and number in it)
    container = bootstrap(
        Settings({}),
        clock=lambda: NOW,
        hint_sink=MemoryHintQueue(),
        webhook_keys=StaticWebhookKeys(SAMPLE_WEBHOOK_KEY),
    )
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)

    # When it is received
    event = _delivery_detail_webhook(**changes)
    answer = handler_of("receive_webhooks", container)(event, CONTEXT)

    # Then nothing logged or printed (every record's every field, metrics) holds the person
    out, err = capfd.readouterr()
    logged = [repr(vars(record)) for record in caplog.records]
    assert answer["statusCode"] == status
    for text in (out, err, json.dumps(answer), *logged):
        assert "9812345678" not in text
        assert "Rekha" not in text and "Srinivasan" not in text
    # And the one log line names the shipment and status code when it could read them
    (line,) = [r for r in caplog.records if r.getMessage() == "webhook"]
    if status == 200:
        assert (vars(line)["waybill"], vars(line)["clickpost_status_code"]) == ("4210610508756", 6)
