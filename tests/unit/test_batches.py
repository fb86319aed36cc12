"""The SQS batch helper the handlers share: each record on its own, failures reported."""

from __future__ import annotations

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


def test_a_message_reads_its_receive_count_and_string_attributes() -> None:
    (message,) = [SqsMessage.of(r) for r in records(sqs_event("x", receive_count=3))]

    assert message.receive_count == 3
    assert message.attributes == {"not_before": ("String", "2026-11-27T03:30:00Z")}


def test_an_event_that_is_not_a_batch_is_refused_and_an_empty_one_is_not() -> None:
    with pytest.raises(ValueError, match="not a batch"):
        records({"detail": {}})
    assert each_message({"Records": []}, lambda m: None) == (failures_response([]), 0)
