"""The sample events under events/ (for `sam local invoke`) drive the real handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT, Pipeline
from trackwatch.logic.cadence import epoch_minute
from trackwatch.models.events import EVENT_ADAPTER
from trackwatch.models.messages import PollRequest, ScheduleTick

EVENTS = ROOT / "events"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def test_the_schedule_sample_dispatches_its_minute(pipeline: Pipeline) -> None:
    event = sample("dispatch_polls_schedule.json")
    result = pipeline.runtime.invoke("DispatchPollsFunction", event)
    tick = ScheduleTick.model_validate(event)
    assert result["minute"] == epoch_minute(tick.at(pipeline.clock))


def test_the_sqs_sample_polls_its_shipments(pipeline: Pipeline) -> None:
    # Given the shipments the sample asks about, known to the table and the sandbox
    event = sample("poll_shipments_sqs.json")
    request = PollRequest.model_validate_json(event["Records"][0]["body"])
    keys = [key for call in request.calls for key in call.keys]
    for key in keys:
        pipeline.sandbox.add_shipment(key.waybill, key.cp_id, "delivered_smoothly")
    pipeline.register(*keys)

    # When the poll worker gets the sample batch
    result = pipeline.runtime.invoke("PollShipmentsFunction", event)

    # Then no record failed and every shipment now has a status
    assert result == {"batchItemFailures": []}
    records = pipeline.container().shipments.get_many(keys)
    assert all(r.state.current is not None for r in records.values())


def test_the_stream_sample_publishes_its_outbox(pipeline: Pipeline) -> None:
    event = sample("publish_events_stream.json")
    outbox = json.loads(event["Records"][0]["dynamodb"]["NewImage"]["outbox"]["S"])

    result = pipeline.runtime.invoke("PublishEventsFunction", event)

    assert result == {"batchItemFailures": []}
    received = pipeline.drain("AllEventsQueue")
    # (The sample's events predate time_quality: they are published with its default; the
    # publisher stamps when it published them.)
    as_published = [EVENT_ADAPTER.validate_python(m["body"]) for m in received]
    assert {e.published_at for e in as_published} == {pipeline.clock}
    assert [e.model_copy(update={"published_at": None}) for e in as_published] == [
        EVENT_ADAPTER.validate_python(e) for e in outbox
    ]
    assert {m["body"]["waybill"] for m in received} == {"4210610508756"}


def test_every_function_has_a_sample_event(pipeline: Pipeline) -> None:
    samples = [path.stem for path in EVENTS.glob("*.json")]
    for spec in pipeline.stack.functions.values():
        folder = Path(spec.code_dir).name
        assert any(s.startswith(folder + "_") for s in samples), f"no sample event for {folder}"


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_the_notifier_samples_message_the_customer(pipeline: Pipeline, channel: str) -> None:
    # Given the sample's shipment registered with a phone number and an e-mail address, the
    # sample's channel first
    from trackwatch.models.registration import Registration

    registration = Registration(
        waybill="4210610508756",
        cp_id=4,
        phone="+919876543210",
        email="asha@example.com",
        channels=(channel, "email"),  # type: ignore[arg-type]
    )
    pipeline.container().registration_service.register([registration])
    # (The pipeline's clock reads 11:30 in India: not quiet hours.)

    # When the notifier gets the sample batch
    function = "NotifySmsFunction" if channel == "sms" else "NotifyWhatsAppFunction"
    result = pipeline.runtime.invoke(function, sample(f"notify_{channel}_sqs.json"))

    # Then the customer got one out-for-delivery message (through the local sender)
    assert result == {"batchItemFailures": []}
    sender = getattr(pipeline.local.senders, channel)
    (message,) = sender.messages
    assert message.to == "+919876543210"
    assert "out for delivery" in message.body.lower()


def test_the_whatsapp_events_sample_is_recorded(pipeline: Pipeline) -> None:
    # When the consumer gets the sample (a report on a message we never sent, and a STOP)
    result = pipeline.runtime.invoke(
        "RecordWhatsAppEventsFunction", sample("record_whatsapp_events_sqs.json")
    )

    # Then nothing failed
    assert result == {"batchItemFailures": []}


def test_the_change_capture_samples_hint_then_poll(pipeline: Pipeline) -> None:
    # Given the webhook sample's shipment, tracked (the sample carries the local stack's key)
    from trackwatch.models.keys import ShipmentKey

    key = ShipmentKey.of(4, "4210610508756")
    pipeline.sandbox.add_shipment(key.waybill, key.cp_id, "delivered_smoothly")
    pipeline.register(key)

    # When the webhook arrives, then the window closes, then the feed is read
    hooked = pipeline.runtime.invoke("ReceiveWebhooksFunction", sample("receive_webhooks_api.json"))
    depth = pipeline.queue_depth("HintQueueUrl")
    window = pipeline.runtime.invoke(
        "CoalesceHintsFunction", sample("coalesce_hints_schedule.json")
    )
    feed = pipeline.runtime.invoke(
        "PollChangeFeedFunction", sample("poll_change_feed_schedule.json")
    )

    # Then one hint, one poll of the shipment, and the feed read (it lists nothing here)
    assert hooked["statusCode"] == 200
    assert depth == 1
    assert (window["messages"], window["polled"], window["poll_messages"]) == (1, 1, 1)
    assert pipeline.queue_depth("PollQueueUrl") == 1
    assert feed["error"] is None and feed["windows"] == 1
