"""The demo journeys, frozen, run through the pipeline; and what a fault-free run gives.

The journeys only advance between cycles (never because of a retried poll), so the events
a fault-free run produces are known in advance: the reference is the diff engine run on
the same sandbox answers, without AWS.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import CATALOGUE
from tests.integration.conftest import START, Pipeline
from trackwatch.logic.diff import diff
from trackwatch.models.clickpost import parse_track_order
from trackwatch.models.keys import ShipmentKey
from trackwatch.models.state import CurrentStatus, ShipmentState
from trackwatch_cli.sandbox import SandboxServer, demo_shipments

CYCLES = 7
FROZEN = 10**9  # journeys advance only when the test says so


def reference(
    cycles: int,
) -> tuple[dict[ShipmentKey, set[str]], dict[ShipmentKey, CurrentStatus | None]]:
    """The events (by shipment) and final statuses of a fault-free run, from the diff
    engine alone."""
    sandbox = SandboxServer(advance_every=FROZEN)
    sandbox.add_demo_shipments()
    states: dict[ShipmentKey, ShipmentState | None] = {}
    ids: dict[ShipmentKey, set[str]] = defaultdict(set)
    for _ in range(cycles):
        for shipment in demo_shipments():
            key = ShipmentKey.of(shipment.cp_id, shipment.waybill)
            answer = sandbox.handle_track_order(
                {
                    "key": "sandbox-key",
                    "username": "sandbox-user",
                    "waybill": key.waybill,
                    "cp_id": str(key.cp_id),
                }
            )
            result = parse_track_order(answer.body).result[key.waybill]
            outcome = diff(states.get(key), key, result, START, CATALOGUE)
            states[key] = outcome.state
            ids[key] |= {e.event_id for e in outcome.events}
        sandbox.advance_all()
    return ids, {k: (s.current if s else None) for k, s in states.items()}


@pytest.fixture
def frozen(pipeline: Pipeline) -> Pipeline:
    pipeline.sandbox.advance_every = FROZEN
    shipments = pipeline.sandbox.add_demo_shipments()
    pipeline.register(*(ShipmentKey.of(s.cp_id, s.waybill) for s in shipments))
    return pipeline


def run(
    pipeline: Pipeline, cycles: int = CYCLES, before_cycle: Callable[[int], None] = lambda _: None
) -> None:
    for n in range(cycles):
        before_cycle(n)
        pipeline.cycle()
        pipeline.sandbox.advance_all()
    # Whatever failed is retried until the stack settles.
    pipeline.runtime.settle(only={"PollShipmentsFunction", "PublishEventsFunction"})


def published(pipeline: Pipeline) -> dict[str, list[dict[str, Any]]]:
    """Every event AllEventsQueue received, by event id (all its copies)."""
    pipeline.drain("AllEventsQueue")
    bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in pipeline.received.get("AllEventsQueue", []):
        bodies[message["body"]["event_id"]].append(message["body"])
    return bodies


def assert_nothing_lost_nothing_forked(pipeline: Pipeline, cycles: int = CYCLES) -> None:
    by_key, expected_status = reference(cycles)
    expected_ids = set().union(*by_key.values())
    pipeline.drain("AllEventsQueue")
    bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in pipeline.received.get("AllEventsQueue", []):
        bodies[message["body"]["event_id"]].append(message["body"])
    # every expected event arrived at least once, and nothing else did
    assert set(bodies) == expected_ids
    # all copies of one change are the same event
    for copies in bodies.values():
        first = json.dumps(copies[0], sort_keys=True)
        assert all(json.dumps(c, sort_keys=True) == first for c in copies), [
            json.dumps(c, sort_keys=True) for c in copies
        ]
    # and every shipment ended where a fault-free run ends: nothing moved backwards
    records = pipeline.records()
    for key, status in expected_status.items():
        assert records[key].state.current == status, key
    assert pipeline.queue_depth("PollDeadLetterQueueUrl") == 0
    assert pipeline.queue_depth("StreamFailureQueueUrl") == 0
