"""What carrier integrations really send, through the real handlers: one odd value costs its
own waybill at most, never its call-mates, never an event.

The demo's first waybill (SBXDL0000001, carrier 4) is poisoned for every request; it shares
its calls with SBXDL0000002 and SBXDL0000003. Afterwards every event a fault-free run gives
the healthy waybills has been published, no dead-letter queue holds anything, and the
poisoned waybill is handled as the case says: its scans kept (flagged), or the waybill
marked unreadable on its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.journeys import frozen, published, reference, run
from trackwatch.adapters.shipments_table import ITEM_LIMIT_BYTES
from trackwatch.models.keys import ShipmentKey
from trackwatch_cli.sandbox import FaultKind

__all__ = ["frozen"]  # the fixture, for pytest

POISONED = ShipmentKey.of(4, "SBXDL0000001")
CYCLES = 3
DEAD_LETTERS = ("PollDeadLetterQueueUrl", "StreamFailureQueueUrl", "PublishDeadLetterQueueUrl")


def poison_and_run(pipeline: Pipeline, kind: FaultKind, cycles: int = CYCLES, **extra: Any) -> None:
    pipeline.sandbox.set_fault(kind, count=None, waybill=POISONED.waybill, **extra)
    run(pipeline, cycles)


def assert_healthy_untouched(pipeline: Pipeline, cycles: int = CYCLES) -> dict[str, Any]:
    """Every healthy waybill's events arrived, nothing is dead-lettered; the poisoned
    waybill's events, by id, are returned."""
    by_key, statuses = reference(cycles)
    bodies = published(pipeline)
    for key, ids in by_key.items():
        if key != POISONED:
            assert ids <= set(bodies), f"{key}: {len(ids - set(bodies))} events lost"
    records = pipeline.records()
    for key, status in statuses.items():
        if key != POISONED:
            assert records[key].state.current == status, key
    for queue in DEAD_LETTERS:
        assert pipeline.queue_depth(queue) == 0, queue
    return {
        i: copies[0] for i, copies in bodies.items() if copies[0]["waybill"] == POISONED.waybill
    }


@pytest.mark.parametrize(
    ("kind", "quality"),
    [
        (FaultKind.TIMESTAMP_YEAR_ONE, "unreadable"),
        (FaultKind.TIMESTAMP_YEAR_9999, "unreadable"),
        (FaultKind.TIMESTAMP_ZEROS, "unreadable"),
        (FaultKind.TIMESTAMP_DAY_FIRST, "unreadable"),
        (FaultKind.TIMESTAMP_BLANK, "unreadable"),
    ],
)
def test_an_odd_time_keeps_the_scan_flagged_and_the_journey_moving(
    frozen: Pipeline, kind: FaultKind, quality: str
) -> None:
    poison_and_run(frozen, kind)

    events = assert_healthy_untouched(frozen)
    # The poisoned waybill's scans are all there, the odd ones flagged, and its journey
    # ended where a fault-free run ends it (same status), never frozen
    assert any(e["time_quality"] == quality for e in events.values()), kind
    _, statuses = reference(CYCLES)
    expected = statuses[POISONED]
    current = frozen.records()[POISONED].state.current
    assert current is not None and expected is not None
    assert current.clickpost_status_code == expected.clickpost_status_code
    assert frozen.runtime.crashes == []


@pytest.mark.parametrize(
    "kind",
    [
        FaultKind.TIMESTAMP_EPOCH_S,
        FaultKind.TIMESTAMP_EPOCH_MS,
        FaultKind.FUTURE_SCAN,
        FaultKind.INVALID_UTF8,
        FaultKind.DUPLICATE_KEY,
        FaultKind.UNASKED_AWB,
    ],
)
def test_other_odd_answers_are_read_and_cost_nobody_anything(
    frozen: Pipeline, kind: FaultKind
) -> None:
    poison_and_run(frozen, kind)

    assert_healthy_untouched(frozen)
    record = frozen.records()[POISONED]
    assert record.state.current is not None
    assert record.state.unreadable_since is None
    assert frozen.runtime.crashes == []


def test_a_huge_remark_is_clipped_and_the_item_stays_small(frozen: Pipeline) -> None:
    poison_and_run(frozen, FaultKind.HUGE_REMARK, size_bytes=300_000)

    events = assert_healthy_untouched(frozen)
    remarks = [e["scan"]["remark"] for e in events.values() if e["event_type"].endswith("added")]
    assert any("more characters]" in (r or "") for r in remarks)
    assert item_bytes(frozen, POISONED) < 64 * 1024


@pytest.mark.slow
def test_a_first_sight_of_two_thousand_scans_arrives_whole_and_no_item_passes_the_limit(
    frozen: Pipeline,
) -> None:
    # Given no subscriber queues on the topic: moto's SQS works in proportion to a queue's
    # length on every delivery and every receive, so thousands of messages take minutes. The
    # publisher logs each event before it publishes it; what is checked here is the log, and
    # that no publish failed.
    sns = frozen.clients.sns
    topic = frozen.stack.outputs["ShipmentEventsTopicArn"]
    for subscription in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    poison_and_run(frozen, FaultKind.LONG_HISTORY, scans=2000)

    log = frozen.container().event_log
    by_key, _ = reference(CYCLES)
    for key, ids in by_key.items():
        if key != POISONED:
            assert ids <= {e.event_id for e in log.history(key)}, key
    added = [e for e in log.history(POISONED) if e.event_type == "shipment.scan_added"]
    assert len(added) >= 2000
    publishes = [i for i in frozen.runtime.invocations if i.function == "PublishEventsFunction"]
    assert publishes and all(i.failed == 0 for i in publishes)
    for queue in DEAD_LETTERS:
        assert frozen.queue_depth(queue) == 0, queue
    assert item_bytes(frozen, POISONED) < ITEM_LIMIT_BYTES / 2


@pytest.mark.parametrize(
    ("kind", "extra", "reason"),
    [
        (FaultKind.DEEP_NESTING, {}, "no answer: malformed"),
        (FaultKind.HUGE_BODY, {"size_bytes": 50_000_000}, "no answer: too_large"),
    ],
)
def test_an_answer_that_cannot_be_read_costs_only_its_own_waybill(
    frozen: Pipeline, kind: FaultKind, extra: dict[str, Any], reason: str
) -> None:
    poison_and_run(frozen, kind, **extra)

    assert_healthy_untouched(frozen)
    state = frozen.records()[POISONED].state
    assert state.unreadable_since is not None
    assert state.unreadable_reason is not None and reason in state.unreadable_reason
    assert frozen.runtime.crashes == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "extra"), [(FaultKind.HANG, {}), (FaultKind.DRIP, {"delay_s": 0.3})]
)
def test_a_waybill_that_never_answers_holds_its_call_mates_back_once_at_most(
    frozen: Pipeline, kind: FaultKind, extra: dict[str, Any]
) -> None:
    # (Each hung call lasts the tests' three-second call budget.)
    poison_and_run(frozen, kind, cycles=2, **extra)

    assert_healthy_untouched(frozen, cycles=2)
    state = frozen.records()[POISONED].state
    assert state.unreadable_reason == "no answer: unavailable"
    frozen.sandbox.clear_faults()


def item_bytes(pipeline: Pipeline, key: ShipmentKey) -> int:
    """The stored item's size, roughly as DynamoDB counts it (names and values)."""
    item = pipeline.clients.dynamodb.get_item(
        TableName=pipeline.stack.outputs["ShipmentsTableName"], Key={"pk": {"S": key.pk}}
    )["Item"]
    return sum(len(name) + len(str(value)) for name, value in item.items())
