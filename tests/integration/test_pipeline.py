"""End to end over moto: shipments in the table → dispatch → poll → publish → subscriber queues."""

from __future__ import annotations

import itertools
from collections import Counter

from tests.integration.conftest import Pipeline
from tests.notify_samples import EMAIL, PHONE, RULES
from trackwatch.models.events import StatusChanged
from trackwatch.models.keys import ShipmentKey

CUSTOMER_FACING = {"shipment.status_changed", "shipment.ndr_raised", "shipment.stuck"}


def demo_keys(pipeline: Pipeline) -> list[ShipmentKey]:
    shipments = pipeline.sandbox.add_demo_shipments()
    return [ShipmentKey.of(s.cp_id, s.waybill) for s in shipments]


def test_journeys_flow_to_the_right_subscriber_queues(pipeline: Pipeline) -> None:
    # Given the demo shipments registered for SMS and e-mail
    keys = demo_keys(pipeline)
    pipeline.register(*keys, phone=PHONE, email=EMAIL, channels=("sms", "email"))

    # When every shipment is polled until every journey has ended
    for _ in range(8):
        pipeline.cycle()

    # Then every subscriber got events, each queue only what its filter policy passes
    everything = pipeline.events("AllEventsQueue")
    sms = pipeline.drain("SmsQueue")
    email = pipeline.drain("EmailQueue")
    types = Counter(e.event_type for e in everything)
    assert types["shipment.scan_added"] > 20
    assert types["shipment.status_changed"] >= len(keys) - 1
    assert types["shipment.ndr_raised"] >= 3
    assert types["shipment.stuck"] == 1
    assert types["shipment.unstuck"] == 1
    assert types["shipment.edd_changed"] >= 1
    assert types["shipment.invalid"] == 1
    # (routed: the notifier queues get only the events the rules make a message of)
    news = {e.event_id for e in everything if RULES.kind_of(e, "sms") is not None}
    assert {m["body"]["event_type"] for m in sms} <= CUSTOMER_FACING
    assert {m["body"]["event_id"] for m in sms} == news
    assert {m["body"]["event_id"] for m in email} == news
    assert all(m["attributes"]["notify"] == '["email", "sms"]' for m in sms)
    # each change was published once, with the routing attributes subscribers filter on
    assert len({e.event_id for e in everything}) == len(everything)
    delivered = [
        m
        for m in sms
        if m["body"]["event_type"] == "shipment.status_changed"
        and m["attributes"].get("is_terminal") == "true"
    ]
    assert delivered
    assert all(m["attributes"]["cp_id"] in {"4", "5", "6"} for m in sms)

    # and the delivered shipments ended delivered, whatever came late
    records = pipeline.records()
    smooth = records[ShipmentKey.of(4, "SBXDL0000001")]
    assert smooth.state.current is not None
    assert smooth.state.current.clickpost_status_code == 8
    late = records[ShipmentKey.of(5, "SBXBD0000002")]
    assert late.state.current is not None
    assert late.state.current.is_terminal


def test_an_unchanged_shipment_costs_no_write_and_no_event(pipeline: Pipeline) -> None:
    # Given a delivered shipment whose journey has ended
    keys = demo_keys(pipeline)
    smooth = ShipmentKey.of(4, "SBXDL0000001")
    pipeline.register(smooth)
    for _ in range(8):
        pipeline.cycle()
    pipeline.events()
    version = pipeline.records()[smooth].version

    # When it is polled again and Clickpost has nothing new
    pipeline.cycle()

    # Then nothing was written and nothing published
    assert pipeline.records()[smooth].version == version
    assert pipeline.events() == []
    assert keys


def test_status_changes_carry_both_buckets(pipeline: Pipeline) -> None:
    key = ShipmentKey.of(4, "SBXDL0000001")
    pipeline.sandbox.add_shipment(key.waybill, key.cp_id, "delivered_smoothly")
    pipeline.register(key)
    for _ in range(6):
        pipeline.cycle()
    changes = [e for e in pipeline.events() if isinstance(e, StatusChanged)]
    changes.sort(key=lambda e: e.occurred_at)
    assert changes[0].from_bucket is None
    for before, after in itertools.pairwise(changes):
        assert after.from_bucket == before.to_bucket
    assert changes[-1].is_terminal
