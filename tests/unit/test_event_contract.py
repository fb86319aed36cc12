"""The event contract: the committed JSON Schema matches the models, and events round-trip."""

from __future__ import annotations

import json
from pathlib import Path

from tests.factories import CATALOGUE, NOW, result, scan
from trackwatch.logic.diff import diff
from trackwatch.models.events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    ORDER_EVENT_TYPES,
    _Event,
    _OrderEvent,
    event_type_name,
    routing_attributes,
)
from trackwatch.models.keys import ShipmentKey
from trackwatch_cli.main import render_events_schema

ROOT = Path(__file__).parents[2]


def test_committed_schema_matches_the_models() -> None:
    committed = (ROOT / "docs" / "events.schema.json").read_text(encoding="utf-8")
    assert committed == render_events_schema(), (
        "docs/events.schema.json is stale: run `uv run trackwatch schema`"
    )


def test_every_event_type_is_in_the_schema_and_documented() -> None:
    schema = json.loads(render_events_schema())
    documented = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    models: list[type[_Event] | type[_OrderEvent]] = [*EVENT_TYPES, *ORDER_EVENT_TYPES]
    for model in models:
        name = event_type_name(model)
        assert model.__name__ in schema["$defs"]
        assert f"`{name}`" in documented, f"docs/events.md does not describe {name}"


def test_events_round_trip_through_json_unchanged() -> None:
    awb = result([scan(1, 5, 0), scan(2, 9, 3)], is_stuck=True, ndr={"ndr_bucket_code": 1})
    for event in diff(None, ShipmentKey.of(4, "RT1"), awb, NOW, CATALOGUE).events:
        again = EVENT_ADAPTER.validate_json(EVENT_ADAPTER.dump_json(event))
        assert again == event
        body = json.loads(EVENT_ADAPTER.dump_json(event))
        assert body["occurred_at"].endswith("+05:30")
        assert body["schema_version"] == 1


def test_routing_attributes_carry_what_filter_policies_need() -> None:
    awb = result([scan(1, 8, 0)])
    events = diff(None, ShipmentKey.of(4, "RT2"), awb, NOW, CATALOGUE).events
    status = next(e for e in events if e.event_type == "shipment.status_changed")
    assert routing_attributes(status) == {
        "event_type": "shipment.status_changed",
        "cp_id": 4,
        "schema_version": 1,
        "clickpost_status_code": 8,
        "clickpost_status_bucket": 6,
        "is_terminal": True,
    }
