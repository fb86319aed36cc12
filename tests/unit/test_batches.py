"""The SQS batch helper the handlers share: each record on its own, failures reported."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from trackwatch.batches import SqsMessage, each_message, failures_response, records


def sqs_event(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {
                    "not_before": {"dataType": "String", "stringValue": "2026-11-27T03:30:00Z"},
                    "binary": {"dataType": "Binary", "binaryValue": "AAE="},
                },
                "eventSource": "aws:sqs",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_a_record_that_raises_fails_alone() -> None:
    # Given three messages, the second of which cannot be handled
    seen: list[str] = []

    def handle(message: SqsMessage) -> None:
        if message.body == "bad":
            raise ValueError("cannot")
        seen.append(message.body)

    # When
    response, count = each_message(sqs_event("a", "bad", "c"), handle)

    # Then only it is reported, and the others were handled
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert (count, seen) == (3, ["a", "c"])


def test_the_process_dying_is_not_a_record_failure() -> None:
    class Killed(BaseException):
        pass

    def handle(message: SqsMessage) -> None:
        raise Killed

    with pytest.raises(Killed):
        each_message(sqs_event("a"), handle)


def shipment(message: SqsMessage) -> str:
    """The tests' group: a body's part before the dot ("s1.a" is shipment s1's)."""
    if "." not in message.body:
        raise ValueError("no shipment")
    return message.body.split(".")[0]


def test_messages_of_different_shipments_are_handled_side_by_side() -> None:
    # Given two shipments' messages, each of which can finish only once the other has begun
    both = threading.Barrier(2, timeout=5)
    handled: list[str] = []

    def handle(message: SqsMessage) -> None:
        both.wait()
        handled.append(message.body)

    # When handled with two workers
    response, count = each_message(sqs_event("s1.a", "s2.a"), handle, group=shipment, workers=2)

    # Then both went through (one after the other, the barrier would have broken)
    assert response == {"batchItemFailures": []}
    assert (count, sorted(handled)) == (2, ["s1.a", "s2.a"])


def test_one_shipments_messages_are_handled_in_turn_and_in_order() -> None:
    # Given one shipment's three messages among another's, and handlers that take a moment
    running: set[str] = set()
    overlaps: list[str] = []
    order: list[str] = []
    lock = threading.Lock()

    def handle(message: SqsMessage) -> None:
        who = shipment(message)
        with lock:
            if who in running:
                overlaps.append(message.body)
            running.add(who)
        time.sleep(0.01)
        with lock:
            running.discard(who)
            order.append(message.body)

    # When handled with four workers
    each_message(
        sqs_event("s1.a", "s2.a", "s1.b", "s1.c", "s2.b"), handle, group=shipment, workers=4
    )

    # Then no shipment had two messages in hand at once, and each kept the batch's order
    assert overlaps == []
    assert [b for b in order if b.startswith("s1")] == ["s1.a", "s1.b", "s1.c"]
    assert [b for b in order if b.startswith("s2")] == ["s2.a", "s2.b"]


def test_side_by_side_failures_are_reported_in_the_batchs_order_and_a_death_is_raised() -> None:
    class Killed(BaseException):
        pass

    def handle(message: SqsMessage) -> None:
        if message.body.endswith("bad"):
            raise ValueError("cannot")
        if message.body == "s3.dies":
            raise Killed

    # A message whose shipment cannot be told is handled alone (and fails as its handler says)
    response, _ = each_message(
        sqs_event("s1.bad", "s2.a", "unreadable-bad", "s2.bad"), handle, group=shipment, workers=3
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m0", "m2", "m3")]}

    # The process dying in one thread is raised, once the others are done
    handled: list[str] = []

    def dies(message: SqsMessage) -> None:
        handle(message)
        time.sleep(0.05)
        handled.append(message.body)

    with pytest.raises(Killed):
        each_message(sqs_event("s3.dies", "s4.a", "s5.a"), dies, group=shipment, workers=3)
    assert sorted(handled) == ["s4.a", "s5.a"]


def test_a_message_reads_its_receive_count_and_string_attributes() -> None:
    (message,) = [SqsMessage.of(r) for r in records(sqs_event("x", receive_count=3))]

    assert message.receive_count == 3
    assert message.attributes == {"not_before": ("String", "2026-11-27T03:30:00Z")}


def test_an_event_that_is_not_a_batch_is_refused_and_an_empty_one_is_not() -> None:
    with pytest.raises(ValueError, match="not a batch"):
        records({"detail": {}})
    assert each_message({"Records": []}, lambda m: None) == (failures_response([]), 0)


def test_a_notifiers_batch_is_grouped_by_shipment_or_order() -> None:
    from tests.notify_samples import order_event, status_changed
    from trackwatch.models.events import TOPIC_EVENT_ADAPTER
    from trackwatch.notify_batch import shipment_of

    def message(body: bytes) -> SqsMessage:
        return SqsMessage(message_id="m", body=body.decode(), receive_count=1, attributes={})

    shipment_event = TOPIC_EVENT_ADAPTER.dump_json(status_changed(6))
    order = order_event()
    assert shipment_of(message(shipment_event)) == "4#4210610508756"
    assert shipment_of(message(TOPIC_EVENT_ADAPTER.dump_json(order))) == f"order#{order.order_id}"


def test_each_thread_carries_what_the_caller_gives_it() -> None:
    # Given a batch handled side by side, and a carrier that marks the work it wraps
    carried: list[str] = []
    marks = threading.local()

    def carry(work: Any) -> Any:
        carried.append(threading.current_thread().name)

        def marked(*args: Any) -> Any:
            marks.inside = True
            return work(*args)

        return marked

    inside: list[bool] = []

    def handle(message: SqsMessage) -> None:
        inside.append(getattr(marks, "inside", False))

    # When
    each_message(sqs_event("s1.a", "s2.a"), handle, group=shipment, workers=2, carried=carry)

    # Then the work was wrapped once, in the caller's thread, and ran wrapped in each thread
    assert carried == [threading.current_thread().name]
    assert inside == [True, True]


def test_a_batch_of_one_shipment_is_handled_in_the_callers_thread() -> None:
    threads: list[str] = []

    def handle(message: SqsMessage) -> None:
        threads.append(threading.current_thread().name)

    each_message(sqs_event("s1.a", "s1.b"), handle, group=shipment, workers=4)

    assert threads == [threading.current_thread().name] * 2
