"""The shipments API and IngestQueue over moto: every route, every bad input, the ingest path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.factories import CADENCE
from tests.integration.conftest import START
from tests.integration.shipments_stack import ROOT, ShipmentsStack, shipments_stack
from trackwatch.logic.poll_decision import stop
from trackwatch.models.events import Invalid, NdrRaised, event_id
from trackwatch.models.messages import PollRequest
from trackwatch.models.record import StateChange

__all__ = ["shipments_stack"]  # the fixture, for pytest

GOOD = {"waybill": "AWB-1", "cp_id": 4, "phone": "98765 43210", "email": "a@example.com"}


# --- POST /shipments ------------------------------------------------------------------


def test_register_creates_once_and_updates_contacts_in_place(
    shipments_stack: ShipmentsStack,
) -> None:
    # Given a new shipment
    api = shipments_stack

    # When it is registered, registered again, then with other preferences
    created = api.http("POST", "/shipments", GOOD)
    version = api.record(4, "AWB-1").version  # type: ignore[union-attr]
    again = api.http("POST", "/shipments", GOOD)
    unchanged_version = api.record(4, "AWB-1").version  # type: ignore[union-attr]
    updated = api.http(
        "POST", "/shipments", {**GOOD, "language": "hi", "opt_out": ["sms"], "metadata": {"a": "b"}}
    )

    # Then one item, created once, never rewritten when nothing changed
    assert created.status == 201 and created.body["outcome"] == "created"
    assert again.status == 200 and again.body["outcome"] == "unchanged"
    assert updated.status == 200 and updated.body["outcome"] == "updated"
    assert api.item_count() == 1
    assert unchanged_version == version
    record = api.record(4, "AWB-1")
    assert record is not None
    assert record.version == version + 1
    assert record.contact.phone == "+919876543210"
    assert record.contact.language == "hi"
    assert record.contact.opt_out == frozenset({"sms"})
    assert record.metadata == {"a": "b"}
    assert record.due_key is not None and record.due_key.startswith("new#")


def test_a_batch_stores_the_good_and_reports_each_bad_entry(
    shipments_stack: ShipmentsStack,
) -> None:
    # Given a batch with two good entries and two bad ones
    batch = [
        {"waybill": "B-1", "cp_id": 4},
        {"waybill": "B 2", "cp_id": 4},
        {"waybill": "B-3", "cp_id": "x", "email": "nope"},
        {"waybill": "B-4", "cp_id": 5, "language": "hi"},
    ]

    # When it is posted
    answer = shipments_stack.http("POST", "/shipments", batch)

    # Then 207, with each entry's outcome, and only the good ones stored
    assert answer.status == 207
    assert (answer.body["created"], answer.body["rejected"]) == (2, 2)
    results = answer.body["results"]
    assert [r["outcome"] for r in results] == ["created", "rejected", "rejected", "created"]
    assert results[1]["errors"] == [{"field": "waybill", "rule": "must not contain whitespace"}]
    assert {e["field"] for e in results[2]["errors"]} == {"cp_id", "email"}
    assert shipments_stack.item_count() == 2


@pytest.mark.parametrize(
    ("body", "status", "field", "rule"),
    [
        ({"waybill": "", "cp_id": 4}, 422, "waybill", "must not be empty"),
        ({"waybill": "W" * 101, "cp_id": 4}, 422, "waybill", "must be at most 100 characters"),
        ({"waybill": "A,B", "cp_id": 4}, 422, "waybill", "must not contain a comma"),
        ({"waybill": "A B", "cp_id": 4}, 422, "waybill", "must not contain whitespace"),
        ({"waybill": "A", "cp_id": 0}, 422, "cp_id", "must be a positive integer"),
        ({"waybill": "A", "cp_id": "four"}, 422, "cp_id", "must be a positive integer"),
        ({"waybill": "A", "cp_id": 4, "phone": "12345"}, 422, "phone", "not a valid phone number"),
        ({"waybill": "A", "cp_id": 4, "email": "a@"}, 422, "email", "not a valid e-mail address"),
        ({"waybill": "A", "cp_id": 4, "language": "xx"}, 422, "language", "must be one of en, hi"),
        ("{this is not json", 400, "body", "not valid JSON"),
        ("[1, 2", 400, "body", "not valid JSON"),
        ("17", 422, "body", "must be a JSON object or a list of objects"),
        (
            [{"waybill": f"W{i}", "cp_id": 4} for i in range(101)],
            422,
            "body",
            "a batch holds at most 100",
        ),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_the_rule_and_stores_nothing(
    shipments_stack: ShipmentsStack, body: object, status: int, field: str, rule: str
) -> None:
    # When a bad body is posted
    answer = shipments_stack.http("POST", "/shipments", body)  # type: ignore[arg-type]

    # Then it is refused with the field and the rule, and nothing is stored
    assert answer.status == status, answer.body
    (problem,) = answer.body["errors"]
    assert problem["field"] == field
    assert problem["rule"].startswith(rule), problem
    assert answer.body["message"].startswith(f"{field}: {rule}")
    assert shipments_stack.item_count() == 0


# --- GET, DELETE, refresh, replay -------------------------------------------------------


def test_get_shows_status_timeline_and_why_tracking_stopped(
    shipments_stack: ShipmentsStack,
) -> None:
    api = shipments_stack
    api.http("POST", "/shipments", {**GOOD, "order_id": "ORD-7"})

    shown = api.http("GET", "/shipments/4/AWB-1")
    stopped = api.http("DELETE", "/shipments/4/AWB-1")
    after = api.http("GET", "/shipments/4/AWB-1")

    assert shown.status == 200
    assert shown.body["tracked"] is True and shown.body["order_id"] == "ORD-7"
    assert shown.body["status"] is None and shown.body["timeline"] == []
    assert shown.body["ndr"] == {"attempts": 0, "last": None}
    assert shown.body["has_phone"] is True and "phone" not in shown.body
    assert stopped.status == 200 and stopped.body["stopped"]["reason"] == "stopped by request"
    assert after.body["tracked"] is False
    assert after.body["stopped"]["reason"] == "stopped by request"


def test_unknown_shipments_and_bad_paths_are_4xx(shipments_stack: ShipmentsStack) -> None:
    api = shipments_stack
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/refresh"), ("POST", "/replay")):
        assert api.http(method, f"/shipments/4/NOPE{suffix}").status == 404
        bad_cp_id = api.http(method, f"/shipments/zero/NOPE{suffix}")
        assert bad_cp_id.status == 422
        assert bad_cp_id.body["errors"] == [
            {"field": "cp_id", "rule": "must be a positive integer"}
        ]
        spaced = api.http(method, f"/shipments/4/A%20B{suffix}")
        assert spaced.status == 422
        assert spaced.body["errors"] == [
            {"field": "waybill", "rule": "must not contain whitespace"}
        ]


def test_delete_stops_tracking_with_a_ttl_and_leaves_the_due_index(
    shipments_stack: ShipmentsStack,
) -> None:
    api = shipments_stack
    api.http("POST", "/shipments", GOOD)

    first = api.http("DELETE", "/shipments/4/AWB-1")
    version = api.record(4, "AWB-1").version  # type: ignore[union-attr]
    second = api.http("DELETE", "/shipments/4/AWB-1")

    client = boto3.client("dynamodb", region_name="us-east-1")
    item = client.get_item(
        TableName=api.stack.outputs["ShipmentsTableName"], Key={"pk": {"S": "4#AWB-1"}}
    )["Item"]
    assert first.status == second.status == 200
    assert "due_key" not in item
    assert item["stop_reason"]["S"] == "stopped by request"
    # the stack runs on a simulated clock that starts at START: a stopped item lives 30 days
    # (the cadence's stopped_retention_days) from the stop, on that clock, not the wall's
    assert int(item["expires_at"]["N"]) == int((START + timedelta(days=30)).timestamp())
    assert api.record(4, "AWB-1").version == version  # type: ignore[union-attr]
    assert shipments_stack.local.container().shipments.active() == []


def test_refresh_queues_a_poll_by_the_dispatch_path(shipments_stack: ShipmentsStack) -> None:
    api = shipments_stack
    api.http("POST", "/shipments", GOOD)

    answer = api.http("POST", "/shipments/4/AWB-1/refresh")

    assert answer.status == 202
    (message,) = api.messages("PollQueueUrl")
    request = PollRequest.model_validate_json(message["body"])
    assert request.reason == "refresh"
    assert [(c.cp_id, c.waybills) for c in request.calls] == [(4, ("AWB-1",))]
    # a stopped shipment is not polled
    api.http("DELETE", "/shipments/4/AWB-1")
    assert api.http("POST", "/shipments/4/AWB-1/refresh").status == 409
    assert api.messages("PollQueueUrl") == []


def test_replay_publishes_the_logged_events_again_with_their_ids(
    shipments_stack: ShipmentsStack,
) -> None:
    # Given a shipment whose change (two events) went through the stream publisher
    api = shipments_stack
    api.http("POST", "/shipments", GOOD)
    record = api.record(4, "AWB-1")
    assert record is not None
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    events = (
        Invalid(
            event_id=event_id(4, "AWB-1", "shipment.invalid", "x"),
            waybill="AWB-1",
            cp_id=4,
            order_id=None,
            courier_name=None,
            occurred_at=now - timedelta(hours=2),
            detected_at=now,
        ),
        NdrRaised(
            event_id=event_id(4, "AWB-1", "shipment.ndr_raised", "y"),
            waybill="AWB-1",
            cp_id=4,
            order_id=None,
            courier_name=None,
            occurred_at=now - timedelta(hours=1),
            detected_at=now,
            checkpoint_id=9,
            attempt=1,
            ndr_bucket_code=2,
            ndr_description="Door locked",
            location="Pune",
            remark=None,
        ),
    )
    shipments_stack.local.container().shipments.commit(
        StateChange(
            key=record.key,
            expected_version=record.version,
            state=record.state.model_copy(update={"ndr_attempts": 1}),
            events=events,
            due_key=record.due_key,
        )
    )
    api.runtime.settle(only={"PublishEventsFunction"})
    published = api.messages("AllEventsQueueUrl")

    # When the shipment is replayed
    answer = api.http("POST", "/shipments/4/AWB-1/replay")
    replayed = api.messages("AllEventsQueueUrl")

    # Then the subscriber gets the same events again: same ids, same bodies
    assert answer.status == 200
    assert answer.body["replayed"] == 2
    assert answer.body["event_ids"] == [e.event_id for e in events]
    assert sorted(m["body"] for m in replayed) == sorted(m["body"] for m in published)
    assert {json.loads(m["body"])["event_id"] for m in replayed} == {e.event_id for e in events}
    assert {m["attributes"]["event_type"] for m in replayed} == {
        "shipment.invalid",
        "shipment.ndr_raised",
    }
    # and GET shows the NDR from the log
    shown = api.http("GET", "/shipments/4/AWB-1")
    assert shown.body["ndr"]["attempts"] == 1
    assert shown.body["ndr"]["last"]["ndr_description"] == "Door locked"
    # replay since a time sends only what happened from then on
    since = api.http(
        "POST",
        "/shipments/4/AWB-1/replay",
        query={"since": (now - timedelta(minutes=90)).isoformat()},
    )
    assert since.body["event_ids"] == [events[1].event_id]
    # a stop writes nothing to the outbox, so nothing is published for it
    stopped = api.record(4, "AWB-1")
    assert stopped is not None
    shipments_stack.local.container().shipments.commit(stop(stopped, "test", now, CADENCE))
    api.runtime.settle(only={"PublishEventsFunction"})
    assert len(api.messages("AllEventsQueueUrl")) == 1  # the one from `since`


# --- IngestQueue ---------------------------------------------------------------------


def test_ingest_registers_what_it_can_and_dead_letters_the_rest_at_once(
    shipments_stack: ShipmentsStack,
) -> None:
    # Given an IngestQueue with a good message, a mixed batch, and one that is not JSON
    api = shipments_stack
    api.send_to_ingest(json.dumps(GOOD))
    api.send_to_ingest(
        json.dumps([{"waybill": "I-1", "cp_id": 4}, {"waybill": "I-2", "cp_id": 4, "email": "x@"}])
    )
    api.send_to_ingest("not json at all")
    api.send_to_ingest(json.dumps(GOOD))  # the same registration again

    # When the ingest function consumes the queue
    delivered = api.ingest()

    # Then each message was received once, the good registrations stored once
    assert delivered == 4
    assert api.item_count() == 2
    assert api.record(4, "I-1") is not None and api.record(4, "I-2") is None
    # and what cannot be accepted is on the dead-letter queue at once, with the reason
    dead = api.messages("IngestDeadLetterQueueUrl")
    reasons = sorted(m["attributes"]["rejected_because"] for m in dead)
    assert reasons[0] == "body: not valid JSON"
    assert reasons[1].startswith("email: not a valid e-mail address")
    assert {m["body"] for m in dead} >= {"not json at all"}
    assert json.loads(next(m["body"] for m in dead if m["body"] != "not json at all")) == {
        "waybill": "I-2",
        "cp_id": 4,
        "email": "x@",
    }
    assert api.messages("IngestQueueUrl") == []


# --- the sample events under events/ (for `sam local invoke`) -------------------------


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
    return loaded


def test_the_api_samples_register_and_show_a_shipment(shipments_stack: ShipmentsStack) -> None:
    # When the register sample, then the show sample, go to the API function
    registered = shipments_stack.runtime.invoke(
        "ShipmentsApiFunction", sample("shipments_api_register.json")
    )
    shown = shipments_stack.runtime.invoke("ShipmentsApiFunction", sample("shipments_api_get.json"))

    # Then the good entry is stored, the bad one reported, and the shipment shown
    assert registered["statusCode"] == 207
    outcomes = [r["outcome"] for r in json.loads(registered["body"])["results"]]
    assert outcomes == ["created", "rejected"]
    assert shown["statusCode"] == 200
    assert json.loads(shown["body"])["language"] == "hi"


def test_the_ingest_sample_registers_and_dead_letters(shipments_stack: ShipmentsStack) -> None:
    result = shipments_stack.runtime.invoke(
        "IngestShipmentsFunction", sample("ingest_shipments_sqs.json")
    )

    assert result == {"batchItemFailures": []}
    assert shipments_stack.record(4, "4210610508757") is not None
    (dead,) = shipments_stack.messages("IngestDeadLetterQueueUrl")
    assert dead["attributes"]["rejected_because"].startswith("cp_id: must be a positive integer")
