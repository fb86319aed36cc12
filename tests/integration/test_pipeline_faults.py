"""Faults at every step; afterwards every expected event reached AllEventsQueue at least once,
all copies of one change share one event_id (and one body), and no state moved backwards.

The journeys only advance between cycles (never because of a retried poll), so the events
a fault-free run produces are known in advance: the reference is the diff engine run on
the same sandbox answers, without AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import Pipeline
from tests.integration.journeys import assert_nothing_lost_nothing_forked, frozen, run
from trackwatch.adapters.events_topic import EventsTopic
from trackwatch.adapters.shipments_table import ShipmentsTable
from trackwatch.errors import PublishError
from trackwatch_cli.sandbox import FaultKind

__all__ = ["frozen"]  # the fixture, for pytest


def test_fault_free_run_matches_the_reference(frozen: Pipeline) -> None:
    run(frozen)
    assert_nothing_lost_nothing_forked(frozen)
    assert frozen.runtime.crashes == []


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        (FaultKind.RATE_LIMITED, {"retry_after": "0"}),
        (FaultKind.SERVER_ERROR, {}),
        (FaultKind.UNAVAILABLE, {}),
        (FaultKind.SLOW, {"delay_s": 1.0}),
        (FaultKind.MALFORMED, {}),
        (FaultKind.REJECTED, {"meta_status": 354}),
    ],
)
def test_clickpost_faults(frozen: Pipeline, kind: FaultKind, extra: dict[str, Any]) -> None:
    # Given Clickpost misbehaving on the first requests of several cycles
    def misbehave(n: int) -> None:
        if n in (0, 2, 4):
            frozen.sandbox.set_fault(kind, count=2, **extra)

    # When the pipeline runs through them
    run(frozen, before_cycle=misbehave)

    # Then nothing is lost or forked
    assert_nothing_lost_nothing_forked(frozen)


def test_crash_after_the_state_write_before_publishing(
    frozen: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a publisher that crashes on its first three batches
    original = EventsTopic.publish
    crashes = iter(range(3))

    def crashing(self: EventsTopic, events: Any, audiences: Any = None) -> None:
        if next(crashes, None) is not None:
            raise PublishError("SNS is down")
        original(self, events, audiences)

    monkeypatch.setattr(EventsTopic, "publish", crashing)
    run(frozen)
    assert_nothing_lost_nothing_forked(frozen)


def test_crash_after_commit_before_the_message_is_deleted(
    frozen: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a poll worker that dies right after writing a shipment, twice
    original = ShipmentsTable.commit
    crashes = iter(range(2))

    def commit_then_die(self: ShipmentsTable, change: Any) -> None:
        original(self, change)
        if next(crashes, None) is not None:
            raise RuntimeError("worker killed")

    monkeypatch.setattr(ShipmentsTable, "commit", commit_then_die)
    run(frozen)
    assert frozen.runtime.crashes
    assert_nothing_lost_nothing_forked(frozen)


def test_publish_batch_with_some_entries_failed(
    frozen: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS rejecting every other entry of the first batches
    client = frozen.clients.sns
    original = client.publish_batch
    rejections = iter(range(4))

    def partly(**kwargs: Any) -> Any:
        entries = kwargs["PublishBatchRequestEntries"]
        if next(rejections, None) is None:
            return original(**kwargs)
        kept = entries[::2]
        answer: dict[str, Any] = (
            dict(original(**{**kwargs, "PublishBatchRequestEntries": kept})) if kept else {}
        )
        answer["Failed"] = [
            {"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in entries[1::2]
        ]
        return answer

    monkeypatch.setattr(client, "publish_batch", partly)
    run(frozen)
    assert_nothing_lost_nothing_forked(frozen)


def test_two_pollers_on_one_shipment(frozen: Pipeline) -> None:
    # Given every shipment dispatched twice before any worker runs
    def double(n: int) -> None:
        frozen.runtime.tick(frozen.clock, scope="all")

    run(frozen, before_cycle=double)
    assert_nothing_lost_nothing_forked(frozen)


def test_dynamodb_throttling(frozen: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given DynamoDB throttling the first reads and writes, past boto3's own retries
    # (fewer times than PollQueue's maxReceiveCount: the local runtime retries at once,
    # where Lambda would wait out the visibility timeout)
    client = frozen.clients.dynamodb
    throttles = iter(range(3))

    def throttled(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(**kwargs: Any) -> Any:
            if next(throttles, None) is not None:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ProvisionedThroughputExceededException",
                            "Message": "slow",
                        }
                    },
                    "UpdateItem",
                )
            return method(**kwargs)

        return call

    monkeypatch.setattr(client, "update_item", throttled(client.update_item))
    monkeypatch.setattr(client, "batch_get_item", throttled(client.batch_get_item))
    run(frozen)
    assert_nothing_lost_nothing_forked(frozen)


def test_sqs_redelivery_of_a_processed_message(frozen: Pipeline) -> None:
    # Given poll messages that were processed but whose deletion was lost
    source = frozen.stack.sources_of("PollShipmentsFunction")[0]

    def lose_deletes(n: int) -> None:
        if n not in (1, 3):
            return
        frozen.runtime.tick(frozen.clock, scope="all")
        sqs = frozen.clients.sqs
        assert source.queue_url is not None
        got = sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=10)["Messages"]
        frozen.runtime.invoke(source.function, frozen.runtime.sqs_event(got, source))
        for message in got:  # not deleted: visible again, as after a visibility timeout
            sqs.change_message_visibility(
                QueueUrl=source.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )

    run(frozen, before_cycle=lose_deletes)
    assert_nothing_lost_nothing_forked(frozen)
